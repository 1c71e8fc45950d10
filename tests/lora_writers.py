"""Writers of small synthetic LoRA files in the exact on-disk key layouts of each supported format."""
import json
import re
import struct

import torch
from safetensors.torch import load_file, save_file

OFFICIAL_PREFIX = "lora___lorahyphen___"


def official_stem(module):
    return OFFICIAL_PREFIX + module.replace(".", "___lorahyphen___")


def random_factor(out_rows, in_features, rank, gen, pieces=1):
    """down [pieces*rank, in], ups: `pieces` matrices [out_rows/pieces, rank]."""
    down = torch.randn(pieces * rank, in_features, generator=gen) * 0.07
    ups = [torch.randn(out_rows // pieces, rank, generator=gen) * 0.07 for _ in range(pieces)]
    return down, ups


def write_official(path, modules, dtype=torch.float32):
    """modules: {module: (down, [up_0..up_n-1], alpha_scale)}; one up is written as `lora_up.weight`."""
    sd = {}
    for module, (down, ups, alpha_scale) in modules.items():
        stem = official_stem(module)
        sd[f"{stem}.lora_down.weight"] = down.to(dtype)
        if len(ups) == 1:
            sd[f"{stem}.lora_up.weight"] = ups[0].to(dtype)
        else:
            for j, up in enumerate(ups):
                sd[f"{stem}.lora_up.blocks.{j}.weight"] = up.to(dtype)
        if alpha_scale is not None:
            sd[f"{stem}.alpha_scale"] = torch.tensor(float(alpha_scale), dtype=torch.float32)
    _save(sd, path)
    return path


def write_sparse_official(path, target_shapes, rank, alpha_scale):
    """A full-size official-format file ({module: (out, in, pieces)}) whose factor bytes are a hole: only the header
    and the alpha_scale scalars are written, the file is extended to its full length without using the disk."""
    header, offset, scalars = {}, 0, b""
    for module in target_shapes:
        header[f"{official_stem(module)}.alpha_scale"] = {"dtype": "F32", "shape": [], "data_offsets": [offset, offset + 4]}
        offset += 4
        scalars += struct.pack("<f", alpha_scale)
    for module, (out, inp, pieces) in target_shapes.items():
        stem = official_stem(module)
        ups = {f"{stem}.lora_up.weight": [out, rank]} if pieces == 1 else \
            {f"{stem}.lora_up.blocks.{j}.weight": [out // pieces, rank] for j in range(pieces)}
        for key, shape in {f"{stem}.lora_down.weight": [pieces * rank, inp], **ups}.items():
            header[key] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + 4 * shape[0] * shape[1]]}
            offset = header[key]["data_offsets"][1]
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + scalars)
        f.truncate(8 + len(raw) + offset)
    return path


def write_kohya(path, modules, prefix="lora_unet_"):
    """modules: {module: (down, up, alpha or None)}; `lora_unet_` writes dots as underscores."""
    sd = {}
    for module, (down, up, alpha) in modules.items():
        stem = prefix + (module.replace(".", "_") if prefix == "lora_unet_" else module)
        sd[f"{stem}.lora_down.weight"] = down
        sd[f"{stem}.lora_up.weight"] = up
        if alpha is not None:
            sd[f"{stem}.alpha"] = torch.tensor(float(alpha))
    _save(sd, path)
    return path


def write_peft(path, modules, prefix="transformer.", adapter_config=None):
    """modules: {module: (A, B, alpha or None)}; adapter_config is written beside the file when given."""
    sd = {}
    for module, (a, b, alpha) in modules.items():
        sd[f"{prefix}{module}.lora_A.weight"] = a
        sd[f"{prefix}{module}.lora_B.weight"] = b
        if alpha is not None:
            sd[f"{prefix}{module}.alpha"] = torch.tensor(float(alpha))
    _save(sd, path)
    if adapter_config is not None:
        (path.parent / "adapter_config.json").write_text(json.dumps(adapter_config))
    return path


def _save(sd, path):
    save_file({k: v.contiguous().clone() for k, v in sd.items()}, str(path))


def dense_delta(factors_by_rows, out_features, in_features):
    """Reference formula: rows of dW = scale * up_j @ down_j, written independently of the pack."""
    delta = torch.zeros(out_features, in_features, dtype=torch.float64)
    for (start, end), up, down, scale in factors_by_rows:
        delta[start:end] += scale * up.double() @ down.double()
    return delta


def write_raw_safetensors(path, header, data=b"\0" * 64):
    """A file with exactly this header (a dict written as JSON, or raw bytes) and data section: for headers that
    no safetensors writer would produce."""
    raw = json.dumps(header).encode() if isinstance(header, dict) else header
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def _official_qkv(**down_changes):
    stem = official_stem("blocks.7.attn.qkv")
    return {f"{stem}.lora_down.weight": {"dtype": "F32", "shape": [2, 4], "data_offsets": [0, 32], **down_changes},
            f"{stem}.lora_up.weight": {"dtype": "F32", "shape": [4, 2], "data_offsets": [32, 64]}}


def _empty_alpha_scale(path):
    g = torch.Generator().manual_seed(8)
    write_official(path, {"blocks.0.ffn.w1": (*random_factor(256, 256, 4, g), 0.5)})
    sd = {k: v for k, v in load_file(str(path)).items()}
    sd[official_stem("blocks.0.ffn.w1") + ".alpha_scale"] = torch.zeros(0)
    _save(sd, path)


_QKV_DOWN = re.escape(official_stem("blocks.7.attn.qkv") + ".lora_down.weight")
# The malformed files of the adversarial probe: name -> (writer, what the error must say after "<name>: ").
MALFORMED_LORAS = {
    "string_shape.safetensors": (lambda p: write_raw_safetensors(p, _official_qkv(shape="2,4")),
                                 rf"tensor blocks\.7\.attn\.qkv\.lora_down\.weight \({_QKV_DOWN}\) has a shape that is "
                                 "not a list of non-negative integers"),
    "string_offsets.safetensors": (lambda p: write_raw_safetensors(p, _official_qkv(data_offsets=["0", "32"])),
                                   rf"tensor blocks\.7\.attn\.qkv\.lora_down\.weight \({_QKV_DOWN}\) has data_offsets "
                                   "that are not two non-negative integers"),
    "deeply_nested.safetensors": (
        lambda p: write_raw_safetensors(p, b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        "its header is nested too deeply"),
    "empty_alpha_scale.safetensors": (
        _empty_alpha_scale, r"module blocks\.0\.ffn\.w1: alpha_scale \(lora___.*\) must hold one value, it holds 0"),
    "rank0_kohya.safetensors": (
        lambda p: write_kohya(p, {"blocks.0.attn.proj": (torch.zeros(0, 256), torch.zeros(256, 0), 4.0)}),
        r"module blocks\.0\.attn\.proj: rank 0"),
}


def write_malformed_lora(path):
    MALFORMED_LORAS[path.name][0](path)
    return path


def write_many_modules(path, modules):
    """A valid official-format header of `modules` tiny modules (3 tensors each): work for the header reader."""
    header, offset = {}, 0
    for i in range(modules):
        stem = official_stem(f"blocks.{i}.attn.proj")
        for suffix, shape in ((".lora_down.weight", [1, 1]), (".lora_up.weight", [1, 1]), (".alpha_scale", [])):
            header[stem + suffix] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + 4]}
            offset += 4
    return write_raw_safetensors(path, header, struct.pack("<f", 0.5) * (offset // 4))
