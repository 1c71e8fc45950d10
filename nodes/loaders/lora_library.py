"""LoRA files as the nodes and the info route see them: names resolved only inside ComfyUI's `loras` folders, and
descriptions cached by path + mtime + size, so re-running a workflow re-reads nothing."""
import os

import folder_paths

from ..core.layouts.lora_layouts import layout_title
from ..core.lora_files import inspect_lora, read_lora
from ..core.lru_cache import LruCache

CACHE_SIZE = 4  # full descriptions hold the factors in host memory (the two official files: about 5.7 GB fp32)
_read_cache = LruCache(CACHE_SIZE)
_inspect_cache = {}


class LoraNameError(ValueError):
    """A name that does not denote a file inside the loras folders (traversal, absolute, outside link, unknown)."""


def resolve_lora(name):
    """The real path of `name`, a relative path inside one of the loras folders; LoraNameError otherwise."""
    if not name or not isinstance(name, str):
        raise LoraNameError("no LoRA name given")
    if os.path.isabs(name) or name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/"):
        raise LoraNameError(f"'{name}': only names inside the loras folders are allowed")
    if name not in folder_paths.get_filename_list("loras"):
        raise LoraNameError(f"'{name}': no such file in the loras folders")
    path = folder_paths.get_full_path("loras", name)
    real = os.path.realpath(path)
    roots = [os.path.realpath(r) for r in folder_paths.get_folder_paths("loras")]
    if not any(os.path.commonpath([real, r]) == r for r in roots):
        raise LoraNameError(f"'{name}': links to a file outside the loras folders")
    return real


def _file_key(path):
    stat = os.stat(path)
    return path, stat.st_mtime_ns, stat.st_size


def cached_inspect(path):
    key = _file_key(path)
    if key not in _inspect_cache:
        _inspect_cache[key] = inspect_lora(path)
    return _inspect_cache[key]


def cached_read(path, model_shapes):
    """The full description validated against a model's {weight key: shape}."""
    key = (_file_key(path), hash(frozenset(model_shapes.items())))
    return _read_cache.get_or_build(key, lambda: read_lora(path, model_shapes))


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
