"""Two speakers in one clip: each voice routed to its face (the reference's `ref_target_masks`, multitalk).

Per speaker a pixel mask of the first frame, plus the background (1 - union of the speakers). In each block, the
noisy queries' attention to the first latent frame's keys is averaged per mask (softmax over the first frame's
tokens, masked mean, mean over heads), which gives each token a 1-D RoPE position for the audio cross-attention:
speaker 1 in [0, 4], speaker 2 in [20, 24] (the token's attention normalised over the clip), the background 12,
by the mask the token attends to most. The audio keys sit at 2 (speaker 1's tokens) and 22 (speaker 2's).
"""
import math

import torch
import torch.nn.functional as F

ROPE_BASE = 10000.0


def rope_1d_tables(positions, dim):
    """cos, sin [..., dim] fp32 of a 1-D RoPE over the whole head dim at `positions` (interleaved pairs)."""
    freqs = 1.0 / (ROPE_BASE ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
    angles = (positions.float()[..., None] * freqs.to(positions.device)).repeat_interleave(2, dim=-1)
    return angles.cos(), angles.sin()


def token_masks(masks, grid_hw):
    """Pixel masks [M, h, w] -> token masks [M, H' W'] (nearest, > 0), as floats."""
    tokens = F.interpolate(masks[None].float(), size=tuple(grid_hw), mode="nearest")[0] > 0
    return tokens.flatten(1).float()


class SpeakerRouting:
    """The per-token audio positions of one forward call. `masks`: [speakers + 1, H' W'] token masks of the first
    frame (speakers, then the background); `visit` collects each block's attention maps during self-attention,
    `query_positions` turns them into positions, `key_positions` gives the audio tokens'."""

    def __init__(self, masks, speakers, class_range=24, class_interval=4):
        if speakers < 2:
            raise ValueError(f"speaker masks route two or more voices, got {speakers} audio stream(s)")
        empty = [i for i, m in enumerate(masks) if not bool(m.any())]
        if empty:
            raise ValueError(f"speaker mask(s) {empty} cover no token of the latent grid: enlarge them")
        self.masks, self.speakers = masks, speakers
        self.ranges = ((0, class_interval), (class_range - class_interval, class_range))
        self.background = class_range // 2 if masks.shape[0] <= 3 else 100
        self.maps = []

    def visit(self, num_cond_frames):
        """A self-attention visitor that records the noisy queries' mean attention per mask (see module doc)."""
        self.maps = []

        def record(frames, q, k):
            if frames.start < num_cond_frames:
                return
            ref_k = k[:, :, :self.masks.shape[1]]  # the first latent frame's keys
            attn = torch.softmax((q * (1.0 / math.sqrt(q.shape[-1]))) @ ref_k.transpose(-1, -2), dim=-1)
            masks = self.masks.to(attn.dtype)
            per_mask = torch.einsum("bhqr,mr->bmhq", attn, masks) / masks.sum(-1)[None, :, None, None]
            self.maps.append(per_mask.mean(2))  # [B, M, queries of the chunk]
        return record

    def query_positions(self):
        """[B, noisy tokens] positions of the queries (from the maps of this block's self-attention)."""
        maps = torch.cat(self.maps, dim=-1)  # [B, M, tokens]
        scaled = []
        for i, (low, high) in enumerate(self.ranges):
            m = maps[:, i]
            lo, hi = m.amin(-1, keepdim=True), m.amax(-1, keepdim=True)
            scaled.append((m - lo) / (hi - lo + 1e-8) * (high - low) + low)
        scaled.append(torch.full_like(scaled[0], self.background))
        choice = maps.argmax(dim=1).clamp(max=2)
        return torch.stack(scaled, dim=-1).gather(-1, choice[..., None])[..., 0]

    def key_positions(self, tokens):
        """[tokens] positions of a frame's audio tokens (the speakers' tokens one after the other)."""
        per_speaker = tokens // self.speakers
        centres = [sum(r) / 2 for r in self.ranges]
        positions = torch.full((tokens,), float(self.background))
        positions[:per_speaker] = centres[0]
        positions[per_speaker:2 * per_speaker] = centres[1]
        return positions
