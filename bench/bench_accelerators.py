"""ComfyUI's accelerators on LongCat steps, as ratios to SDPA from one run: one 480p distill step (dense attention)
and one 720p refinement step (block-sparse self-attention, which stays LongCat's own: there the backends only run
the cross-attention), each with
- every attention function ComfyUI registers on this machine (sage, flash, xformers where installed; pytorch =
  SDPA, the baseline; sub_quad, split), applied the way attention nodes apply them: `optimized_attention_override`
  in the step's transformer_options, through the kernel the model glue gives the DiT;
- torch.compile of the DiT (what TorchCompileModel does) with SDPA;
rounds interleaved (every variant once per round), min and median printed, and of the ratios to SDPA paired by
round. Then the DiT calls that stock EasyCache
(default reuse_threshold 0.2, and 1.0) saves over 16 distill steps, sampled through the pack's loader and ComfyUI's stock sampler
nodes on a small random model (with random weights the count shows that the cache applies, not what it saves on
real weights).

Full width on a GPU (`--blocks` blocks of the 48, default 8: per-block times scale linearly and the ratios do not
depend on depth); the golden-size model and small latents on CPU.
Usage: COMFYUI_PATH=~/ComfyUI python bench/bench_accelerators.py [--blocks N] [--rounds N] [--no-compile]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]
from bench_common import FULL_CONFIG, LATENT_480P, LATENT_720P, SMALL_CONFIG, build_random_dit, device_name, \
    interleaved, load_pack, random_inputs, summary  # noqa: E402

load_pack()
from comfy_inprocess import import_comfy_core  # noqa: E402
from longcat_pack.nodes.cli.comfyui_checkout import find_comfyui  # noqa: E402

EASYCACHE_STEPS = 16


def override_with(function):
    """What an attention node sets: ComfyUI calls it in place of its own pick, with the same arguments."""
    def override(_, *args, **kwargs):
        return function(*args, **kwargs)
    return override


def time_variants(name, variants, rounds, device):
    """One warm-up call each (compile's is long: printed), then `rounds` interleaved rounds; min, median and the
    ratios to SDPA paired by round (below 1: faster than SDPA)."""
    for label, step in variants.items():
        t0 = time.perf_counter()
        step()
        print(f"  {name}: {label} warm-up {time.perf_counter() - t0:.1f} s", flush=True)
    print(f"{name}:")
    for line in summary(interleaved(variants, device, rounds, warmup=0), baseline="sdpa"):
        print("  " + line)


def step_variants(model, x, t, context, compile_model):
    """{label: one step} for every attention function ComfyUI registers, and compile with SDPA."""
    import comfy.ldm.modules.attention as comfy_attention
    functions = dict(comfy_attention.REGISTERED_ATTENTION_FUNCTIONS)
    variants = {"sdpa": lambda: model(x, t, context, transformer_options={
        "optimized_attention_override": override_with(functions["pytorch"])})}
    for name, function in functions.items():
        if name != "pytorch":
            options = {"optimized_attention_override": override_with(function)}
            variants[name] = lambda options=options: model(x, t, context, transformer_options=options)
    if compile_model is not None:
        variants["compile (sdpa)"] = lambda: compile_model(x, t, context, transformer_options={})
    return variants


def easycache_calls(work, thresholds):
    """DiT calls over EASYCACHE_STEPS distill steps of a small random model: {threshold: with stock EasyCache}
    and without it."""
    import comfy.samplers
    from comfy_extras.nodes_custom_sampler import BasicGuider, SamplerCustomAdvanced
    from comfy_extras.nodes_easycache import EasyCacheNode
    from longcat_pack.nodes.loaders.dit_loader import LongCatDiTLoader
    from longcat_pack.nodes.stages.sigmas_node import LongCatSigmas

    def outputs(result):
        return result.args if hasattr(result, "args") else result

    def run(model):
        dit = model.model.diffusion_model
        calls, forward = [], dit._forward
        dit._forward = lambda *args, **kwargs: calls.append(1) or forward(*args, **kwargs)
        try:
            torch.manual_seed(0)
            context = torch.zeros(1, 512, SMALL_CONFIG["caption_channels"])
            context[:, :120] = torch.randn(1, 120, SMALL_CONFIG["caption_channels"])
            guider = outputs(BasicGuider.execute(model, [[context, {}]]))[0]

            class Noise:
                seed = 0

                def generate_noise(self, latent):
                    return torch.randn(latent["samples"].shape, generator=torch.Generator().manual_seed(0))
            sigmas = LongCatSigmas().sigmas("distill", EASYCACHE_STEPS, 0.5)[0]
            latent = {"samples": torch.zeros(1, 16, 8, 16, 16)}
            outputs(SamplerCustomAdvanced.execute(Noise(), guider, comfy.samplers.sampler_object("euler"), sigmas,
                                                  latent))
        finally:
            del dit._forward
        return len(calls)

    save_file(build_random_dit(SMALL_CONFIG, torch.float32, "cpu").state_dict(),
              str(work / "diffusion_models" / "small.safetensors"))
    model = LongCatDiTLoader().load("small.safetensors", "default")[0]
    plain = run(model)
    return {threshold: run(outputs(EasyCacheNode.execute(model, threshold, 0.15, 0.95, False))[0])
            for threshold in thresholds}, plain


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=8, help="GPU: blocks of the full-width model (48 in all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    root = find_comfyui()
    if root is None:
        sys.exit("ComfyUI not found (COMFYUI_PATH or ~/ComfyUI)")
    work = Path(tempfile.mkdtemp(prefix="longcat_accel_"))
    (work / "diffusion_models").mkdir()
    import_comfy_core(root, {"diffusion_models": work / "diffusion_models"}, cpu=not cuda)
    import comfy.ldm.modules.attention as comfy_attention
    import comfy.model_management as mm
    from longcat_pack.nodes.core.block_sparse_attention import BlockSparseAttention
    from longcat_pack.nodes.model.attention import comfy_kernel

    device = torch.device(mm.get_torch_device())
    config = dict(FULL_CONFIG, depth=args.blocks) if cuda else dict(SMALL_CONFIG)
    shapes = {"480p distill": LATENT_480P, "720p refine": LATENT_720P} if cuda else \
        {"480p distill": (8, 32, 32), "720p refine": (8, 32, 48)}  # CPU stand-ins (720p: whole 4x4x4 tiles)
    print(f"device: {device_name(device)}; depth {config['depth']}, hidden {config['hidden_size']}; ComfyUI "
          f"attention functions: {', '.join(comfy_attention.REGISTERED_ATTENTION_FUNCTIONS)}", flush=True)
    dtype = torch.bfloat16 if cuda else torch.float32
    model = build_random_dit(config, dtype, device)
    model.attention = comfy_kernel()
    compiled = None if args.no_compile else torch.compile(model)
    t = torch.tensor([500.0], device=device)
    with torch.inference_mode():
        for name, (T, H, W) in shapes.items():
            x, context = random_inputs(config, (T, H, W), dtype, device)
            print(f"{name}: latent {T} x {H} x {W}, {T * H * W // 4} tokens", flush=True)
            model.set_self_attention(BlockSparseAttention() if "refine" in name else None)
            time_variants(name, step_variants(model, x, t, context, compiled), args.rounds, device)
            del x, context
    del model, compiled
    cached, plain = easycache_calls(work, (0.2, 1.0))
    for threshold, calls in cached.items():
        print(f"EasyCache (reuse_threshold {threshold}, 15%-95%), {EASYCACHE_STEPS} distill steps: the DiT ran "
              f"{calls} times instead of {plain}: {plain - calls} calls saved ({plain / max(calls, 1):.2f}x fewer)")


if __name__ == "__main__":
    main()
