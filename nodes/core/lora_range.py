"""How far a LoRA can push a layer's output, checked before anything is applied.

Every factor passes a per-tensor finite check when its file is read, but finite factors can still multiply past
what the model computes in: `alpha_scale` 1e38, or an up matrix scaled by 1e30, gives a finite merged weight and an
all-NaN output. For each target the term strength * alpha/rank * up @ down is bounded, for inputs of size at most 1,
by its largest row sum: max_i sum_k |up_ik| * sum_j |down_kj| (exact for the worst input, cheap: one matrix-vector
product per factor). That bound must stay below the compute dtype's largest value, and below the square root of
float32's (about 1.8e19): the norms after every block square what the layers write, in float32, so a larger output
can only end as Inf or NaN. Real LoRAs stay many orders of magnitude below it.
"""
import math

import torch

from .lora_patcher import stack_targets
from .safetensors_file import ModelFileError

SQUARED_IN_FLOAT32 = math.sqrt(torch.finfo(torch.float32).max)


def output_limit(dtype):
    """The largest output a term may add in `dtype` (see the module's description)."""
    return min(torch.finfo(dtype).max, SQUARED_IN_FLOAT32)


def output_bound(factor, scale):
    """Largest |scale * (up @ down) x| over inputs with every |x_j| <= 1 (Inf when it overflows float32)."""
    row_gain = factor.up.float().abs() @ factor.down.float().abs().sum(dim=1)
    return abs(scale) * float(row_gain.max())


def check_lora_range(description, strength, dtype):
    """Refuse (ModelFileError naming the file) a LoRA whose term on some module, at `strength`, would exceed what
    `dtype` computes; nothing is applied before this passes."""
    limit = output_limit(dtype)
    for module, pieces in stack_targets([(description, strength)]).items():
        bound = sum(output_bound(factor, scale) for factor, scale, _ in pieces)
        if not bound < limit:  # also NaN (0 * Inf inside the bound)
            raise ModelFileError(description.path, f"module {module}: strength {strength:g} x alpha/rank x up @ down "
                                                   f"can add {bound:.3g} to an output, past the {limit:.3g} that "
                                                   f"{str(dtype).replace('torch.', '')} compute allows: the LoRA's "
                                                   "factors (or alpha) are far too large")
