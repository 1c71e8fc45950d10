"""The LongCatDiT constructor arguments a state dict's tensor shapes give, with errors that say what is wrong."""
import math

from .dit_ops import HEAD_DIM


def dit_config_from_state_dict(shapes):
    """LongCatDiT constructor arguments read off tensor shapes ({key: shape}); ValueError if not a LongCat DiT."""
    required = ["x_embedder.proj.weight", "t_embedder.mlp.0.weight", "y_embedder.y_proj.0.weight",
                "blocks.0.attn.qkv.weight", "blocks.0.attn.q_norm.weight", "blocks.0.ffn.w1.weight",
                "blocks.0.pre_crs_attn_norm.weight", "final_layer.linear.weight"]
    block_ids = {int(k.split(".")[1]) for k in shapes if k.startswith("blocks.") and k.split(".")[1].isdigit()}
    if block_ids and block_ids != set(range(max(block_ids) + 1)):
        absent = sorted(set(range(max(block_ids) + 1)) - block_ids)
        raise ValueError(f"blocks {block_ranges(absent)} missing: block indices must run 0..n-1 without a gap "
                         f"(the file holds blocks {block_ranges(sorted(block_ids))})")
    missing = [k for k in required if k not in shapes]
    if len(missing) == len(required):
        found = ", ".join(list(shapes)[:3]) or "no keys at all"
        raise ValueError(f"not a LongCat-Video DiT state dict: none of its keys are present (found {found})")
    if missing:
        raise ValueError(f"not a LongCat-Video DiT state dict: missing {', '.join(missing)}")
    proj = tuple(shapes["x_embedder.proj.weight"])
    if len(proj) != 5:
        raise ValueError(f"not a LongCat-Video DiT state dict: x_embedder.proj.weight has shape {proj}, "
                         "expected a Conv3d weight [hidden, in, pt, ph, pw]")
    head_dim = tuple(shapes["blocks.0.attn.q_norm.weight"])
    if head_dim != (HEAD_DIM,):
        raise ValueError(f"not a LongCat-Video DiT state dict: attention head dim {head_dim}, expected {HEAD_DIM}")
    hidden_size, in_channels, patch_size = proj[0], proj[1], proj[2:]
    if hidden_size % HEAD_DIM:
        raise ValueError(f"not a LongCat-Video DiT state dict: hidden size {hidden_size} is not a multiple "
                         f"of the head dim {HEAD_DIM}")
    depth = len(block_ids)
    t_embed, frequency_embedding_size = shapes["t_embedder.mlp.0.weight"]
    return dict(
        hidden_size=hidden_size,
        depth=depth,
        num_heads=hidden_size // HEAD_DIM,
        caption_channels=shapes["y_embedder.y_proj.0.weight"][1],
        adaln_tembed_dim=t_embed,
        ffn_hidden=shapes["blocks.0.ffn.w1.weight"][0],
        in_channels=in_channels,
        out_channels=shapes["final_layer.linear.weight"][0] // math.prod(patch_size),
        patch_size=tuple(patch_size),
        frequency_embedding_size=frequency_embedding_size,
    )


def block_ranges(indices):
    """Sorted block indices as short ranges: [0, 1, 2, 5] -> "0..2, 5"."""
    runs = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in runs)
