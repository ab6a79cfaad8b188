"""MODNet through segkit's real conversion and session path.

The official checkpoints cannot be downloaded here, so these tests place a
randomly initialised MODNet checkpoint (saved the official way) in the cache
under the official file name. Its matte is meaningless; what is tested is the
loading, conversion, verification, caching and preprocessing code."""

import hashlib

import pytest
import torch

import segkit
from segkit.models import weights
from segkit.models.modnet.network import MODNet
from segkit.models.predict import input_size
from segkit.models.lookup import get_model
from segkit.models.sessions import POOL

CKPT = "modnet_photographic_portrait_matting.ckpt"


@pytest.fixture
def random_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    torch.manual_seed(0)
    state = MODNet().state_dict()
    torch.save({"module." + k: v for k, v in state.items()}, tmp_path / CKPT)
    POOL.clear()
    yield tmp_path
    POOL.clear()


@pytest.fixture
def offline(monkeypatch):
    def refuse(source, target, progress):
        raise ConnectionError("network unreachable")
    monkeypatch.setitem(weights._FETCHERS, "url", refuse)


def test_segment_runs_modnet_end_to_end(random_checkpoint, monkeypatch, photos):
    monkeypatch.setenv("SEGKIT_SKIP_CHECKSUM", "1")  # a self-made checkpoint cannot match the official digest
    out = segkit.segment([photos["astronaut"], photos["chelsea"]], model="modnet-p")
    assert [o.size for o in out] == [(512, 512), (451, 300)] and out[0].mode == "RGBA"
    onnx_files = list(random_checkpoint.glob("modnet_photographic_portrait_matting.*.onnx"))
    assert len(onnx_files) == 1
    digest = hashlib.sha256((random_checkpoint / CKPT).read_bytes()).hexdigest()[:16]
    assert digest in onnx_files[0].name
    session = segkit.models.sessions.session_for(get_model("modnet-p"))
    assert [i.shape for i in session.get_inputs()][0][2:] != [512, 512]  # dynamic height and width
    segkit.segment(photos["coffee"], model="modnet-p")
    assert POOL.created["modnet-p"] == 1


def test_tampered_checkpoint_is_refused_when_checking(random_checkpoint, offline, photos):
    with pytest.raises(segkit.ModelNotAvailableError) as info:
        segkit.segment(photos["coffee"], model="modnet-p")
    message = str(info.value)
    assert "corrupt" in message and "7c22235f0925deba" in message
    assert not list(random_checkpoint.glob("*.onnx"))


def test_missing_checkpoint_says_where_it_comes_from(tmp_path, monkeypatch, offline):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    with pytest.raises(segkit.ModelNotAvailableError) as info:
        segkit.preload("modnet-w")
    message = str(info.value)
    assert "storage.openvinotoolkit.org" in message and "modnet_webcam_portrait_matting.ckpt" in message
    assert "huggingface.co" in message and str(tmp_path / "modnet_webcam_portrait_matting.ckpt") in message


@pytest.mark.parametrize("size, expected", [
    ((1000, 600), (832, 512)),  # both sides above 512: short side to 512, keep aspect
    ((400, 300), (672, 512)),   # both below: scale up the same way
    ((600, 400), (576, 384)),   # 512 in between: keep, round down to multiples of 32
    ((2000, 20), (1984, 32)),   # a thin strip keeps its length and never reaches zero height
])
def test_modnet_input_keeps_the_aspect_ratio(size, expected):
    assert input_size(get_model("modnet-p").preprocess, *size) == expected


def test_registry_entries_are_modnet():
    for name in ("modnet-p", "modnet-w"):
        spec = get_model(name)
        assert spec.converter == "modnet" and spec.output == "matte"
        assert spec.weights.checksum.startswith("sha256:") and len(spec.weights.sources) >= 2
        assert "aspect" in spec.notes.lower()
