"""The demo set: tiny random stand-ins for every model file of the shipped workflows, in their real key layouts,
so the workflows run end to end where the real LongCat files are not installed. All of it is random noise (and
says so in each file's metadata): it shows that the pipeline runs, not what LongCat-Video makes."""
import subprocess
import sys
from pathlib import Path

from ..core.demo_files import TINY_DIT, lora_target_shapes, write_demo_dit, write_demo_text_embeddings, \
    write_official_lora

DEMO_FILES = {
    "dit": ("diffusion_models", "longcat_demo_dit_RANDOM.safetensors"),
    "distill_lora": ("loras", "longcat_demo_distill_lora_RANDOM.safetensors"),
    "refine_lora": ("loras", "longcat_demo_refinement_lora_RANDOM.safetensors"),
    "prompt": ("text_embeddings", "longcat_demo_prompt_RANDOM.safetensors"),
    "vae": ("vae", "longcat_demo_wan21_vae_init_RANDOM.safetensors"),
}

# Written by ComfyUI's own Wan 2.1 VAE class in a ComfyUI process, so the layout is exactly what VAELoader
# detects. Width 96 (ComfyUI 0.3.64 builds every Wan 2.1 VAE that wide), random weights, bf16: about 250 MB.
_VAE_SCRIPT = """
import sys, torch
from safetensors.torch import save_file
out, sys.argv = sys.argv[1], [sys.argv[0], "--cpu"]
import comfy.options
comfy.options.enable_args_parsing()
from comfy.ldm.wan.vae import WanVAE
torch.manual_seed(0)
vae = WanVAE(dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
             temperal_downsample=[False, True, True], dropout=0.0)
with torch.no_grad():  # ComfyUI's layers skip their own init: without this the weights are whatever memory held
    for name, p in vae.named_parameters():
        if name.endswith("gamma"):
            p.fill_(1.0)
        elif p.dim() > 1:
            p.normal_(0, p[0].numel() ** -0.5)
        else:
            p.zero_()
save_file({k: v.to(torch.bfloat16).contiguous() for k, v in vae.state_dict().items()}, out,
          metadata={"longcat_demo": "random noise for demos and tests, not a trained model"})
"""


def write_demo_vae(path, comfy_root):
    """A random Wan 2.1 VAE in ComfyUI's own layout (written by a process running ComfyUI's VAE class)."""
    subprocess.run([sys.executable, "-c", _VAE_SCRIPT, str(Path(path).resolve())], cwd=comfy_root, check=True)
    return path


def write_demo_set(models_dir, comfy_root):
    """Write every demo file under models_dir/<folder>/ (skipping those already there); returns {role: name}."""
    models_dir = Path(models_dir).resolve()  # the VAE is written by a process that runs in the ComfyUI folder
    paths = {role: models_dir / folder / name for role, (folder, name) in DEMO_FILES.items()}
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    writers = {
        "dit": write_demo_dit,
        "distill_lora": lambda p: write_official_lora(p, lora_target_shapes(TINY_DIT), seed=1),
        "refine_lora": lambda p: write_official_lora(p, lora_target_shapes(TINY_DIT, refinement=True), seed=2),
        "prompt": write_demo_text_embeddings,
        "vae": lambda p: write_demo_vae(p, comfy_root),
    }
    for role, path in paths.items():
        if not path.exists():
            writers[role](path)
    return {role: name for role, (_, name) in DEMO_FILES.items()}
