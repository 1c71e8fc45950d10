"""Reading model files the way the tests want them: a file's tensor shapes from its header alone, a whole DiT
built from a checkpoint outside ComfyUI (the nodes stream into ComfyUI's model instead: checkpoint.fill_parameters)."""
import torch

from .pack import register_pack

register_pack()
from longcat_pack.nodes.core.checkpoint import CheckpointError, fill_parameters, open_dit_checkpoint  # noqa: E402
from longcat_pack.nodes.core.avatar.avatar_dit import dit_class  # noqa: E402
from longcat_pack.nodes.core.safetensors_file import read_safetensors_header  # noqa: E402


def tensor_shapes(path):
    """{name: shape} of a .safetensors file, read from its header only."""
    header, _ = read_safetensors_header(str(path))
    return {k: tuple(v["shape"]) for k, v in header.items()}


def load_dit(path, dtype=None, device="cpu", operations=torch.nn, progress=None):
    """A LongCatDiT (or the avatar DiT) built from a checkpoint, each tensor streamed into its parameter (default dtype: fp32)."""
    dtype = dtype or torch.get_default_dtype()
    ckpt = open_dit_checkpoint(path, dtype=dtype, progress=progress)
    if ckpt.plan.quantized:
        raise CheckpointError(path, "quantized checkpoints run on ComfyUI's quantized ops: load it with Load LongCat "
                                    "DiT inside ComfyUI")
    model = dit_class(ckpt.config)(**ckpt.config, dtype=dtype, device="meta",
                                   operations=operations).to_empty(device=device)
    return fill_parameters(model, ckpt)
