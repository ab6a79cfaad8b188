"""Lets ComfyUI load this repository as a custom node (custom_nodes/segkit)."""

from .segkit.comfy import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
