"""Turn an official MODNet checkpoint into a verified ONNX file.

The official ``.ckpt`` files are pickles. They are read only with
``torch.load(weights_only=True)``, torch's restricted unpickler, which builds
tensors and plain containers and refuses any other object, so no code from
the file runs. The architecture is segkit's own (:mod:`segkit.modnet`);
nothing downloaded is imported or executed.

Export uses torch's TorchScript-based exporter (``dynamo=False``). It needs
the ``onnx`` package (tested with onnx 1.23.2) but not ``onnxscript``. The
``torch.export``-based exporter gives the same numbers but took about ten
times as long (about 30 s instead of 3 s on two cores) for this model with
dynamic H and W.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ...errors import ModelLoadError, SegkitError
from .network import MODNet

#: Prefix ``nn.DataParallel`` puts on every key of the official checkpoints.
MODULE_PREFIX = "module."
#: The encoder is registered twice; these keys alias ``backbone.``.
ALIAS_PREFIX = "lr_branch.backbone."
INPUT_NAME, OUTPUT_NAME = "input", "matte"
DEFAULT_OPSET = 17
#: Shapes checked after export: two aspect ratios and two batch sizes, so a
#: file with frozen dimensions is caught.
VERIFY_SHAPES = ((1, 3, 64, 96), (2, 3, 96, 64))
_SHOWN_KEYS = 5


class CheckpointError(SegkitError, ValueError):
    """A checkpoint that cannot be read safely or does not fit MODNet."""


class OnnxVerificationError(ModelLoadError):
    """The exported ONNX file does not reproduce the torch model."""


def _first(keys) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - _SHOWN_KEYS} more)" if len(keys) > _SHOWN_KEYS else ""
    return ", ".join(keys[:_SHOWN_KEYS]) + more


def read_state_dict(checkpoint_path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint with the weights-only unpickler and strip the
    ``module.`` prefix. Raises :class:`CheckpointError` if the file holds
    anything but a mapping of names to tensors."""
    path = Path(checkpoint_path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: not a weights-only state dict (refused by torch.load(weights_only=True)): {exc}"
        ) from exc
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"{path}: expected a state dict, found {type(raw).__name__}")
    state: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: entry {key!r} is not a named tensor")
        name = key[len(MODULE_PREFIX):] if key.startswith(MODULE_PREFIX) else key
        if name in state:
            raise CheckpointError(f"{path}: key {name!r} appears with and without {MODULE_PREFIX!r}")
        state[name] = value
    return state


def check_state_dict(state: Mapping[str, torch.Tensor], model: MODNet, source: str | os.PathLike) -> None:
    """Raise :class:`CheckpointError` naming ``source`` and the first offending
    keys unless ``state`` has exactly the model's keys and shapes."""
    expected = model.state_dict()
    missing = expected.keys() - state.keys()
    unexpected = state.keys() - expected.keys()
    wrong = [k for k in expected.keys() & state.keys() if state[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"missing keys: {_first(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_first(unexpected)}")
    if wrong:
        shapes = [f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}" for k in sorted(wrong)]
        problems.append(f"wrong shapes: {_first(shapes)}")
    if problems:
        raise CheckpointError(f"{source}: not a MODNet checkpoint; " + "; ".join(problems))
    # The aliases name the same module, so a consistent file stores equal copies.
    differing = [k for k in state if k.startswith(ALIAS_PREFIX)
                 and not torch.equal(state[k], state["backbone." + k[len(ALIAS_PREFIX):]])]
    if differing:
        raise CheckpointError(f"{source}: aliased encoder weights differ from backbone.*: {_first(differing)}")


def load_modnet(checkpoint_path: str | os.PathLike) -> MODNet:
    """A :class:`MODNet` in eval mode with the checkpoint's weights (strict)."""
    state = read_state_dict(checkpoint_path)
    model = MODNet()
    check_state_dict(state, model, checkpoint_path)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _export(model: MODNet, path: Path, opset: int) -> None:
    """TorchScript-based export with dynamic batch, height and width."""
    axes = {0: "batch", 2: "height", 3: "width"}
    example = torch.zeros(1, 3, 64, 64)
    with warnings.catch_warnings():
        # Announcements of the torch.export-based exporter; this one is chosen on purpose.
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        # InstanceNorm always normalises with per-image statistics, as inference needs.
        warnings.filterwarnings("ignore", message=".*'instance_norm' is set to train=True")
        # torch's own input checks (channel count, spatial size > 1) are traced as constants.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"torch\.nn\.")
        torch.onnx.export(
            model, (example,), str(path), dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
        )


def verify_onnx(onnx_path: str | os.PathLike, model: MODNet, *, atol: float = 1e-4) -> float:
    """Run the ONNX file with onnxruntime (CPU) and ``model`` on the same
    seeded random inputs of :data:`VERIFY_SHAPES`; return the largest absolute
    difference, or raise :class:`OnnxVerificationError` above ``atol``."""
    import onnxruntime as ort  # the runtime is only needed here

    try:
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own, unexported types
        raise OnnxVerificationError(f"{onnx_path}: onnxruntime cannot load it: {exc}") from exc
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for shape in VERIFY_SHAPES:
        image = torch.rand(shape, generator=generator) * 2 - 1
        with torch.no_grad():
            expected = model(image).numpy()
        (actual,) = session.run([OUTPUT_NAME], {INPUT_NAME: image.numpy()})
        if actual.shape != expected.shape:
            raise OnnxVerificationError(f"{onnx_path}: output shape {actual.shape} != {expected.shape} for {shape}")
        worst = max(worst, float(np.abs(actual - expected).max()))
    if not worst <= atol:
        raise OnnxVerificationError(f"{onnx_path}: differs from torch by {worst:.3g} (> {atol:g})")
    return worst


def checkpoint_to_onnx(checkpoint_path: str | os.PathLike, onnx_path: str | os.PathLike, *,
                       opset: int = DEFAULT_OPSET, atol: float = 1e-4) -> Path:
    """Convert an official MODNet checkpoint to ONNX (input ``"input"``
    N x 3 x H x W in [-1, 1], output ``"matte"`` N x 1 x H x W in [0, 1]; N, H
    and W dynamic, H and W multiples of 32).

    The file is written next to ``onnx_path`` under a temporary name, checked
    with :func:`verify_onnx`, and only then renamed into place (atomically),
    so ``onnx_path`` never holds a partial or unverified model."""
    model = load_modnet(checkpoint_path)
    target = Path(onnx_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _export(model, tmp, opset)
        verify_onnx(tmp, model, atol=atol)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
