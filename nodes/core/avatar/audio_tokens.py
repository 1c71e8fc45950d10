"""From per-frame audio features to the DiT's audio tokens (the reference's `AudioProjModel` and the window
slicing in front of it).

The audio encoder's features come per video frame: `embeddings` [N, groups, channels] (whisper-large-v3: 5 layer
groups x 1280, 25 fps; chinese-wav2vec2-base: 12 layers x 768, two audio frames per 16 fps video frame). Each video
frame of a clip takes a window of `window` (5) audio frames centred on its own, clamped at the ends. The first
latent frame is projected from its frame's whole window; each later latent (4 video frames) from 8 slices of its
frames' windows: the first frame's slots 0-2, the middle frames' slot 2, the last frame's slots 2-4.
"""
import torch
import torch.nn as nn

WINDOW = 5  # audio frames around each video frame (the reference's audio_window)
VAE_SCALE = 4  # video frames per later latent frame


def audio_windows(embeddings, start, frames, stride, window=WINDOW):
    """The windows [frames, window, groups, channels] of `frames` video frames from audio frame `start` on, every
    `stride` audio frames per video frame; indices clamped to the embedding (its first / last frame repeats)."""
    centers = start + stride * torch.arange(frames)
    index = (centers[:, None] + torch.arange(window) - window // 2).clamp(0, embeddings.shape[0] - 1)
    return embeddings[index]


def latent_slices(windows, vae_scale=VAE_SCALE):
    """Windows [B, 1 + vae_scale (T-1), window, G, C] -> (first latent [B, 1, window·G·C], later latents
    [B, T-1, (window + vae_scale - 1)·G·C]), flattened in (window slot, group, channel) order."""
    B, frames, window, groups, channels = windows.shape
    if (frames - 1) % vae_scale:
        raise ValueError(f"audio windows for {frames} video frames: a clip has 1 + {vae_scale}k frames")
    middle = window // 2
    later = windows[:, 1:].reshape(B, (frames - 1) // vae_scale, vae_scale, window, groups, channels)
    slots = torch.cat([later[:, :, 0, :middle + 1], later[:, :, 1:-1, middle], later[:, :, -1, middle:]], dim=2)
    return windows[:, :1].flatten(2), slots.flatten(2)


class AudioProjModel(nn.Module):
    """first window -> proj1, later slices -> proj1_vf (ReLU), proj2 (ReLU), proj3 -> `context_tokens` tokens of
    `output_dim` per latent frame, LayerNorm. Runs in the model dtype, as the reference does."""

    def __init__(self, window_dim, window_vf_dim, intermediate_dim, output_dim, context_tokens, dtype=None,
                 device=None, operations=nn):
        super().__init__()
        kw = dict(dtype=dtype, device=device)
        self.context_tokens, self.output_dim = context_tokens, output_dim
        self.proj1 = operations.Linear(window_dim, intermediate_dim, **kw)
        self.proj1_vf = operations.Linear(window_vf_dim, intermediate_dim, **kw)
        self.proj2 = operations.Linear(intermediate_dim, intermediate_dim, **kw)
        self.proj3 = operations.Linear(intermediate_dim, context_tokens * output_dim, **kw)
        self.norm = operations.LayerNorm(output_dim, **kw)

    def forward(self, first, later):
        """first [B, 1, D1], later [B, T-1, D2] -> tokens [B, T, context_tokens, output_dim]."""
        h = torch.cat([torch.relu(self.proj1(first)), torch.relu(self.proj1_vf(later))], dim=1)
        tokens = self.proj3(torch.relu(self.proj2(h)))
        return self.norm(tokens.unflatten(-1, (self.context_tokens, self.output_dim)))
