"""Apply LongCat LoRA through the real node path: the pack's loader and LoRA nodes on ComfyUI's own model management.
ComfyUI's model-management side is imported in this process (not its server, so the bench needs fewer packages on
a GPU machine); Load LongCat DiT reads the DiT from a file, two Apply LongCat LoRA branches (distill, refinement)
share it, and `load_models_gpu` loads one branch, then the other. Times are ratios to a plain copy of the same
targeted weights, measured in the same run. `--step` also times one 480p step through ComfyUI's `apply_model` with
the distill LoRA in runtime mode against the bare model; `--stock` times ComfyUI core's own LoRA patches (the same
LoRAs as kohya files) switching on the same loaded DiT.

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
from bench_common import FULL_CONFIG, LATENT_480P, LATENT_480P_SMALL, device_name, load_pack, random_inputs, timed  # noqa: E402

load_pack()
from comfy_inprocess import import_comfy_core  # noqa: E402
from longcat_pack.nodes.core.demo_files import lora_target_shapes, random_dit, write_official_lora  # noqa: E402
from longcat_pack.nodes.core.lora_files import official_stem  # noqa: E402
from longcat_pack.nodes.cli.comfyui_checkout import find_comfyui  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--depth", type=int, default=None)
    parser.add_argument("--step", action="store_true", help="also time a 480p step with the LoRA in runtime mode")
    parser.add_argument("--stock", action="store_true", help="also time ComfyUI core's LoRA patches switching")
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
    copy = min(timed(lambda: [c.copy_(w) for c, w in zip(copies, targeted)], device, warmup=0) for _ in range(5))
    del copies
    first = load_time(distill)  # includes preparing the stack on the device
    to_refine = load_time(refine)
    switch = statistics.median(load_time(branch) for _ in range(3) for branch in (distill, refine))
    back_to_base = load_time(base)
    merge = load_time(distill)
    print(f"plain copy of the distill-targeted weights: {copy * 1e3:.1f} ms")
    print(f"first distill load (prepares the stack, then merges): {first * 1e3:.1f} ms")
    print(f"first switch to the refinement branch (prepares it): {to_refine * 1e3:.1f} ms")
    print(f"merge distill from base through load_models_gpu: {merge * 1e3:.1f} ms  ratio {merge / copy:.2f}x "
          f"(target <= 1.3x)")
    print(f"switch distill <-> refinement (median of 6): {switch * 1e3:.1f} ms  ratio {switch / copy:.2f}x "
          f"(target <= 2.5x)")
    print(f"back to the base branch (restore): {back_to_base * 1e3:.1f} ms")
    if cuda:
        print(f"peak GPU memory while merging and switching: {torch.cuda.max_memory_allocated() / 1e9:.1f} GB")
    if args.stock:
        time_stock_switch(mm, base, distill, dirs["loras"], config, load_time, copy)
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


def time_stock_switch(mm, base, ours, lora_dir, config, load_time, copy):
    """Core's path: `comfy.lora` patches on clones of the same loaded model, as LoraLoaderModelOnly adds them;
    checked against our distill branch (`ours`) on one weight."""
    import comfy.lora
    key_map = comfy.lora.model_lora_keys_unet(base.model, {})
    branches = []
    for name, refinement in (("distill", False), ("refine", True)):
        official = load_file(str(lora_dir / f"{name}.safetensors"))
        kohya = as_kohya(official, lora_target_shapes(config, refinement=refinement))
        branches.append(base.clone())
        branches[-1].add_patches(comfy.lora.load_lora(kohya, key_map), 1.0)
    probe = base.model.diffusion_model.get_submodule("blocks.0.attn.qkv")
    mm.load_models_gpu([ours])
    ours_weight = probe.weight.float()
    first = load_time(branches[0])
    differs = (probe.weight.float() - ours_weight).abs().max().item()
    switch = load_time(branches[1])
    print(f"ComfyUI core's LoRA patches: first load {first:.2f} s, switch distill -> refinement {switch:.2f} s "
          f"({switch / copy:.0f}x the copy); its distill qkv is {differs:.1e} from ours at most")
    mm.load_models_gpu([base])


def time_runtime_step(mm, base, runtime, config, cuda):
    """One denoising step through ComfyUI's `apply_model`, bare and with the distill LoRA added at run time."""
    device = torch.device(mm.get_torch_device())
    grid = LATENT_480P if cuda else LATENT_480P_SMALL
    x, context = random_inputs(config, grid, torch.bfloat16, device)
    sigma = torch.tensor([0.7], device=device)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    branches = {"bare": base, "runtime LoRA": runtime}
    samples = {name: [] for name in branches}
    with torch.inference_mode():
        for round_ in range(4):  # alternating, so drift in clocks or load hits both alike; round 0 warms up
            for name, patcher in branches.items():
                mm.load_models_gpu([patcher])
                step = timed(lambda: patcher.model.apply_model(x, sigma, c_crossattn=context), device, warmup=0)
                samples[name] += [step] if round_ else []
    times = {name: statistics.median(values) for name, values in samples.items()}
    for name, value in times.items():
        print(f"one step through apply_model, {name}: {value:.3f} s (median of {len(samples[name])})")
    overhead = (times["runtime LoRA"] - times["bare"]) / times["bare"] * 100
    print(f"runtime-mode cost per step: {overhead:.2f}% (target <= 3%)")
    if cuda:
        print(f"peak GPU memory during the steps: {torch.cuda.max_memory_allocated() / 1e9:.1f} GB")


if __name__ == "__main__":
    main()
