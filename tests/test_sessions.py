"""Sessions are lazy, built once under a race, reused, bounded, and quiet about CUDA."""

import copy
import os
import subprocess
import sys
import threading

import numpy as np
import onnxruntime as ort
import pytest

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


@pytest.mark.skipif(segkit.device() != "CPU" or (os.cpu_count() or 1) < 2, reason="CPU sessions on 2+ cores")
def test_cpu_runs_that_take_every_core_queue_and_one_thread_runs_do_not(u2netp_path, monkeypatch):
    """Two runs at once on every core only share the cores and double the arena's memory, so a
    run waits while another holds the cores; the video path's one-thread runs go side by side."""
    from segkit.models import sessions

    monkeypatch.delenv("SEGKIT_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    spec = get_model("u2netp")
    every_core, one_thread = sessions.build_session(u2netp_path, spec), sessions.session_side_by_side(spec, 2)
    feed = {every_core.get_inputs()[0].name: np.zeros((1, 3, 320, 320), np.float32)}

    def finishes_while_the_cores_are_taken(session) -> bool:
        run = threading.Thread(target=session.run, args=(None, feed))
        with sessions._CORES_IN_USE:
            run.start()
            run.join(10)
            finished = not run.is_alive()
        run.join(60)
        return finished

    assert isinstance(every_core, sessions.OneRunAtATime) and not finishes_while_the_cores_are_taken(every_core)
    assert finishes_while_the_cores_are_taken(one_thread)
    assert copy.copy(every_core).get_inputs() == every_core.get_inputs()  # a copy delegates too (no recursion)


def test_device_detection_is_quiet_and_sessions_use_the_device_it_names():
    """onnxruntime-gpu lists CUDA even on a GPU-less host; segkit must not try it noisily there,
    and where a GPU works (segkit.device() == "CUDA") sessions must start with CUDA. A script that
    exits right after its calls must exit cleanly: on an H100, one whose second call had started
    building the GPU's pixel graphs (a daemon thread then) was aborted by the C++ runtime."""
    code = ("import numpy, segkit; print(segkit.device()); segkit.preload('u2netp'); "
            "[segkit.segment(numpy.zeros((64, 48, 3), numpy.uint8), model='u2netp') for _ in range(2)]")
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


@pytest.mark.skipif(segkit.device() == "CUDA", reason="CUDA would start here")
def test_a_session_that_falls_back_to_the_cpu_runs_as_a_cpu_one(monkeypatch, caplog, request, u2netp_path):
    """CUDA chosen but not started (here: onnxruntime-gpu without a GPU, forced by SEGKIT_DEVICE=cuda):
    the session is then a CPU one without gathered batches, segkit.device() says CPU, and later
    sessions go straight to the CPU."""
    from segkit.models import sessions

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime without its CUDA provider cannot be asked for CUDA")
    monkeypatch.setenv("SEGKIT_DEVICE", "cuda")
    monkeypatch.delenv("SEGKIT_NETWORK_BATCH", raising=False)
    monkeypatch.setattr(sessions, "_cuda_failed", False)
    request.addfinalizer(sessions.providers.cache_clear)  # runs before monkeypatch restores the setting
    sessions.providers.cache_clear()
    assert segkit.device() == "CUDA"
    session, _ = sessions.open_model(get_model("u2netp"), u2netp_path)
    assert "CUDA did not start" in caplog.text
    assert isinstance(session, sessions.OneRunAtATime) and session.get_providers() == ["CPUExecutionProvider"]
    assert segkit.device() == "CPU"
    caplog.clear()
    sessions.build_session(u2netp_path, get_model("u2netp"))
    assert "CUDA did not start" not in caplog.text


@pytest.mark.skipif(segkit.device() != "CUDA", reason="needs a GPU that onnxruntime's CUDA provider runs on")
def test_the_gpu_gives_the_cpus_alpha(photos, u2netp_path):
    """Issue 16: with TF32 off, a GPU's network output is the CPU's within float noise. rembg's arithmetic
    then truncates it to 8 bits and upscales with Lanczos, whose lobes can turn two neighbouring one-level
    flips into two levels, so the alpha is held to one level with rare two-level pixels (bench/RESULTS.md, GPU)."""
    import numpy as np
    import onnxruntime as ort
    from PIL import Image

    from segkit.models.sessions import _session_options
    from segkit.options import Options
    from segkit.pipeline import segment_one

    cpu = ort.InferenceSession(str(u2netp_path), _session_options(), providers=["CPUExecutionProvider"])
    gpu, options = session_for(get_model("u2netp")), Options(model="u2netp")
    images = [*photos.values(), np.asarray(Image.fromarray(photos["chelsea"]).resize((1804, 1200)))]
    for image in images:
        want, got = (np.asarray(segment_one(image, options, s).mask, np.int16) for s in (cpu, gpu))
        difference = np.abs(got - want)
        assert difference.max() <= 2 and (difference > 1).mean() <= 1e-4
    tensor = np.random.default_rng(0).normal(size=(1, 3, 320, 320)).astype(np.float32)
    want, got = (s.run(None, {s.get_inputs()[0].name: tensor})[0] for s in (cpu, gpu))
    assert np.abs(got - want).max() <= 0.05 / 255 * (want.max() - want.min())
