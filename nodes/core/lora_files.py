"""Every supported LoRA file format normalised into one description of the LongCat DiT.

Supported: the official LongCat format (`lora___lorahyphen___` keys, `lora_up.blocks.j`, 0-dim `alpha_scale`),
kohya (`lora_down`/`lora_up`/`alpha`), PEFT / diffusers (`lora_A`/`lora_B`, `.alpha` or `lora_alpha` from an
`adapter_config.json` beside the file), and files that split fused targets (q/k/v onto `attn.qkv`, k/v onto
`cross_attn.kv_linear`). A description lists, per native module name, factors (row slice, down, up, alpha/rank).
The headers are parsed first (`plan_lora`), so `inspect_lora` answers without reading the big matrices.
"""
import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field

import torch

from .confined_paths import resolve_inside
from .safetensors_file import ModelFileError, load_tensors, read_safetensors_header, PICKLE_SUFFIXES

OFFICIAL_PREFIX = "lora___lorahyphen___"
OFFICIAL_DOT = "___lorahyphen___"
# Bounds on the work one LoRA file can cause: the official files hold 1,152 and 1,543 tensors (about 300 KB of header),
# a LoRA on every linear of all 48 blocks with split q/k/v about 1,750. Parsing JSON holds Python's interpreter lock,
# so the header size bounds how long any other thread (the server's event loop) can wait on it.
MAX_LORA_TENSORS = 10_000
MAX_LORA_HEADER_BYTES = 4 * 1024 * 1024

# Linear modules of one LongCat block and of the whole DiT that a LoRA may target.
BLOCK_LINEARS = ("attn.qkv", "attn.proj", "cross_attn.q_linear", "cross_attn.kv_linear", "cross_attn.proj",
                 "ffn.w1", "ffn.w2", "ffn.w3", "adaLN_modulation.1")
GLOBAL_LINEARS = ("final_layer.adaLN_modulation.1", "final_layer.linear", "t_embedder.mlp.0", "t_embedder.mlp.2",
                  "y_embedder.y_proj.0", "y_embedder.y_proj.2")
# Split LoRAs onto fused weights: alias -> (fused module, slice index, number of slices).
SPLIT_ALIASES = {
    "attn.q": ("attn.qkv", 0, 3), "attn.k": ("attn.qkv", 1, 3), "attn.v": ("attn.qkv", 2, 3),
    "attn.to_q": ("attn.qkv", 0, 3), "attn.to_k": ("attn.qkv", 1, 3), "attn.to_v": ("attn.qkv", 2, 3),
    "attn.q_proj": ("attn.qkv", 0, 3), "attn.k_proj": ("attn.qkv", 1, 3), "attn.v_proj": ("attn.qkv", 2, 3),
    "cross_attn.k_linear": ("cross_attn.kv_linear", 0, 2), "cross_attn.v_linear": ("cross_attn.kv_linear", 1, 2),
    "cross_attn.k": ("cross_attn.kv_linear", 0, 2), "cross_attn.v": ("cross_attn.kv_linear", 1, 2),
}
STRIP_PREFIXES = ("base_model.model.", "model.diffusion_model.", "diffusion_model.", "transformer.", "model.",
                  "dit.")
KEY_ROLES = (
    (re.compile(r"^(?P<mod>.+)\.lora_down\.weight$"), "down"),
    (re.compile(r"^(?P<mod>.+)\.lora_up\.weight$"), "up"),
    (re.compile(r"^(?P<mod>.+)\.lora_up\.blocks\.(?P<j>\d+)\.weight$"), "up_block"),
    (re.compile(r"^(?P<mod>.+)\.lora_A(?:\.default)?\.weight$"), "down"),
    (re.compile(r"^(?P<mod>.+)\.lora_B(?:\.default)?\.weight$"), "up"),
    (re.compile(r"^(?P<mod>.+)\.alpha_scale$"), "alpha_scale"),
    (re.compile(r"^(?P<mod>.+)\.alpha$"), "alpha"),
)
_BLOCK_RE = re.compile(r"^blocks[._](\d+)[._](.+)$")


@dataclass(frozen=True)
class LoraFactor:
    """One low-rank term: weight rows [rows[0], rows[1]) (None = all rows) get alpha_over_rank * up @ down."""
    rows: tuple | None
    down: torch.Tensor  # [r, in]
    up: torch.Tensor  # [rows, r]
    alpha_over_rank: float
    slices: int = 1  # how many equal row slices the fused target weight has (qkv: 3)


@dataclass
class LoraDescription:
    """A LoRA file normalised: native module name -> factors, plus what a user needs to know about the file."""
    path: str
    format: str
    targets: dict  # module name -> list[LoraFactor]; empty in an inspection-only plan
    module_ratios: dict  # module name -> alpha/rank
    ranks: list
    default_strength: float  # the common alpha/rank
    exceptions: dict  # modules whose alpha/rank differs from the common one
    unmatched_keys: list
    skipped_modules: list = field(default_factory=list)  # known modules the model does not have
    dtype: str = ""
    size_bytes: int = 0
    mtime: float = 0.0
    factor_count: int = 0

    @property
    def name(self):
        return os.path.basename(self.path)

    def scale_for(self, module, strength):
        """scale_m = strength * (alpha_m / rank_m) / common: the slider is the real scale for common modules."""
        return strength * self.module_ratios[module] / self.default_strength


@dataclass
class _Group:
    """The keys of one module of the file, before tensors are read."""
    raw: str
    down: str = None
    up: str = None
    up_blocks: dict = field(default_factory=dict)
    alpha_scale: str = None
    alpha: str = None


def official_stem(module):
    """The key stem the official LongCat files use for a native module name (native_module_name reverses it)."""
    return OFFICIAL_PREFIX + module.replace(".", OFFICIAL_DOT)


def readable_key(key):
    """An official key as the module path it encodes, the raw key in parentheses
    (`blocks.7.attn.qkv.lora_down.weight (lora___lorahyphen___blocks...)`); other keys as they are."""
    if not key.startswith(OFFICIAL_PREFIX):
        return key
    return f"{key[len(OFFICIAL_PREFIX):].replace(OFFICIAL_DOT, '.')} ({key})"


def _key_of_module(module, key):
    """A key in a message that already names its module: the official key's part after the module, raw key in
    parentheses (`lora_up.weight (lora___lorahyphen___...)`); other keys as they are."""
    readable = readable_key(key)
    if readable != key and readable.startswith(module + "."):
        return readable[len(module) + 1:]
    return readable


def native_module_name(raw):
    """Map a module path of any supported key style to a native LongCat module name, or None."""
    if raw.startswith(OFFICIAL_PREFIX):
        name = raw[len(OFFICIAL_PREFIX):].replace(OFFICIAL_DOT, ".")
    elif raw.startswith("lora_unet_"):
        name = raw[len("lora_unet_"):]
    else:
        name = raw
        for prefix in STRIP_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
    m = _BLOCK_RE.match(name)
    if m:
        suffix = _undotted(m.group(2), BLOCK_LINEARS + tuple(SPLIT_ALIASES))
        return f"blocks.{m.group(1)}.{suffix}" if suffix else None
    return _undotted(name, GLOBAL_LINEARS)


def _undotted(name, known):
    for candidate in known:
        if name == candidate or name == candidate.replace(".", "_"):
            return candidate
    return None


def split_target(module):
    """`blocks.3.attn.k` -> ("blocks.3.attn.qkv", 1, 3); plain targets -> (module, None, 1)."""
    m = _BLOCK_RE.match(module)
    if m and m.group(2) in SPLIT_ALIASES:
        fused, index, count = SPLIT_ALIASES[m.group(2)]
        return f"blocks.{m.group(1)}.{fused}", index, count
    return module, None, 1


def _group_keys(names):
    groups, unmatched, styles = {}, [], Counter()
    for key in names:
        for pattern, role in KEY_ROLES:
            m = pattern.match(key)
            if m:
                break
        else:
            unmatched.append(key)
            continue
        raw = m.group("mod")
        module = native_module_name(raw)
        if module is None:
            unmatched.append(key)
            continue
        g = groups.setdefault(module, _Group(raw))
        if g.raw != raw:  # two spellings of one module in one file
            raise ValueError(f"module {module} appears under two key prefixes ({g.raw}, {raw})")
        if role == "up_block":
            g.up_blocks[int(m.group("j"))] = key
        else:
            setattr(g, role, key)
        styles[_key_style(key)] += 1
    return groups, unmatched, styles


def _key_style(key):
    if key.startswith(OFFICIAL_PREFIX):
        return "longcat"
    if ".lora_A" in key or ".lora_B" in key:
        return "peft"
    return "kohya"


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
        groups, unmatched, styles = _group_keys(shapes)
    except ValueError as e:
        raise ModelFileError(path, str(e)) from None
    if not groups:
        raise ModelFileError(path, f"no LongCat-Video LoRA keys found (is it a LoRA for another model? "
                                   f"first keys: {', '.join(readable_key(k) for k in sorted(shapes)[:3])})")
    skipped = []
    if model_shapes is not None:
        skipped = sorted(m for m in groups if split_target(m)[0] + ".weight" not in model_shapes)
        for m in skipped:
            del groups[m]
        if not groups:
            raise ModelFileError(path, f"none of its {len(skipped)} target modules exist in this model "
                                       f"(e.g. {skipped[0]}): it is a LoRA for another model")
    scalar_keys = [k for g in groups.values() for k in (g.alpha_scale, g.alpha) if k]
    tensors = preloaded if preloaded is not None else load_tensors(path, scalar_keys, header_checked=True)
    adapter_config = _read_adapter_config(path) if styles.get("peft") else None

    ratios, ranks, targets, factor_count = {}, set(), {}, 0
    for module, g in sorted(groups.items()):
        _check_group(path, module, g, shapes)
        pieces = len(g.up_blocks) or 1
        rank = shapes[g.down][0] // pieces
        ranks.add(rank)
        ratios[module] = _alpha_over_rank(path, module, g, rank, tensors, adapter_config)
        factor_count += pieces
    if with_tensors:
        needed = [k for g in groups.values() for k in (g.down, g.up, *g.up_blocks.values()) if k]
        tensors = preloaded if preloaded is not None else load_tensors(path, needed, header_checked=True)
        for module, g in groups.items():
            targets.setdefault(split_target(module)[0], []).extend(_factors(path, module, g, tensors, ratios[module]))
        if model_shapes is not None:
            check_against_model(path, targets, model_shapes)

    common = _common_ratio(path, ratios)
    return LoraDescription(
        path=path, format=_format_name(styles, groups), targets=targets, module_ratios=ratios,
        ranks=sorted(ranks), default_strength=common,
        exceptions={m: r for m, r in ratios.items() if r != common}, unmatched_keys=sorted(unmatched),
        skipped_modules=skipped, dtype=",".join(sorted({dtypes[g.down] for g in groups.values()})),
        size_bytes=os.path.getsize(path), mtime=os.path.getmtime(path), factor_count=factor_count)


def read_lora(path, model_shapes=None):
    """The full description with factor tensors, ready for the patcher."""
    return plan_lora(path, model_shapes, with_tensors=True)


def inspect_lora(path):
    """The description without factor tensors: format, ranks, alpha/rank, targets."""
    return plan_lora(path, None, with_tensors=False)


def _format_name(styles, groups):
    style = styles.most_common(1)[0][0]
    split = any(split_target(m)[1] is not None for m in groups)
    return f"{style}+split" if split else style


def _check_group(path, module, g, shapes):
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
            raise ModelFileError(path, f"module {module}: {_key_of_module(module, key)} must hold one value, it holds "
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


def _common_ratio(path, ratios):
    """The most frequent alpha/rank (ties: the larger count of modules, then the smaller value) is the default."""
    counts = Counter(ratios.values())
    common = max(counts, key=lambda r: (counts[r], -abs(r)))
    if common == 0:
        raise ModelFileError(path, "alpha is zero for most modules: the LoRA would do nothing")
    return common


def _factors(path, module, g, tensors, ratio):
    down = tensors[g.down]
    up_keys = [g.up] if g.up else [g.up_blocks[j] for j in sorted(g.up_blocks)]
    for key in (g.down, *up_keys):
        t = tensors[key]
        if not t.is_floating_point():
            raise ModelFileError(path, f"module {module}: {_key_of_module(module, key)} is not a float tensor")
        if not torch.isfinite(t).all():
            raise ModelFileError(path, f"module {module}: {_key_of_module(module, key)} contains NaN or Inf values")
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


def check_against_model(path, targets, model_shapes):
    """Every factor must fit its target weight: same input width, rows inside the output."""
    for module, factors in targets.items():
        shape = model_shapes.get(module + ".weight")
        if shape is None:
            raise ModelFileError(path, f"target {module} does not exist in this model")
        if len(shape) != 2:
            raise ModelFileError(path, f"target {module} is not a linear layer (weight shape {list(shape)})")
        out_features, in_features = shape
        for f in factors:
            if f.down.shape[1] != in_features:
                raise ModelFileError(path, f"module {module}: LoRA input width {f.down.shape[1]} does not match the "
                                           f"model's {in_features} (a LoRA for another model size?)")
            if f.up.shape[0] * f.slices != out_features:
                raise ModelFileError(path, f"module {module}: LoRA output rows {f.up.shape[0]} do not fit the "
                                           f"model's {out_features} outputs")
