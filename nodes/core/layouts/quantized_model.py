"""Building and filling a DiT whose linears come quantized, whatever ops (ComfyUI's mixed-precision ones) hold them.

A fused linear whose split pieces were quantized one by one (Kijai's scaled q, k, v each have their own scale)
cannot become one weight without re-quantizing; it stays a `RowSplitLinear` of its pieces, which computes exactly
what the fused layer would. Filling goes module by module through each module's own `_load_from_state_dict`, where
ComfyUI's quantized layers build their quantized weights from `weight`, `weight_scale` and `comfy_quant`.
"""
import torch
from torch import nn

from .module_names import pieces_of


class RowSplitLinear(nn.Module):
    """A fused linear kept as its row pieces: the output is the pieces' outputs side by side (q | k | v)."""

    def __init__(self, in_features, piece_features, count, operations, dtype=None, device=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = piece_features * count
        self.parts = nn.ModuleList(operations.Linear(in_features, piece_features, bias=True, dtype=dtype, device=device)
                                   for _ in range(count))

    def forward(self, x):
        return torch.cat([part(x) for part in self.parts], dim=-1)

    @property
    def weight(self):
        """What the LoRA patcher sees of the target: the fused shape on the pieces' device, without storage. Its
        dtype (uint8) is none a merge writes into: LoRAs on quantized pieces always apply at run time."""
        device = next(self.parts.parameters()).device
        return torch.empty((), dtype=torch.uint8, device=device).expand(self.out_features, self.in_features)


def split_fused_linears(model, modules, operations, dtype=None, device=None):
    """Replace the fused linears named in `modules` (e.g. "blocks.0.attn.qkv") by RowSplitLinears."""
    for name in modules:
        parent_name, _, child = name.rpartition(".")
        fused = model.get_submodule(name)
        count = len(pieces_of(name))
        split = RowSplitLinear(fused.in_features, fused.out_features // count, count, operations, dtype, device)
        setattr(model.get_submodule(parent_name), child, split)
    return model


def fill_modules(model, checkpoint, check_interrupt=None):
    """Stream `checkpoint` into `model`, each module loaded by its own `_load_from_state_dict` once all its tensors
    have arrived (so only a few modules' tensors are held at a time); `check_interrupt` runs after each tensor."""
    expected = checkpoint.plan.module_keys()
    pending = {}
    with torch.no_grad():
        for key, tensor in checkpoint:
            name = key.rpartition(".")[0]
            group = pending.setdefault(name, {})
            group[key] = tensor
            if len(group) == len(expected[name]):
                _load_module(model.get_submodule(name), name, pending.pop(name))
            if check_interrupt is not None:
                check_interrupt()
    if pending:
        raise ValueError(f"modules {', '.join(sorted(pending))} did not receive all their tensors")
    return model


def _load_module(module, name, tensors):
    missing, unexpected, errors = [], [], []
    module._load_from_state_dict(tensors, name + ".", {}, True, missing, unexpected, errors)
    if missing or unexpected or errors:
        raise ValueError(f"module {name} did not take its tensors (missing {missing}, unexpected {unexpected}, "
                         f"{'; '.join(errors)})")
