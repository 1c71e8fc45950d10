"""Apply LongCat LoRA through the real node path: the pack's loader and LoRA nodes on ComfyUI's own model management.
ComfyUI's model-management side is imported in this process (not its server, so the bench needs fewer packages on
a GPU machine); Load LongCat DiT reads the DiT from a file, two Apply LongCat LoRA branches (distill, refinement)
share it, and `load_models_gpu` loads one branch, then the other. Times are ratios to a plain copy of the same
targeted weights, measured in the same run in interleaved rounds (copy, merge, switch, restore, copy, ...; min and
median of each and of the ratios paired by round). `--step` also times one 480p step through ComfyUI's `apply_model`
with the distill LoRA in runtime mode against the bare model; `--stock` adds ComfyUI core's own LoRA patches (the
same LoRAs as kohya files) switching on the same loaded DiT to the rounds, and compares its merged weights with
ours.

Full LongCat shapes on a GPU; scaled down on CPU.
Usage: COMFYUI_PATH=~/ComfyUI python bench/bench_lora_node_path.py [--depth N] [--step] [--stock]
"""
import argparse
import atexit
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]
from bench_common import FULL_CONFIG, LATENT_480P, LATENT_480P_SMALL, device_name, interleaved, load_pack, \
    paired_ratios, random_inputs, summary, timed  # noqa: E402

load_pack()
from comfy_inprocess import import_comfy_core  # noqa: E402
from longcat_pack.nodes.core.demo_files import lora_target_shapes, random_dit, write_official_lora  # noqa: E402
from longcat_pack.nodes.core.lora_keys import official_stem  # noqa: E402
from longcat_pack.nodes.cli.comfyui_checkout import find_comfyui  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--depth", type=int, default=None)
    parser.add_argument("--step", action="store_true", help="also time a 480p step with the LoRA in runtime mode")
    parser.add_argument("--stock", action="store_true", help="also time ComfyUI core's LoRA patches switching")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds (default %(default)s)")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    config = dict(FULL_CONFIG) if cuda else dict(hidden_size=512, depth=8, num_heads=4, caption_channels=512,
                                                 adaln_tembed_dim=64, ffn_hidden=1376)
    config["depth"] = args.depth or config["depth"]
    rank = 128 if cuda else 16
    root = find_comfyui()
    if root is None:
        sys.exit("ComfyUI not found (COMFYUI_PATH or ~/ComfyUI)")
    work = Path(tempfile.mkdtemp(prefix="longcat_bench_"))
    atexit.register(shutil.rmtree, work, True)  # 30 GB at full size: a second run must find the disk empty again
    dirs = {"diffusion_models": work / "diffusion_models", "loras": work / "loras"}
    for d in dirs.values():
        d.mkdir()
    t0 = time.perf_counter()
    dit = random_dit(config, torch.bfloat16, "cuda" if cuda else "cpu")  # 13.6B random numbers: faster on the GPU
    save_file({k: v.cpu().contiguous() for k, v in dit.state_dict().items()},
              str(dirs["diffusion_models"] / "dit.safetensors"))
    del dit
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    write_official_lora(dirs["loras"] / "distill.safetensors", lora_target_shapes(config), rank=rank, seed=1)
    write_official_lora(dirs["loras"] / "refine.safetensors", lora_target_shapes(config, refinement=True),
                        rank=rank, seed=2)
    print(f"files written in {time.perf_counter() - t0:.1f} s")

    import_comfy_core(root, dirs, cpu=not cuda)
    import comfy.model_management as mm
    from longcat_pack.nodes.loaders.dit_loader import LongCatDiTLoader
    from longcat_pack.nodes.loaders.lora_node import LongCatLoraLoader
    device = torch.device(mm.get_torch_device())
    print(f"device: {device_name(device)}; depth {config['depth']}, hidden {config['hidden_size']}, rank {rank}")
    base = LongCatDiTLoader().load("dit.safetensors", "bf16")[0]
    lora = LongCatLoraLoader()
    distill = lora.apply(base, "distill.safetensors", 0.5, "merge")["result"][0]
    refine = lora.apply(base, "refine.safetensors", 0.5, "merge")["result"][0]

    def load_time(patcher):
        return timed(lambda: mm.load_models_gpu([patcher]), device, warmup=0)

    print(f"load base model to {device}: {load_time(base):.2f} s")
    targeted = [base.model.diffusion_model.get_submodule(m).weight for m in distill.longcat_loras[0][0].targets]
    copies = [torch.empty_like(w) for w in targeted]
    first = load_time(distill)  # includes preparing the stack on the device
    to_refine = load_time(refine)
    print(f"first distill load (prepares the stack, then merges): {first * 1e3:.1f} ms")
    print(f"first switch to the refinement branch (prepares it): {to_refine * 1e3:.1f} ms")

    def load(patcher):
        return lambda: mm.load_models_gpu([patcher])

    candidates = {
        "copy": lambda: [c.copy_(w) for c, w in zip(copies, targeted)],
        "merge distill from base": (load(base), load(distill)),
        "switch distill -> refinement": (load(distill), load(refine)),
        "restore (back to base)": (load(distill), load(base)),
    }
    if args.stock:
        core_distill, core_refine = stock_branches(base, dirs["loras"], config)
        candidates["core: switch distill -> refinement"] = (load(core_distill), load(core_refine))
    samples = interleaved(candidates, device, rounds=args.rounds)
    del copies
    print(f"interleaved rounds ({args.rounds}, after one warm-up round):")
    for line in summary(samples, baseline="copy"):
        print("  " + line)
    print("targets: merge <= 1.3x the copy, switch <= 2.5x the copy")
    if args.stock:
        ratios = paired_ratios(samples, "core: switch distill -> refinement", "switch distill -> refinement")
        print(f"core's switch / ours, paired by round: min {min(ratios):.2f}x, median {statistics.median(ratios):.2f}x")
        compare_merged_weights(mm, base, distill, core_distill)
    if cuda:
        print(f"peak GPU memory while merging and switching: {torch.cuda.max_memory_allocated() / 1e9:.1f} GB")
    if args.step:
        time_runtime_step(mm, base, lora.apply(base, "distill.safetensors", 0.5, "runtime")["result"][0], config, cuda)


def as_kohya(official_sd, target_shapes):
    """The same LoRA in the layout core's loader reads: fused pieces become one block-diagonal up of rank
    pieces * rank, and alpha keeps alpha/rank."""
    sd = {}
    for module, (_, _, pieces) in target_shapes.items():
        stem = official_stem(module)
        down = official_sd[f"{stem}.lora_down.weight"]
        ups = [official_sd[f"{stem}.lora_up.weight"]] if pieces == 1 else \
            [official_sd[f"{stem}.lora_up.blocks.{j}.weight"] for j in range(pieces)]
        kohya = "lora_unet_" + module.replace(".", "_")
        sd[f"{kohya}.lora_down.weight"] = down
        sd[f"{kohya}.lora_up.weight"] = torch.block_diag(*ups)
        sd[f"{kohya}.alpha"] = official_sd[f"{stem}.alpha_scale"] * down.shape[0]
    return sd


def stock_branches(base, lora_dir, config):
    """Core's path: `comfy.lora` patches on clones of the same loaded model, as LoraLoaderModelOnly adds them
    (distill, refinement)."""
    import comfy.lora
    key_map = comfy.lora.model_lora_keys_unet(base.model, {})
    branches = []
    for name, refinement in (("distill", False), ("refine", True)):
        official = load_file(str(lora_dir / f"{name}.safetensors"))
        kohya = as_kohya(official, lora_target_shapes(config, refinement=refinement))
        branches.append(base.clone())
        branches[-1].add_patches(comfy.lora.load_lora(kohya, key_map), 1.0)
    return branches


def compare_merged_weights(mm, base, ours, core):
    """Core's merged distill weights against ours, on every targeted weight: the share of equal elements."""
    modules = list(ours.longcat_loras[0][0].targets)
    weights = lambda: [base.model.diffusion_model.get_submodule(m).weight.detach().clone() for m in modules]  # noqa: E731
    mm.load_models_gpu([ours])
    mine = weights()
    mm.load_models_gpu([core])
    theirs = weights()
    mm.load_models_gpu([base])
    equal = sum((a == b).sum().item() for a, b in zip(mine, theirs))
    total = sum(a.numel() for a in mine)
    worst = max((a.float() - b.float()).abs().max().item() for a, b in zip(mine, theirs))
    print(f"core's merged distill weights equal ours in {equal / total * 100:.4f}% of {total} elements "
          f"(largest difference {worst:.1e})")


def time_runtime_step(mm, base, runtime, config, cuda):
    """One denoising step through ComfyUI's `apply_model`, bare and with the distill LoRA added at run time."""
    device = torch.device(mm.get_torch_device())
    grid = LATENT_480P if cuda else LATENT_480P_SMALL
    x, context = random_inputs(config, grid, torch.bfloat16, device)
    sigma = torch.tensor([0.7], device=device)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        samples = interleaved({name: (lambda p=patcher: mm.load_models_gpu([p]),
                                      lambda p=patcher: p.model.apply_model(x, sigma, c_crossattn=context))
                               for name, patcher in (("bare", base), ("runtime LoRA", runtime))}, device, rounds=3)
    print("one step through apply_model, interleaved rounds:")
    for line in summary(samples, baseline="bare", scale=1, unit="s"):
        print("  " + line)
    print(f"runtime-mode cost per step: {(statistics.median(paired_ratios(samples, 'runtime LoRA', 'bare')) - 1) * 100:.2f}% "
          f"(median of the paired ratios; target <= 3%)")
    if cuda:
        print(f"peak GPU memory during the steps: {torch.cuda.max_memory_allocated() / 1e9:.1f} GB")


if __name__ == "__main__":
    main()
