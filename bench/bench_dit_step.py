"""One denoising step of the LongCat DiT at 480p/93 frames (37,440 tokens) against the floor of the same device
measured in the same run: one block's bf16 GEMMs plus its self- and cross-attention SDPA, run depth times.
Also the cost of the distill LoRA in runtime mode on that step, and peak memory. The three are timed in interleaved
rounds (step, floor, step with LoRA, step, ...): min and median of each and of the ratios paired by round.
Full size (48 blocks, random bf16 weights) on a GPU; a scaled-down model on CPU.
Usage: python bench/bench_dit_step.py
"""
import os
import statistics
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import FULL_CONFIG, LATENT_480P, LATENT_480P_SMALL, SMALL_CONFIG, build_random_dit, \
    device_name, interleaved, load_pack, paired_ratios, random_description, random_inputs, summary  # noqa: E402

load_pack()
from longcat_pack.nodes.core.lora_patcher import RuntimeLora, linear_weights, prepare_stack  # noqa: E402
from longcat_pack.nodes.core.demo_files import lora_target_shapes  # noqa: E402


def floor_one_block(config, tokens, text_tokens, dtype, device):
    """A function running the block's matmuls and attention kernels alone, on random tensors of the same shapes."""
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

    return block


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
    shapes = lora_target_shapes(config)
    distill = random_description(shapes, 128 if full else 16, 1, "distill")
    runtime = RuntimeLora(model, prepare_stack([(distill, 0.5)], linear_weights(model)))
    block = floor_one_block(config, tokens, 512, dtype, device)
    step = lambda: model(x, t, context)  # noqa: E731
    with torch.inference_mode():
        samples = interleaved({"one step": (runtime.detach, step),
                               "GEMM + SDPA floor": lambda: [block() for _ in range(config["depth"])],
                               "step with the distill LoRA at run time": (runtime.attach, step)}, device, rounds=3)
    runtime.detach()
    for line in summary(samples, baseline="one step", scale=1, unit="s"):
        print(line)
    floor = paired_ratios(samples, "one step", "GEMM + SDPA floor")
    lora = [(r - 1) * 100 for r in paired_ratios(samples, "step with the distill LoRA at run time", "one step")]
    print(f"step / floor, paired by round: min {min(floor):.3f}x, median {statistics.median(floor):.3f}x "
          f"(target <= 1.15x)")
    print(f"runtime LoRA overhead, paired by round: min {min(lora):.2f}%, median {statistics.median(lora):.2f}% "
          f"(target <= 3%)")
    if full:
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 1e9:.1f} GB (weights "
              f"{sum(p.numel() for p in model.parameters()) * 2 / 1e9:.1f} GB)")


if __name__ == "__main__":
    main()
