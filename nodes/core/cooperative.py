"""Long pure-Python work that shares the interpreter lock politely.

A thread parsing a large header holds Python's interpreter lock; another thread that wants it (the server's event
loop, after each socket read or write) waits for the holder's switch interval, 5 ms, every time: a request that
needs the lock twenty times waits 100 ms, and a queue of them seconds. Work run under `cooperative()` calls `pause()`
in its loops: after every SLICE_S of work the thread sleeps REST_S, handing the lock to whoever waits at once.
Everywhere else `pause()` does nothing but look at a thread-local flag.

The other long hold is the cyclic garbage collector: a header of 10,000 tensors is some 50,000 JSON containers, and
while it is parsed they live long enough to be promoted, so every few parses trigger a full collection of the
whole server's heap (0.5 to 1 s with the interpreter lock held, measured in ComfyUI 0.33). The parsed data holds no
reference cycles (refcounting frees all of it), so the collector is paused while any cooperative block runs and
resumed, as it was, when the last one ends."""
import gc
import threading
import time
from contextlib import contextmanager

SLICE_S = 0.001
REST_S = 0.0002
_local = threading.local()
_gc_lock = threading.Lock()
_gc_state = {"blocks": 0, "was_enabled": False}


@contextmanager
def cooperative():
    """Within this block, on this thread, `pause()` yields the interpreter lock every SLICE_S; the cyclic garbage
    collector waits until no such block runs."""
    with _gc_lock:
        if _gc_state["blocks"] == 0:
            _gc_state["was_enabled"] = gc.isenabled()
            gc.disable()
        _gc_state["blocks"] += 1
    _local.since = time.perf_counter()
    try:
        yield
    finally:
        _local.since = None
        with _gc_lock:
            _gc_state["blocks"] -= 1
            if _gc_state["blocks"] == 0 and _gc_state["was_enabled"]:
                gc.enable()


def pause():
    since = getattr(_local, "since", None)
    if since is not None and time.perf_counter() - since > SLICE_S:
        time.sleep(REST_S)
        _local.since = time.perf_counter()
