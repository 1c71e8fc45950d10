"""Tiny random files in the real on-disk layouts, for demos and end-to-end runs where no real weights exist.
Every file written here is labelled as random noise in its safetensors metadata."""
import torch
from safetensors.torch import save_file

from .avatar.audio_tokens import VAE_SCALE, WINDOW
from .avatar.avatar_dit import dit_class, is_avatar
from .lora_keys import official_stem

NOISE_LABEL = {"longcat_demo": "random noise for demos and tests, not a trained model"}


def lora_target_shapes(config, refinement=False):
    """{module: (out, in, fused pieces)} of the official distill (or refinement) LoRA for a DiT built from `config`
    (LongCatDiT's arguments; depth, hidden_size, ffn_hidden and adaln_tembed_dim are read). For an avatar DiT's
    config, the v1.5 DMD LoRA's: the distill targets, the text cross-attention's proj and the audio layers."""
    depth, hidden, ffn, tembed = (config[k] for k in ("depth", "hidden_size", "ffn_hidden", "adaln_tembed_dim"))
    avatar = is_avatar(config)
    if avatar and refinement:
        raise ValueError("the avatar DiT has no refinement LoRA: its refinement runs on the base DiT")
    shapes = {}
    for i in range(depth):
        b = f"blocks.{i}."
        shapes.update({b + "attn.qkv": (3 * hidden, hidden, 3), b + "attn.proj": (hidden, hidden, 1),
                       b + "cross_attn.q_linear": (hidden, hidden, 1), b + "cross_attn.kv_linear": (2 * hidden, hidden, 2),
                       b + "ffn.w1": (ffn, hidden, 1), b + "ffn.w2": (hidden, ffn, 1), b + "ffn.w3": (ffn, hidden, 1)})
        if refinement:
            shapes[b + "adaLN_modulation.1"] = (6 * hidden, tembed, 6)
        if avatar:
            shapes.update({b + "cross_attn.proj": (hidden, hidden, 1),
                           b + "audio_cross_attn.q_linear": (hidden, hidden, 1),
                           b + "audio_cross_attn.kv_linear": (2 * hidden, config["audio_dim"], 2),
                           b + "audio_cross_attn.proj": (hidden, hidden, 1),
                           b + "audio_adaLN_modulation.1": (3 * hidden, tembed, 3)})
    if refinement:
        shapes["final_layer.adaLN_modulation.1"] = (2 * hidden, tembed, 2)
        shapes["final_layer.linear"] = (64, hidden, 1)
    return shapes


def write_official_lora(path, target_shapes, rank=8, alpha_scale=0.5, seed=0, dtype=torch.float32):
    """A LoRA in the official LongCat key format (`lora_up.blocks.j` for fused targets, 0-dim `alpha_scale`)."""
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for module, (out, inp, pieces) in target_shapes.items():
        stem = official_stem(module)
        sd[f"{stem}.lora_down.weight"] = (torch.randn(pieces * rank, inp, generator=gen) * 0.07).to(dtype)
        ups = [(torch.randn(out // pieces, rank, generator=gen) * 0.07).to(dtype) for _ in range(pieces)]
        if pieces == 1:
            sd[f"{stem}.lora_up.weight"] = ups[0]
        else:
            sd.update({f"{stem}.lora_up.blocks.{j}.weight": up for j, up in enumerate(ups)})
        sd[f"{stem}.alpha_scale"] = torch.tensor(float(alpha_scale))
    save_file(sd, str(path), metadata=NOISE_LABEL)
    return path


TINY_DIT = dict(hidden_size=256, depth=2, num_heads=2, caption_channels=256, adaln_tembed_dim=64, ffn_hidden=768)
# A v1.0-style avatar DiT: its audio projection takes chinese-wav2vec2-base features (12 layers x 768), the
# smallest encoder ComfyUI loads; tiny widths elsewhere.
WAV2VEC2_BASE_GROUPS, WAV2VEC2_BASE_CHANNELS = 12, 768
TINY_AVATAR_DIT = dict(TINY_DIT, audio_window_dim=WINDOW * WAV2VEC2_BASE_GROUPS * WAV2VEC2_BASE_CHANNELS,
                       audio_window_vf_dim=(WINDOW + VAE_SCALE - 1) * WAV2VEC2_BASE_GROUPS * WAV2VEC2_BASE_CHANNELS,
                       audio_intermediate_dim=64, audio_dim=32, audio_context_tokens=4)


def random_dit(config, dtype=torch.float32, device="cpu", seed=0):
    """A LongCatDiT (or avatar DiT, by `config`) with random weights like the golden tiny model's: N(0, 1/fan_in)
    matrices, N(0, 0.05^2) biases, norm weights 1. Built on the meta device first, so a full-size one never exists
    twice."""
    gen = torch.Generator(device=device).manual_seed(seed)
    model = dit_class(config)(**config, dtype=dtype, device="meta").to_empty(device=device)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0, p[0].numel() ** -0.5, generator=gen)
            elif "norm" in name:
                p.fill_(1.0)
            else:
                p.normal_(0, 0.05, generator=gen)
    return model.eval().requires_grad_(False)


def write_demo_dit(path, config=TINY_DIT, seed=0):
    """A DiT checkpoint in the reference key layout (fp32), random (TINY_AVATAR_DIT: an avatar DiT)."""
    save_file({k: v.contiguous() for k, v in random_dit(config, seed=seed).state_dict().items()}, str(path),
              metadata=NOISE_LABEL)
    return path


def write_demo_text_embeddings(path, tokens=12, channels=TINY_DIT["caption_channels"], seed=0):
    """Stand-in for an encoded prompt (`text_embeds` [tokens, channels]), random."""
    gen = torch.Generator().manual_seed(seed)
    save_file({"text_embeds": torch.randn(tokens, channels, generator=gen)}, str(path), metadata=NOISE_LABEL)
    return path
