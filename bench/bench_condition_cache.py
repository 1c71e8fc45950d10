"""One video-continuation step at 480p/93 frames with num_cond_frames 13 (4 condition latents), three ways:
the condition frames run too (the reference without its KV cache), from the condition cache on the device, and from
the cache offloaded to CPU memory (the reference's offload_kv_cache: pinned on CUDA, each block's k and v copied
in while the block before runs). All three give the same noisy-frame output (checked here). Rounds interleave the
three; min and median per way, and of the ratios to the on-device cache paired by round. Full size (48 blocks,
bf16) on a GPU; a scaled-down model and grid on CPU, where "offloaded" only measures the bookkeeping (the CPU is the
device's memory already).
Usage: python bench/bench_condition_cache.py [rounds]
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import FULL_CONFIG, LATENT_480P, SMALL_CONFIG, build_random_dit, device_name, load_pack, \
    random_inputs, summary, timed, interleaved  # noqa: E402

load_pack()
from longcat_pack.nodes.core.condition_attention import ConditionCache  # noqa: E402
from longcat_pack.nodes.core.dit_ops import Rope3D  # noqa: E402

CONDITION_LATENTS = 4  # 13 frames
LATENT_SMALL = (24, 8, 16)  # the CPU stand-in: the same 24 latent frames on a smaller picture


def pinning(device):
    """pin / unpin as ComfyUI's pin_memory does it (page-locking host tensors in place), on CUDA only."""
    if device.type != "cuda":
        return ()
    cudart = torch.cuda.cudart()
    return (lambda t: cudart.cudaHostRegister(t.data_ptr(), t.nbytes, 0) == 0,
            lambda t: cudart.cudaHostUnregister(t.data_ptr()))


def main(rounds=9):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    full = device.type == "cuda"
    config = FULL_CONFIG if full else SMALL_CONFIG
    dtype = torch.bfloat16 if full else torch.float32
    T, H, W = LATENT_480P if full else LATENT_SMALL
    print(f"device: {device_name(device)}; depth {config['depth']}, hidden {config['hidden_size']}, "
          f"{T} latent frames of {H // 2}x{W // 2} tokens, {CONDITION_LATENTS} of them the condition")
    model = build_random_dit(config, dtype, device)
    x, context = random_inputs(config, (T, H, W), dtype, device)
    t = torch.full((1, T), 700.0, device=device)
    t[:, :CONDITION_LATENTS] = 0
    on_device, offloaded = ConditionCache(), ConditionCache(True, *pinning(device))
    ways = {
        "step, condition frames run too": lambda: model(x, t, context, num_cond_latents=CONDITION_LATENTS),
        "step, cache on the device": lambda: model(x, t, context, num_cond_latents=CONDITION_LATENTS,
                                                   condition_cache=on_device),
        "step, cache offloaded to CPU": lambda: model(x, t, context, num_cond_latents=CONDITION_LATENTS,
                                                      condition_cache=offloaded),
    }
    with torch.inference_mode():
        outputs = [fn()[:, :, CONDITION_LATENTS:] for fn in ways.values()]  # warm-up; fills both caches
        difference = max(float((out - outputs[1]).abs().max()) for out in outputs)
        del outputs
        times = interleaved(ways, device, rounds=rounds, warmup=0)
        grid = (T, H // 2, W // 2)
        fill = [timed(lambda: model.condition_kv(x[:, :, :CONDITION_LATENTS], Rope3D(grid, device), grid, dtype,
                                                 model.attention, store), device, warmup=0)
                for store in ([], ConditionCache(True).new_store())]
    cache_mib = sum(p.nbytes for kv in offloaded.kv.blocks for p in kv) / 2 ** 20
    offloaded.release()
    for line in summary(times, baseline="step, cache on the device"):
        print(line)
    print(f"filling the cache (once per run): on the device {fill[0]:.3f} s, into CPU memory {fill[1]:.3f} s")
    print(f"condition cache: {cache_mib:.1f} MiB ({rounds} interleaved rounds)")
    print(f"max abs difference of the noisy frames between the three ways: {difference:.2e}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
