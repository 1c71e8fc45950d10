"""The avatar continuation's self-attention layout: a reference latent (the first clip's first frame) in front of
the condition frames (the reference's `num_ref_latents`, `ref_img_index`, `mask_frame_range`).

The reference latent sits at RoPE time index `ref_img_index` (the others at 0, 1, ...), attends only to itself,
and the condition frames only to themselves. The noisy frames whose time index is within `mask_frame_range` of
`ref_img_index` do not attend to the reference latent (so the video does not snap back to it); the others attend
to every frame. Without a reference latent it is the base layout.
"""
from ..condition_attention import ConditionLayout


class ReferenceLayout(ConditionLayout):
    def __init__(self, num_cond_frames, frames, num_ref=0, ref_img_index=10, mask_frame_range=3):
        super().__init__(num_cond_frames)
        if num_ref not in (0, 1):
            raise ValueError(f"one reference latent at most, got {num_ref}")
        if num_ref and num_cond_frames < 2:
            raise ValueError("a reference latent goes in front of a continuation's condition frames: "
                             f"{num_cond_frames} condition latent(s) with the reference is too few")
        self.num_ref, self.ref_img_index = num_ref, ref_img_index
        self.masked = None  # (first, stop) noisy frames that do not see the reference latent
        if num_ref and mask_frame_range > 0:
            offset = ref_img_index - num_cond_frames + num_ref
            start, end = offset - mask_frame_range, offset + mask_frame_range + 1
            if 0 <= start < end <= frames - num_cond_frames:  # the reference's rule: else no frame is masked
                self.masked = (num_cond_frames + start, num_cond_frames + end)
        self.cuts = (num_ref,) + (self.masked or ())

    def time_positions(self, frames):
        if not self.num_ref:
            return None
        return [self.ref_img_index] + list(range(frames - 1))

    def key_frames(self, frame):
        if frame < self.num_ref:
            return 0, self.num_ref
        if frame < self.num_cond_frames:
            return self.num_ref, self.num_cond_frames
        if self.masked and self.masked[0] <= frame < self.masked[1]:
            return self.num_ref, None
        return 0, None
