"""LoRA module names of the projects that run LongCat, and the keys of other components a LoRA file may carry.

A LoRA names its targets in the module names of the model it was made for: the native ones (official files,
DiffSynth / PEFT training on the reference model), WanVideoWrapper's (Kijai's `LongCat_distill_lora_alpha64_bf16`
and refinement LoRAs: `diffusion_model.` or `lora_unet_`, `self_attn.q/k/v/o`, `cross_attn.q/k/v/o`,
`modulation.1`, `head.head`, ...) or FastVideo's (`self_attn.to_q`, `adaln_linear_1`, `final_layer.proj`, ...;
scripts/checkpoint_conversion/longcat_to_fastvideo.py). The tables are module_names', shared with checkpoints.
"""
from .module_names import LAYOUTS, NATIVE, is_linear

# Whole-model prefixes trainers and converters put before module paths (PEFT, ComfyUI, diffusers, DiffSynth).
PREFIXES = ("base_model.model.", "model.diffusion_model.", "diffusion_model.", "transformer.", "pipe.dit.", "model.",
            "dit.")
# Stems of keys that belong to other components of a video pipeline; such keys are skipped and listed.
OTHER_COMPONENTS = (
    ("text encoder", ("lora_te", "text_encoder", "text_encoders", "te.", "te_", "te1", "te2", "t5", "umt5", "clip_l",
                      "clip_g", "conditioner.", "cond_stage_model.")),
    ("VAE", ("vae.", "vae_", "first_stage_model.", "lora_vae")),
    ("image encoder", ("image_encoder", "clip_vision")),
)


def strip_prefix(raw):
    """(module path without a whole-model prefix, whether it is kohya-undotted: `lora_unet_blocks_0_attn_qkv`)."""
    if raw.startswith("lora_unet_"):
        return raw[len("lora_unet_"):].lstrip("_"), True
    for prefix in PREFIXES:
        if raw.startswith(prefix):
            return raw[len(prefix):], False
    return raw, False


def layouts_naming(name, undotted=False):
    """{layout name: native linear module (or fused piece)} for every layout in which `name` is a linear module."""
    found = {}
    for layout in LAYOUTS:
        native = layout.to_native(name, undotted)
        if native is not None and is_linear(native):
            found[layout.name] = native
    return found


def other_component(raw):
    """The component (text encoder, VAE, ...) a key of another part of the pipeline belongs to, or None."""
    stem = raw.lower()
    for prefix in PREFIXES:
        if stem.startswith(prefix) and not stem[len(prefix):].startswith("blocks"):
            stem = stem[len(prefix):]
            break
    for component, stems in OTHER_COMPONENTS:
        if stem.startswith(stems):
            return component
    return None


def common_layout(per_module):
    """The layout every module of a file is named in ({module: {layout names}}), preferring the native one and
    then the table order; None when no single layout names them all (a file that mixes layouts)."""
    shared = set.intersection(*per_module.values()) if per_module else {NATIVE.name}
    return next((layout.name for layout in LAYOUTS if layout.name in shared), None)


def layout_title(name):
    return next(layout.title for layout in LAYOUTS if layout.name == name)
