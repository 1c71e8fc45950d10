"""The cooperative block the LoRA info route parses in: the cyclic GC waits while any such block runs (on any
thread) and is restored as it was; pause() yields only inside a block."""
import gc
import threading
import time

from longcat_pack.nodes.core import cooperative as coop


def test_gc_is_paused_while_any_block_runs_and_restored_after():
    assert gc.isenabled()
    entered, release = threading.Event(), threading.Event()

    def other():
        with coop.cooperative():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    entered.wait(10)
    with coop.cooperative():
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other thread's block still runs
    release.set()
    thread.join()
    assert gc.isenabled()


def test_a_disabled_gc_stays_disabled():
    gc.disable()
    try:
        with coop.cooperative():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_pause_sleeps_only_inside_a_block_and_after_a_slice(monkeypatch):
    sleeps = []
    monkeypatch.setattr(coop.time, "sleep", sleeps.append)
    coop.pause()
    assert sleeps == []
    with coop.cooperative():
        coop.pause()
        assert sleeps == []  # less than a slice of work so far
        start = time.perf_counter()
        while time.perf_counter() - start < 2 * coop.SLICE_S:
            pass
        coop.pause()
    assert sleeps == [coop.REST_S]
