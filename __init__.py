"""Lets ComfyUI load this repository as a custom node (custom_nodes/segkit)."""

if __package__:  # loaded as a package (ComfyUI); pytest may import this file bare while collecting
    from .segkit.comfy import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
else:
    NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = {}, {}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
