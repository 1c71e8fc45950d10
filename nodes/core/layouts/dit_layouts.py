"""A DiT checkpoint in any known layout, mapped onto the native LongCat parameters while it streams.

The layout is detected from the stored keys: the layout whose module table names the most of them (native
reference, WanVideoWrapper / Kijai, FastVideo; see module_names). Split pieces of the native fused linears
(q | k | v of `attn.qkv`, k | v of `cross_attn.kv_linear`) are concatenated back in row order as soon as the last
piece has been read, so every layout gives the same parameters, bit for bit. Quantized layers (see quantization)
keep ComfyUI's per-layer tensors; a fused linear whose pieces are quantized stays split (`<fused>.parts.<j>`),
since its pieces carry scales of their own. Everything is checked from the headers before a tensor is read: a file
that mixes layouts, misses tensors or holds extra ones gets one message naming the closest layout and the keys.
"""
import json
from dataclasses import dataclass, field

import torch

from ..avatar.avatar_dit import avatar_config_from_state_dict, dit_class
from ..dit_config import block_ranges
from .module_names import LAYOUTS, fused_of, is_linear, pieces_of
from .quantization import LAYER_PARAMS, LISTED, MARKER, listed, logical_shape, quantized_layers

PLAIN_PARAMS = ("weight", "bias")
# Depth of the released models by hidden size (LongCat-Video and -Avatar: 48 blocks of 4096). A checkpoint of
# another size (the tiny test models) has no known depth: a config.json beside it, when there is one, gives it.
RELEASED_DEPTHS = {4096: 48}
INT8_PARAMS = ("weight_int8", "weight_scale")  # LongCat-Video-Avatar v1.5's base_model_int8/, per layer


class LayoutProblem(ValueError):
    """The keys do not form a LongCat DiT in any layout; the message names the closest layout and the keys."""


@dataclass
class CheckpointPlan:
    """How the stored tensors become the model's: `stream` turns (stored key, tensor) into (model key, tensor)."""
    layout: object  # module_names.Layout
    config: dict  # LongCatDiT arguments (+ "split_fused": fused modules kept as quantized pieces)
    shapes: dict  # model key -> shape, for the plain parameters (weights and biases)
    routes: dict  # stored key -> (model key, piece index, piece count); absent: dropped
    quantized: dict = field(default_factory=dict)  # model module -> ComfyUI per-layer config
    count: int = 0  # tensors `stream` yields
    dequantized: set = field(default_factory=set)  # model weights stored as the reference's INT8 (see INT8_PARAMS)

    def stream(self, stored):
        """Yield (model key, tensor) for (stored key, tensor) pairs in any order; pieces are fused on arrival of
        the last one, and each quantized layer's `comfy_quant` config tensor comes first."""
        for module, conf in self.quantized.items():
            yield f"{module}.comfy_quant", torch.tensor(list(json.dumps(conf).encode("utf-8")), dtype=torch.uint8)
        pending = {}
        for key, tensor in stored:
            route = self.routes.get(key)
            if route is None:
                continue
            target, index, count = route
            if index is None:
                yield target, tensor
                continue
            pieces = pending.setdefault(target, [None] * count)
            pieces[index] = tensor
            if all(p is not None for p in pieces):
                del pending[target]
                yield target, dequantize_int8(*pieces) if target in self.dequantized else torch.cat(pieces, dim=0)

    def module_keys(self):
        """{model module: [its model keys]}, for loaders that fill whole modules at once."""
        keys = {}
        for target in {*(r[0] for r in self.routes.values()), *(f"{m}.comfy_quant" for m in self.quantized)}:
            keys.setdefault(target.rsplit(".", 1)[0], []).append(target)
        return keys


def dequantize_int8(weight_int8, weight_scale):
    """The reference's INT8 weight-only layer (modules/quantization.py QuantizedLinear): int8 [out, in] times a
    per-output-channel scale, in fp32 (every stored value is exact there)."""
    return weight_int8.float() * weight_scale.float()[:, None]


def plan_checkpoint(shapes, dtypes, metadata, read_tensor, prefix="", config_depth=None):
    """Detect the layout of a checkpoint's stored keys ({key: shape}, the whole-model `prefix` already stripped)
    and plan its mapping onto the native model. The blocks must run 0..depth-1, with depth what a config.json says
    (`config_depth`) or else the released models' depth for their hidden size. Raises LayoutProblem /
    QuantizationProblem (ValueErrors) saying what is wrong."""
    stored = {k: tuple(v) for k, v in shapes.items() if k != MARKER}
    layout, natives, foreign = _closest_layout(stored)
    params = {}
    for key in stored:
        module, _, param = key.rpartition(".")
        params.setdefault(module, {})[param] = key
    layers, renamed = quantized_layers(params, dtypes, metadata, read_tensor, prefix)
    quantized_natives = {}
    for layer, conf in layers.items():
        native = natives.get(params[layer]["weight"], "").rpartition(".")[0]
        if not native or not is_linear(native):
            raise LayoutProblem(f"layer {layer} is quantized ({conf['format']}), but only linear layers can be")
        quantized_natives[native] = conf
    split = sorted({fused_of(m)[0] for m in quantized_natives if fused_of(m)[1] is not None})

    def model_module(native):
        fused, index, count = fused_of(native)
        return f"{fused}.parts.{index}" if fused in split else native

    quantized = {model_module(m): conf for m, conf in quantized_natives.items()}
    routes, plain, unknown, dequantized = {}, {}, [], set()
    int8 = {native.rsplit(".", 1)[0] for key, native in natives.items() if native.endswith(".weight_int8")}
    for key, native in natives.items():
        module, param = native.rsplit(".", 1)
        name = renamed.get(key, param)
        if name is None:
            continue
        if module in int8 and param in INT8_PARAMS:  # the reference's INT8 checkpoint: dequantized on the way in
            if module not in quantized_natives and is_linear(module):
                routes[key] = (f"{module}.weight", INT8_PARAMS.index(param), len(INT8_PARAMS))
                dequantized.add(f"{module}.weight")
                if param == "weight_int8":
                    plain[f"{module}.weight"] = stored[key]
                continue
        if param not in PLAIN_PARAMS and (name not in LAYER_PARAMS or model_module(module) not in quantized):
            unknown.append(key)
            continue
        fused, index, count = fused_of(module)
        if index is None or fused in split:
            routes[key] = (f"{model_module(module)}.{name}", None, 1)
        else:
            routes[key] = (f"{fused}.{name}", index, count)
        if param in PLAIN_PARAMS:
            shape = stored[key]
            plain[native] = logical_shape(shape, quantized_natives.get(module)) if param == "weight" else shape
    if unknown:
        foreign = foreign + unknown
    fused_shapes, missing = _fused_shapes(layout, plain, stored)
    config = _checked_config(layout, fused_shapes, missing, sorted(foreign), stored)
    _check_depth(config, config_depth)
    if split:
        config["split_fused"] = split
    model_shapes = {}
    for key, shape in fused_shapes.items():
        module, param = key.rsplit(".", 1)
        if module in split:
            n = len(pieces_of(module))
            model_shapes.update({f"{module}.parts.{j}.{param}": (shape[0] // n, *shape[1:]) for j in range(n)})
        else:
            model_shapes[key] = shape
    count = len({r[0] for r in routes.values()}) + len(quantized)
    return CheckpointPlan(layout, config, model_shapes, routes, quantized, count, dequantized)


def _closest_layout(stored):
    """The layout that names the most stored keys, {stored key: native key} in it, and the keys it does not name.
    A file whose other keys follow another layout (half one layout, half another) is refused."""
    best = None
    for layout in LAYOUTS:
        named = {}
        for key in stored:
            module, _, param = key.rpartition(".")
            native = layout.to_native(module)
            if native is not None:
                named[key] = f"{native}.{param}"
        if best is None or len(named) > len(best[1]):
            best = (layout, named)
    layout, named = best
    if not named:
        found = f"first keys {listed(sorted(stored))}" if stored else "it holds no tensors"
        raise LayoutProblem("not a LongCat-Video DiT checkpoint in any known layout (" +
                            ", ".join(layout.title for layout in LAYOUTS) + f"): {found}")
    rest = [k for k in stored if k not in named]
    for other in LAYOUTS:
        elsewhere = [k for k in rest if other.to_native(k.rpartition(".")[0]) is not None]
        if other is not layout and elsewhere:
            raise LayoutProblem(
                f"mixes two layouts: {len(named)} keys in {layout.title} names, {len(elsewhere)} in {other.title} "
                f"names ({listed(elsewhere)}); a checkpoint holds one layout")
    return layout, named, rest


def _fused_shapes(layout, plain, stored):
    """Native {key: shape} with split pieces fused (rows added up), and the stored names of missing pieces."""
    shapes, missing, groups = {}, [], {}
    for key, shape in plain.items():
        module, param = key.rsplit(".", 1)
        fused, index, _ = fused_of(module)
        if index is None:
            shapes[key] = shape
        else:
            groups.setdefault(f"{fused}.{param}", {})[index] = shape
    for key, got in groups.items():
        module, param = key.rsplit(".", 1)
        names = [f"{layout.from_native(p)}.{param}" for p in pieces_of(module)]
        if len(got) < len(names):
            missing.extend(n for j, n in enumerate(names) if j not in got)
            continue
        piece_shapes = [got[j] for j in range(len(names))]
        if len({s[1:] for s in piece_shapes}) != 1 or len({s[0] for s in piece_shapes}) != 1:
            raise LayoutProblem(f"the pieces of {key} ({', '.join(names)}) have different shapes {piece_shapes}")
        shapes[key] = (sum(s[0] for s in piece_shapes), *piece_shapes[0][1:])
    return shapes, missing


def _checked_config(layout, shapes, missing, extra, stored):
    """The model's configuration, after checking that `shapes` (native keys) are exactly its parameters;
    problems are reported in the layout's own key names."""
    try:
        config = avatar_config_from_state_dict(shapes)
        model = dit_class(config)(**config, device="meta")
    except ValueError as e:
        if missing or extra:
            raise LayoutProblem(_problems(layout, missing, extra, [])) from None
        raise LayoutProblem(f"{e} (layout {layout.title})") from None
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for key in expected:
        if key not in shapes:
            module, param = key.rsplit(".", 1)
            pieces = pieces_of(module) if layout.splits_fused else ()
            names = [f"{layout.from_native(p)}.{param}" for p in pieces] or [_stored_name(layout, key)]
            missing.extend(n for n in names if n not in stored)
    extra = extra + [_stored_name(layout, k) for k in shapes if k not in expected]
    wrong = [f"{_stored_name(layout, k)} {shapes[k]} (expected {s})" for k, s in expected.items()
             if k in shapes and shapes[k] != s]
    if missing or extra or wrong:
        raise LayoutProblem(_problems(layout, sorted(set(missing)), extra, wrong))
    return config


def _check_depth(config, config_depth):
    """The weights' blocks (0..depth-1, checked for gaps already) against the depth they should have."""
    depth = config["depth"]
    expected = config_depth if config_depth is not None else RELEASED_DEPTHS.get(config["hidden_size"])
    if expected is None or depth == expected:
        return
    source = ("its config.json says the model has" if config_depth is not None else
              f"the released LongCat-Video DiT of hidden size {config['hidden_size']} has")
    if depth < expected:
        problem = f"blocks {block_ranges(range(depth, expected))} missing"
    else:
        problem = f"blocks {block_ranges(range(expected, depth))} extra"
    raise LayoutProblem(f"{problem}: {source} {expected} blocks, the weights hold blocks "
                        f"{block_ranges(range(depth)) or 'none'}")


def _problems(layout, missing, extra, wrong):
    problems = []
    if missing:
        problems.append(f"{len(missing)} keys of the {layout.title} layout missing ({listed(missing)})")
    if extra:
        problems.append(f"{len(extra)} keys not in the {layout.title} layout ({listed(extra)})")
    if wrong:
        problems.append(f"{len(wrong)} tensors with the wrong shape: {'; '.join(wrong[:LISTED])}")
    return "; ".join(problems)


def _stored_name(layout, key):
    module, param = key.rsplit(".", 1)
    return f"{layout.from_native(module)}.{param}"


def transformer_config_depth(config):
    """A diffusers `transformer/config.json` beside the weights must describe a LongCat transformer (FastVideo
    writes `_class_name` LongCatTransformer3DModel, `depth`, `hidden_size`); the depth it gives (`depth`, or
    diffusers' `num_layers`), or None."""
    name = config.get("_class_name", "LongCat")
    if "longcat" not in str(name).lower():
        raise LayoutProblem(f"its config.json names {name}, not a LongCat-Video transformer")
    for key in ("depth", "num_layers"):
        if key in config:
            if type(config[key]) is not int or config[key] < 1:
                raise LayoutProblem(f"its config.json says {key} {config[key]!r:.40}, not a number of blocks")
            return config[key]
    return None


def check_transformer_config(config, plan):
    """The config.json's hidden size against the weights' (its depth was checked while planning)."""
    if "hidden_size" in config and config["hidden_size"] != plan.config["hidden_size"]:
        raise LayoutProblem(f"its config.json says hidden_size {config['hidden_size']}, the weights have "
                            f"{plan.config['hidden_size']}")

