"""Shared fixtures. Every model test here runs the real u2netp weights (fetched
through segkit's own download path on first use), never a stub."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import segkit
from segkit.registry import get_model
from segkit.weights import find_cached


@pytest.fixture(scope="session")
def u2netp_path():
    """The real u2netp weights (md5-verified), downloaded once if missing."""
    return segkit.download("u2netp")


@pytest.fixture(scope="session")
def photos():
    """Real photos bundled with scikit-image: a person, a cat, a cup."""
    from skimage import data

    return {"astronaut": data.astronaut(), "chelsea": data.chelsea(), "coffee": data.coffee()}


@pytest.fixture(scope="session")
def rembg_session(u2netp_path):
    """rembg's own u2netp session, reading the same cached file (U2NET_HOME layout)."""
    import rembg

    return rembg.new_session("u2netp", providers=["CPUExecutionProvider"])


def u2net_cached() -> bool:
    return find_cached(get_model("u2net")) is not None


def png_bytes(array: np.ndarray, **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=save.pop("format", "PNG"), **save)
    return buf.getvalue()


def alpha(image) -> np.ndarray:
    return np.asarray(image)[:, :, 3].astype(np.int16)
