"""Reading a LongCat-Video DiT checkpoint without ComfyUI.

A checkpoint is a single `.safetensors` file or a sharded folder (the reference `dit/`, or a diffusers
`transformer/`: shards plus `diffusion_pytorch_model.safetensors.index.json`), in the native layout or one that
other projects write (layouts/: WanVideoWrapper / Kijai, FastVideo; quantized or not). Everything is validated
from the headers before a tensor is read: the files, the index, and the key layout against the model
`dit_config_from_state_dict` describes. Tensors are then streamed shard by shard, one at a time, mapped onto the
native parameters and converted to the requested dtype as they come, so a 54 GB fp32 checkpoint never sits in
memory twice. Nothing is ever unpickled.
"""
import json
import math
import os
from dataclasses import dataclass

import torch
from safetensors import safe_open

from .confined_paths import resolve_inside
from .layouts.dit_layouts import CheckpointPlan, check_transformer_config, plan_checkpoint, \
    transformer_config_depth
from .safetensors_file import PICKLE_SUFFIXES, TORCH_DTYPES, ModelFileError, read_safetensors_header

INDEX_NAME = "diffusion_pytorch_model.safetensors.index.json"
# Index files of sharded folders: diffusers' (the reference dit/, avatar_single/, avatar_multi/, base_model/) and
# the reference's INT8 checkpoint (base_model_int8/).
INDEX_NAMES = (INDEX_NAME, "quantized_model.safetensors.index.json")
CONFIG_NAME = "config.json"  # a diffusers transformer/ folder's description, checked against the weights
# Whole-model prefixes that other tools write (ComfyUI's model save uses the first).
KEY_PREFIXES = ("model.diffusion_model.", "diffusion_model.")
LISTED_KEYS = 5


class CheckpointError(ValueError):
    """A DiT checkpoint that cannot be used; the message names the file or folder and the problem."""

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"LongCat DiT checkpoint {self.path}: {problem}")


@dataclass
class DitCheckpoint:
    """A validated checkpoint. Iterating yields (model key, tensor) shard by shard, in on-disk order (a fused
    weight as soon as its last split piece has been read)."""
    path: str
    shards: list  # [(file path, [stored key, ...] in data order)]
    plan: CheckpointPlan  # the detected layout and how stored keys become model keys
    prefix: str = ""  # stripped from every stored key
    dtype: torch.dtype = None  # convert every tensor to this dtype; None keeps the stored dtype
    progress: object = None  # callback(done, total), once per tensor
    stored_dtype: torch.dtype = None  # the on-disk dtype of the largest tensor (what "default" dtype choices read)

    @property
    def shapes(self):
        """Model key -> shape of the plain parameters (weights and biases)."""
        return self.plan.shapes

    @property
    def config(self):
        """LongCatDiT constructor arguments (+ "split_fused" for fused linears stored as quantized pieces)."""
        return self.plan.config

    def __len__(self):
        return self.plan.count

    def __iter__(self):
        done, total = 0, len(self)
        for key, tensor in self.plan.stream(self._stored_tensors()):
            if self.dtype is not None:
                tensor = tensor.to(self.dtype)
            done += 1
            if self.progress is not None:
                self.progress(done, total)
            yield key, tensor

    def _stored_tensors(self):
        for file, keys in self.shards:
            try:
                handle = safe_open(file, framework="pt", device="cpu")
            except Exception as e:  # the safetensors library reports unreadable files with its own types
                raise CheckpointError(file, f"cannot open ({e})") from e
            with handle:
                for key in keys:
                    try:
                        tensor = handle.get_tensor(key)
                    except Exception as e:
                        raise CheckpointError(file, f"cannot read tensor '{key}' ({e})") from e
                    yield key[len(self.prefix):], tensor


def open_dit_checkpoint(path, dtype=None, progress=None):
    """Validate a DiT checkpoint (a `.safetensors` file or a sharded `dit/` folder) and return a DitCheckpoint.

    Raises CheckpointError for a missing path, a file that is not safetensors or is corrupt or truncated, an
    index naming absent shards, keys missing from or extra to the LongCat layout, or a model that is not a
    LongCat DiT at all.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(path, "not found")
    if path.lower().endswith(PICKLE_SUFFIXES):
        raise CheckpointError(path, "pickled checkpoints are never loaded; use a .safetensors file")
    files = _shard_files(path)
    shards, shapes, dtypes, metadata, largest = [], {}, {}, {}, (0, None)
    for file, index_keys in files:
        header, file_metadata = _header(file)
        metadata.update(file_metadata)
        largest = max([largest, *((math.prod(v["shape"]), v["dtype"]) for v in header.values())])
        absent = [k for k in index_keys if k not in header]
        if absent:
            raise CheckpointError(file, f"the index lists {_names(absent)} in this shard but it does not hold them")
        twice = [k for k in header if k in shapes]
        if twice:
            raise CheckpointError(file, f"{_names(twice)} also stored in another shard")
        keys = sorted(header, key=lambda k: header[k]["data_offsets"][0])
        shapes.update((k, tuple(header[k]["shape"])) for k in keys)
        dtypes.update((k, header[k]["dtype"]) for k in keys)
        shards.append((file, keys))

    prefix = next((p for p in KEY_PREFIXES if shapes and all(k.startswith(p) for k in shapes)), "")
    files_of = {key[len(prefix):]: file for file, keys in shards for key in keys}

    def read_tensor(key):
        return _read_one(files_of[key], prefix + key)
    folder_config = _folder_config(path)
    try:
        depth = transformer_config_depth(folder_config) if folder_config is not None else None
        plan = plan_checkpoint({k[len(prefix):]: s for k, s in shapes.items()},
                               {k[len(prefix):]: d for k, d in dtypes.items()}, metadata, read_tensor, prefix, depth)
        if folder_config is not None:
            check_transformer_config(folder_config, plan)
    except ValueError as e:
        raise CheckpointError(path, str(e)) from None
    # The reference computes its INT8 checkpoint in bf16: that is what "default" picks from, not int8.
    stored_dtype = torch.bfloat16 if plan.dequantized else TORCH_DTYPES.get(largest[1])
    return DitCheckpoint(path, shards, plan, prefix, dtype, progress, stored_dtype)


def fill_parameters(model, checkpoint, check_interrupt=None):
    """Stream the checkpoint's tensors into the model's parameters, one at a time; `check_interrupt` runs after each
    (and may raise to stop).

    Layers that create their parameters only when loaded (ComfyUI's Linear under DynamicVRAM holds `weight = None`
    until then) get a new parameter holding the tensor, on the device of the model's other parameters."""
    params = dict(model.named_parameters())
    device = next((p.device for p in params.values()), torch.device("cpu"))
    with torch.no_grad():
        for key, tensor in checkpoint:
            if key in params:
                params[key].copy_(tensor)
            else:
                module_name, _, name = key.rpartition(".")
                module = model.get_submodule(module_name)
                if getattr(module, name, "absent") is not None:
                    raise KeyError(f"{key} is neither a parameter nor a lazily created one of the model")
                setattr(module, name, torch.nn.Parameter(tensor.to(device, copy=True), requires_grad=False))
            if check_interrupt is not None:
                check_interrupt()
    return model


def _shard_files(path):
    """[(file, keys the index assigns to it)] for a file, a folder, or an index file."""
    if os.path.isdir(path):
        for name in INDEX_NAMES:
            index = os.path.join(path, name)
            if os.path.isfile(index):
                return _index_shards(_inside_folder(path, index))
        found = sorted(f for f in os.listdir(path) if f.endswith(".safetensors"))
        if len(found) != 1:
            problem = "holds no .safetensors file" if not found else f"holds {len(found)} .safetensors files"
            raise CheckpointError(path, f"{problem} and no {INDEX_NAME}")
        return [(_inside_folder(path, os.path.join(path, found[0])), [])]
    if path.endswith(".index.json"):
        return _index_shards(path)
    return [(path, [])]


def _index_shards(index):
    try:
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        if not isinstance(weight_map, dict):
            raise TypeError
    except (OSError, UnicodeDecodeError, ValueError, RecursionError, KeyError, TypeError):
        raise CheckpointError(index, "not a valid safetensors index (JSON with a 'weight_map' object)") from None
    if not weight_map:
        raise CheckpointError(index, "its weight_map is empty: the index names no tensors and no shard files")
    folder = os.path.dirname(index)
    by_file = {}
    for key, file in weight_map.items():
        by_file.setdefault(_shard_path(index, folder, key, file), []).append(key)
    absent = [os.path.basename(f) for f in by_file if not os.path.isfile(f)]
    if absent:
        raise CheckpointError(index, f"names shard files that are missing: {', '.join(absent)}")
    return list(by_file.items())


def _shard_path(index, folder, key, entry):
    """A weight_map entry is a file name relative to the index's folder that stays inside it after symlinks."""
    if not isinstance(entry, str) or not entry or "\0" in entry:
        raise CheckpointError(index, f"weight_map entry '{key:.200}' names {entry!r:.80}, not a shard file name")
    path = os.path.join(folder, entry)
    if resolve_inside(path, [folder]) is None:
        raise CheckpointError(index, f"weight_map entry '{key:.200}' names '{entry:.200}', which lies outside the "
                                     "folder of the index; shards must be files inside that folder")
    return path


def _inside_folder(folder, file):
    """A file found in a checkpoint folder, refused when a link leads it outside that folder."""
    if resolve_inside(file, [folder]) is None:
        raise CheckpointError(file, "links to a file outside the checkpoint folder")
    return file


def _folder_config(path):
    """The config.json of a checkpoint folder (or of an index file's folder), when there is one."""
    folder = path if os.path.isdir(path) else os.path.dirname(path) if path.endswith(".index.json") else None
    config = os.path.join(folder, CONFIG_NAME) if folder else None
    if config is None or not os.path.isfile(config):
        return None
    _inside_folder(folder, config)
    try:
        with open(config, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise TypeError
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError):
        raise CheckpointError(config, "not a readable JSON object") from None
    return data


def _header(file):
    try:
        return read_safetensors_header(file)
    except ModelFileError as e:
        raise CheckpointError(file, e.problem) from None


def _read_one(file, key):
    try:
        with safe_open(file, framework="pt", device="cpu") as handle:
            return handle.get_tensor(key)
    except Exception as e:  # the safetensors library reports unreadable files with its own types
        raise CheckpointError(file, f"cannot read tensor '{key}' ({e})") from e


def _names(keys):
    shown = ", ".join(keys[:LISTED_KEYS])
    return shown + (f" and {len(keys) - LISTED_KEYS} more" if len(keys) > LISTED_KEYS else "")
