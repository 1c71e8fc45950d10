"""Tiny random files in the real on-disk layouts, for demos and end-to-end runs where no real weights exist.
Every file written here is labelled as random noise in its safetensors metadata."""
import torch
from safetensors.torch import save_file

from .lora_files import OFFICIAL_DOT, OFFICIAL_PREFIX

NOISE_LABEL = {"longcat_demo": "random noise for demos and tests, not a trained model"}


def lora_target_shapes(depth, hidden, ffn, tembed, refinement=False):
    """{module: (out, in, fused pieces)} of the official distill (or refinement) LoRA for a DiT of this size."""
    shapes = {}
    for i in range(depth):
        b = f"blocks.{i}."
        shapes.update({b + "attn.qkv": (3 * hidden, hidden, 3), b + "attn.proj": (hidden, hidden, 1),
                       b + "cross_attn.q_linear": (hidden, hidden, 1), b + "cross_attn.kv_linear": (2 * hidden, hidden, 2),
                       b + "ffn.w1": (ffn, hidden, 1), b + "ffn.w2": (hidden, ffn, 1), b + "ffn.w3": (ffn, hidden, 1)})
        if refinement:
            shapes[b + "adaLN_modulation.1"] = (6 * hidden, tembed, 6)
    if refinement:
        shapes["final_layer.adaLN_modulation.1"] = (2 * hidden, tembed, 2)
        shapes["final_layer.linear"] = (64, hidden, 1)
    return shapes


def write_official_lora(path, target_shapes, rank=8, alpha_scale=0.5, seed=0, dtype=torch.float32):
    """A LoRA in the official LongCat key format (`lora_up.blocks.j` for fused targets, 0-dim `alpha_scale`)."""
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for module, (out, inp, pieces) in target_shapes.items():
        stem = OFFICIAL_PREFIX + module.replace(".", OFFICIAL_DOT)
        sd[f"{stem}.lora_down.weight"] = (torch.randn(pieces * rank, inp, generator=gen) * 0.07).to(dtype)
        ups = [(torch.randn(out // pieces, rank, generator=gen) * 0.07).to(dtype) for _ in range(pieces)]
        if pieces == 1:
            sd[f"{stem}.lora_up.weight"] = ups[0]
        else:
            sd.update({f"{stem}.lora_up.blocks.{j}.weight": up for j, up in enumerate(ups)})
        sd[f"{stem}.alpha_scale"] = torch.tensor(float(alpha_scale))
    save_file(sd, str(path), metadata=NOISE_LABEL)
    return path
