"""What a LoRA file becomes (per native module name, its low-rank factors: row slice, down, up, alpha/rank), the
strength rule that scales them, and the one check of them against a model.
"""
import os
from collections import Counter
from dataclasses import dataclass, field

import torch

from .safetensors_file import ModelFileError


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
    layout: str = "native"  # whose module names the file uses (layouts.module_names: native, wanvideo, fastvideo)
    skipped_keys: dict = field(default_factory=dict)  # other component (text encoder, ...) -> its keys, not applied
    dtype: str = ""
    size_bytes: int = 0
    mtime: float = 0.0
    factor_count: int = 0

    @property
    def name(self):
        return os.path.basename(self.path)

    def scale_for(self, factor, strength):
        """The strength rule, the one place it is written (the patcher calls it for every factor it applies):
        scale_m = strength * (alpha_m / rank_m) / common, so the slider is the real scale of common modules."""
        return strength * factor.alpha_over_rank / self.default_strength


def common_ratio(path, ratios):
    """The most frequent alpha/rank (ties: the larger count of modules, then the smaller value) is the default."""
    counts = Counter(ratios.values())
    common = max(counts, key=lambda r: (counts[r], -abs(r)))
    if common == 0:
        raise ModelFileError(path, "alpha is zero for most modules: the LoRA would do nothing")
    return common


def check_against_model(path, targets, model_shapes):
    """The one check of a LoRA against a model ({weight key: [out, in]}, as LongCatModelPatcher.lora_shapes()
    gives it): every target must be a linear of the model, and every factor ({module: factors}) must fit it: same
    input width, rows inside the output. A file is applied whole or not at all."""
    absent = sorted(m for m in targets if m + ".weight" not in model_shapes)
    if absent and len(absent) == len(targets):
        raise ModelFileError(path, f"none of its {len(absent)} target modules exist in this model "
                                   f"(e.g. {absent[0]}): it is a LoRA for another model")
    if absent:
        raise ModelFileError(path, f"{len(absent)} of its {len(targets)} target modules are not in this model "
                                   f"({', '.join(absent[:5])}): a LoRA for another model size? It is not applied "
                                   "in part")
    for module, factors in targets.items():
        shape = model_shapes[module + ".weight"]
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
