"""Peak activation memory of one DiT step at full LongCat size, measured without a GPU: the pack's own DiT runs
under torch's FakeTensorMode (shapes and dtypes, no memory, no arithmetic) while a TorchDispatchMode counts the
bytes of live tensor storages on the compute device (tests/support/fake_memory.py). Weights are made before counting starts, so
only activations count. Printed against the floor, x + k + v of one block (3 x tokens x 4096 x 2 B in bf16), for today's
code and the code of an earlier commit (default: before the chunked DiT), in one run.

Steps: 480p / 93 frames (37,440 tokens), the 720p refinement with block-sparse attention (168,960 tokens) and a
480p continuation step with 4 condition latents, each without and with a rank-128 runtime LoRA (the distill
stack's targets; the refinement stack's at 720p), on two paths: eager (every op on its own: the CPU, and CUDA with
LONGCAT_COMPILE=0 or without Triton) and CUDA (each torch.compile'd island counts as one kernel; see tests/support/fake_memory.py).
The continuation also from the condition cache (the first step of a run, which fills it; the cache stays live),
and so the avatar's (LongCat-Video-Avatar v1.5: its audio tokens and audio cross-attention, the reference latent in
front of the condition): the three passes of its guidance in one batch, as ComfyUI batches them when they fit, and
the one pass with the DMD LoRA.
Also: the Wan 2.1 VAE decode of the 720p refinement latent (48 latents: 189 frames at 704x1280) with ComfyUI's
WanVAE, untiled and tiled as VAEDecodeTiled's defaults tile it; the LoRA tensors runtime mode keeps on the device
(prepare_stack on real tensors at full width: distill, refinement, the avatar's DMD); and a table of what fits on
24 / 32 / 48 / 80 GB cards.

Usage: COMFYUI_PATH=~/ComfyUI python bench/bench_activation_memory.py [--depth N] [--against REF] [--markdown]
(--depth: blocks in the fake model, default 2; every block is alike, so the step's peak is reached in the first.)
"""
import argparse
import functools
import inspect
import math
import os
import sys

import torch
from torch._subclasses.fake_tensor import FakeTensorMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import BEFORE_CHUNKED_DIT, FULL_CONFIG, LATENT_480P, LATENT_720P, core_module_at, load_pack  # noqa: E402
from support.fake_memory import LORA_RANK, counting, floor_bytes, full_depth_lora_bytes, prepared_lora, \
    reference_latents, step_peak  # noqa: E402
from support.random_models import FULL_AVATAR_CONFIG  # noqa: E402

load_pack()
from longcat_pack.nodes.core import block_sparse_attention as bsa_today  # noqa: E402
from longcat_pack.nodes.core import dit as dit_today  # noqa: E402
from longcat_pack.nodes.core.avatar.avatar_dit import LongCatAvatarDiT  # noqa: E402

GiB = 1 << 30
CARDS_GB = (24, 32, 48, 80)
CARD_OVERHEAD = 1 * GiB  # CUDA context (~0.5 GiB) and ComfyUI's reserve (EXTRA_RESERVED_VRAM, 0.4 GiB)


def vae_decode_peaks(comfyui, latent, device_type="cuda"):
    """(weights, untiled peak, tiled peak) of ComfyUI's Wan 2.1 VAE decoding `latent`, bf16, fake tensors."""
    if comfyui not in sys.path:
        sys.path.insert(0, comfyui)
    from comfy.cli_args import args as comfy_args
    if not torch.cuda.is_available():  # model_management would ask the driver; on a GPU it picks SDPA itself
        comfy_args.cpu = comfy_args.use_pytorch_cross_attention = True
    import comfy.ldm.wan.vae
    import comfy.utils
    T, H, W = latent
    default_dtype = torch.get_default_dtype()
    with FakeTensorMode(allow_non_fake_inputs=True):
        torch.set_default_dtype(torch.bfloat16)  # made in place: fake parameters cannot be moved or cast
        try:
            config = dict(dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                          temperal_downsample=[False, True, True], image_channels=3, dropout=0.0)
            if "conv_out_channels" in inspect.signature(comfy.ldm.wan.vae.WanVAE).parameters:
                config["conv_out_channels"] = 3  # ComfyUI 0.33 passes it (0.8.0's WanVAE has no such argument)
            with torch.device(device_type):  # comfy/sd.py, VAE.__init__, "Wan 2.1 VAE" (dim 96)
                vae = comfy.ldm.wan.vae.WanVAE(**config).eval()
        finally:
            torch.set_default_dtype(default_dtype)
        weights = sum(p.nbytes for p in vae.parameters())
        z = torch.randn(1, 16, T, H, W, device="cpu")

        def decode(a):  # VAE.decode_tiled_3d's decode_fn; the output in ComfyUI's intermediate dtype (fp32)
            return vae.decode(a.to(torch.bfloat16).to(device_type)).to(dtype=torch.float32)

        with counting(device_type) as untiled:
            decode(z).to("cpu")
        with counting(device_type) as tiled:
            # VAEDecodeTiled's defaults (512 px, overlap 64, 64 frames, overlap 8) as VAE.decode_tiled_3d passes them
            comfy.utils.tiled_scale_multidim(z, decode, tile=(16, 64, 64), overlap=(2, 8, 8),
                                             upscale_amount=(lambda a: max(0, a * 4 - 3), 8, 8), out_channels=3,
                                             index_formulas=(4, 8, 8), output_device="cpu")
    return weights, untiled.peak, tiled.peak


def gib(n):
    return f"{n / GiB:.2f} GiB"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--against", default=BEFORE_CHUNKED_DIT, help="git ref of the earlier DiT (default %(default)s)")
    parser.add_argument("--markdown", action="store_true", help="print the card table as markdown")
    args = parser.parse_args()
    before = core_module_at("dit", args.against), core_module_at("block_sparse_attention", args.against)
    today = dit_today, bsa_today
    distill = prepared_lora(dict(FULL_CONFIG, depth=args.depth), False)
    refine = prepared_lora(dict(FULL_CONFIG, depth=args.depth), True)
    steps = [("480p / 93 frames", LATENT_480P, False, 0, distill),
             ("720p refinement, BSA", LATENT_720P, True, 0, refine),
             ("480p continuation, 4 cond latents", LATENT_480P, False, 4, distill)]
    print(f"fake tensors, bf16, full width (hidden 4096, 32 heads, FFN 11008), depth {args.depth}; "
          f"before = {args.against}; floor = x + k + v of one block")
    print(f"{'step':36s} {'path':6s} {'LoRA':5s} {'tokens':>8s} {'floor':>10s} {'before':>10s} {'ratio':>6s} "
          f"{'today':>10s} {'ratio':>6s}")
    peaks = {}
    for name, latent, sparse, cond, lora in steps:
        floor = floor_bytes(latent)
        tokens = latent[0] * (latent[1] // 2) * (latent[2] // 2)
        for path, device_type in (("eager", "cpu"), ("CUDA", "cuda")):
            for with_lora in (False, True):
                run = functools.partial(step_peak, depth=args.depth, latent=latent, device_type=device_type,
                                        sparse=sparse, num_cond_latents=cond, lora=lora if with_lora else None)
                then, now = run(*before), run(*today)
                peaks[name, path, with_lora] = now
                print(f"{name:36s} {path:6s} {'on' if with_lora else 'off':5s} {tokens:8d} {gib(floor):>10s} "
                      f"{gib(then):>10s} {then / floor:5.2f}x {gib(now):>10s} {now / floor:5.2f}x")

    cached = cached_continuation_peak(args.depth, distill)
    print(f"480p continuation from the condition cache (4 latents), CUDA path, LoRA on, 48 blocks: {gib(cached)} "
          f"(the cache: k and v of every block for the condition's tokens)")
    guided = cached_continuation_peak(args.depth, None, avatar=True, batch=3)
    distilled = cached_continuation_peak(args.depth, prepared_lora(dict(FULL_AVATAR_CONFIG, depth=args.depth)),
                                         avatar=True)
    print(f"avatar 480p continuation from the condition cache (4 latents + the reference latent), CUDA path, "
          f"48 blocks: 3 passes in one batch (guidance above 1) {gib(guided)}; 1 pass with the DMD LoRA "
          f"(guidance 1 / 1) {gib(distilled)}")

    distill_bytes, refine_bytes = (full_depth_lora_bytes(FULL_CONFIG, refinement) for refinement in (False, True))
    dmd_bytes = full_depth_lora_bytes(FULL_AVATAR_CONFIG)
    print(f"LoRA tensors runtime mode keeps on the device (rank {LORA_RANK}, fp32, 48 blocks): "
          f"distill {gib(distill_bytes)}, refinement {gib(refine_bytes)}, avatar DMD {gib(dmd_bytes)}")

    base, avatar = (parameters(model_class, config) for model_class, config in
                    ((dit_today.LongCatDiT, FULL_CONFIG), (LongCatAvatarDiT, FULL_AVATAR_CONFIG)))
    for name, params in (("DiT", base), ("avatar DiT", avatar)):
        print(f"{name} weights: {params / 1e9:.2f} B parameters: fp8 {gib(params)}, bf16 {gib(2 * params)}")

    comfyui = os.environ.get("COMFYUI_PATH")
    vae = vae_decode_peaks(comfyui, LATENT_720P) if comfyui else None
    if vae:
        print(f"Wan 2.1 VAE decode of {LATENT_720P} latents (189 frames, 704x1280), bf16, CUDA: weights "
              f"{gib(vae[0])}, untiled peak {gib(vae[1])}, tiled (VAEDecodeTiled defaults) peak {gib(vae[2])}")
    else:
        print("VAE decode: skipped (set COMFYUI_PATH to a ComfyUI checkout)")

    # What one stage holds on the card: the DiT's weights, the prepared LoRA stacks (the pack keeps the last two:
    # at 720p the distill stack is still there), the CUDA-path activations with the LoRA on.
    stages = [("480p distill step", base, distill_bytes, peaks["480p / 93 frames", "CUDA", True]),
              ("720p refinement step (BSA)", base, distill_bytes + refine_bytes,
               peaks["720p refinement, BSA", "CUDA", True]),
              ("480p continuation step (condition cache)", base, distill_bytes, cached),
              ("avatar 480p continuation, 3 passes batched", avatar, 0, guided),
              ("avatar 480p continuation, DMD LoRA, 1 pass", avatar, dmd_bytes, distilled)]
    print_card_table(stages, vae, args.markdown)


def parameters(model_class, config):
    with FakeTensorMode():
        return sum(p.numel() for p in model_class(**config, device="meta").parameters())


def cached_continuation_peak(depth, lora, cond=4, avatar=False, batch=1):
    """The first step of a cached 480p continuation (it fills the cache) with `depth` blocks, measured, plus the
    cache of the remaining blocks of the 48 (every block caches the same k and v sizes: one batch row of the
    condition's frames, the avatar's reference latent among them)."""
    T, H, W = LATENT_480P
    peak = step_peak(dit_today, bsa_today, depth, LATENT_480P, "cuda", num_cond_latents=cond, lora=lora, cached=True,
                     batch=batch, avatar=avatar)
    frames = cond + reference_latents(cond, avatar)
    per_block = 2 * frames * (H // 2) * (W // 2) * FULL_CONFIG["hidden_size"] * 2
    return peak + (FULL_CONFIG["depth"] - depth) * per_block


def print_card_table(stages, vae, markdown):
    rows = []
    for stage, params, lora, acts in stages:
        for dtype, size in (("fp8", 1), ("bf16", 2)):
            rows.append((f"{stage}, {dtype} weights", size * params, lora, acts))
    if vae:
        rows += [("VAE decode 720p (48 latents, 189 frames), untiled", vae[0], 0, vae[1]),
                 ("VAE decode 720p (48 latents), tiled (VAEDecodeTiled defaults)", vae[0], 0, vae[2])]
    header = ["stage", "weights", "LoRA tensors", "activations", "total"] + [f"{c} GB card" for c in CARDS_GB]
    lines = []
    for stage, w, lora, acts in rows:
        total = w + lora + acts
        fits = []
        for card in CARDS_GB:
            spare = card * GiB - CARD_OVERHEAD - total
            fits.append("fits" if spare >= 0 else f"streams {math.ceil(-spare / GiB)} GiB of weights"
                        if -spare < w else "does not fit")
        lines.append([stage, f"{w / GiB:.1f}", f"{lora / GiB:.1f}", f"{acts / GiB:.1f}", f"{total / GiB:.1f}"] + fits)
    print(f"\nGiB; a card keeps {CARD_OVERHEAD / GiB:.0f} GiB for the CUDA context and ComfyUI's reserve; 'streams': "
          "ComfyUI loads the model partially (low VRAM) and casts the rest in per layer")
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        width = max(len(line[0]) for line in lines)
        for line in [header] + lines:
            print("  ".join(f"{c:>14s}" if i else f"{c:{width}s}" for i, c in enumerate(line)))


if __name__ == "__main__":
    main()
