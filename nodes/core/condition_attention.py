"""The clean conditioning frames in self-attention (video continuation, image-to-video): which keys each frame
attends to (`ConditionLayout`), and their keys and values kept for a sampling run (`ConditionCache`).

Condition cache (the reference's KV cache): the clean conditioning frames never see the noisy ones, so their keys
and values are the same at every step of a sampling run. `LongCatDiT.condition_kv` computes them once and later
steps run only the noisy frames, attending to the cached keys; `ConditionCache` holds them for one run.
"""
import torch

from .condition_offload import OffloadedKV


class ConditionLayout:
    """Which keys each latent frame's queries attend to in self-attention: the leading condition frames only among
    themselves, the noisy frames to every frame. A subclass changes the key ranges (`key_frames`), the RoPE time
    positions (`time_positions`) and the frames a chunk of queries may not straddle (`cuts`)."""
    cuts = ()

    def __init__(self, num_cond_frames):
        self.num_cond_frames = num_cond_frames

    def time_positions(self, frames):
        """The RoPE time index of each of `frames` latent frames; None: 0, 1, ..., frames - 1."""
        return None

    def key_frames(self, frame):
        """(first, stop) latent frames of the keys the queries of frame `frame` attend to; stop None: all."""
        return (0, self.num_cond_frames) if frame < self.num_cond_frames else (0, None)


class ConditionCache:
    """The conditioning frames' keys and values for one sampling run (they never change while it samples: clean,
    timestep 0, attending only to themselves). Holds one condition; a different one replaces it.

    offload: keep them in CPU memory and hand them to the compute device block by block as the blocks run (the
    reference's `offload_kv_cache`; see condition_offload.OffloadedKV), page-locked by `pin(tensor) -> bool` and
    released by `unpin(tensor)` when given (ComfyUI's pin_memory / unpin_memory). `release()` frees them now."""

    def __init__(self, offload=False, pin=None, unpin=None):
        self.offload, self.pin, self.unpin = offload, pin, unpin
        self.condition = None
        self.kv = None

    def new_store(self):
        """What a computation appends each block's (k, v) to: a list on the compute device, or an OffloadedKV."""
        return OffloadedKV(self.pin, self.unpin) if self.offload else []

    def get(self, condition, compute):
        held = self.condition
        if held is None or held.shape != condition.shape or held.dtype != condition.dtype or \
                held.device != condition.device or not torch.equal(held, condition):
            self.release()  # free the old one before computing the new one
            self.kv = compute()
            self.condition = condition.clone()
        return self.kv

    def release(self):
        if isinstance(self.kv, OffloadedKV):
            self.kv.release()
        self.kv = self.condition = None
