"""Your own ONNX file (refused outside the model folder, when not ONNX, or with the wrong input),
downloads that resume after a cut (a 127.0.0.1 server, nothing beyond loopback), sessions evicted
by weight memory, and licences said before a download."""

from __future__ import annotations

import hashlib
import http.server
import threading
from dataclasses import replace

import numpy as np
import onnx
import pytest

import segkit
from segkit import cli
from segkit.models import catalog, weights
from segkit.models.lookup import get_model
from segkit.models.registry import Source, WeightFile
from segkit.models.sessions import SessionPool
from helpers import asymmetric_model

PHOTO = np.full((40, 50, 3), 120, np.uint8)


def test_custom_file_outside_the_model_folder_is_refused(cache, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "x.onnx"
    onnx.save(asymmetric_model(320), outside)
    for spelling in (str(outside), f"../{outside.parent.name}/x.onnx"):
        with pytest.raises(segkit.InvalidInputError, match="must be inside the model folder"):
            segkit.get_model(f"u2net_custom:{spelling}")
    (cache / "link.onnx").symlink_to(outside)  # a link inside that leads out is refused too
    with pytest.raises(segkit.InvalidInputError, match="must be inside the model folder"):
        segkit.get_model("u2net_custom:link.onnx")


def test_custom_file_that_is_not_onnx_or_missing_names_the_file_and_the_expectation(cache):
    (cache / "notes.onnx").write_text("hello")
    with pytest.raises(segkit.InvalidInputError,
                       match=r"notes.onnx is not an ONNX file; expected a U²-Net ONNX model with one input of "
                             r"shape \[1, 3, 320, 320\]"):
        segkit.segment(PHOTO, model="u2net_custom:notes.onnx")
    with pytest.raises(segkit.InvalidInputError, match=r"no such file.*expected an IS-Net"):
        segkit.get_model("dis_custom:missing.onnx")
    (cache / "broken.onnx").write_bytes(b"\x08\x07garbage")
    with pytest.raises(segkit.InvalidInputError, match=r"broken.onnx is not an ONNX model onnxruntime can load"):
        segkit.segment(PHOTO, model="u2net_custom:broken.onnx")


def test_custom_file_with_the_wrong_input_shape_is_refused_before_any_image(cache):
    onnx.save(asymmetric_model(320), cache / "small.onnx")
    with pytest.raises(segkit.InvalidInputError,
                       match=r"small.onnx takes input of shape \[1, 3, 320, 320\]; dis_custom expects an IS-Net"):
        segkit.process([PHOTO], model="dis_custom:small.onnx")
    assert segkit.segment(PHOTO, model="u2net_custom:small.onnx").size == (50, 40)
    assert "unknown model" in str(pytest.raises(segkit.InvalidInputError, segkit.get_model, "foo_custom:x.onnx").value)


class _Server(http.server.BaseHTTPRequestHandler):
    """Serves one file with Range support; the first plain GET is cut after a third of the bytes."""

    data = b""
    ranges: list[str] = []
    cut = True

    def do_GET(self):  # noqa: N802 - http.server's name
        wanted = self.headers.get("Range")
        type(self).ranges.append(wanted)
        start = int(wanted[6:-1]) if wanted else 0
        body = self.data[start:]
        self.send_response(206 if wanted else 200)
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{len(self.data) - 1}/{len(self.data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if type(self).cut and not wanted:
            type(self).cut = False
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.connection.close()
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_cut_download_leaves_no_final_file_and_the_retry_resumes(cache, monkeypatch):
    monkeypatch.delenv("SEGKIT_SKIP_CHECKSUM")
    _Server.data, _Server.ranges, _Server.cut = np.random.default_rng(1).bytes(3_000_000), [], True
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/big.onnx"
        file = WeightFile("big.onnx", "md5:" + hashlib.md5(_Server.data).hexdigest(), 3.0, (Source("url", url),))
        spec = replace(get_model("u2netp"), name="big", weights=file)
        heard = []
        with pytest.raises(segkit.ModelNotAvailableError):
            weights.fetch_weights(spec, lambda f, text: heard.append(text))
        kept = (cache / ".big.onnx.part").stat().st_size
        assert not (cache / "big.onnx").exists() and 900_000 < kept <= 1_000_000
        assert weights.fetch_weights(spec, lambda f, text: heard.append(text)) == cache / "big.onnx"
        assert (cache / "big.onnx").read_bytes() == _Server.data and not (cache / ".big.onnx.part").exists()
        assert _Server.ranges == [None, f"bytes={kept}-"]
        assert heard[-1] == "downloading big.onnx: 3 of 3 MB"
    finally:
        server.shutdown()


def test_sessions_are_evicted_by_weight_memory(u2netp_path):
    pool = SessionPool(max_live=5, memory_mb=8)  # room for one u2netp (4.6 MB), not two
    u2netp = get_model("u2netp")
    pool.get(u2netp, weights.model_path)
    pool.get(replace(u2netp, name="u2netp-copy"), weights.model_path)
    assert pool.loaded() == ["u2netp-copy"]
    roomy = SessionPool(max_live=5, memory_mb=100)
    roomy.get(u2netp, weights.model_path)
    roomy.get(replace(u2netp, name="u2netp-copy"), weights.model_path)
    assert roomy.loaded() == ["u2netp", "u2netp-copy"]


def test_a_batching_session_counts_its_second_copy_of_the_weights(u2netp_path, monkeypatch):
    """Batched runs hold the weights twice (the file's session and the free-batch one): the
    memory budget counts both, so 12 MB holds two u2netp sessions (4.6 MB) but one batching one."""
    u2netp = get_model("u2netp")
    for per_run, kept in (("1", ["u2netp", "u2netp-copy"]), ("2", ["u2netp-copy"])):
        monkeypatch.setenv("SEGKIT_NETWORK_BATCH", per_run)
        pool = SessionPool(max_live=5, memory_mb=12)
        pool.get(u2netp, weights.model_path)
        pool.get(replace(u2netp, name="u2netp-copy"), weights.model_path)
        assert pool.loaded() == kept


def test_models_are_grouped_by_purpose_with_licence_and_size(cache):
    names = [name for _, name in catalog.model_choices()]
    groups = [get_model(n).group for n in names]
    assert groups == sorted(groups, key=segkit.models.registry.GROUPS.index)
    labels = dict((name, label) for label, name in catalog.model_choices())
    assert labels["bria-rmbg"] == "bria-rmbg · download 1024 MB · non-commercial"
    assert labels["sam"] == "sam · download 359 MB"
    assert "non-commercial use only" in catalog.status_line("bria-rmbg")
    assert get_model("bria-rmbg").licence.startswith("CC BY-NC 4.0")


def test_cli_says_the_licence_before_the_download_starts(cache, monkeypatch, capsys):
    def refuse(source, target, progress):
        print("DOWNLOAD STARTED", file=__import__("sys").stderr)
        raise ConnectionError("offline")

    monkeypatch.setitem(weights._FETCHERS, "url", refuse)
    assert cli.main(["download", "bria-rmbg"]) == 1
    err = capsys.readouterr().err
    assert err.index("non-commercial use only") < err.index("DOWNLOAD STARTED")
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "\nprompted:\n  sam" in out and "CC BY-NC 4.0" in out and "download 973 MB" in out
