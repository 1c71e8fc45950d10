"""Shared by the benchmarks: the pack imported as `longcat_pack` (as the tests do), LongCat's sizes and random models
(tests/support), the device's name, timing (one thing: `timed`; two or more compared: `interleaved` rounds and
`summary` of them), and the pack's core modules as they were at another commit."""
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

PACK_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(PACK_ROOT, "tests"))
from support.pack import register_pack as load_pack  # noqa: E402
from support.random_models import FULL_CONFIG, LATENT_480P, LATENT_480P_SMALL, LATENT_720P, SMALL_CONFIG, \
    random_description  # noqa: E402,F401  (the benchmarks import these from here)

BEFORE_CHUNKED_DIT = "d8717e2"  # main before the DiT ran its per-token work over chunks of frames (issue 12)


def core_module_at(name, ref):
    """nodes/core/<name>.py as it was at git `ref`, imported as a module of its own next to today's, so a benchmark
    compares both in one run (the core modules import no sibling at module level that the benchmarks use)."""
    key = f"longcat_at_{ref}_{name}"
    if key not in sys.modules:
        source = subprocess.run(["git", "-C", PACK_ROOT, "show", f"{ref}:nodes/core/{name}.py"], check=True,
                                capture_output=True, text=True).stdout
        path = Path(tempfile.mkdtemp(prefix="longcat_at_")) / f"{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(key, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def device_name(device):
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads (torch {torch.__version__})"


def build_random_dit(config, dtype, device, seed=0):
    load_pack()
    from longcat_pack.nodes.core.demo_files import random_dit
    return random_dit(config, dtype, device, seed)


def random_inputs(config, latent_shape, dtype, device):
    """A random latent [1, 16, T, H, W] and a prompt of 120 real rows zero-padded to 512 (umT5 layout)."""
    x = torch.randn(1, 16, *latent_shape, device=device, dtype=dtype)
    context = torch.zeros(1, 512, config["caption_channels"], device=device, dtype=dtype)
    context[:, :120] = torch.randn(1, 120, config["caption_channels"], device=device, dtype=dtype)
    return x, context


def once(fn, device):
    """Seconds of one call, synchronised on CUDA."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def timed(fn, device, repeats=1, warmup=1):
    """Median seconds of `repeats` calls after `warmup` calls, synchronised on CUDA (one thing alone; to compare
    things use `interleaved`)."""
    for _ in range(warmup):
        fn()
    return statistics.median(once(fn, device) for _ in range(repeats))


def interleaved(candidates, device, rounds=6, warmup=1):
    """Time every candidate once per round, taking turns (A, B, A, B ...), so drifting clocks, caches or the load
    of other processes weigh on all of them alike. candidates: {name: fn} or {name: (setup, fn)}, setup run
    untimed before each call. Returns {name: [seconds, one per round]}; the `warmup` rounds are dropped."""
    samples = {name: [] for name in candidates}
    for round_ in range(warmup + rounds):
        for name, candidate in candidates.items():
            setup, fn = candidate if isinstance(candidate, tuple) else (None, candidate)
            if setup is not None:
                setup()
            seconds = once(fn, device)
            if round_ >= warmup:
                samples[name].append(seconds)
    return samples


def paired_ratios(samples, name, baseline):
    """samples[name] / samples[baseline], round by round."""
    return [a / b for a, b in zip(samples[name], samples[baseline])]


def summary(samples, baseline=None, scale=1e3, unit="ms"):
    """Lines: min and median of each candidate and, against `baseline`, of the ratios paired by round."""
    lines = []
    for name, values in samples.items():
        line = (f"{name}: min {min(values) * scale:.2f} {unit}, median {statistics.median(values) * scale:.2f} {unit} "
                f"({len(values)} rounds)")
        if baseline is not None and name != baseline:
            ratios = paired_ratios(samples, name, baseline)
            line += f"; ratio to {baseline}: min {min(ratios):.2f}x, median {statistics.median(ratios):.2f}x"
        lines.append(line)
    return lines
