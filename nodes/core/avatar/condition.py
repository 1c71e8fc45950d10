"""What LongCat Avatar Condition computes, without ComfyUI: the audio windows of a clip from one or two speakers'
per-frame features, and the speakers' masks with the background the reference derives."""
import torch
import torch.nn.functional as F

from .audio_tokens import audio_windows


class AvatarInputError(ValueError):
    """An avatar input that does not fit; the message names the input and the problem."""


def check_embeddings(name, audio):
    """The LONGCAT_AUDIO dict's embedding [N, groups, channels], checked."""
    emb = audio.get("embeddings") if isinstance(audio, dict) else None
    if not isinstance(emb, torch.Tensor) or emb.dim() != 3 or emb.shape[0] == 0:
        raise AvatarInputError(f"{name}: not a LONGCAT_AUDIO with embeddings [audio frames, groups, channels] "
                               "(connect LongCat Avatar Audio)")
    if not bool(torch.isfinite(emb).all()):
        raise AvatarInputError(f"{name}: its embeddings hold NaN or Inf (the audio itself has NaN?)")
    return emb


def mixed_embeddings(first, second, mode):
    """Two speakers' embeddings [N_i, G, C] side by side in time: `para` both from the start (the shorter one
    padded with zero features), `add` one after the other (each silent, zero features, while the other speaks)."""
    if mode == "add":
        return (torch.cat([first, first.new_zeros(second.shape)]), torch.cat([second.new_zeros(first.shape), second]))
    if mode != "para":
        raise AvatarInputError(f"audio_mix must be para or add, got {mode!r}")
    length = max(first.shape[0], second.shape[0])
    return tuple(F.pad(e, (0, 0, 0, 0, 0, length - e.shape[0])) for e in (first, second))


def clip_audio(embeddings, start_frame, frames, stride):
    """Windows [speakers, frames, 5, G, C] of a clip of `frames` video frames from video frame `start_frame` on, and
    how many of its frames lie past the audio's end (their windows repeat the last audio frame)."""
    start = start_frame * stride
    length = embeddings[0].shape[0]
    if start >= length:
        raise AvatarInputError(f"audio_start_frame {start_frame} is at or past the audio's end ({length // stride} "
                               "video frames of audio)")
    past = max(0, frames - (length - start + stride - 1) // stride)
    return torch.stack([audio_windows(e, start, frames, stride) for e in embeddings]), past


def masks_with_background(masks, height, width, speakers):
    """Speaker masks [S, h, w] (a MASK) -> [S + 1, height, width]: each speaker's, resized (nearest) to the video,
    then the background = 1 where no speaker's mask is (the reference's multi-speaker demo)."""
    if masks.dim() == 2:
        masks = masks[None]
    if masks.shape[0] != speakers:
        raise AvatarInputError(f"speaker_masks holds {masks.shape[0]} mask(s) for {speakers} speakers: one mask per "
                               "audio, in the same order")
    masks = (F.interpolate(masks[None].float(), size=(height, width), mode="nearest")[0] > 0.5).float()
    empty = [i + 1 for i, m in enumerate(masks) if not bool(m.any())]
    if empty:
        raise AvatarInputError(f"speaker_masks: mask {empty} is empty: mark each speaker's face")
    background = (masks.sum(0) == 0).float()
    return torch.cat([masks, background[None]])
