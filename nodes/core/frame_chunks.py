"""Chunks of whole latent frames: the DiT runs its per-token work chunk by chunk so that no intermediate spans
all tokens (the memory note in dit.py).
"""

ATTENTION_PARTS = 12  # while one block's q, k and v are alive, chunks of about 1/12 of the frames
TOKEN_PARTS = 3  # elsewhere (cross-attention, FFN, final layer) only x is alive: larger chunks, fewer calls
MIN_CHUNK_TOKENS = 2048  # GEMMs stay large; small latents run in one piece


class FrameChunks:
    """(token slice, frame slice) pairs that cut the tokens of a (T, H', W') grid into chunks of whole latent frames.

    Per-token work runs chunk by chunk so that its intermediates never span all tokens. A chunk covers about
    1/parts of the frames (at least MIN_CHUNK_TOKENS tokens, rounded down to a multiple of `multiple` frames);
    conditioning frames and noisy frames never share a chunk, nor do frames on either side of a frame index in `cuts`
    (an attention layout's boundaries). Frame slices count from the clip's first frame, token slices from frame
    `origin` (the first frame the residual stream holds: 0, or after a cached condition).
    """

    def __init__(self, grid, num_cond_frames=0, multiple=1, origin=0, cuts=()):
        self.frames, self.frame_tokens = grid[0], grid[1] * grid[2]
        self.num_cond_frames, self.multiple, self.origin = num_cond_frames, multiple, origin
        bounds = sorted({0, self.frames, num_cond_frames, *(c for c in cuts if 0 < c < self.frames)})
        self.segments = list(zip(bounds[:-1], bounds[1:]))

    def __call__(self, parts, start=0, stop=None):
        """Chunks of the frames [start, stop) (stop: the clip's end when None), as a list (not a generator, which
        torch.compile cannot resume across a graph break)."""
        stop = self.frames if stop is None else stop
        step = max(-(-self.frames // parts), -(-MIN_CHUNK_TOKENS // self.frame_tokens))
        step = max(self.multiple, step // self.multiple * self.multiple)
        chunks = []
        for first, end in self.segments:
            for f in range(max(first, start), min(end, stop), step):
                frames = slice(f, min(f + step, end, stop))
                chunks.append((slice((f - self.origin) * self.frame_tokens,
                                     (frames.stop - self.origin) * self.frame_tokens), frames))
        return chunks
