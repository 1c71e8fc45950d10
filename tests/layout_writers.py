"""The tiny golden DiT and LoRAs rewritten in the exact key layouts other projects write, from their own code and
independently of the pack's tables (a wrong table entry in the pack must not be mirrored here):
- WanVideoWrapper / Kijai: the parameter names of kijai/ComfyUI-WanVideoWrapper's WanModel with is_longcat
  (wanvideo/modules/model.py, LongCat/layers.py); its LoRAs in ComfyUI's `diffusion_model.` / `lora_unet_` key
  styles with `.alpha`, the refinement LoRA's modulation layers as dense `.diff` deltas;
- FastVideo: scripts/checkpoint_conversion/longcat_to_fastvideo.py (convert_transformer_weights and
  convert_lora_weights: split q/k/v, `lora_A`/`lora_B` without `.weight`, `lora_alpha` = alpha_scale * rank; its
  earlier scripts wrote `alpha_scale` itself);
- DiffSynth / PEFT: `.lora_A.default.weight` on the native modules, alpha from adapter_config.json;
- quantized forms: Kijai's scaled fp8 (`scale_weight` per layer + `scaled_fp8` marker), plain fp8 storage, and
  ComfyUI's per-layer format (`weight_scale` + `comfy_quant` JSON).
"""
import json
import re

import torch
from safetensors.torch import load_file, save_file

FP8_MAX = 448.0  # largest finite float8_e4m3fn

WAN_GLOBAL = {"x_embedder.proj": "patch_embedding", "t_embedder.mlp.0": "time_embedding.mlp.0",
              "t_embedder.mlp.2": "time_embedding.mlp.2", "y_embedder.y_proj.0": "text_embedding.0",
              "y_embedder.y_proj.2": "text_embedding.2", "final_layer.adaLN_modulation.1": "head.modulation.1",
              "final_layer.linear": "head.head"}
WAN_BLOCK = {"adaLN_modulation.1": "modulation.1", "attn.proj": "self_attn.o", "attn.q_norm": "self_attn.norm_q",
             "attn.k_norm": "self_attn.norm_k", "pre_crs_attn_norm": "norm3", "cross_attn.q_linear": "cross_attn.q",
             "cross_attn.proj": "cross_attn.o", "cross_attn.q_norm": "cross_attn.norm_q",
             "cross_attn.k_norm": "cross_attn.norm_k", "ffn.w1": "ffn.w1", "ffn.w2": "ffn.w2", "ffn.w3": "ffn.w3"}
WAN_SPLIT = {"attn.qkv": ("self_attn.q", "self_attn.k", "self_attn.v"),
             "cross_attn.kv_linear": ("cross_attn.k", "cross_attn.v")}
# LongCat-Video-Avatar in WanVideoWrapper: its MultiTalk-style audio modules keep the reference names in the blocks,
# the audio projection is `multitalk_audio_proj`.
WAN_BLOCK.update({m: m for m in ("audio_cross_attn.q_linear", "audio_cross_attn.kv_linear", "audio_cross_attn.proj",
                                 "audio_cross_attn.q_norm", "audio_cross_attn.k_norm", "audio_adaLN_modulation.1",
                                 "pre_video_crs_attn_norm", "pre_audio_crs_attn_norm")})
WAN_GLOBAL.update({f"audio_proj.{m}": f"multitalk_audio_proj.{m}" for m in ("proj1", "proj1_vf", "proj2", "proj3",
                                                                            "norm")})

FASTVIDEO_GLOBAL = {"x_embedder.proj": "patch_embed.proj", "t_embedder.mlp.0": "time_embedder.linear_1",
                    "t_embedder.mlp.2": "time_embedder.linear_2", "y_embedder.y_proj.0": "caption_embedder.linear_1",
                    "y_embedder.y_proj.2": "caption_embedder.linear_2",
                    "final_layer.adaLN_modulation.1": "final_layer.adaln_linear", "final_layer.linear": "final_layer.proj"}
FASTVIDEO_BLOCK = {"adaLN_modulation.1": "adaln_linear_1", "attn.proj": "self_attn.to_out",
                   "attn.q_norm": "self_attn.q_norm", "attn.k_norm": "self_attn.k_norm",
                   "pre_crs_attn_norm": "norm_cross", "cross_attn.q_linear": "cross_attn.to_q",
                   "cross_attn.proj": "cross_attn.to_out", "cross_attn.q_norm": "cross_attn.q_norm",
                   "cross_attn.k_norm": "cross_attn.k_norm", "ffn.w1": "ffn.w1", "ffn.w2": "ffn.w2", "ffn.w3": "ffn.w3"}
FASTVIDEO_SPLIT = {"attn.qkv": ("self_attn.to_q", "self_attn.to_k", "self_attn.to_v"),
                   "cross_attn.kv_linear": ("cross_attn.to_k", "cross_attn.to_v")}

LAYOUT_MAPS = {"wanvideo": (WAN_GLOBAL, WAN_BLOCK, WAN_SPLIT),
               "fastvideo": (FASTVIDEO_GLOBAL, FASTVIDEO_BLOCK, FASTVIDEO_SPLIT)}
_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")


def rename_module(module, layout):
    """A native module name in `layout` ("wanvideo" / "fastvideo"): one name, or the split pieces' names."""
    global_map, block_map, split_map = LAYOUT_MAPS[layout]
    m = _BLOCK.match(module)
    if not m:
        return (global_map[module],)
    index, rest = m.groups()
    names = split_map.get(rest) or (block_map[rest],)
    return tuple(f"blocks.{index}.{n}" for n in names)


def convert_checkpoint(native, layout):
    """A native state dict rewritten in `layout`, fused weights split into their row pieces."""
    out = {}
    for key, tensor in native.items():
        module, param = key.rsplit(".", 1)
        names = rename_module(module, layout)
        for name, piece in zip(names, tensor.chunk(len(names), dim=0)):
            out[f"{name}.{param}"] = piece.clone()
    return out


def block_linear_weights(sd):
    """The 2-D weights of the block linears (what Kijai's fp8 files quantize), in any layout."""
    return [k for k, v in sd.items() if k.startswith("blocks.") and k.endswith(".weight") and v.dim() == 2
            and "modulation" not in k and "adaln" not in k]


def scaled_fp8(sd, keys, marker=True):
    """Kijai-style scaled fp8: each weight in `keys` stored as float8_e4m3fn of w / scale with its `scale_weight`
    (scale = amax / 448), the rest kept; a `scaled_fp8` marker tensor as ComfyUI expects it."""
    out = dict(sd)
    for key in keys:
        w = sd[key].float()
        scale = w.abs().max() / FP8_MAX
        out[key] = (w / scale).to(torch.float8_e4m3fn)
        out[key[:-len("weight")] + "scale_weight"] = scale.reshape(1)
    if marker:
        out["scaled_fp8"] = torch.zeros(0, dtype=torch.float8_e4m3fn)
    return out


def comfy_quant_fp8(sd, keys, fmt="float8_e4m3fn"):
    """ComfyUI's per-layer format: fp8 weight, `weight_scale` and a `comfy_quant` JSON tensor per layer."""
    dtype = {"float8_e4m3fn": torch.float8_e4m3fn, "float8_e5m2": torch.float8_e5m2}[fmt]
    out = dict(sd)
    for key in keys:
        layer = key[:-len(".weight")]
        w = sd[key].float()
        scale = w.abs().max() / torch.finfo(dtype).max
        out[key] = (w / scale).to(dtype)
        out[f"{layer}.weight_scale"] = scale
        out[f"{layer}.comfy_quant"] = torch.tensor(list(json.dumps({"format": fmt}).encode()), dtype=torch.uint8)
    return out


def plain_fp8(sd, keys, dtype=torch.float8_e4m3fn):
    return {k: (v.to(dtype) if k in keys else v) for k, v in sd.items()}


def save(sd, path, metadata=None):
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path), metadata=metadata)
    return path


# LoRAs -----------------------------------------------------------------------------------------------------------

def official_modules(path):
    """{native module: (down, [ups], alpha_scale)} of an official-format LoRA file."""
    sd = load_file(str(path))
    modules = {}
    for key, tensor in sd.items():
        stem, _, role = key.partition(".")
        module = stem[len("lora___lorahyphen___"):].replace("___lorahyphen___", ".")
        entry = modules.setdefault(module, {"ups": {}})
        if role == "lora_down.weight":
            entry["down"] = tensor
        elif role == "lora_up.weight":
            entry["ups"][0] = tensor
        elif role.startswith("lora_up.blocks."):
            entry["ups"][int(role.split(".")[2])] = tensor
        else:
            entry["alpha_scale"] = float(tensor)
    return {m: (e["down"], [e["ups"][j] for j in sorted(e["ups"])], e["alpha_scale"]) for m, e in modules.items()}


def official_delta(down, ups, alpha_scale):
    """alpha_scale * blockdiag(ups) @ down: the whole module delta at the reference multiplier 1.0."""
    rank = down.shape[0] // len(ups)
    return torch.cat([alpha_scale * (up.double() @ down[j * rank:(j + 1) * rank].double())
                      for j, up in enumerate(ups)]).float()


def wanvideo_lora(official, path, key_style="diffusion_model."):
    """Kijai's conversion for WanVideoWrapper: split q/k/v, `.alpha` = alpha_scale * rank, and the modules whose
    up is block-structured with no split in Wan names (the adaLN modulations) as dense `.diff` deltas."""
    sd = {}
    for module, (down, ups, alpha_scale) in official.items():
        names = rename_module(module, "wanvideo")
        rank = down.shape[0] // len(ups)
        stems = [n.replace(".", "_") if key_style == "lora_unet_" else n for n in names]
        if len(ups) > 1 and len(names) == 1:
            sd[f"{key_style}{stems[0]}.diff"] = official_delta(down, ups, alpha_scale)
            continue
        for j, stem in enumerate(stems):
            piece_ups = ups[j:j + 1] if len(names) > 1 else ups
            sd[f"{key_style}{stem}.lora_down.weight"] = down[j * rank:(j + 1) * rank] if len(names) > 1 else down
            sd[f"{key_style}{stem}.lora_up.weight"] = piece_ups[0]
            sd[f"{key_style}{stem}.alpha"] = torch.tensor(alpha_scale * rank)
    return save({k: v.clone() for k, v in sd.items()}, path)


def fastvideo_lora(official, path, alpha_key="lora_alpha"):
    """longcat_to_fastvideo.py convert_lora_weights: fused targets split (each piece its rank-r A and block B),
    block-structured single targets as one A with a block-diagonal B, no `.weight`; `lora_alpha` = alpha_scale *
    rank of that A, or (earlier scripts) `alpha_scale` itself."""
    sd = {}
    for module, (down, ups, alpha_scale) in official.items():
        names = rename_module(module, "fastvideo")
        if len(names) > 1:
            rank = down.shape[0] // len(names)
            parts = [(n, down[j * rank:(j + 1) * rank], ups[j]) for j, n in enumerate(names)]
        else:
            parts = [(names[0], down, torch.block_diag(*ups))]
        for name, a, b in parts:
            sd[f"{name}.lora_A"], sd[f"{name}.lora_B"] = a, b
            value = alpha_scale * a.shape[0] if alpha_key == "lora_alpha" else alpha_scale
            sd[f"{name}.{alpha_key}"] = torch.tensor(value, dtype=torch.float32)
    return save({k: v.clone() for k, v in sd.items()}, path)


def peft_lora(official, folder, prefix=""):
    """A DiffSynth / PEFT adapter on the native modules: `<module>.lora_A.default.weight`, block-structured ups as
    one block-diagonal B, and alpha in adapter_config.json (alpha_pattern where the rank differs)."""
    folder.mkdir(parents=True, exist_ok=True)
    sd, alphas, ranks = {}, {}, {}
    for module, (down, ups, alpha_scale) in official.items():
        sd[f"{prefix}{module}.lora_A.default.weight"] = down
        sd[f"{prefix}{module}.lora_B.default.weight"] = torch.block_diag(*ups)
        ranks[module], alphas[module] = down.shape[0], alpha_scale * down.shape[0]
    base_rank = min(ranks.values())
    config = {"peft_type": "LORA", "r": base_rank, "lora_alpha": 0.5 * base_rank,
              "rank_pattern": {m: r for m, r in ranks.items() if r != base_rank},
              "alpha_pattern": {m: a for m, a in alphas.items() if a != 0.5 * base_rank}}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return save({k: v.clone() for k, v in sd.items()}, folder / "adapter_model.safetensors")


# Released-size headers -------------------------------------------------------------------------------------------

def released_shapes(depth=48):
    """{native key: shape} of the released 13.6B DiT (hidden 4096, FFN 11008, t-embed 512; longcat-video.md §2),
    with `depth` blocks."""
    h, f, t = 4096, 11008, 512
    shapes = {"x_embedder.proj.weight": [h, 16, 1, 2, 2], "x_embedder.proj.bias": [h],
              "t_embedder.mlp.0.weight": [t, 256], "t_embedder.mlp.0.bias": [t],
              "t_embedder.mlp.2.weight": [t, t], "t_embedder.mlp.2.bias": [t],
              "y_embedder.y_proj.0.weight": [h, h], "y_embedder.y_proj.0.bias": [h],
              "y_embedder.y_proj.2.weight": [h, h], "y_embedder.y_proj.2.bias": [h],
              "final_layer.adaLN_modulation.1.weight": [2 * h, t], "final_layer.adaLN_modulation.1.bias": [2 * h],
              "final_layer.linear.weight": [64, h], "final_layer.linear.bias": [64]}
    block = {"adaLN_modulation.1.weight": [6 * h, t], "adaLN_modulation.1.bias": [6 * h],
             "attn.qkv.weight": [3 * h, h], "attn.qkv.bias": [3 * h], "attn.q_norm.weight": [128],
             "attn.k_norm.weight": [128], "attn.proj.weight": [h, h], "attn.proj.bias": [h],
             "pre_crs_attn_norm.weight": [h], "pre_crs_attn_norm.bias": [h],
             "cross_attn.q_linear.weight": [h, h], "cross_attn.q_linear.bias": [h],
             "cross_attn.kv_linear.weight": [2 * h, h], "cross_attn.kv_linear.bias": [2 * h],
             "cross_attn.proj.weight": [h, h], "cross_attn.proj.bias": [h], "cross_attn.q_norm.weight": [128],
             "cross_attn.k_norm.weight": [128], "ffn.w1.weight": [f, h], "ffn.w3.weight": [f, h],
             "ffn.w2.weight": [h, f]}
    for i in range(depth):
        shapes.update({f"blocks.{i}.{k}": v for k, v in block.items()})
    return shapes


def write_header_only(path, shapes, dtype="F8_E4M3", item_bytes=1):
    """A safetensors file whose header lists `shapes` and whose data is a sparse hole of the right length: a
    released-size checkpoint (13 GB as fp8) that takes no disk space, for checks made from the header alone."""
    header, offset = {}, 0
    for key, shape in shapes.items():
        size = item_bytes
        for n in shape:
            size *= n
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
        f.truncate(8 + len(raw) + offset)
    return path
