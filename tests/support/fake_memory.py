"""Activation memory of the DiT at full LongCat size without a GPU: the model runs under torch's FakeTensorMode
(shapes and dtypes, no memory, no arithmetic) while `LiveBytes`, a TorchDispatchMode, counts the bytes of the tensor
storages alive on the compute device. Used by bench_activation_memory.py and by the test of ComfyUI's memory
estimate (tests/test_comfyui_memory.py).

Two paths: "cpu" (every op on its own: the eager path) and "cuda" (fake CUDA tensors on any machine): there each
torch.compile'd function (the DiT's fp32 islands, the block-sparse reorderings, flex attention) counts as one kernel,
its inputs and outputs but not its eager intermediates, which is what Inductor makes of these pointwise and
reduction islands (compiling needs a GPU); CUDA autocast works through its dispatcher flags, without a driver.
"""
import contextlib
import dataclasses
import functools
import warnings
import weakref

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from .pack import register_pack
from .random_models import FULL_AVATAR_CONFIG, FULL_CONFIG, WHISPER_FEATURE, random_description

register_pack()
from longcat_pack.nodes.core.avatar.audio_tokens import VAE_SCALE, WINDOW  # noqa: E402
from longcat_pack.nodes.core.avatar.avatar_dit import LongCatAvatarDiT  # noqa: E402
from longcat_pack.nodes.core.condition_attention import ConditionCache  # noqa: E402
from longcat_pack.nodes.core.demo_files import lora_target_shapes  # noqa: E402
from longcat_pack.nodes.core.lora_patcher import PreparedTarget, RuntimeLora, prepare_stack  # noqa: E402

LORA_RANK = 128


class LiveBytes(TorchDispatchMode):
    """Bytes of the tensor storages alive on `device_type` that ops made while the mode is on, and their peak.

    Inside `kernel()` the intermediates do not raise the peak: only what is alive when it ends (the outputs) counts,
    on top of what was alive before (the inputs): one fused kernel."""
    supports_higher_order_operators = True  # flex attention is a higher-order op

    def __init__(self, device_type):
        super().__init__()
        self.device_type = device_type
        self.live = self.peak = 0
        self._storages = {}
        self._in_kernel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage()._cdata for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)}
        for t in tree_flatten(out)[0]:
            # views and in-place results share an input's storage: nothing new (a weight's transpose is no activation)
            if isinstance(t, torch.Tensor) and t.device.type == self.device_type and \
                    t.untyped_storage()._cdata not in inputs:
                self._track(t.untyped_storage())
        return out

    def _track(self, storage):
        key = storage._cdata
        if key in self._storages:
            return
        size = storage.nbytes()
        self._storages[key] = weakref.ref(storage, functools.partial(self._freed, key, size))
        self.live += size
        if not self._in_kernel:
            self.peak = max(self.peak, self.live)

    def _freed(self, key, size, _ref):
        self.live -= size
        self._storages.pop(key, None)

    @contextlib.contextmanager
    def kernel(self):
        self._in_kernel += 1
        try:
            yield
        finally:
            self._in_kernel -= 1
            if not self._in_kernel:
                self.peak = max(self.peak, self.live)


_counter = None  # the LiveBytes of the running measurement, None outside one
_compile = torch.compile


def _as_one_kernel(fn, **options):
    """What `counting("cuda")` gives for torch.compile: during a measurement, fn run as one kernel; afterwards
    (the DiT keeps its compiled islands) the real torch.compile of fn."""
    compiled = _compile(fn, **options)  # compiles on first call only

    @functools.wraps(fn)
    def run(*args, **kwargs):
        if _counter is None:
            return compiled(*args, **kwargs)
        with _counter.kernel(), warnings.catch_warnings():
            # flex attention run eagerly warns that it would materialise the scores: here it is one fake kernel
            warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
            return fn(*args, **kwargs)
    return run


@contextlib.contextmanager
def _autocast_flags(device_type, dtype=None, enabled=True, **_):
    previous = torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)
    torch.set_autocast_enabled(device_type, enabled)
    if dtype is not None:
        torch.set_autocast_dtype(device_type, dtype)
    try:
        yield
    finally:
        torch.set_autocast_enabled(device_type, previous[0])
        torch.set_autocast_dtype(device_type, previous[1])


@contextlib.contextmanager
def counting(device_type):
    """A LiveBytes on `device_type`; for "cuda", torch.compile'd functions count as one kernel and CUDA autocast
    works through its dispatcher flags (no driver)."""
    global _counter
    saved = torch.compile, torch.autocast
    if device_type == "cuda":
        torch.compile, torch.autocast = _as_one_kernel, _autocast_flags
    _counter = LiveBytes(device_type)
    try:
        with torch.inference_mode(), _counter:
            yield _counter
    finally:
        _counter = None
        torch.compile, torch.autocast = saved


def prepared_lora(config, refinement=False):
    """The tensors runtime mode keeps for a rank-128 LoRA with the official file's targets (the refinement file's
    or the distill file's; an avatar config: the DMD file's): prepare_stack on real random factors (fp32, as both
    modes keep them), on the CPU."""
    shapes = lora_target_shapes(config, refinement)
    description = random_description(shapes, LORA_RANK, 1, "lora")
    weights = {m: torch.empty(o, i, device="meta") for m, (o, i, _) in shapes.items()}
    return prepare_stack([(description, 0.5)], weights, device="cpu")


def fake_copy(target, device_type):
    """A PreparedTarget of fake tensors on `device_type` (call under FakeTensorMode)."""
    return PreparedTarget(target.down.to(device_type, copy=True),
                          [dataclasses.replace(s, up=s.up.to(device_type, copy=True)) for s in target.segments])


def full_depth_lora_bytes(config, refinement=False):
    """Bytes of the prepared stack (prepared_lora) for all of `config`'s blocks, from stacks of 1 and 2 blocks
    (every block is alike)."""
    one, two = (sum(t.down.nbytes + sum(s.up.nbytes for s in t.segments) for t in
                    prepared_lora(dict(config, depth=depth), refinement).values()) for depth in (1, 2))
    return one + (config["depth"] - 1) * (two - one)


def reference_latents(num_cond_latents, avatar):
    """1 for an avatar continuation (2 or more condition latents): the first clip's first latent goes in front of
    the condition, as the pack's avatar model runs it (model/avatar/comfy_avatar.py); else 0."""
    return int(avatar and num_cond_latents > 1)


def step_peak(dit, bsa, depth, latent, device_type, sparse=False, num_cond_latents=0, lora=None, cached=False,
              offload=False, batch=1, avatar=False):
    """Peak live activation bytes of one step of `dit` (a dit.py module; `bsa` its block_sparse_attention) at full
    width, bf16, on a latent [batch, 16, *latent]; `lora`: a prepared stack (prepared_lora) applied at run time;
    `cached`: the first step of a run with today's condition cache (it fills the cache, which stays live);
    `offload`: that cache in CPU memory (counted where it is on `device_type`); `batch`: passes in one call, as
    ComfyUI batches a guider's conds when they fit. `avatar`: today's avatar DiT (FULL_AVATAR_CONFIG) with one
    speaker's audio windows (zeros: the shapes are what counts), and a continuation's reference latent."""
    T, H, W = latent
    ref = reference_latents(num_cond_latents, avatar)
    model_class, config = (LongCatAvatarDiT, FULL_AVATAR_CONFIG) if avatar else (dit.LongCatDiT, FULL_CONFIG)
    with FakeTensorMode(allow_non_fake_inputs=True):
        model = model_class(**dict(config, depth=depth), dtype=torch.bfloat16, device=device_type)
        model.eval().requires_grad_(False)
        if sparse:
            backend = getattr(bsa, "BlockSparseAttention", None)
            model.set_self_attention(backend() if backend else functools.partial(bsa.block_sparse_attention))
        if cached and batch > 1:  # the passes share the condition, so the cache keeps one row; dit.cached_condition
            # finds that out by comparing the rows, which fake tensors cannot: it gets the one row here
            model.cached_condition = lambda cache, cond, *args, **kwargs: type(model).cached_condition(
                model, cache, cond[:1], *args, **kwargs)
        if lora is not None:  # fake copies on the device, made before counting starts
            RuntimeLora(model, {m: fake_copy(t, device_type) for m, t in lora.items()}).attach()
        kernels, bsa._kernels = bsa._kernels, None  # compiled block-sparse kernels made now, while counting
        try:
            with counting(device_type) as counter:
                x = torch.randn(batch, 16, ref + T, H, W, device=device_type, dtype=torch.bfloat16)
                context = torch.zeros(batch, 512, FULL_CONFIG["caption_channels"], device=device_type,
                                      dtype=torch.bfloat16)
                t = torch.full((batch, ref + T), 500.0, device=device_type)
                t[:, :ref + num_cond_latents] = 0
                cache = {"condition_cache": ConditionCache(offload)} if cached else {}  # older DiTs take none
                if avatar:  # [batch, speakers, video frames, window, groups, channels]
                    audio = torch.zeros(batch, 1, 1 + VAE_SCALE * (T - 1), WINDOW, *WHISPER_FEATURE,
                                        device=device_type, dtype=torch.bfloat16)
                    model(x, t, context, audio, num_cond_latents=ref + num_cond_latents, num_ref_latents=ref, **cache)
                else:
                    model(x, t, context, num_cond_latents=num_cond_latents, **cache)
        finally:
            bsa._kernels = kernels
    return counter.peak


def floor_bytes(latent):
    T, H, W = latent
    return 3 * T * (H // 2) * (W // 2) * FULL_CONFIG["hidden_size"] * 2
