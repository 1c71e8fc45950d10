"""Shared by the benchmarks: import the pack as `longcat_pack` (as the tests do), name the device, and time things
(one thing: `timed`; two or more compared: `interleaved` rounds and `summary` of them)."""
import importlib.util
import os
import platform
import statistics
import sys
import time
import types

import torch

PACK_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_pack():
    if "longcat_pack" not in sys.modules:
        pkg = types.ModuleType("longcat_pack")
        pkg.__path__ = [PACK_ROOT]
        pkg.__spec__ = importlib.util.spec_from_loader("longcat_pack", loader=None, is_package=True)
        pkg.__spec__.submodule_search_locations = [PACK_ROOT]
        sys.modules["longcat_pack"] = pkg
    return sys.modules["longcat_pack"]


def device_name(device):
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads (torch {torch.__version__})"


FULL_CONFIG = dict(hidden_size=4096, depth=48, num_heads=32, caption_channels=4096, adaln_tembed_dim=512,
                   ffn_hidden=11008)
LATENT_480P = (24, 60, 104)  # 480x832, 93 frames -> 24 x 60 x 104 Wan latents
LATENT_720P = (48, 88, 160)  # the refinement: 704x1280, 192 frames -> 48 x 88 x 160
LATENT_480P_SMALL = (4, 16, 16)  # the CPU stand-in
SMALL_CONFIG = dict(hidden_size=256, depth=2, num_heads=2, caption_channels=256, adaln_tembed_dim=64, ffn_hidden=768)  # the golden size


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
