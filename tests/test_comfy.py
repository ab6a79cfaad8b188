"""The seed node: same declaration, same outputs, shared sessions."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

import segkit
from segkit.comfy import NODE_CLASS_MAPPINGS, ImageSegmentation
from segkit.models.sessions import POOL

REPO = Path(__file__).resolve().parents[1]


def test_declaration_matches_the_seed():
    node = NODE_CLASS_MAPPINGS["ImageSegmentation"]
    required = node.INPUT_TYPES()["required"]
    assert list(required) == ["images", "model", "alpha_matting", "alpha_matting_foreground_threshold",
                              "alpha_matting_background_threshold", "alpha_matting_erode_size",
                              "post_process_mask"]
    assert required["images"] == ("IMAGE",)
    assert required["model"] == (["u2net", "u2netp", "u2net_human_seg", "u2net_cloth_seg", "silueta",
                                  "isnet-general-use", "isnetis", "modnet-p", "modnet-w"],)
    assert required["alpha_matting"] == (["true", "false"],)
    # the seed's, plus ``min: 0``: ComfyUI then refuses a negative value, and old workflows still load
    assert required["alpha_matting_foreground_threshold"] == ("INT", {"default": 240, "min": 0, "max": 250, "step": 5})
    assert required["alpha_matting_background_threshold"] == ("INT", {"default": 20, "min": 0, "max": 250, "step": 5})
    assert required["alpha_matting_erode_size"] == ("INT", {"default": 10, "min": 0, "step": 1})
    assert required["post_process_mask"] == (["false", "true"],)
    assert node.RETURN_TYPES == ("IMAGE",) and node.CATEGORY == "image/segmentation"
    assert callable(getattr(node(), node.FUNCTION))


def test_node_runs_a_batch_and_reuses_the_session(photos):
    images = torch.from_numpy(np.stack([photos["coffee"], photos["coffee"][::-1]]).astype(np.float32) / 255)
    node = ImageSegmentation()
    seed = dict(model="u2netp", alpha_matting="false", alpha_matting_foreground_threshold=240,
                alpha_matting_background_threshold=20, alpha_matting_erode_size=10)
    (first,) = node.segmentation(images, **seed, post_process_mask="false")  # ComfyUI passes inputs by name
    created = POOL.created["u2netp"]
    (again,) = node.segmentation(images, **seed, post_process_mask="true")
    assert POOL.created["u2netp"] == created
    assert first.shape == again.shape == (2, 400, 600, 4)
    direct = segkit.segment(images)
    assert torch.allclose(first, direct, atol=1 / 255 + 1e-6)


def test_repo_loads_as_a_comfyui_custom_node():
    """ComfyUI imports custom_nodes/<repo>/__init__.py as a package and reads the mappings."""
    spec = importlib.util.spec_from_file_location("segkit_custom_node", REPO / "__init__.py",
                                                  submodule_search_locations=[str(REPO)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        assert "ImageSegmentation" in module.NODE_CLASS_MAPPINGS
    finally:
        for name in [n for n in sys.modules if n.startswith("segkit_custom_node")]:
            del sys.modules[name]


def test_comfyui_upscale_overshoot_is_clipped_as_the_seed_did(photos):
    """ComfyUI's bicubic upscale leaves values a little outside 0..1; the seed node clipped them."""
    image = photos["coffee"].astype(np.float32) / 255
    overshoot = image * 1.2 - 0.09  # -0.09..1.11
    (out,) = ImageSegmentation().segmentation(torch.from_numpy(overshoot[None]), model="u2netp",
                                              alpha_matting="false", alpha_matting_foreground_threshold=240,
                                              alpha_matting_background_threshold=20, alpha_matting_erode_size=10,
                                              post_process_mask="false")
    clipped = segkit.segment(np.clip(overshoot, 0, 1))
    assert np.abs(out[0].numpy() * 255 - np.asarray(clipped, np.float32)).max() <= 1


def test_an_empty_batch_comes_back_empty_with_its_size():
    """A filter node upstream may let no image through: the node and segment() hand on an empty
    batch of the same size (u2net_cloth_seg's three garments stacked, as for a full one)."""
    empty = torch.zeros((0, 64, 48, 3))
    seed = dict(alpha_matting="false", alpha_matting_foreground_threshold=240, alpha_matting_background_threshold=20,
                alpha_matting_erode_size=10, post_process_mask="false")
    assert ImageSegmentation().segmentation(empty, model="u2netp", **seed)[0].shape == (0, 64, 48, 4)
    assert ImageSegmentation().segmentation(empty, model="u2net_cloth_seg", **seed)[0].shape == (0, 192, 48, 4)
    assert segkit.segment(empty).shape == (0, 64, 48, 4) and segkit.segment(empty, only_mask=True).shape == (0, 64, 48)
