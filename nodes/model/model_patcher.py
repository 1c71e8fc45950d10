"""The LongCat MODEL: a ComfyUI ModelPatcher that carries a LoRA stack and applies it through the core patcher.

Each clone carries its own stack (so two branches of one workflow hold different stacks on one loaded DiT); the
patching state lives with the shared torch model, because the weights are shared. Whenever ComfyUI (re)loads,
partially unloads or unpatches the model, `sync_loras` makes the weights hold exactly base + this clone's stack:
- merge: the stack is merged on the device (core `WeightMerger`; originals kept, restore is exact);
- runtime: forward hooks add the low-rank terms (offloaded, low-VRAM or fp8 weights).
Before ComfyUI moves or restores weights itself, whatever we merged is restored first, so its own backups and
moves only ever see the weights it patched.
"""
import logging
import time

import comfy.model_management as mm
import comfy.model_patcher
import comfy.utils

from ..core.lora_patcher import RuntimeLora, WeightMerger, backup_fits_on_device, linear_weights, mergeable, \
    prepare_stack, weight_shapes
from ..core.lru_cache import LruCache

MODES = ("auto", "merge", "runtime")
PREPARED_CACHE_SIZE = 2  # distill and refinement stacks stay on the device: switching costs one merge
PROGRESS_AFTER_S = 0.5  # merges take milliseconds; a first one with pinned host backups can take many seconds
log = logging.getLogger("longcat")


class LoraState:
    """What is applied to one torch model right now, shared by every clone of its patcher."""

    def __init__(self, diffusion_model):
        self.merger = WeightMerger(diffusion_model)
        self.runtime = None
        self.applied = None  # (stack key, mode)
        self.prepared = LruCache(PREPARED_CACHE_SIZE)  # (stack key, device) -> prepared stack (fp32, either mode)

    def prepared_for(self, key, stack, weights, device):
        return self.prepared.get_or_build((key, device), lambda: prepare_stack(stack, weights, device=device))

    def clear(self):
        """Back to the plain weights: restore merged ones, remove hooks."""
        self.merger.restore()
        if self.runtime is not None:
            self.runtime.detach()
            self.runtime = None
        self.applied = None


def stack_key(stack):
    return tuple((description.path, description.size_bytes, description.mtime, float(strength))
                 for description, strength in stack)


class LongCatModelPatcher(comfy.model_patcher.ModelPatcher):
    longcat_loras = ()  # ((LoraDescription, strength), ...)
    longcat_mode = "auto"

    def clone(self, *args, **kwargs):
        n = super().clone(*args, **kwargs)
        n.longcat_loras = self.longcat_loras
        n.longcat_mode = self.longcat_mode
        return n

    def clone_has_same_weights(self, clone, *args, **kwargs):
        return (super().clone_has_same_weights(clone, *args, **kwargs) and
                stack_key(self.longcat_loras) == stack_key(getattr(clone, "longcat_loras", ())))

    def with_lora(self, description, strength, mode):
        """A clone whose stack has one more LoRA; the model itself is not touched until ComfyUI loads it."""
        n = self.clone()
        n.longcat_loras = self.longcat_loras + ((description, strength),)
        n.longcat_mode = mode
        return n

    # ComfyUI lifecycle
    def patch_model(self, *args, **kwargs):
        result = super().patch_model(*args, **kwargs)
        self.sync_loras()
        return result

    def load(self, *args, **kwargs):
        self.lora_state().clear()  # ComfyUI may move modules: never with our merged weights in them
        super().load(*args, **kwargs)
        self.sync_loras()

    def partially_unload(self, *args, **kwargs):
        self.lora_state().clear()
        freed = super().partially_unload(*args, **kwargs)
        self.sync_loras()
        return freed

    def unpatch_model(self, device_to=None, unpatch_weights=True):
        if unpatch_weights:
            state = self.lora_state()
            state.clear()
            if device_to is not None and device_to != self.load_device:
                state.prepared.clear()  # the model leaves the device (/free, unload): so do the LoRA tensors
        return super().unpatch_model(device_to, unpatch_weights)

    # Our part
    def lora_shapes(self):
        """{weight key: [out, in]} of every linear a LoRA may target, the model side of the one shape check
        (lora_description.check_against_model): quantized weights report their logical shape, split ones the whole."""
        return weight_shapes(linear_weights(self.model.diffusion_model))

    def lora_state(self):
        model = self.model
        if not hasattr(model, "longcat_lora_state"):
            model.longcat_lora_state = LoraState(model.diffusion_model)
        return model.longcat_lora_state

    def choose_mode(self, weights):
        """(mode, keep the backup on the device). auto merges only resident, mergeable weights whose backup fits
        on the device; merge also accepts a pinned-host backup; everything else (fp8, quantized) runs at run time."""
        if self.longcat_mode == "runtime":
            return "runtime", False
        resident = (not self.model.model_lowvram and
                    all(w.device == self.load_device and mergeable(w) for w in weights.values()))
        fits = resident and backup_fits_on_device(weights.values(), reserve_bytes=self.inference_reserve())
        if self.longcat_mode == "merge":
            if resident:
                return "merge", fits
            log.warning("LongCat LoRA: merge asked for, but the weights are offloaded, partially loaded, fp8 or "
                        "quantized; applying the stack at run time instead (quantized weights are never re-quantized)")
        return ("merge", True) if fits else ("runtime", False)

    def inference_reserve(self):
        """Free device memory the kept originals must leave for sampling, which ComfyUI does not know about
        at patch time: a quarter of the device (a 720p refinement step needs about 24 GB) or ComfyUI's minimum."""
        total = mm.get_total_memory(self.load_device) if self.load_device.type == "cuda" else 0
        return max(mm.minimum_inference_memory(), total // 4)

    def sync_loras(self):
        """Make the weights hold base + this clone's stack (merged or at run time), changing nothing if they do."""
        state = self.lora_state()
        if not self.longcat_loras:
            if state.applied is not None:
                state.clear()
            return
        targets = sorted({m for description, _ in self.longcat_loras for m in description.targets})
        weights = linear_weights(self.model.diffusion_model, targets)
        if any(w.device != self.load_device for w in weights.values()) and not self.model.model_lowvram:
            return  # not loaded yet: load() calls back once the weights are on the device
        mode, backup_on_device = self.choose_mode(weights)
        key = stack_key(self.longcat_loras)
        if state.applied == (key, mode):
            return
        state.clear()
        if mode == "merge":
            prepared = state.prepared_for(key, self.longcat_loras, weights, self.load_device)
            state.merger.merge(prepared, backup_on_device=backup_on_device, progress=progress_when_slow(),
                               check_interrupt=mm.throw_exception_if_processing_interrupted)
        else:
            prepared = state.prepared_for(key, self.longcat_loras, weights, self.load_device)
            state.runtime = RuntimeLora(self.model.diffusion_model, prepared).attach()
        state.applied = (key, mode)


def progress_when_slow():
    """A progress callback that shows ComfyUI's bar only once the work has taken PROGRESS_AFTER_S, so the usual
    millisecond merges do not flash a bar on every switch."""
    start, bar = time.monotonic(), None

    def update(done, total):
        nonlocal bar
        if bar is None:
            if time.monotonic() - start < PROGRESS_AFTER_S:
                return
            bar = comfy.utils.ProgressBar(total)
        bar.update_absolute(done, total)
    return update
