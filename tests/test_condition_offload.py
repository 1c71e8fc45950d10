"""The condition cache in CPU memory (core condition_offload): each block's keys and values leave the device as
soon as the condition has made them, come back block by block as the blocks run, and give the outputs of the
cache held on the device bit for bit (golden case b: a clean condition frame at t = 0)."""
import pytest
import torch

from longcat_pack.nodes.core.condition_attention import ConditionCache
from longcat_pack.nodes.core.condition_offload import OffloadedKV
from test_dit_golden import build_model, golden, inputs, weights  # noqa: F401  (fixtures)

CUDA = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(),
                                          reason="the double-buffered CUDA stream path needs a GPU")]


def host_pinning():
    """pin / unpin as ComfyUI's pin_memory does it: page-lock a host tensor's memory in place."""
    cudart = torch.cuda.cudart()
    return (lambda t: cudart.cudaHostRegister(t.data_ptr(), t.nbytes, 0) == 0,
            lambda t: cudart.cudaHostUnregister(t.data_ptr()))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_offloaded_cache_gives_the_outputs_of_the_cache_on_the_device(weights, golden, device):  # noqa: F811
    _, tensors = golden
    model = build_model(weights).to(device)
    x, t, text, mask = (v.to(device) for v in inputs(tensors, "b_per_frame_t"))
    pinning = host_pinning() if device == "cuda" else ()
    offloaded = ConditionCache(True, *pinning)
    with torch.no_grad():
        expected = model(x, t, text, mask, num_cond_latents=1, condition_cache=ConditionCache())
        first = model(x, t, text, mask, num_cond_latents=1, condition_cache=offloaded)  # fills the cache
        again = model(x, t, text, mask, num_cond_latents=1, condition_cache=offloaded)  # reads it back
    store = offloaded.kv
    assert isinstance(store, OffloadedKV) and len(store) == len(model.blocks)
    assert all(part.device.type == "cpu" for kv in store.blocks for part in kv)
    assert len(store.pinned) == (2 * len(model.blocks) if device == "cuda" else 0)
    assert torch.equal(first, expected) and torch.equal(again, expected)
    offloaded.release()
    assert offloaded.kv is None and store.blocks == [] and store.pinned == []


def test_offloaded_blocks_come_back_in_order_on_the_device():
    store = OffloadedKV()
    blocks = [(torch.full((1, 2, 3, 4), float(i)), torch.full((1, 2, 3, 4), -float(i))) for i in range(3)]
    for kv in blocks:
        store.append(kv)
    assert all(k.data_ptr() != blocks[0][0].data_ptr() for k, _ in store.blocks)  # copies, not the device's own
    assert [tuple(t.tolist() for t in kv) for kv in store] == [tuple(t.tolist() for t in kv) for kv in blocks]
