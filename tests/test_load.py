"""Load on the real app: 20 concurrent gradio_client clients x 10 requests each, loopback
only, bounded in count and time. No request may fail, and the server's resident memory
after the run stays within 10% of its level after the first 20 requests (no leak)."""

import statistics
import threading
import time

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from appserver import AppServer

CLIENTS, REQUESTS, TIME_LIMIT = 20, 10, 900


@pytest.mark.slow
def test_twenty_clients_ten_requests_each(tmp_path, photos, u2netp_path):
    sizes = [(128, 128), (160, 120), (96, 144), (200, 150)]
    paths = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"load{i}.png"
        Image.fromarray(photos["chelsea"]).resize(size).save(path)
        paths.append((path, size))
    server = AppServer()
    try:
        warm = Client(server.url, verbose=False)
        for path, _ in paths * 5:  # the first 20 requests: sessions, caches and pools reach steady state
            warm.predict(handle_file(str(path)), api_name="/remove_background")
        rss_after_warmup = server.rss_kb()
        latencies, failures, lock = [], [], threading.Lock()
        deadline = time.time() + TIME_LIMIT

        def client_loop(index):
            client = Client(server.url, verbose=False)
            for request in range(REQUESTS):
                if time.time() > deadline:
                    with lock:
                        failures.append(f"client {index}: time limit reached")
                    return
                path, size = paths[(index + request) % len(paths)]
                start = time.perf_counter()
                try:
                    out = Image.open(client.predict(handle_file(str(path)), api_name="/remove_background"))
                    assert out.mode == "RGBA" and out.size == size, (out.mode, out.size)
                    assert np.asarray(out)[:, :, 3].any()
                except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                    with lock:
                        failures.append(f"client {index} request {request}: {exc!r}"[:300])
                    continue
                with lock:
                    latencies.append(time.perf_counter() - start)

        threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIME_LIMIT + 60)
        rss_after_run = server.rss_kb()
    finally:
        server.stop()
    latencies.sort()
    p50, p95 = statistics.median(latencies), latencies[int(0.95 * (len(latencies) - 1))]
    print(f"\nload: {len(latencies)} ok, {len(failures)} failed, p50 {p50:.2f} s, p95 {p95:.2f} s, "
          f"RSS after warm-up {rss_after_warmup / 1024:.0f} MB, after run {rss_after_run / 1024:.0f} MB")
    assert not failures, failures[:5]
    assert len(latencies) == CLIENTS * REQUESTS
    assert rss_after_run <= rss_after_warmup * 1.10
