"""W + delta rounded once to a 16-bit float dtype, from a 16-bit W and an fp32 delta.

Adding in fp32 and then converting rounds twice: when the fp32 sum lands exactly on a midpoint between two
bfloat16/float16 values, the conversion's tie-break can go the wrong way (for float16 weights about 1 element in
10,000 with LoRA-sized deltas). The fp32 sum is therefore rounded to odd: its exact error (TwoSum) tells whether the
sum was inexact, and an inexact sum with an even last bit is moved one fp32 step towards the exact value. An odd
fp32 value is never a midpoint of the 16-bit grid, so the final conversion rounds the exact W + delta correctly.
(The Triton merge kernel does the same in its epilogue.)
"""
import torch


def add_rounded_once(weight, delta, out):
    """out = weight + delta, rounded once to out's dtype. weight: bf16/fp16, delta: fp32 (overwritten); out may be
    weight."""
    w = weight.float()
    total = w + delta
    b = total - w  # TwoSum: error = (w - (total - b)) + (delta - b), exactly
    error = delta.sub_(b).add_(w.sub_(total.sub(b)))
    bits = total.view(torch.int32)
    towards = torch.sign(error).mul_(torch.sign(total)).to(torch.int32)  # +1: away from zero, -1: towards, 0: exact
    bits.add_(towards.mul_(1 - (bits & 1)))
    out.copy_(total)
