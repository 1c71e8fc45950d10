"""Every supported LoRA file format normalised into one description of the LongCat DiT.

Supported: the official LongCat format (`lora___lorahyphen___` keys, `lora_up.blocks.j`, 0-dim `alpha_scale`),
kohya (`lora_down`/`lora_up`/`alpha`), PEFT / diffusers / DiffSynth (`lora_A`/`lora_B`, `.default` adapters,
`.alpha` or `lora_alpha` from an `adapter_config.json` beside the file), FastVideo's converted files (`lora_A`/
`lora_B` without `.weight`, `.lora_alpha` = alpha, or `.alpha_scale` = alpha/rank from earlier scripts), dense
deltas (`.diff`, applied like ComfyUI does: strength x delta), and files that split fused targets (q/k/v onto
`attn.qkv`, k/v onto `cross_attn.kv_linear`). Module names may be native, WanVideoWrapper's or FastVideo's
(layouts/lora_layouts). Keys of other components (a text encoder) are skipped and listed; any other key that
matches no target of the DiT is an error, so a file is never applied in part. The headers are parsed first
(`plan_lora`), so `inspect_lora` answers without reading the big matrices.
"""
import json
import math
import os

import torch

from .confined_paths import resolve_inside
from .cooperative import pause
from .layouts.lora_layouts import common_layout, other_component
from .lora_description import LoraDescription, LoraFactor, check_against_model, common_ratio
from .lora_keys import group_keys, key_of_module, readable_key, split_target
from .safetensors_file import ModelFileError, load_tensors, read_safetensors_header, PICKLE_SUFFIXES

# Bounds on the work one LoRA file can cause: the official files hold 1,152 and 1,543 tensors (about 300 KB of header),
# a LoRA on every linear of all 48 blocks with split q/k/v about 1,750. Parsing JSON holds Python's interpreter lock,
# so the header size bounds how long any other thread (the server's event loop) can wait on it.
MAX_LORA_TENSORS = 10_000
MAX_LORA_HEADER_BYTES = 4 * 1024 * 1024


def _read_adapter_config(path):
    """PEFT's adapter_config.json beside the file gives lora_alpha (and per-module alpha_pattern); it must be a file
    of the LoRA's own folder, not a link to one elsewhere."""
    folder = os.path.dirname(path)
    config_path = os.path.join(folder, "adapter_config.json")
    if not os.path.isfile(config_path):
        return None
    if resolve_inside(config_path, [folder]) is None:
        raise ModelFileError(config_path, "links to a file outside the LoRA's folder; copy it beside the LoRA instead")
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except RecursionError:
        raise ModelFileError(config_path, "unreadable adapter_config.json (nested too deeply)") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ModelFileError(config_path, f"unreadable adapter_config.json ({e})") from None
    if not isinstance(config, dict):
        raise ModelFileError(config_path, "not a JSON object")
    if "lora_alpha" in config and _finite_number(config["lora_alpha"]) is None:
        raise ModelFileError(config_path, f"lora_alpha must be a number, got {config['lora_alpha']!r:.40}")
    patterns = config.get("alpha_pattern") or {}
    if not isinstance(patterns, dict) or any(_finite_number(v) is None for v in patterns.values()):
        raise ModelFileError(config_path, "alpha_pattern must map module names to numbers")
    return config


def _finite_number(value):
    """float(value) for a finite JSON number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _file_listing(path):
    """Names, shapes and dtype names of a file's tensors, plus the scalar tensors, from the header when possible."""
    if str(path).lower().endswith(PICKLE_SUFFIXES):
        tensors = load_tensors(path)
        return ({k: tuple(v.shape) for k, v in tensors.items()},
                {k: str(v.dtype).replace("torch.", "") for k, v in tensors.items()}, tensors)
    header, _ = read_safetensors_header(path, MAX_LORA_HEADER_BYTES, MAX_LORA_TENSORS, key_label=readable_key)
    return ({k: tuple(v["shape"]) for k, v in header.items()},
            {k: v["dtype"].lower() for k, v in header.items()}, None)


def plan_lora(path, model_shapes=None, with_tensors=False):
    """Parse a LoRA file into a LoraDescription. With `with_tensors` the factors are read; otherwise only the
    header and the scalar alpha tensors are (fast on a 3 GB file). `model_shapes` ({weight key: shape}) checks
    every target against a model: modules it lacks are skipped and listed, a file that matches nothing fails."""
    path = str(path)
    shapes, dtypes, preloaded = _file_listing(path)
    if not shapes:
        raise ModelFileError(path, "the file holds no tensors")
    try:
        groups, unmatched, styles, layouts = group_keys(shapes)
    except ValueError as e:
        raise ModelFileError(path, str(e)) from None
    if not groups:
        raise ModelFileError(path, f"no LongCat-Video LoRA keys found (is it a LoRA for another model? "
                                   f"first keys: {', '.join(readable_key(k) for k in sorted(shapes)[:3])})")
    layout, skipped = _checked_layout(path, groups, unmatched, layouts)
    if model_shapes is not None:  # before any matrix is read: the modules must exist
        check_against_model(path, {split_target(m)[0]: () for m in groups}, model_shapes)
    scalar_keys = [k for g in groups.values() for k in (g.alpha_scale, g.alpha) if k]
    tensors = preloaded if preloaded is not None else load_tensors(path, scalar_keys, header_checked=True)
    adapter_config = _read_adapter_config(path) if styles.get("peft") else None

    ratios, ranks, targets, factor_count = {}, set(), {}, 0
    for module, g in sorted(groups.items()):
        pause()
        _check_group(path, module, g, shapes)
        pieces = len(g.up_blocks) or 1
        if g.diff:
            ratios[module] = 1.0  # ComfyUI applies a dense delta as strength * diff
        else:
            rank = shapes[g.down][0] // pieces
            ranks.add(rank)
            ratios[module] = _alpha_over_rank(path, module, g, rank, tensors, adapter_config)
        factor_count += pieces
    if with_tensors:
        needed = [k for g in groups.values() for k in (g.down, g.up, g.diff, *g.up_blocks.values()) if k]
        tensors = preloaded if preloaded is not None else load_tensors(path, needed, header_checked=True)
        for module, g in groups.items():
            targets.setdefault(split_target(module)[0], []).extend(_factors(path, module, g, tensors, ratios[module]))
        if model_shapes is not None:
            check_against_model(path, targets, model_shapes)

    common = common_ratio(path, ratios)
    return LoraDescription(
        path=path, format=_format_name(styles, groups), targets=targets, module_ratios=ratios,
        ranks=sorted(ranks), default_strength=common,
        exceptions={m: r for m, r in ratios.items() if r != common}, layout=layout, skipped_keys=skipped,
        dtype=",".join(sorted({dtypes[g.down or g.diff] for g in groups.values()})),
        size_bytes=os.path.getsize(path), mtime=os.path.getmtime(path), factor_count=factor_count)


def read_lora(path, model_shapes=None):
    """The full description with factor tensors, ready for the patcher."""
    return plan_lora(path, model_shapes, with_tensors=True)


def inspect_lora(path):
    """The description without factor tensors: format, ranks, alpha/rank, targets."""
    return plan_lora(path, None, with_tensors=False)


def _format_name(styles, groups):
    style = next(s for s, _ in styles.most_common() if s != "diff") if set(styles) != {"diff"} else "diff"
    split = any(split_target(m)[1] is not None for m in groups)
    dense = style != "diff" and "diff" in styles
    return style + ("+split" if split else "") + ("+diff" if dense else "")


def _checked_layout(path, groups, unmatched, layouts):
    """The layout the file's module names follow, and {component: keys} of the keys it skips. Keys that match no
    target of the DiT, names from two layouts, or a fused target named whole and split, are errors: a file is
    applied whole or not at all."""
    skipped, unknown = {}, []
    for key in unmatched:
        component = other_component(key)
        if component:
            skipped.setdefault(component, []).append(key)
        else:
            unknown.append(key)
    if unknown:
        raise ModelFileError(path, f"{len(unknown)} keys match no LoRA target of the LongCat DiT in any layout "
                                   f"({', '.join(readable_key(k) for k in sorted(unknown)[:5])}): the file is not applied in part")
    layout = common_layout(layouts)
    if layout is None:
        examples = {}
        for module in sorted(groups):
            examples.setdefault("/".join(sorted(layouts[module])), groups[module].raw)
        raise ModelFileError(path, "mixes module names of different layouts (" + ", ".join(
            f"{raw} in {names} names" for names, raw in sorted(examples.items())) + "): one file holds one layout")
    for module in groups:
        fused = split_target(module)[0]
        if fused != module and fused in groups:
            raise ModelFileError(path, f"names {fused} both whole ({groups[fused].raw}) and split "
                                       f"({groups[module].raw}): its rows would be changed twice")
    return layout, {c: sorted(keys) for c, keys in skipped.items()}


def _check_group(path, module, g, shapes):
    if g.diff_b:
        raise ModelFileError(path, f"module {module}: bias deltas ({g.diff_b}) are not supported, so the file is not "
                                   "applied")
    if g.diff:
        if g.down or g.up or g.up_blocks:
            raise ModelFileError(path, f"module {module} has both a dense delta and LoRA matrices")
        if len(shapes[g.diff]) != 2:
            raise ModelFileError(path, f"module {module}: its delta {g.diff} is not 2-D ({list(shapes[g.diff])})")
        return
    if g.down is None:
        raise ModelFileError(path, f"module {module} has an up matrix but no down matrix")
    if g.up is None and not g.up_blocks:
        raise ModelFileError(path, f"module {module} has a down matrix but no up matrix")
    if g.up is not None and g.up_blocks:
        raise ModelFileError(path, f"module {module} has both lora_up and lora_up.blocks")
    if g.up_blocks and sorted(g.up_blocks) != list(range(len(g.up_blocks))):
        raise ModelFileError(path, f"module {module}: lora_up.blocks indices {sorted(g.up_blocks)} are not 0..n-1")
    down = shapes[g.down]
    ups = [shapes[k] for k in ([g.up] if g.up else [g.up_blocks[j] for j in sorted(g.up_blocks)])]
    if len(down) != 2 or any(len(u) != 2 for u in ups):
        raise ModelFileError(path, f"module {module}: LoRA matrices must be 2-D (down {down}, up {ups[0]})")
    if down[0] % len(ups):
        raise ModelFileError(path, f"module {module}: down has {down[0]} rows, not divisible by {len(ups)} up blocks")
    rank = down[0] // len(ups)
    if rank == 0:
        raise ModelFileError(path, f"module {module}: rank 0 (down is {list(down)}): it holds no LoRA factors")
    for u in ups:
        if u[1] != rank:
            raise ModelFileError(path, f"module {module}: rank mismatch, down has rank {rank} but up is {list(u)}")
    for key in (g.alpha_scale, g.alpha):
        if key and math.prod(shapes[key]) != 1:
            raise ModelFileError(path, f"module {module}: {key_of_module(module, key)} must hold one value, it holds "
                                       f"{math.prod(shapes[key])} (shape {list(shapes[key])})")


def _alpha_over_rank(path, module, g, rank, tensors, adapter_config):
    if g.alpha_scale:
        value = float(tensors[g.alpha_scale].float().reshape(-1)[0])
    elif g.alpha:
        value = float(tensors[g.alpha].float().reshape(-1)[0]) / rank
    elif adapter_config and "lora_alpha" in adapter_config:
        patterns = adapter_config.get("alpha_pattern") or {}
        alpha = patterns.get(g.raw, patterns.get(module, adapter_config["lora_alpha"]))
        value = _finite_number(alpha) / rank
    else:
        value = 1.0  # no alpha anywhere: alpha = rank
    if value != value or value in (float("inf"), float("-inf")):
        raise ModelFileError(path, f"module {module}: alpha is not finite")
    return value




def _factors(path, module, g, tensors, ratio):
    if g.diff:
        return [_dense_factor(path, module, tensors[g.diff], ratio)]
    down = tensors[g.down]
    up_keys = [g.up] if g.up else [g.up_blocks[j] for j in sorted(g.up_blocks)]
    for key in (g.down, *up_keys):
        t = tensors[key]
        if not t.is_floating_point():
            raise ModelFileError(path, f"module {module}: {key_of_module(module, key)} is not a float tensor")
        if not torch.isfinite(t).all():
            raise ModelFileError(path, f"module {module}: {key_of_module(module, key)} contains NaN or Inf values")
    rank = down.shape[0] // len(up_keys)
    fused, index, count = split_target(module)
    factors = []
    for j, key in enumerate(up_keys):
        up = tensors[key]
        rows, slices = None, 1
        if len(up_keys) > 1:
            rows, slices = (j * up.shape[0], (j + 1) * up.shape[0]), len(up_keys)
        elif index is not None:
            rows, slices = (index * up.shape[0], (index + 1) * up.shape[0]), count
        factors.append(LoraFactor(rows, down[j * rank:(j + 1) * rank], up, ratio, slices))
    return factors


def _dense_factor(path, module, delta, ratio):
    """A dense delta D as an exact factor: up @ down with an identity on the narrower side (one exact product)."""
    if not delta.is_floating_point() or not torch.isfinite(delta).all():
        raise ModelFileError(path, f"module {module}: its delta is not finite float data")
    out_rows, in_features = delta.shape
    if in_features <= out_rows:
        down, up = torch.eye(in_features, dtype=delta.dtype), delta
    else:
        down, up = delta, torch.eye(out_rows, dtype=delta.dtype)
    _, index, count = split_target(module)
    rows = None if index is None else (index * out_rows, (index + 1) * out_rows)
    return LoraFactor(rows, down, up, ratio, count if index is not None else 1)

