"""Sessions are lazy, built once under a race, reused, bounded, and quiet about CUDA."""

import subprocess
import sys
import threading

import segkit
from segkit.models.sessions import session_for
from segkit.models.weights import model_path
from segkit.models.lookup import get_model
from segkit.models.sessions import POOL, SessionPool


def test_racing_threads_build_one_session(u2netp_path):
    pool = SessionPool(max_live=2)
    spec = get_model("u2netp")
    barrier = threading.Barrier(4)
    got = []

    def worker():
        barrier.wait()
        got.append(pool.get(spec, model_path))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(got) == 4 and all(s is got[0] for s in got)
    assert pool.created["u2netp"] == 1


def test_sessions_are_reused_across_calls(u2netp_path, photos):
    segkit.segment(photos["coffee"])
    before = POOL.created["u2netp"]
    segkit.segment([photos["coffee"], photos["chelsea"]])
    assert POOL.created["u2netp"] == before
    assert "u2netp" in segkit.loaded_models()


def test_lru_bounds_live_sessions(u2netp_path):
    pool = SessionPool(max_live=1)
    u2netp = get_model("u2netp")
    alias = type(u2netp)(**{**u2netp.__dict__, "name": "u2netp-copy"})
    first = pool.get(u2netp, model_path)
    pool.get(alias, model_path)
    assert pool.loaded() == ["u2netp-copy"]
    assert pool.get(u2netp, model_path) is not first  # rebuilt after eviction
    assert pool.created["u2netp"] == 2


def test_device_detection_is_quiet_and_sessions_use_the_device_it_names():
    """onnxruntime-gpu lists CUDA even on a GPU-less host; segkit must not try it noisily there,
    and where a GPU works (segkit.device() == "CUDA") sessions must start with CUDA."""
    code = "import segkit; print(segkit.device()); segkit.preload('u2netp')"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == segkit.device() in ("CPU", "CUDA")
    providers = session_for(get_model("u2netp")).get_providers()
    if segkit.device() == "CPU":
        assert "Failed to load library" not in run.stderr and "CUDAExecutionProvider" not in run.stderr
        assert providers == ["CPUExecutionProvider"]
    else:
        assert providers[0] == "CUDAExecutionProvider"


def test_cuda_sessions_match_the_cpu_and_search_no_algorithms_by_default(monkeypatch):
    """What a CUDA session is asked for (checked where no GPU is, too): TF32 off unless asked, since
    it moves masks away from the CPU's, and cuDNN's heuristics rather than a timed search per shape."""
    import pytest

    from segkit.models.sessions import _with_options

    monkeypatch.delenv("SEGKIT_TF32", raising=False)
    monkeypatch.delenv("SEGKIT_CUDNN_SEARCH", raising=False)
    assert _with_options("CPUExecutionProvider") == "CPUExecutionProvider"
    assert _with_options("CUDAExecutionProvider") == (
        "CUDAExecutionProvider", {"use_tf32": "0", "cudnn_conv_algo_search": "HEURISTIC"})
    monkeypatch.setenv("SEGKIT_TF32", "1")
    monkeypatch.setenv("SEGKIT_CUDNN_SEARCH", "exhaustive")
    assert _with_options("CUDAExecutionProvider")[1] == {"use_tf32": "1", "cudnn_conv_algo_search": "EXHAUSTIVE"}
    monkeypatch.setenv("SEGKIT_CUDNN_SEARCH", "fastest")
    with pytest.raises(ValueError, match="SEGKIT_CUDNN_SEARCH must be one of HEURISTIC, EXHAUSTIVE, DEFAULT"):
        _with_options("CUDAExecutionProvider")
