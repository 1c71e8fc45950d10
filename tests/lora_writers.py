"""Writers of small synthetic LoRA files in the exact on-disk key layouts of each supported format."""
import json

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
