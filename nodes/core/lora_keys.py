"""How the supported LoRA formats name their tensors (lora_files lists the formats): the role of each key, the
official files' encoded module paths, any layout's module path as a native module name, and split q/k/v or k/v
targets on the fused linears. Grouping a file's keys by module needs only the header.
"""
import re
from collections import Counter
from dataclasses import dataclass, field

from .cooperative import pause
from .layouts.lora_layouts import layouts_naming, strip_prefix
from .layouts.module_names import BLOCK_LINEARS, GLOBAL_LINEARS

OFFICIAL_PREFIX = "lora___lorahyphen___"
OFFICIAL_DOT = "___lorahyphen___"

# Split LoRAs onto fused weights: alias -> (fused module, slice index, number of slices).
SPLIT_ALIASES = {
    "attn.q": ("attn.qkv", 0, 3), "attn.k": ("attn.qkv", 1, 3), "attn.v": ("attn.qkv", 2, 3),
    "attn.to_q": ("attn.qkv", 0, 3), "attn.to_k": ("attn.qkv", 1, 3), "attn.to_v": ("attn.qkv", 2, 3),
    "attn.q_proj": ("attn.qkv", 0, 3), "attn.k_proj": ("attn.qkv", 1, 3), "attn.v_proj": ("attn.qkv", 2, 3),
    "cross_attn.k_linear": ("cross_attn.kv_linear", 0, 2), "cross_attn.v_linear": ("cross_attn.kv_linear", 1, 2),
    "cross_attn.k": ("cross_attn.kv_linear", 0, 2), "cross_attn.v": ("cross_attn.kv_linear", 1, 2),
}
KEY_ROLES = (
    (re.compile(r"^(?P<mod>.+)\.lora_down\.weight$"), "down"),
    (re.compile(r"^(?P<mod>.+)\.lora_up\.weight$"), "up"),
    (re.compile(r"^(?P<mod>.+)\.lora_up\.blocks\.(?P<j>\d+)\.weight$"), "up_block"),
    (re.compile(r"^(?P<mod>.+)\.lora_A(?:\.default)?\.weight$"), "down"),
    (re.compile(r"^(?P<mod>.+)\.lora_B(?:\.default)?\.weight$"), "up"),
    (re.compile(r"^(?P<mod>.+)\.lora_A$"), "down"),  # FastVideo's converter writes no `.weight`
    (re.compile(r"^(?P<mod>.+)\.lora_B$"), "up"),
    (re.compile(r"^(?P<mod>.+)\.alpha_scale$"), "alpha_scale"),
    (re.compile(r"^(?P<mod>.+)\.(?:lora_)?alpha$"), "alpha"),
    (re.compile(r"^(?P<mod>.+)\.diff$"), "diff"),
    (re.compile(r"^(?P<mod>.+)\.diff_b$"), "diff_b"),
)
_BLOCK_RE = re.compile(r"^blocks[._](\d+)[._](.+)$")


@dataclass
class _Group:
    """The keys of one module of the file, before tensors are read."""
    raw: str
    down: str = None
    up: str = None
    up_blocks: dict = field(default_factory=dict)
    alpha_scale: str = None
    alpha: str = None
    diff: str = None  # a dense delta instead of up @ down
    diff_b: str = None


def official_stem(module):
    """The key stem the official LongCat files use for a native module name (resolve_module reverses it)."""
    return OFFICIAL_PREFIX + module.replace(".", OFFICIAL_DOT)


def readable_key(key):
    """An official key as the module path it encodes, the raw key in parentheses
    (`blocks.7.attn.qkv.lora_down.weight (lora___lorahyphen___blocks...)`); other keys as they are."""
    if not key.startswith(OFFICIAL_PREFIX):
        return key
    return f"{key[len(OFFICIAL_PREFIX):].replace(OFFICIAL_DOT, '.')} ({key})"


def key_of_module(module, key):
    """A key in a message that already names its module: the official key's part after the module, raw key in
    parentheses (`lora_up.weight (lora___lorahyphen___...)`); other keys as they are."""
    readable = readable_key(key)
    if readable != key and readable.startswith(module + "."):
        return readable[len(module) + 1:]
    return readable


def resolve_module(raw):
    """(native linear module name or split alias, {layouts that name it}) for a module path; (None, set())."""
    if raw.startswith(OFFICIAL_PREFIX):
        name = raw[len(OFFICIAL_PREFIX):].replace(OFFICIAL_DOT, ".")
    else:
        name = strip_prefix(raw)[0]
    m = _BLOCK_RE.match(name)
    if m:
        suffix = _undotted(m.group(2), BLOCK_LINEARS + tuple(SPLIT_ALIASES))
        native = f"blocks.{m.group(1)}.{suffix}" if suffix else None
    else:
        native = _undotted(name, GLOBAL_LINEARS)
    elsewhere = layouts_naming(name, undotted=True)
    if native is not None:
        return native, {"native", *(layout for layout, n in elsewhere.items() if n == native)}
    if elsewhere:
        return next(iter(elsewhere.values())), set(elsewhere)
    return None, set()


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


def group_keys(names):
    groups, unmatched, styles, layouts = {}, [], Counter(), {}
    for key in names:
        pause()
        for pattern, role in KEY_ROLES:
            m = pattern.match(key)
            if m:
                break
        else:
            unmatched.append(key)
            continue
        raw = m.group("mod")
        module, named_in = resolve_module(raw)
        if module is None:
            unmatched.append(key)
            continue
        layouts[module] = named_in
        g = groups.setdefault(module, _Group(raw))
        if g.raw != raw:  # two spellings of one module in one file
            raise ValueError(f"module {module} appears under two key prefixes ({g.raw}, {raw})")
        if role == "up_block":
            g.up_blocks[int(m.group("j"))] = key
        else:
            setattr(g, role, key)
        styles[_key_style(key)] += 1
    return groups, unmatched, styles, layouts


def _key_style(key):
    if key.startswith(OFFICIAL_PREFIX):
        return "longcat"
    if key.endswith((".lora_A", ".lora_B", ".lora_alpha")):
        return "fastvideo"
    if ".lora_A" in key or ".lora_B" in key:
        return "peft"
    if key.endswith((".diff", ".diff_b")):
        return "diff"
    return "kohya"
