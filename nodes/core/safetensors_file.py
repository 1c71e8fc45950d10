"""Checked access to model files: a safetensors header is validated before any tensor is read, so a corrupt,
truncated or foreign file becomes one clear error naming the file instead of a crash deep inside a loader.
Pickled checkpoints are never unpickled: `.pt`/`.ckpt` go through `torch.load(weights_only=True)` only."""
import json
import math
import os
import struct

import torch
from safetensors import safe_open

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


def read_safetensors_header(path):
    """Return {name: {"dtype", "shape", "data_offsets"}} and the metadata dict, after checking that every tensor
    lies inside the file and its byte length matches its shape and dtype."""
    path = str(path)
    if not os.path.isfile(path):
        raise ModelFileError(path, "file not found")
    size = os.path.getsize(path)
    if size == 0:
        raise ModelFileError(path, "the file is empty")
    if size < 8:
        raise ModelFileError(path, f"not a safetensors file ({size} bytes, too short for a header)")
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        if header_len == 0 or header_len > MAX_HEADER_BYTES:
            raise ModelFileError(path, "not a safetensors file (implausible header length)")
        if 8 + header_len > size:
            raise ModelFileError(path, "truncated: the file ends inside its safetensors header")
        raw = f.read(header_len)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(path, "not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise ModelFileError(path, "not a safetensors file (its header is not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    data_size = size - 8 - header_len
    for name, info in header.items():
        _check_entry(path, name, info, data_size)
    return header, metadata


def _check_entry(path, name, info, data_size):
    try:
        dtype, shape, (start, end) = info["dtype"], info["shape"], info["data_offsets"]
    except (TypeError, KeyError, ValueError):
        raise ModelFileError(path, f"corrupt header entry for tensor '{name}'") from None
    if dtype not in DTYPE_SIZES:
        raise ModelFileError(path, f"tensor '{name}' has unsupported dtype {dtype}")
    expected = math.prod(shape) * DTYPE_SIZES[dtype]
    if end - start != expected or start < 0:
        raise ModelFileError(path, f"corrupt header: tensor '{name}' byte range does not match its shape {shape}")
    if end > data_size:
        raise ModelFileError(path, f"truncated: tensor '{name}' lies past the end of the file")


def load_tensors(path, names=None):
    """Load tensors (all, or `names`) from a safetensors file or a weights-only torch pickle, as CPU tensors."""
    path = str(path)
    if path.lower().endswith(PICKLE_SUFFIXES):
        return _load_weights_only_pickle(path, names)
    header, _ = read_safetensors_header(path)
    wanted = list(header) if names is None else list(names)
    out = {}
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            for name in wanted:
                out[name] = f.get_tensor(name)
    except Exception as e:  # the safetensors library reports corruption with its own exception types
        raise ModelFileError(path, f"cannot read tensors ({e})") from e
    return out


def tensor_shapes(path):
    """Names and shapes without reading tensor data (header only for safetensors)."""
    path = str(path)
    if path.lower().endswith(PICKLE_SUFFIXES):
        return {k: tuple(v.shape) for k, v in _load_weights_only_pickle(path, None).items()}
    header, _ = read_safetensors_header(path)
    return {k: tuple(v["shape"]) for k, v in header.items()}


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
