"""Apply LongCat LoRA: a strength slider that is the real scale (the UI starts it at the file's alpha/rank)."""
import logging

from .lora_library import cached_read, resolve_lora
from .model_names import loop_free_names
from ..core.lora_range import check_lora_range
from ..core.layouts.lora_layouts import layout_title
from ..model.model_patcher import MODES, LongCatModelPatcher

log = logging.getLogger("longcat")


def applied_message(name, description):
    """What the node reports after reading a file: its layout, what is applied, and what it skips."""
    targets = sum(len(f) for f in description.targets.values())
    text = f"{name}: {layout_title(description.layout)} layout, {targets} terms on {len(description.targets)} modules"
    for component, keys in sorted(description.skipped_keys.items()):
        text += f"; skipped {len(keys)} keys of the {component} (not part of this model), e.g. {keys[0]}"
    return text


class LongCatLoraLoader:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "A LongCat-Video model from Load LongCat DiT (or another Apply LongCat LoRA: "
                                           "chaining stacks LoRAs)."}),
            "lora_name": (loop_free_names("loras"), {
                "tooltip": "A LoRA from models/loras: the official LongCat files (cfg_step_lora, refinement_lora), "
                           "Kijai's WanVideoWrapper conversions, FastVideo's, DiffSynth / PEFT adapters, kohya, or "
                           "files with split q/k/v. A file is applied whole or not at all; keys of other components "
                           "(a text encoder) are skipped and listed."}),
            "strength": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01, "tooltip":
                         "The real scale of up @ down. Choosing a file sets it to that file's alpha/rank (0.5 for "
                         "both official LongCat LoRAs), which reproduces the reference; 2x that is what runtimes that "
                         "drop alpha_scale applied. Modules with their own alpha/rank keep their ratio."}),
            "mode": (list(MODES), {"default": "auto", "tooltip":
                     "auto: merge into the weights on the GPU when they are resident and the backup fits, else add "
                     "at run time. merge: always merge (exact restore). runtime: never touch the weights (offloaded, "
                     "low VRAM, fp8)."}),
        }}

    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The model with this LoRA added to its stack; the loaded DiT is shared, not copied.",)
    FUNCTION = "apply"
    CATEGORY = "LongCat"
    DESCRIPTION = ("Applies a LongCat-Video LoRA with a strength that defaults to the file's alpha/rank. Chain nodes "
                   "to stack LoRAs; different branches can hold different stacks on one loaded DiT.")

    def apply(self, model, lora_name, strength, mode):
        if not isinstance(model, LongCatModelPatcher):
            raise ValueError("Apply LongCat LoRA needs a MODEL from Load LongCat DiT "
                             f"(got {type(getattr(model, 'model', model)).__name__})")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not (-10.0 <= strength <= 10.0):
            raise ValueError(f"strength {strength} is outside -10..10")
        description = cached_read(resolve_lora(lora_name), model.lora_shapes())
        check_lora_range(description, strength, model.model.manual_cast_dtype or model.model.get_dtype())
        message = applied_message(lora_name, description)
        (log.warning if description.skipped_keys else log.info)("Apply LongCat LoRA: %s", message)
        return {"ui": {"text": [message]}, "result": (model.with_lora(description, strength, mode),)}
