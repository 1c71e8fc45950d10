"""One denoising step of the LongCat DiT at 480p/93 frames (37,440 tokens) against the floor of the same device
measured in the same run: one block's bf16 GEMMs plus its self- and cross-attention SDPA, times the depth.
Also the cost of the distill LoRA in runtime mode on that step, and peak memory.
Full size (48 blocks, random bf16 weights) on a GPU; a scaled-down model on CPU.
Usage: python bench/bench_dit_step.py
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import FULL_CONFIG, LATENT_480P, LATENT_480P_SMALL, SMALL_CONFIG, build_random_dit, \
    device_name, load_pack, random_inputs, timed  # noqa: E402

load_pack()
from longcat_pack.nodes.core.lora_patcher import RuntimeLora, linear_weights, prepare_stack  # noqa: E402
from bench_lora_patch import random_description  # noqa: E402
from longcat_pack.nodes.core.demo_files import lora_target_shapes  # noqa: E402


def floor_one_block(config, tokens, text_tokens, dtype, device):
    """The block's matmuls and attention kernels alone, on random tensors of the same shapes."""
    hidden, ffn, heads = config["hidden_size"], config["ffn_hidden"], config["num_heads"]
    x = torch.randn(tokens, hidden, device=device, dtype=dtype)
    y = torch.randn(text_tokens, hidden, device=device, dtype=dtype)
    w = {n: torch.randn(o, i, device=device, dtype=dtype) * i ** -0.5 for n, (o, i) in {
        "qkv": (3 * hidden, hidden), "proj": (hidden, hidden), "q": (hidden, hidden), "kv": (2 * hidden, hidden),
        "cproj": (hidden, hidden), "w1": (ffn, hidden), "w3": (ffn, hidden), "w2": (hidden, ffn)}.items()}
    q = torch.randn(1, heads, tokens, 128, device=device, dtype=dtype)
    k_text = torch.randn(1, heads, text_tokens, 128, device=device, dtype=dtype)
    h = torch.randn(tokens, ffn, device=device, dtype=dtype)

    def block():
        F.linear(x, w["qkv"]); F.linear(x, w["proj"]); F.linear(x, w["q"]); F.linear(y, w["kv"])
        F.linear(x, w["cproj"]); F.linear(x, w["w1"]); F.linear(x, w["w3"]); F.linear(h, w["w2"])
        F.scaled_dot_product_attention(q, q, q)
        F.scaled_dot_product_attention(q, k_text, k_text)

    return timed(block, device, repeats=5)


def main():
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    full = device.type == "cuda"
    config = FULL_CONFIG if full else SMALL_CONFIG
    dtype = torch.bfloat16
    T, H, W = LATENT_480P if full else LATENT_480P_SMALL
    tokens = T * (H // 2) * (W // 2)
    print(f"device: {device_name(device)}; depth {config['depth']}, hidden {config['hidden_size']}, {tokens} tokens")
    model = build_random_dit(config, dtype, device)
    x, context = random_inputs(config, (T, H, W), dtype, device)
    t = torch.tensor([700.0], device=device)
    if full:
        torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        step = timed(lambda: model(x, t, context), device, repeats=3)
        floor = floor_one_block(config, tokens, 512, dtype, device) * config["depth"]
        peak = torch.cuda.max_memory_allocated() / 1e9 if full else float("nan")
        print(f"one step:                 {step:8.3f} s")
        print(f"GEMM + SDPA floor:        {floor:8.3f} s   ratio {step / floor:.3f}x (target <= 1.15x)")
        print(f"peak GPU memory:          {peak:8.1f} GB (weights {sum(p.numel() for p in model.parameters()) * 2 / 1e9:.1f} GB)")
        shapes = lora_target_shapes(config)
        distill = random_description(shapes, 128 if full else 16, 1, "distill")
        runtime = RuntimeLora(model, prepare_stack([(distill, 0.5)], linear_weights(model))).attach()
        with_lora = timed(lambda: model(x, t, context), device, repeats=3)
        runtime.detach()
        print(f"step with the distill LoRA at run time: {with_lora:.3f} s  overhead {(with_lora - step) / step * 100:.2f}% "
              f"(target <= 3%)")


if __name__ == "__main__":
    main()
