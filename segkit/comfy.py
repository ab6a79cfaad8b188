"""The ComfyUI node ``ImageSegmentation``, declared exactly as the seed node was so
old workflows load unchanged, now backed by segkit's shared sessions."""

from __future__ import annotations

import numpy as np

from .batch import process
from .models.lookup import list_models
from .options import Options


class ImageSegmentation:
    """Cut subjects out of a batch of images (ComfyUI IMAGE in, RGBA IMAGE out)."""

    @classmethod
    def INPUT_TYPES(cls):
        # The seed node's declaration, literal so old workflows keep loading; ``min: 0`` makes
        # ComfyUI refuse a negative value before the node runs.
        return {
            "required": {
                "images": ("IMAGE",),
                "model": (list_models()[:9],),
                "alpha_matting": (["true", "false"],),
                "alpha_matting_foreground_threshold": ("INT", {"default": 240, "min": 0, "max": 250, "step": 5}),
                "alpha_matting_background_threshold": ("INT", {"default": 20, "min": 0, "max": 250, "step": 5}),
                "alpha_matting_erode_size": ("INT", {"default": 10, "min": 0, "step": 1}),
                "post_process_mask": (["false", "true"],),
            },
        }

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "segmentation"
    CATEGORY = "image/segmentation"

    def segmentation(self, images, **options):
        """Like the seed: multi-mask models (u2net_cloth_seg) stack their cutouts vertically.
        The seed's "true"/"false" strings are read by ``Options``; tensors are clipped to 0..1."""
        import torch

        frames = []
        for result in process(images, **options):
            if result.error:
                raise result.error
            frames.append(np.concatenate([np.asarray(c) for c in result.cutouts.values()], axis=0))
        if not frames:  # an empty batch (a filter upstream let nothing through) stays empty, with its size
            labels = Options.of(**options).spec.mask_labels
            return (torch.zeros((0, images.shape[1] * len(labels), images.shape[2], 4)),)
        return (torch.from_numpy(np.stack(frames).astype(np.float32) / 255.0),)


NODE_CLASS_MAPPINGS = {"ImageSegmentation": ImageSegmentation}
NODE_DISPLAY_NAME_MAPPINGS = {"ImageSegmentation": "Image Segmentation (segkit)"}
