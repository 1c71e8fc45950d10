"""The condition cache in CPU memory, the reference's `offload_kv_cache`: a continuation's condition keys and
values (4.5 GiB at 480p with 4 condition latents in bf16, 48 blocks) stay off the card, and each block's k and v
go to the compute device only while that block runs.

Filling it, each block's (k, v) is copied to CPU memory as soon as it is made, so the whole cache is never on the
card at once. Reading it, on CUDA two device buffers of one block each take turns: while block i runs from one,
block i + 1's k and v are copied into the other on a side stream (asynchronous from page-locked memory), and the
compute stream waits for that copy only when block i + 1 starts. Elsewhere (CPU, MPS) each block's k and v are
handed over as they are needed. Either way the values are the same as the on-card cache's, bit for bit.
"""
import torch

ON_DEVICE_BLOCKS = 2  # blocks of the cache on the compute device at a time while it is read (the two buffers)


class OffloadedKV:
    """Per-block (k, v) in CPU memory. `append` takes a block's (k, v) from the compute device; iterating gives them
    back on that device block by block. pin(tensor) -> bool page-locks a host tensor (unpin releases it)."""

    def __init__(self, pin=None, unpin=None):
        self.pin, self.unpin = pin, unpin
        self.blocks, self.pinned, self.device = [], [], None

    def append(self, kv):
        self.device = kv[0].device
        self.blocks.append(tuple(self._host_copy(t) for t in kv))

    def _host_copy(self, tensor):
        host = torch.empty(tensor.shape, dtype=tensor.dtype, device="cpu")
        if self.pin is not None and self.pin(host):
            self.pinned.append(host)
        host.copy_(tensor)  # synchronous: the device's copy is freed right after
        return host

    def __len__(self):
        return len(self.blocks)

    def __iter__(self):
        if self.device.type == "cuda" and torch.cuda.is_available():
            return self._double_buffered()
        return (tuple(t.to(self.device, non_blocking=True) for t in kv) for kv in self.blocks)

    def _double_buffered(self):
        compute = torch.cuda.current_stream(self.device)
        side = torch.cuda.Stream(self.device)
        buffers = [tuple(torch.empty_like(t, device=self.device) for t in self.blocks[0]) for _ in range(2)]
        ready = [None, None]

        def fetch(i):
            # the buffer's previous block (i - 2) is enqueued on the compute stream by now: copy after it has run
            side.wait_stream(compute)
            with torch.cuda.stream(side):
                for target, source in zip(buffers[i % 2], self.blocks[i]):
                    target.copy_(source, non_blocking=True)
            ready[i % 2] = side.record_event()

        fetch(0)
        for i in range(len(self.blocks)):
            if i + 1 < len(self.blocks):
                fetch(i + 1)  # runs on the side stream while block i computes
            compute.wait_event(ready[i % 2])
            yield buffers[i % 2]

    def release(self):
        """Unpins what was pinned and drops the blocks."""
        for host in self.pinned:
            self.unpin(host)
        self.blocks, self.pinned = [], []

    def nbytes(self):
        return sum(t.nbytes for kv in self.blocks for t in kv)
