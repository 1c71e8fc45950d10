"""Writers of small synthetic LoRA files in the exact on-disk key layouts of each supported format."""
import json
import struct

import torch
from safetensors.torch import save_file

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
