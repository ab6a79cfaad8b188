"""Start the real app (python app.py) on a free localhost port for a test module."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def folder_usage(folder: Path) -> tuple[int, int]:
    """(files, bytes) under ``folder``, for tests that bound what requests leave on disk."""
    files = size = 0
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                size += os.stat(os.path.join(root, name)).st_size
                files += 1
            except OSError:
                continue  # removed by the server meanwhile
    return files, size


class AppServer:
    """``python app.py --port N`` in a subprocess; ``url`` once it answers. The check of the models'
    download sources is off unless ``env`` turns it on: tests send no traffic beyond the loopback."""

    def __init__(self, *args: str, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = open(REPO / "artifacts" / f"app-{self.port}.log", "w") if (REPO / "artifacts").is_dir() else None
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "app.py"), "--port", str(self.port), *args], cwd=REPO,
            stdout=self.log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
            env={**os.environ, "SEGKIT_PROBE_MODELS": "0", **(env or {})})
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.process.returncode}")
            try:
                urllib.request.urlopen(self.url, timeout=2).read()
                return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("app.py did not answer within 120 s")

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        if self.log:
            self.log.close()
