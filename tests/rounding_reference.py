"""The yardstick of a merge's rounding: W + sum s * up @ down computed in float64 from the factors as the files
store them, rounded ONCE to the weight's dtype (what ComfyUI core's fp32 merge gets right in all but ~0.003% of
bfloat16 elements)."""
import torch

from lora_writers import dense_delta

SHARE_ROUNDED_ONCE = 0.9999  # the share of merged elements that must equal the correctly rounded merge


def correctly_rounded(x, dtype):
    """float64 -> dtype with one round-to-nearest-even (torch converts float64 through float32: two roundings)."""
    if dtype == torch.float32:
        return x.to(dtype)  # not needed by the 16-bit checks; float64 -> float32 is one rounding
    best = x.to(dtype)
    error = (best.double() - x).abs()
    bits = best.view(torch.int16)
    for step in (1, -1):  # the neighbours on the 16-bit grid (same sign)
        other_bits = bits + step
        other = other_bits.view(dtype)
        other_error = (other.double() - x).abs()
        closer = (other_error < error) | ((other_error == error) & (other_bits % 2 == 0) & (bits % 2 == 1))
        closer &= torch.isfinite(other)
        best, error = torch.where(closer, other, best), torch.where(closer, other_error, error)
    return best


def exact_merges(base, stack):
    """{module: float64 W + sum of the stack's deltas} from `base` ({module: weight}) and the files' factors."""
    out = {}
    for description, strength in stack:
        for module, factors in description.targets.items():
            w = out.setdefault(module, base[module].double().clone())
            rows = [(f.rows or (0, w.shape[0]), f.up, f.down,
                     strength * f.alpha_over_rank / description.default_strength) for f in factors]
            w += dense_delta(rows, *w.shape)
    return out


def share_rounded_once(merged, base, stack):
    """(share of elements equal to the correctly rounded merge, whether every element is within one step of the
    dtype's grid at the size of W or of the result, subnormals included: an fp32 product can be a few steps off a
    result that cancels W almost to zero) over every target of `stack`; merged/base: {module: weight}."""
    equal = total = 0
    close = True
    for module, exact in exact_merges(base, stack).items():
        got = merged[module]
        want = correctly_rounded(exact, got.dtype)
        equal += (got == want).sum().item()
        total += got.numel()
        info = torch.finfo(got.dtype)
        step = info.eps * (torch.maximum(base[module].double().abs(), exact.abs()) + info.tiny)
        close &= bool(((got.double() - exact).abs() <= step).all())
    return equal / total, close
