"""The ComfyUI node ``ImageSegmentation``, declared exactly as the seed node was so
old workflows load unchanged, now backed by segkit's shared sessions."""

from __future__ import annotations

import numpy as np

from .api import process
from .inputs import split_tensor_batch
from .registry import list_models



class ImageSegmentation:
    """Cut subjects out of a batch of images (ComfyUI IMAGE in, RGBA IMAGE out)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE",),
                "model": (list_models()[:9],),
                "alpha_matting": (["true", "false"],),
                "alpha_matting_foreground_threshold": ("INT", {"default": 240, "max": 250, "step": 5}),
                "alpha_matting_background_threshold": ("INT", {"default": 20, "max": 250, "step": 5}),
                "alpha_matting_erode_size": ("INT", {"default": 10, "step": 1}),
                "post_process_mask": (["false", "true"],),
            },
        }

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "segmentation"
    CATEGORY = "image/segmentation"

    def segmentation(self, images, model, alpha_matting, alpha_matting_foreground_threshold,
                     alpha_matting_background_threshold, alpha_matting_erode_size, post_process_mask):
        """Like the seed: multi-mask models (u2net_cloth_seg) stack their cutouts vertically."""
        import torch

        results = process(split_tensor_batch(images), model, _flag(alpha_matting),
                          alpha_matting_foreground_threshold, alpha_matting_background_threshold,
                          alpha_matting_erode_size, _flag(post_process_mask))
        frames = []
        for result in results:
            if result.error:
                raise result.error
            frames.append(np.concatenate([np.asarray(c) for c in result.cutouts.values()], axis=0))
        return (torch.from_numpy(np.stack(frames).astype(np.float32) / 255.0),)


def _flag(value) -> bool:
    """The seed's combos pass "true"/"false" strings; accept real booleans too."""
    return value if isinstance(value, bool) else str(value).strip().lower() == "true"


NODE_CLASS_MAPPINGS = {"ImageSegmentation": ImageSegmentation}
NODE_DISPLAY_NAME_MAPPINGS = {"ImageSegmentation": "Image Segmentation (segkit)"}
