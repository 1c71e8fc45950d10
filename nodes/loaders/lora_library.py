"""LoRA files as the nodes and the info route see them: names resolved only inside ComfyUI's `loras` folders, and
descriptions cached per file, replaced when the file changes (mtime or size), so re-running a workflow re-reads
nothing and touching a file never grows a cache."""
import os

from ..core.layouts.lora_layouts import layout_title
from ..core.lora_files import inspect_lora, read_lora
from ..core.lru_cache import LruCache
from ..core.safetensors_file import ModelFileError
from .model_names import resolve_model_file

CACHE_SIZE = 4  # full descriptions hold the factors in host memory (the two official files: about 5.7 GB fp32)
INSPECT_CACHE_SIZE = 64  # header-only descriptions: kilobytes each (a foreign file's unmatched-key list more)
_read_cache = LruCache(CACHE_SIZE)
_inspect_cache = LruCache(INSPECT_CACHE_SIZE)  # used by the route's worker threads


def resolve_lora(name):
    """The real path of `name`, a relative path inside one of the loras folders; ModelNameError otherwise."""
    return resolve_model_file("loras", name, "LoRA")


def _file_version(path):
    try:
        stat = os.stat(path)
    except OSError as e:
        raise ModelFileError(path, f"cannot read the file ({e.strerror})") from None
    return stat.st_mtime_ns, stat.st_size


def cached_inspect(path):
    return _inspect_cache.get_or_build(path, lambda: inspect_lora(path), version=_file_version(path))


def cached_read(path, model_shapes):
    """The full description validated against a model's {weight key: shape}."""
    key = (path, hash(frozenset(model_shapes.items())))
    return _read_cache.get_or_build(key, lambda: read_lora(path, model_shapes), version=_file_version(path))


def lora_info(name):
    """What the UI and scripts need to know about a file; the route's JSON."""
    path = resolve_lora(name)
    info = cached_inspect(path)
    ratios = sorted(set(info.module_ratios.values()))
    return {
        "name": name,
        "format": info.format,
        "layout": info.layout,
        "layout_title": layout_title(info.layout),
        "rank": info.ranks[0] if len(info.ranks) == 1 else info.ranks,
        "ranks": info.ranks,
        "alpha_over_rank": ratios[0] if len(ratios) == 1 else info.module_ratios,
        "default_strength": info.default_strength,
        "exceptions": info.exceptions,
        "targets": len(info.module_ratios),
        "factors": info.factor_count,
        "skipped_keys": {component: len(keys) for component, keys in info.skipped_keys.items()},
        "skipped_examples": [k for keys in info.skipped_keys.values() for k in keys][:5],
        "dtype": info.dtype,
        "size_bytes": info.size_bytes,
    }
