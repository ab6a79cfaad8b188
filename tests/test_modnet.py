"""Tests for segkit.modnet (architecture) and segkit.modnet_convert
(checkpoint -> ONNX). None of them needs the real weights: they use randomly
initialised models saved the way the official checkpoints were saved.

The fixture ``fixtures/modnet_state_dict_shapes.json`` is the key -> shape
layout of the official checkpoints without the ``module.`` prefix. It is
written by ``fixtures/make_modnet_manifest.py``, which derives it on paper
from the published architecture (MobileNetV2 width 1.0, ``hr_channels=32``)
without importing segkit, so the first test compares two independent
descriptions. Its totals (751 keys, 312 aliased encoder keys, 121
``num_batches_tracked``, 6,487,075 parameters) equal those reported for the
real ``modnet_photographic_portrait_matting.ckpt`` by projects that loaded it
(e.g. the MODNet webcam safetensors conversion "holds all 751 entries").
"""

import json
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from segkit.models.modnet import convert as modnet_convert
from segkit.models.modnet.network import MODNet
from segkit.models.modnet.convert import CheckpointError, OnnxVerificationError, checkpoint_to_onnx

MANIFEST = json.loads((Path(__file__).parent / "fixtures" / "modnet_state_dict_shapes.json").read_text())
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _save_official(state: dict, path: Path) -> Path:
    """Save like the upstream trainer: the state dict of nn.DataParallel."""
    torch.save({"module." + k: v for k, v in state.items()}, path)
    return path


@pytest.fixture(scope="module")
def reference_model():
    """A random MODNet whose BatchNorm statistics are random too, so that
    loading them (or not) changes the output."""
    torch.manual_seed(0)
    model = MODNet()
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1, generator=generator)
            module.running_var.uniform_(0.5, 1.5, generator=generator)
            module.num_batches_tracked.fill_(1000)
    return model.eval()


@pytest.fixture(scope="module")
def official_checkpoint(reference_model, tmp_path_factory):
    return _save_official(reference_model.state_dict(), tmp_path_factory.mktemp("ckpt") / "modnet.ckpt")


@pytest.fixture(scope="module")
def exported(official_checkpoint, tmp_path_factory):
    """One ONNX file, exported once (about 3 s) and shared."""
    return checkpoint_to_onnx(official_checkpoint, tmp_path_factory.mktemp("onnx") / "modnet.onnx")


def test_random_model_has_the_official_layout():
    """Random init, no real weights: keys and shapes equal the manifest, and
    the parameter count is MODNet's ~6.5 M (shared encoder counted once)."""
    model = MODNet()
    state = model.state_dict()
    assert list(state) == list(MANIFEST)
    assert {k: list(v.shape) for k, v in state.items()} == MANIFEST
    # What the upstream trainer saved: the nn.DataParallel wrapper's keys.
    assert list(torch.nn.DataParallel(model).state_dict()) == ["module." + k for k in MANIFEST]
    assert len(MANIFEST) == 751
    assert sum(k.startswith("lr_branch.backbone.") for k in MANIFEST) == 312
    assert sum(k.endswith("num_batches_tracked") for k in MANIFEST) == 121

    parameters_in_manifest = sum(
        math.prod(shape) for key, shape in MANIFEST.items()
        if not key.startswith("lr_branch.backbone.") and not key.endswith(BUFFERS)
    )
    assert parameters_in_manifest == 6_487_075
    assert sum(p.numel() for p in model.parameters()) == parameters_in_manifest
    assert 6.4e6 <= parameters_in_manifest <= 6.6e6


def test_forward_returns_a_matte():
    """Random init, no real weights: N x 3 x H x W in [-1, 1] gives N x 1 x H x W in [0, 1]."""
    model = MODNet().eval()
    with torch.no_grad():
        matte = model(torch.rand(2, 3, 64, 96) * 2 - 1)
    assert matte.shape == (2, 1, 64, 96)
    assert 0.0 <= matte.min() and matte.max() <= 1.0


def test_onnx_round_trip_at_two_aspect_ratios(reference_model, exported):
    """Random weights saved the official way (no real weights): one exported
    file with dynamic H/W matches the torch forward pass to 1e-4 (max abs) on
    a landscape and a portrait input."""
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ("input", "matte")
    assert isinstance(inp.shape[2], str) and isinstance(inp.shape[3], str)  # dynamic H, W

    generator = torch.Generator().manual_seed(2)
    for shape in [(1, 3, 192, 256), (1, 3, 320, 192)]:
        image = torch.rand(shape, generator=generator) * 2 - 1
        with torch.no_grad():
            expected = reference_model(image).numpy()
        (actual,) = session.run(["matte"], {"input": image.numpy()})
        assert actual.shape == (1, 1, *shape[2:])
        assert np.abs(actual - expected).max() <= 1e-4
        assert expected.std() > 0.01  # a real signal, not a saturated constant


def test_export_leaves_no_temporary_files(exported):
    """Random weights, no real weights: only the final file is left beside it."""
    assert [p.name for p in exported.parent.iterdir()] == [exported.name]


@pytest.mark.parametrize("damage", ["missing", "wrong_shape", "unexpected"])
def test_mismatching_checkpoint_is_refused(reference_model, tmp_path, damage):
    """Random weights with one key damaged (no real weights): refused with a
    CheckpointError naming the file and the key; nothing is written."""
    state = dict(reference_model.state_dict())
    key = "f_branch.conv_f.1.layers.0.weight"
    if damage == "missing":
        del state[key]
    elif damage == "wrong_shape":
        state[key] = torch.zeros(1, 8, 1, 1)
    else:
        key = "f_branch.extra.weight"
        state[key] = torch.zeros(1)
    ckpt = _save_official(state, tmp_path / "damaged.ckpt")
    target = tmp_path / "out" / "modnet.onnx"
    with pytest.raises(CheckpointError, match=r"damaged\.ckpt") as info:
        checkpoint_to_onnx(ckpt, target)
    assert key in str(info.value)
    assert isinstance(info.value, ValueError)
    assert not target.parent.exists() or not any(target.parent.iterdir())


def test_differing_encoder_aliases_are_refused(reference_model, tmp_path):
    """Random weights (no real weights): backbone.* and lr_branch.backbone.*
    are one module, so a file storing different values for them is refused."""
    state = {k: v.clone() for k, v in reference_model.state_dict().items()}
    state["lr_branch.backbone.model.features.0.0.weight"] += 1
    ckpt = _save_official(state, tmp_path / "forked.ckpt")
    with pytest.raises(CheckpointError, match="aliased encoder weights differ"):
        modnet_convert.load_modnet(ckpt)


_CALLS = []


def _side_effect():
    _CALLS.append("ran")
    return torch.zeros(1)


class _Payload:
    """Unpickling this would call _side_effect: the stand-in for malicious code."""

    def __reduce__(self):
        return (_side_effect, ())


def test_pickled_objects_are_refused_without_running(tmp_path):
    """No real weights: a checkpoint holding a pickled callable is refused by
    the weights-only unpickler and its code never runs."""
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"module.backbone.model.features.0.0.weight": _Payload()}, ckpt)
    with pytest.raises(CheckpointError, match=r"evil\.ckpt.*weights_only"):
        checkpoint_to_onnx(ckpt, tmp_path / "evil.onnx")
    assert _CALLS == []
    assert not (tmp_path / "evil.onnx").exists()


def test_torch_load_is_called_weights_only(reference_model, tmp_path, monkeypatch):
    """No real weights: the loader asks torch.load for weights_only=True on CPU."""
    ckpt = _save_official(reference_model.state_dict(), tmp_path / "spy.ckpt")
    seen = []
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(modnet_convert.torch, "load", spy)
    modnet_convert.load_modnet(ckpt)
    assert seen == [{"map_location": "cpu", "weights_only": True}]


def test_unverifiable_export_is_not_published(official_checkpoint, tmp_path, monkeypatch):
    """No real weights: if the exported file fails verification, the target
    path is not created and the temporary file is removed."""
    monkeypatch.setattr(modnet_convert, "_export", lambda model, path, opset: path.write_bytes(b"not onnx"))
    target = tmp_path / "modnet.onnx"
    with pytest.raises(OnnxVerificationError, match="cannot load"):
        checkpoint_to_onnx(official_checkpoint, target)
    assert list(tmp_path.iterdir()) == []


def test_legacy_serialization_is_read(reference_model, tmp_path):
    """No real weights: the official files use torch's pre-1.6 (non-zip)
    format, an OrderedDict pickle naming only OrderedDict, FloatStorage,
    LongStorage and _rebuild_tensor_v2, as this file does. The weights-only
    reader accepts it and strips ``module.``."""
    ckpt = tmp_path / "legacy.ckpt"
    state = OrderedDict(("module." + k, v) for k, v in reference_model.state_dict().items())
    torch.save(state, ckpt, _use_new_zipfile_serialization=False)
    state = modnet_convert.read_state_dict(ckpt)
    assert list(state) == list(MANIFEST)
    assert torch.equal(state["f_branch.conv_f.1.layers.0.weight"],
                       reference_model.state_dict()["f_branch.conv_f.1.layers.0.weight"])
