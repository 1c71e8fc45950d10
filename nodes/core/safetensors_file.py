"""Checked access to model files: a safetensors header is validated before any tensor is read, so a corrupt,
truncated or foreign file becomes one clear error naming the file instead of a crash deep inside a loader.
Pickled checkpoints are never unpickled: `.pt`/`.ckpt` go through `torch.load(weights_only=True)` only."""
import json
import math
import os
import struct

import torch
from safetensors import safe_open

from .cooperative import pause

DTYPE_SIZES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,  # E8M0: mxfp8 block scales
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
}
TORCH_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2}
MAX_HEADER_BYTES = 100 * 1024 * 1024
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")


class ModelFileError(ValueError):
    """A model file that cannot be used; the message names the file and the problem."""

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{os.path.basename(self.path)}: {problem}")


def read_safetensors_header(path, max_header_bytes=MAX_HEADER_BYTES, max_tensors=None, key_label=None):
    """Return {name: {"dtype", "shape", "data_offsets"}} and the metadata dict, after checking the type of every
    header value and that every tensor lies inside the file with a byte length that matches its shape and dtype.

    `max_header_bytes` and `max_tensors` bound the work a file can cause; `key_label(name)` is how a tensor name is
    shown in messages (default: quoted)."""
    path = str(path)
    if not os.path.isfile(path):
        raise ModelFileError(path, "file not found")
    size = os.path.getsize(path)
    if size == 0:
        raise ModelFileError(path, "the file is empty")
    if size < 8:
        raise ModelFileError(path, f"not a safetensors file ({size} bytes, too short for a header)")
    try:
        with open(path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            if header_len == 0 or header_len > MAX_HEADER_BYTES:
                raise ModelFileError(path, "not a safetensors file (implausible header length)")
            if header_len > max_header_bytes:
                raise ModelFileError(path, f"its header is {header_len} bytes, more than the {max_header_bytes} "
                                           "allowed for this kind of file")
            if 8 + header_len > size:
                raise ModelFileError(path, "truncated: the file ends inside its safetensors header")
            raw = f.read(header_len)
    except OSError as e:
        raise ModelFileError(path, f"cannot read the file ({e.strerror or e})") from None
    header = _parse_header_json(path, raw)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ModelFileError(path, "corrupt header: __metadata__ must map names to strings")
    if max_tensors is not None and len(header) > max_tensors:
        raise ModelFileError(path, f"its header lists {len(header)} tensors, more than the {max_tensors} allowed "
                                   "for this kind of file")
    label = key_label or (lambda name: f"'{name}'")
    data_size = size - 8 - header_len
    for name, info in header.items():
        _check_entry(path, label(name), info, data_size)
        pause()
    return header, metadata


def _parse_header_json(path, raw):
    try:
        header = json.loads(raw)
    except RecursionError:
        raise ModelFileError(path, "not a safetensors file (its header is nested too deeply)") from None
    except (UnicodeDecodeError, ValueError):  # JSONDecodeError, and numbers past Python's int-digit limit
        raise ModelFileError(path, "not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise ModelFileError(path, "not a safetensors file (its header is not a JSON object)")
    return header


def _is_count(value):
    return type(value) is int and value >= 0  # not bool, not float


def _check_entry(path, tensor, info, data_size):
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
        raise ModelFileError(path, f"corrupt header entry for tensor {tensor}")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str):
        raise ModelFileError(path, f"corrupt header: tensor {tensor} has a dtype that is not a name ({dtype!r:.40})")
    if dtype not in DTYPE_SIZES:
        raise ModelFileError(path, f"tensor {tensor} has unsupported dtype {dtype:.40}")
    if not isinstance(shape, list) or not all(_is_count(n) for n in shape):
        raise ModelFileError(path, f"corrupt header: tensor {tensor} has a shape that is not a list of "
                                   f"non-negative integers ({shape!r:.60})")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(n) for n in offsets) \
            or offsets[0] > offsets[1]:
        raise ModelFileError(path, f"corrupt header: tensor {tensor} has data_offsets that are not two "
                                   f"non-negative integers [start, end] ({offsets!r:.60})")
    start, end = offsets
    if end - start != math.prod(shape) * DTYPE_SIZES[dtype]:
        raise ModelFileError(path, f"corrupt header: tensor {tensor} byte range does not match its shape {shape}")
    if end > data_size:
        raise ModelFileError(path, f"truncated: tensor {tensor} lies past the end of the file")


def load_tensors(path, names=None, header_checked=False):
    """Load tensors (all, or `names`) from a safetensors file or a weights-only torch pickle, as CPU tensors.
    `header_checked`: the caller has just read the header with read_safetensors_header and names the tensors it
    lists, so the header is not parsed a second time."""
    path = str(path)
    if path.lower().endswith(PICKLE_SUFFIXES):
        return _load_weights_only_pickle(path, names)
    if names is None or not header_checked:
        header, _ = read_safetensors_header(path)
        names = list(header) if names is None else names
    out = {}
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            for name in names:
                out[name] = f.get_tensor(name)
                pause()
    except Exception as e:  # the safetensors library reports corruption with its own exception types
        raise ModelFileError(path, f"cannot read tensors ({e})") from e
    return out


def _load_weights_only_pickle(path, names):
    if not os.path.isfile(path):
        raise ModelFileError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise ModelFileError(path, "the file is empty")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelFileError(path, f"not a readable weights-only checkpoint ({type(e).__name__}); "
                                   "only safetensors or plain tensor dicts are accepted") from e
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelFileError(path, "not a dict of tensors")
    return {k: obj[k] for k in (obj if names is None else names)}
