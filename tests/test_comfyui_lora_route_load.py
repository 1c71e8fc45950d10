"""/longcat/lora_info under load, against a real ComfyUI server: many concurrent requests for uncached LoRAs with
large headers. The route reads on a bounded pool: what it cannot take is answered at once with 503 and
Retry-After, everything it takes is answered, and the server's other routes (/system_stats) keep answering in
well under a second throughout."""
import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from longcat_pack.nodes.cli.headless import ComfyServer
from lora_writers import write_many_modules

FILES = 24
MODULES = 3000  # 9,000 tensors: a header of about 1.6 MB, within the LoRA bounds
REQUESTS = 72  # three per file, all at once


@pytest.fixture(scope="module")
def load_server(comfyui_root, tmp_path_factory):
    server = ComfyServer(comfyui_root, tmp_path_factory.mktemp("comfyui_route_load"))
    folder = server.models("loras") / "large"
    folder.mkdir(parents=True)
    for i in range(FILES):
        write_many_modules(folder / f"large_{i:02d}.safetensors", MODULES)
    server.start()
    yield server
    server.stop()


def get(server, path, timeout=60):
    """(status, headers, JSON body) of a GET on the server."""
    try:
        with urllib.request.urlopen(server.url + path, timeout=timeout) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"null")


def test_many_info_requests_keep_the_server_responsive(load_server):
    stats, stop = [], threading.Event()

    def poll_stats():
        while not stop.is_set():
            sent = time.perf_counter()
            status, _, _ = get(load_server, "/system_stats")
            stats.append((time.perf_counter() - sent, status))
            time.sleep(0.05)

    poller = threading.Thread(target=poll_stats)
    poller.start()
    names = [f"large/large_{i % FILES:02d}.safetensors" for i in range(REQUESTS)]
    try:
        with ThreadPoolExecutor(REQUESTS) as pool:
            answers = list(pool.map(lambda n: (n, *get(load_server, f"/longcat/lora_info?name={n}")), names))
    finally:
        stop.set()
        poller.join()
    busy = [(n, headers, body) for n, status, headers, body in answers if status == 503]
    done = [(n, body) for n, status, _, body in answers if status == 200]
    assert len(busy) + len(done) == REQUESTS, [(n, s, b) for n, s, _, b in answers if s not in (200, 503)][:3]
    assert busy and done, (len(busy), len(done))
    assert all(h.get("Retry-After") == "1" and "busy" in b["error"] for _, h, b in busy), busy[0]
    assert all(b["targets"] == MODULES for _, b in done)
    slowest = max(seconds for seconds, _ in stats)
    assert len(stats) >= 3 and all(status == 200 for _, status in stats), stats
    assert slowest < 1.0, " ".join(f"{s:.3f}" for s, _ in stats)
    # what was refused is answered when asked again as Retry-After says
    for name, _, _ in busy[:4]:
        for _ in range(30):
            status, headers, body = get(load_server, f"/longcat/lora_info?name={name}")
            if status != 503:
                break
            time.sleep(float(headers["Retry-After"]))
        assert status == 200 and body["targets"] == MODULES, (status, body)
