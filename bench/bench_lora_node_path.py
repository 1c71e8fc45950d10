"""Apply LongCat LoRA through the real node path: ComfyUI (imported in this process) loads the DiT from a file,
two Apply LongCat LoRA branches (distill, refinement) share it, and ComfyUI's model management loads one branch,
then the other. Times are ratios to a plain copy of the same targeted weights, measured in the same run.

Full LongCat shapes on a GPU (needs ComfyUI and its requirements importable there); scaled down on CPU.
Usage: COMFYUI_PATH=~/ComfyUI python bench/bench_lora_node_path.py [--depth N]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from bench_common import FULL_CONFIG, device_name, load_pack  # noqa: E402

load_pack()
from comfy_inprocess import import_comfyui  # noqa: E402
from longcat_pack.nodes.core.demo_files import lora_target_shapes, random_dit, write_official_lora  # noqa: E402
from longcat_pack.nodes.headless import find_comfyui  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--depth", type=int, default=None)
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
    dirs = {"diffusion_models": work / "diffusion_models", "loras": work / "loras"}
    for d in dirs.values():
        d.mkdir()
    t0 = time.perf_counter()
    dit = random_dit(config, torch.bfloat16, "cpu")
    save_file({k: v.contiguous() for k, v in dit.state_dict().items()}, str(dirs["diffusion_models"] / "dit.safetensors"))
    del dit
    shapes = dict(depth=config["depth"], hidden=config["hidden_size"], ffn=config["ffn_hidden"],
                  tembed=config["adaln_tembed_dim"])
    write_official_lora(dirs["loras"] / "distill.safetensors", lora_target_shapes(**shapes), rank=rank, seed=1)
    write_official_lora(dirs["loras"] / "refine.safetensors", lora_target_shapes(**shapes, refinement=True),
                        rank=rank, seed=2)
    print(f"files written in {time.perf_counter() - t0:.1f} s")

    pack = import_comfyui(root, dirs, cpu=not cuda)
    import comfy.model_management as mm
    device = mm.get_torch_device()
    print(f"device: {device_name(torch.device(device))}; depth {config['depth']}, hidden {config['hidden_size']}, "
          f"rank {rank}")
    base = pack.NODE_CLASS_MAPPINGS["LongCatDiTLoader"]().load("dit.safetensors", "bf16")[0]
    lora = pack.NODE_CLASS_MAPPINGS["LongCatLoraLoader"]()
    distill = lora.apply(base, "distill.safetensors", 0.5, "merge")[0]
    refine = lora.apply(base, "refine.safetensors", 0.5, "merge")[0]

    def synced(fn):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    print(f"load base model to {device}: {synced(lambda: mm.load_models_gpu([base])):.2f} s")
    targeted = [base.model.diffusion_model.get_submodule(m).weight for m in distill.longcat_loras[0][0].targets]
    copies = [torch.empty_like(w) for w in targeted]
    copy = min(synced(lambda: [c.copy_(w) for c, w in zip(copies, targeted)]) for _ in range(5))
    del copies
    first = synced(lambda: mm.load_models_gpu([distill]))  # includes preparing the stack on the device
    to_refine = synced(lambda: mm.load_models_gpu([refine]))
    merges, switches = [], []
    for _ in range(3):
        switches.append(synced(lambda: mm.load_models_gpu([distill])))
        switches.append(synced(lambda: mm.load_models_gpu([refine])))
    back_to_base = synced(lambda: mm.load_models_gpu([base]))
    merges.append(synced(lambda: mm.load_models_gpu([distill])))
    switch = sorted(switches)[len(switches) // 2]
    print(f"plain copy of the distill-targeted weights: {copy * 1e3:.1f} ms")
    print(f"first distill load (prepares the stack, then merges): {first * 1e3:.1f} ms")
    print(f"first switch to the refinement branch (prepares it): {to_refine * 1e3:.1f} ms")
    print(f"merge distill from base through load_models_gpu: {merges[0] * 1e3:.1f} ms  ratio {merges[0] / copy:.2f}x "
          f"(target <= 1.3x)")
    print(f"switch distill <-> refinement (median of 6): {switch * 1e3:.1f} ms  ratio {switch / copy:.2f}x "
          f"(target <= 2.5x)")
    print(f"back to the base branch (restore): {back_to_base * 1e3:.1f} ms")
    if cuda:
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 1e9:.1f} GB")


if __name__ == "__main__":
    main()
