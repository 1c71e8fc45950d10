"""Applying a stack of LoRAs to the DiT on the device where its weights live.

A stack is a list of (LoraDescription, strength). `prepare_stack` turns it into per-target fp32 tensors on the
device, once per stack (validated as a whole before any weight is touched). Then either
- `WeightMerger` merges them into the weights like ComfyUI core does, with one rounding: W + U @ D with the
  product accumulated in fp32 and the sum rounded once to the weight's dtype (`rounding.add_rounded_once`). The
  backup is exact: when device memory allows, the merged weight is written to a new tensor and the original tensor
  itself is kept (restore = handing it back, no copy, no subtraction); otherwise the original is copied to pinned
  host memory first and the merge runs in place.
- `RuntimeLora` leaves the weights untouched and adds scale * up(down(x)) after each targeted linear, computed the
  same way (fp32 factors, fp32 products, the output rounded once more to its dtype), so merged and runtime outputs
  agree to the output dtype's rounding.

Per target the factors of every LoRA are cut at common row boundaries (fused qkv: q | k | v) and concatenated
along the rank, so any number of stacked LoRAs costs one down GEMM and one up GEMM per row segment.
"""
from dataclasses import dataclass

import torch

from . import merge_kernel
from .lora_description import check_against_model
from .rounding import add_rounded_once
from .safetensors_file import ModelFileError

MERGEABLE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def mergeable(weight):
    """A merge writes into plain fp32/fp16/bf16 weights only. Quantized ones (ComfyUI's QuantizedTensor reports
    its original dtype) or fp8 storage would be re-quantized: their LoRAs apply at run time."""
    return weight.dtype in MERGEABLE_DTYPES and type(weight.data) is torch.Tensor


@dataclass
class Segment:
    """Rows [start, end) of the target get up @ down[col_start:col_end] added (scale folded into up)."""
    start: int
    end: int
    col_start: int
    col_end: int
    up: torch.Tensor


@dataclass
class PreparedTarget:
    down: torch.Tensor  # [total rank, in], fp32
    segments: list

    def to(self, device):
        return PreparedTarget(self.down.to(device),
                              [Segment(s.start, s.end, s.col_start, s.col_end, s.up.to(device)) for s in self.segments])


def stack_targets(stack):
    """{target module: [(factor, scale, description)]} over the whole stack; strength 0 entries drop out."""
    pieces = {}
    for description, strength in stack:
        if strength == 0:
            continue
        for module, factors in description.targets.items():
            for f in factors:
                pieces.setdefault(module, []).append((f, description.scale_for(f, strength), description))
    return pieces


def prepare_stack(stack, weights, device=None):
    """Validate a stack against `weights` ({module name: weight tensor}) and build its fp32 device tensors (merge
    and runtime mode use the same ones). `device` None means each target weight's own.
    Raises ModelFileError naming the file before anything is changed: also when the scaled LoRA could push a 16-bit
    weight past its dtype's range (merged, it would hold Inf).
    """
    shapes = weight_shapes(weights)
    for description, strength in stack:
        if strength != 0:
            check_against_model(description.path, description.targets, shapes)
    prepared, finite_flags, sources = {}, [], []
    for module, pieces in stack_targets(stack).items():
        weight = weights[module]
        target = _build_target(pieces, weight.shape[0], device or weight.device)
        finite_flags.append(_fits_range(target, weight.dtype))
        sources.append((module, pieces))
        prepared[module] = target
    if finite_flags:
        bad = torch.stack(finite_flags).logical_not().nonzero().flatten().tolist()  # one sync for the stack
        if bad:
            module, pieces = sources[bad[0]]
            files = ", ".join(sorted({p[2].path for p in pieces}))
            raise ModelFileError(files, f"module {module}: the scaled LoRA has NaN or Inf values or can exceed the "
                                        f"range of its {weights[module].dtype} weight (strength too large?)")
    return prepared


def _fits_range(target, dtype):
    """A 0-dim bool on the target's device: every factor finite and, for a 16-bit float weight, no delta element can
    reach half its dtype's largest value (bound: largest row sum of |U| times the largest |D|)."""
    tensors = (target.down, *(s.up for s in target.segments))
    finite = torch.stack([torch.isfinite(t).all() for t in tensors]).all()
    if dtype not in (torch.float16, torch.bfloat16):
        return finite.cpu()
    bound = torch.stack([s.up.abs().sum(1).max() for s in target.segments]).max() * target.down.abs().max()
    return (finite & (bound < torch.finfo(dtype).max / 2)).cpu()


def _build_target(pieces, out_features, device):
    spans = [(f.rows or (0, out_features)) for f, _, _ in pieces]
    order = sorted(range(len(pieces)), key=lambda i: spans[i])
    pieces, spans = [pieces[i] for i in order], [spans[i] for i in order]
    ranks = [f.down.shape[0] for f, _, _ in pieces]
    offsets = [sum(ranks[:i]) for i in range(len(ranks))]
    down = torch.cat([f.down.to(device, torch.float32) for f, _, _ in pieces])
    cuts = sorted({0, out_features, *(s for span in spans for s in span)})
    segments = []
    for a, b in zip(cuts, cuts[1:]):
        covering = [i for i, (s, e) in enumerate(spans) if s <= a and b <= e]
        if not covering:
            continue
        c0, c1 = offsets[covering[0]], offsets[covering[-1]] + ranks[covering[-1]]
        up = torch.zeros(b - a, c1 - c0, device=device, dtype=torch.float32)
        for i in covering:
            f, scale, _ = pieces[i]
            start = spans[i][0]
            up[:, offsets[i] - c0:offsets[i] - c0 + ranks[i]] = f.up[a - start:b - start].to(device, torch.float32) * scale
        segments.append(Segment(a, b, c0, c1, up))
    return PreparedTarget(down, segments)


def copy_uncovered_rows(weight, target, out):
    """Rows of `weight` that no segment touches, copied to a separate `out`."""
    covered = 0
    for seg in target.segments:
        if seg.start > covered:
            out[covered:seg.start].copy_(weight[covered:seg.start])
        covered = seg.end
    if covered < weight.shape[0]:
        out[covered:].copy_(weight[covered:])


def merge_segments(weight, target, out):
    """out[rows] = weight[rows] + U @ D[cols] per segment with torch, U @ D in fp32 and the sum rounded once to the
    weight's dtype; out may be weight. 16-bit weights go in row chunks so the fp32 temporaries stay small."""
    for seg in target.segments:
        down = target.down[seg.col_start:seg.col_end]
        if weight.dtype == torch.float32:
            torch.addmm(weight[seg.start:seg.end], seg.up, down, out=out[seg.start:seg.end])
            continue
        step = max(1, CHUNK_ELEMENTS // weight.shape[1])
        for r in range(seg.start, seg.end, step):
            rows = slice(r, min(r + step, seg.end))
            delta = torch.mm(seg.up[rows.start - seg.start:rows.stop - seg.start], down)
            add_rounded_once(weight[rows], delta, out[rows])




CHUNK_ELEMENTS = 1 << 24  # fp32 temporaries of the torch paths: 64 MiB each (bounded memory, few ops per weight)


def linear_weights(root, names=None):
    """{module name: weight tensor} of the linear-like modules of `root` (all, or `names`)."""
    modules = dict(root.named_modules())
    wanted = names if names is not None else [n for n, m in modules.items() if isinstance(getattr(m, "weight", None), torch.Tensor)]
    return {n: modules[n].weight for n in wanted if n in modules and isinstance(getattr(modules[n], "weight", None), torch.Tensor)}


def weight_shapes(weights):
    """{weight key: logical shape} of {module name: weight}, the form check_against_model reads (quantized weights
    report their logical [out, in], split ones that of the whole)."""
    return {f"{m}.weight": tuple(w.shape) for m, w in weights.items()}


class WeightMerger:
    """Merges one prepared stack at a time into the weights of `root`; restore() gives the original bytes back."""

    def __init__(self, root):
        self.root = root
        self.backups = {}  # module name -> (mode, tensor) of what is merged now
        self.host_copies = {}  # module name -> pinned host copy of the base weight, kept across merges

    @property
    def merged(self):
        return bool(self.backups)

    def merge(self, prepared, backup_on_device=None, progress=None, check_interrupt=None):
        """Restore whatever is merged, then merge `prepared`. Any failure (an interrupt included) restores every
        weight touched so far before the exception propagates."""
        self.restore()
        weights = linear_weights(self.root, list(prepared))
        for name, w in weights.items():
            if not mergeable(w):
                raise ValueError(f"cannot merge into {name}: weight {type(w.data).__name__} {w.dtype} "
                                 "(use runtime mode)")
        if backup_on_device is None:
            backup_on_device = backup_fits_on_device(weights.values())
        fused = all(merge_kernel.available(w) for w in weights.values()) and len({w.dtype for w in weights.values()}) == 1
        swaps, kernel_merges = [], []
        try:
            for i, (name, target) in enumerate(prepared.items()):
                if check_interrupt is not None:
                    check_interrupt()
                original = weights[name].data
                if backup_on_device:  # the original tensor itself is the backup; the merge writes a new one
                    out = torch.empty_like(original)
                    swaps.append((name, original, out))
                else:
                    host = self.host_copies.get(name)
                    if host is None or host.shape != original.shape or host.dtype != original.dtype:
                        host = self.host_copies[name] = _host_copy(original)
                    self.backups[name] = ("host", host)
                    out = original
                if out is not original:
                    copy_uncovered_rows(original, target, out)
                if fused and merge_kernel.fits(target):
                    kernel_merges.append((original, target, out))  # one launch for all of them, after the loop
                else:
                    merge_segments(original, target, out)
                if progress is not None:
                    progress(i + 1, len(prepared))
            if fused:
                merge_kernel.grouped_merge(kernel_merges)
        except BaseException:
            self.restore()
            raise
        for name, original, out in swaps:
            self.root.get_submodule(name).weight.data = out
            self.backups[name] = ("swap", original)

    def restore(self):
        """Put the original weights back, bit for bit: the kept tensor itself, or a copy from host memory."""
        for name, (mode, saved) in self.backups.items():
            param = self.root.get_submodule(name).weight
            if mode == "swap":
                param.data = saved
            else:
                param.data.copy_(saved)
        self.backups = {}


def _host_copy(tensor):
    host = torch.empty(tensor.shape, dtype=tensor.dtype, device="cpu", pin_memory=tensor.device.type == "cuda")
    return host.copy_(tensor)


def backup_fits_on_device(weights, reserve_bytes=1 << 30):
    """Keeping originals on the device costs one extra copy of the targeted weights."""
    weights = list(weights)
    if not weights or weights[0].device.type != "cuda":
        return True
    need = sum(w.numel() * w.element_size() for w in weights)
    free, _ = torch.cuda.mem_get_info(weights[0].device)
    return need + reserve_bytes < free


class RuntimeLora:
    """Adds the stack in the forward of each targeted linear through a forward hook; weights stay untouched."""

    def __init__(self, root, prepared):
        self.root = root
        self.prepared = prepared
        self._moved = {}
        self._handles = []

    def attach(self):
        self.detach()
        for name in self.prepared:
            module = self.root.get_submodule(name)
            self._handles.append(module.register_forward_hook(self._hook_for(name)))
        return self

    def detach(self):
        for h in self._handles:
            h.remove()
        self._handles = []

    def _target(self, name, device):
        target = self.prepared[name]
        if target.down.device == device:
            return target
        if (name, device) not in self._moved:
            self._moved[(name, device)] = target.to(device)
        return self._moved[(name, device)]

    def _hook_for(self, name):
        def hook(module, args, output):
            x = args[0]
            add_low_rank(x.reshape(-1, x.shape[-1]), self._target(name, output.device), output.view(-1, output.shape[-1]))
            return output
        return hook


def add_low_rank(x2d, target, y2d):
    """y2d[:, rows] += (x2d @ down^T)[:, cols] @ up^T in fp32, the sum rounded once to y2d's dtype; in chunks of
    tokens so the fp32 temporaries stay small."""
    step = max(1, CHUNK_ELEMENTS // max(x2d.shape[1], y2d.shape[1]))
    for r in range(0, x2d.shape[0], step):
        h = torch.mm(x2d[r:r + step].float(), target.down.t())
        for seg in target.segments:
            y = y2d[r:r + step, seg.start:seg.end]
            if y.dtype == torch.float32:
                y.addmm_(h[:, seg.col_start:seg.col_end], seg.up.t())
            else:
                y.copy_(torch.addmm(y.float(), h[:, seg.col_start:seg.col_end], seg.up.t()))
