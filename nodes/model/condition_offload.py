"""Where a sampling run keeps its condition cache: on the card, or in CPU memory streamed block by block (core
condition_offload). The choice travels in the model options (`transformer_options[CONDITION_OFFLOAD]`: the long
video nodes set it; absent means auto) and is made once per run, before ComfyUI estimates the run's memory."""
import logging

import comfy.model_management as mm

CONDITION_OFFLOAD = "longcat_condition_offload"  # transformer_options key: auto / gpu / cpu
CHOICES = ("auto", "gpu", "cpu")
GIB = 2 ** 30
log = logging.getLogger("longcat")


def offload_condition(patcher, choice, noise_shape):
    """True to keep the run's condition cache in CPU memory. auto: when the card cannot hold the weights still to
    load, the step's activations (with CFG's batch of two, as ComfyUI estimates them) and the whole cache; on a
    device that is not CUDA the cache stays with the model (it is that memory already). Logs what was chosen."""
    model, device = patcher.model, patcher.load_device
    if choice not in CHOICES:
        raise ValueError(f"condition cache placement '{choice}' is not one of {', '.join(CHOICES)}")
    cache = model.condition_cache_bytes(noise_shape)
    if choice != "auto":
        offload, why = choice == "cpu", "as chosen"
    elif not mm.is_device_cuda(device):
        offload, why = False, f"auto: the model runs on {device}"
    else:  # the estimate while condition_offload is still False: the whole cache on the card
        need = patcher.model_size() - patcher.loaded_size() + \
            model.memory_required([2 * noise_shape[0], *noise_shape[1:]])
        free = mm.get_free_memory(device) - mm.extra_reserved_memory()
        offload = need > free
        why = (f"auto: {need / GIB:.1f} GiB of weights to load, activations and cache, {free / GIB:.1f} GiB free "
               f"on {device}")
    log.info("LongCat condition cache (%.2f GiB of keys and values): %s (%s)", cache / GIB,
             "in CPU memory, streamed to the card block by block" if offload else "on the compute device", why)
    return offload
