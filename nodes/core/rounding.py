"""W + delta rounded once to a 16-bit float dtype, from a 16-bit W and an fp32 delta.

Adding in fp32 and then converting rounds twice. That goes wrong only where the fp32 sum lands exactly on a
midpoint between two bfloat16/float16 values (fp32 rounding cannot carry a sum across a midpoint: midpoints are fp32
numbers), and then the conversion's tie-break may pick the wrong side: for float16 weights about 1 element in
10,000 with LoRA-sized deltas. So the sums whose low bits say "midpoint" (and, for float16, the sums in its
subnormal range, where the midpoint bits sit elsewhere) are checked against the exact W + delta in float64 and, if
inexact, moved one fp32 step towards it before the conversion. The result is the same as rounding the fp32 sum to
odd (what the Triton merge kernel does in registers), at a fraction of the elementwise passes.
"""
import torch

# An fp32 number is a bfloat16 midpoint when its low 16 bits are 0x8000; a float16 midpoint (normal range) when its
# low 13 bits are 0x1000.
FLOAT16_LOW_BITS, FLOAT16_MIDPOINT = 0x1FFF, 0x1000
FLOAT16_NORMAL = 2.0 ** -14


def add_rounded_once(weight, delta, out):
    """out = weight + delta, rounded once to out's dtype. weight: bf16/fp16, delta: fp32; out may be weight."""
    total = weight.float().add_(delta)
    if weight.dtype == torch.bfloat16:  # the low 16 bits alone: the even int16 halves (little-endian)
        suspect = total.view(torch.int16)[..., ::2] == -0x8000
    else:
        suspect = ((total.view(torch.int32) & FLOAT16_LOW_BITS) == FLOAT16_MIDPOINT) | (total.abs() < FLOAT16_NORMAL)
    index = suspect.nonzero(as_tuple=True)
    if index[0].numel():
        total[index] = _off_midpoints(total[index], weight[index].double() + delta[index].double(), weight.dtype)
    out.copy_(total)


def _off_midpoints(total, exact, dtype):
    """`total` (fp32 sums) with those that are midpoints of `dtype` but not exact moved one fp32 step towards
    `exact` (float64)."""
    nearest = total.to(dtype)
    towards = torch.where(total > nearest.float(), float("inf"), float("-inf"))
    other = torch.nextafter(nearest, towards.to(dtype))
    midpoint = (nearest.double() + other.double()) / 2 == total.double()
    moved = torch.nextafter(total, torch.where(exact > total.double(), float("inf"), float("-inf")))
    return torch.where(midpoint & (exact != total.double()), moved, total)
