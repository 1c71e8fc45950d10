"""Which layers of a DiT checkpoint are quantized, and how, read from its header the way ComfyUI reads it.

ComfyUI (comfy/utils.py `convert_old_quants` and `detect_layer_quantization`, the same in 0.8.0 and 0.33.0)
knows two descriptions, and so does this:
- its mixed-precision format: a `comfy_quant` JSON tensor per layer, or the same layer table in the file's
  `_quantization_metadata`, next to the layer's `weight_scale` (+ `input_scale`, `weight_scale_2`, ...);
- "scaled fp8", as Kijai's `_scaled` files carry it: a `scale_weight` per fp8 layer (optionally `scale_input`, and
  a `scaled_fp8` marker tensor). ComfyUI rewrites it to the first format: `scale_weight` -> `weight_scale`,
  `scale_input` -> `input_scale` (dropped when 1.0), and {"format": "float8_e4m3fn"} per layer, with
  "full_precision_matrix_mult" when the marker holds two elements.
Only that description is built here; ComfyUI's mixed-precision ops (comfy/ops.py) hold and multiply the quantized
weights. Plain fp8 storage (fp8 weights, no scales) is no quantization format: ComfyUI casts it like any dtype.
"""
import json
import math

MARKER = "scaled_fp8"
OLD_SCALES = {"scale_weight": "weight_scale", "scale_input": "input_scale"}
# The per-layer tensors ComfyUI's mixed-precision Linear reads besides weight and bias (comfy/ops.py).
LAYER_PARAMS = ("comfy_quant", "weight_scale", "weight_scale_2", "input_scale", "pre_quant_scale",
                "weight_s_rel", "weight_s_channel", "weight_codebook")
FP8_DTYPES = {"F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}
# Formats that pack two 4-bit weights per stored byte along the input dimension (comfy/quant_ops.py layouts).
TWO_PER_BYTE = ("nvfp4", "convrot_w4a4", "asym_w4a8_int8")
LISTED = 5  # names shown in a message


class QuantizationProblem(ValueError):
    """A quantized checkpoint whose quantization cannot be read; the message says which layers and why."""


def quantized_layers(params, dtypes, metadata, read_tensor, prefix=""):
    """({layer: per-layer config}, {stored key: ComfyUI parameter name, or None to drop}) of a checkpoint.

    params: {layer (stored module path, `prefix` stripped): {parameter name: stored key}}; dtypes: {stored key:
    safetensors dtype}; metadata: the safetensors metadata; read_tensor(stored key) reads one (small) tensor. The
    configs are returned as layers and each stored `comfy_quant` is dropped: the caller writes one per layer.
    """
    renamed = {p["comfy_quant"]: None for p in params.values() if "comfy_quant" in p}
    table = metadata.get("_quantization_metadata") if metadata else None
    if table is not None:
        layers = {layer[len(prefix):] if layer.startswith(prefix) else layer: conf
                  for layer, conf in _metadata_layers(table).items()}
    else:
        layers = {layer: _layer_conf(p["comfy_quant"], read_tensor)
                  for layer, p in params.items() if "comfy_quant" in p}
    scaled = {layer: p for layer, p in params.items() if any(k in p for k in OLD_SCALES)}
    if scaled and layers:
        raise QuantizationProblem(f"mixes scaled-fp8 scale_weight tensors ({listed(list(scaled))}) with ComfyUI's "
                                  "per-layer quantization metadata: one file holds one kind")
    if scaled or MARKER in dtypes:
        layers = _scaled_fp8_layers(params, dtypes, scaled, read_tensor)
        for layer, p in scaled.items():
            for old, new in OLD_SCALES.items():
                if old in p:
                    renamed[p[old]] = new
            if "scale_input" in p and float(read_tensor(p["scale_input"]).float().reshape(-1)[0]) == 1.0:
                renamed[p["scale_input"]] = None  # ComfyUI drops an input scale of 1.0
        if MARKER in dtypes:
            renamed[MARKER] = None
    for layer, conf in layers.items():
        p = params.get(layer, {})
        if "weight" not in p:
            raise QuantizationProblem(f"the quantization metadata names layer {layer}, which has no weight")
        if not any(name in p or old in p for name, old in (("weight_scale", "scale_weight"), ("weight_s_rel", None))):
            raise QuantizationProblem(f"quantized layer {layer} ({conf.get('format')}) has no weight_scale: "
                                      "the file is incomplete")
        if conf["format"] in FP8_DTYPES.values():
            for name in ("scale_weight", "weight_scale", "scale_input", "input_scale"):
                if name in p:
                    _check_fp8_scale(layer, name, read_tensor(p[name]))
    return layers, renamed


def _check_fp8_scale(layer, name, scale):
    """ComfyUI's fp8 layout scales a whole weight (or input) by one number: a scale of another shape fails in the
    sampler, NaN or Inf gives NaN output, 0 zeroes the layer and a negative one flips its sign."""
    if scale.numel() != 1 or not scale.is_floating_point():
        raise QuantizationProblem(f"layer {layer}: its {name} has shape {list(scale.shape)} ({scale.dtype}); fp8 "
                                  "layers take one float scale per tensor")
    value = float(scale.float().reshape(-1)[0])
    if not math.isfinite(value) or value <= 0:
        raise QuantizationProblem(f"layer {layer}: its {name} is {value}; a scale must be a finite number above 0")


def logical_shape(stored_shape, conf):
    """The [out, in] shape a quantized weight stands for, from its stored shape."""
    if conf and conf["format"] in TWO_PER_BYTE and len(stored_shape) == 2:
        return stored_shape[0], stored_shape[1] * 2
    return tuple(stored_shape)


def _scaled_fp8_layers(params, dtypes, scaled, read_tensor):
    if not scaled:
        raise QuantizationProblem(f"is marked as scaled fp8 ('{MARKER}') but holds no scale_weight tensors: the "
                                  "scales are missing")
    full_precision = MARKER in dtypes and read_tensor(MARKER).numel() == 2
    layers, unscaled = {}, []
    for layer, p in params.items():
        dtype = dtypes.get(p.get("weight"))
        if layer in scaled:
            if "scale_weight" not in p:
                raise QuantizationProblem(f"layer {layer} has a scale_input but no scale_weight")
            if dtype not in FP8_DTYPES:
                raise QuantizationProblem(f"{p['scale_weight']} scales a weight stored as {dtype}, not fp8")
            # ComfyUI writes float8_e4m3fn for every scaled layer; the stored dtype says which fp8 it is.
            layers[layer] = {"format": FP8_DTYPES[dtype]}
            if full_precision:
                layers[layer]["full_precision_matrix_mult"] = True
        elif dtype in FP8_DTYPES:
            unscaled.append(p["weight"])
    if unscaled:
        raise QuantizationProblem(f"is a scaled fp8 file, but {len(unscaled)} fp8 weights have no scale_weight "
                                  f"({listed(unscaled)}): the file is incomplete")
    return layers


def _metadata_layers(table):
    try:
        layers = json.loads(table)["layers"]
        if not isinstance(layers, dict) or not all(isinstance(c, dict) for c in layers.values()):
            raise TypeError
    except (TypeError, KeyError, json.JSONDecodeError):
        raise QuantizationProblem("its _quantization_metadata is not a JSON object with a 'layers' table") from None
    return {layer: _checked(layer, conf) for layer, conf in layers.items()}


def _layer_conf(key, read_tensor):
    try:
        conf = json.loads(read_tensor(key).numpy().tobytes())
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError, ValueError):
        raise QuantizationProblem(f"{key} is not a JSON quantization config") from None
    return _checked(key.rsplit(".", 1)[0], conf)


def _checked(layer, conf):
    if not isinstance(conf, dict) or not isinstance(conf.get("format"), str):
        raise QuantizationProblem(f"layer {layer}: its quantization config names no format ({conf!r})")
    return conf


def listed(keys):
    """The first few names, and how many more."""
    shown = ", ".join(keys[:LISTED])
    return shown + (f" and {len(keys) - LISTED} more" if len(keys) > LISTED else "")
