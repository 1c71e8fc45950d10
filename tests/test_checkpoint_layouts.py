"""Checkpoints in the layouts other projects write become the native model bit for bit; mixed, incomplete and
badly quantized files are refused with a message naming the file, the closest layout and the keys."""
import json

import pytest
import torch
from safetensors.torch import load_file

from longcat_pack.nodes.core.checkpoint import CheckpointError, open_dit_checkpoint
from support.model_files import load_dit
from layout_writers import block_linear_weights, comfy_quant_fp8, convert_checkpoint, plain_fp8, save, scaled_fp8
from test_checkpoint import assert_same, write_sharded
from test_dit_golden import run


@pytest.fixture(scope="module")
def native(golden_dir):
    return load_file(str(golden_dir / "tiny_dit.safetensors"))


def write_layout(tmp_path, native, layout, dtype=None, name=None):
    sd = convert_checkpoint({k: v.to(dtype) if dtype else v for k, v in native.items()}, layout)
    return save(sd, tmp_path / (name or f"{layout}.safetensors"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("layout", ["wanvideo", "fastvideo"])
def test_each_layout_gives_the_native_parameters_bit_for_bit(tmp_path, native, layout, dtype, golden_dir):
    path = write_layout(tmp_path, native, layout, dtype)
    ckpt = open_dit_checkpoint(path)
    assert ckpt.plan.layout.name == layout and not ckpt.plan.quantized
    assert ckpt.config == open_dit_checkpoint(golden_dir / "tiny_dit.safetensors").config
    assert_same(dict(ckpt), {k: v.to(dtype) for k, v in native.items()})
    assert len(ckpt) == 56


def test_prefixed_wan_file_and_fused_pieces_stream_once(tmp_path, native):
    sd = convert_checkpoint(native, "wanvideo")
    path = save({f"model.diffusion_model.{k}": v for k, v in sd.items()}, tmp_path / "prefixed.safetensors")
    keys = [k for k, _ in open_dit_checkpoint(path)]
    assert sorted(keys) == sorted(native) and len(keys) == len(set(keys))


def test_diffusers_transformer_folder_with_config(tmp_path, native):
    """FastVideo/LongCat-Video-T2V-Diffusers: transformer/ with sharded diffusion_pytorch_model files, an index and
    the config FastVideo's converter writes."""
    folder = write_sharded(tmp_path / "transformer", convert_checkpoint(native, "fastvideo"))
    (folder / "config.json").write_text(json.dumps({"_class_name": "LongCatTransformer3DModel", "depth": 2}))
    ckpt = open_dit_checkpoint(folder)
    assert ckpt.plan.layout.name == "fastvideo" and len(ckpt.shards) == 3
    assert_same(dict(ckpt), native)


def test_a_wan_file_reproduces_golden_case_a_without_comfyui(tmp_path, native, golden_dir):
    model = load_dit(write_layout(tmp_path, native, "wanvideo"))
    cases = load_file(str(golden_dir / "cases.safetensors"))
    torch.testing.assert_close(run(model, cases, "a_base"), cases["a_base.out"], atol=1e-4, rtol=1e-4)


def expect_error(path, *patterns):
    with pytest.raises(CheckpointError) as info:
        open_dit_checkpoint(path)
    message = str(info.value)
    assert str(path) in message
    for pattern in patterns:
        assert pattern in message, message
    return message


def test_half_one_layout_half_another(tmp_path, native):
    wan = convert_checkpoint({k: v for k, v in native.items() if k.startswith("blocks.0.")}, "wanvideo")
    rest = {k: v for k, v in native.items() if not k.startswith("blocks.0.")}
    path = save({**wan, **rest}, tmp_path / "mixed.safetensors")
    expect_error(path, "mixes two layouts", "native LongCat", "WanVideoWrapper", "blocks.0.cross_attn.o.weight")


def test_one_split_piece_missing_names_it_in_the_files_layout(tmp_path, native):
    sd = convert_checkpoint(native, "wanvideo")
    del sd["blocks.1.self_attn.v.weight"]
    path = save(sd, tmp_path / "incomplete.safetensors")
    expect_error(path, "1 keys of the WanVideoWrapper / Kijai", "missing (blocks.1.self_attn.v.weight)")


def test_one_plain_tensor_missing_and_one_extra(tmp_path, native):
    sd = convert_checkpoint(native, "fastvideo")
    del sd["blocks.0.norm_cross.bias"]
    sd["blocks.0.self_attn.rope.freqs"] = torch.zeros(4)
    path = save(sd, tmp_path / "partial.safetensors")
    expect_error(path, "FastVideo", "missing (blocks.0.norm_cross.bias)", "not in the FastVideo",
                 "blocks.0.self_attn.rope.freqs")


def test_split_pieces_of_different_shapes(tmp_path, native):
    sd = convert_checkpoint(native, "wanvideo")
    sd["blocks.0.self_attn.k.weight"] = torch.zeros(128, 256)
    expect_error(save(sd, tmp_path / "shapes.safetensors"), "pieces of blocks.0.attn.qkv.weight",
                 "blocks.0.self_attn.k.weight")


def test_unknown_layout(tmp_path):
    path = save({"double_blocks.0.img_attn.qkv.weight": torch.zeros(8, 4)}, tmp_path / "flux.safetensors")
    expect_error(path, "not a LongCat-Video DiT checkpoint in any known layout", "WanVideoWrapper", "FastVideo")


def test_kijai_scaled_fp8_plan(tmp_path, native):
    """Kijai's _scaled files: each block linear fp8 with its scale_weight. They become ComfyUI's per-layer format
    (weight_scale + comfy_quant {"format": "float8_e4m3fn"}); split q/k/v keep their own scales, so the fused
    linears stay split."""
    sd = convert_checkpoint(native, "wanvideo")
    path = save(scaled_fp8(sd, block_linear_weights(sd)), tmp_path / "scaled.safetensors")
    ckpt = open_dit_checkpoint(path)
    assert ckpt.plan.layout.name == "wanvideo"
    assert ckpt.plan.quantized["blocks.0.attn.qkv.parts.1"] == {"format": "float8_e4m3fn"}
    assert ckpt.plan.quantized["blocks.1.ffn.w2"] == {"format": "float8_e4m3fn"}
    assert "blocks.0.adaLN_modulation.1" not in ckpt.plan.quantized
    assert ckpt.config["split_fused"] == ["blocks.0.attn.qkv", "blocks.0.cross_attn.kv_linear",
                                          "blocks.1.attn.qkv", "blocks.1.cross_attn.kv_linear"]
    got = dict(ckpt)
    assert got["blocks.0.attn.qkv.parts.1.weight"].dtype == torch.float8_e4m3fn
    assert torch.equal(got["blocks.0.attn.qkv.parts.1.weight_scale"], sd_scale(path, "blocks.0.self_attn.k"))
    assert json.loads(got["blocks.1.ffn.w2.comfy_quant"].numpy().tobytes()) == {"format": "float8_e4m3fn"}
    assert "scaled_fp8" not in got and not any(k.endswith("scale_weight") for k in got)
    with pytest.raises(CheckpointError, match="quantized checkpoints run on ComfyUI's quantized ops"):
        load_dit(path)


def sd_scale(path, layer):
    return load_file(str(path))[f"{layer}.scale_weight"]


def test_native_scaled_fp8_stays_fused(tmp_path, native):
    path = save(scaled_fp8(native, block_linear_weights(native)), tmp_path / "native_scaled.safetensors")
    ckpt = open_dit_checkpoint(path)
    assert "split_fused" not in ckpt.config and ckpt.plan.quantized["blocks.0.attn.qkv"]["format"] == "float8_e4m3fn"


def test_a_scaled_file_without_its_scales(tmp_path, native):
    sd = convert_checkpoint(native, "wanvideo")
    scaled = scaled_fp8(sd, block_linear_weights(sd))
    del scaled["blocks.1.cross_attn.o.scale_weight"]
    expect_error(save(scaled, tmp_path / "lost_one.safetensors"), "1 fp8 weights have no scale_weight",
                 "blocks.1.cross_attn.o.weight")
    marker_only = {k: v for k, v in scaled.items() if not k.endswith("scale_weight")}
    expect_error(save(marker_only, tmp_path / "no_scales.safetensors"), "marked as scaled fp8",
                 "holds no scale_weight")


def test_comfy_quant_layers_without_weight_scale(tmp_path, native):
    quant = comfy_quant_fp8(native, block_linear_weights(native))
    del quant["blocks.0.ffn.w1.weight_scale"]
    expect_error(save(quant, tmp_path / "quant.safetensors"), "quantized layer blocks.0.ffn.w1", "no weight_scale")


def test_quantization_metadata_table(tmp_path, native):
    """ComfyUI's other spelling of the per-layer format: the layer table in the file's _quantization_metadata."""
    keys = block_linear_weights(native)
    quant = {k: v for k, v in comfy_quant_fp8(native, keys, "float8_e5m2").items() if not k.endswith("comfy_quant")}
    table = {"layers": {k[:-len(".weight")]: {"format": "float8_e5m2"} for k in keys}}
    ckpt = open_dit_checkpoint(save(quant, tmp_path / "meta.safetensors",
                                    metadata={"_quantization_metadata": json.dumps(table)}))
    assert ckpt.plan.quantized["blocks.0.ffn.w3"] == {"format": "float8_e5m2"}
    assert "blocks.0.ffn.w3.comfy_quant" in dict(ckpt)


def test_quantized_norm_is_refused(tmp_path, native):
    sd = dict(native)
    sd["blocks.0.attn.q_norm.weight"] = sd["blocks.0.attn.q_norm.weight"].to(torch.float8_e4m3fn)
    sd["blocks.0.attn.q_norm.scale_weight"] = torch.ones(1)
    expect_error(save(sd, tmp_path / "qnorm.safetensors"), "blocks.0.attn.q_norm is quantized",
                 "only linear layers")


def test_plain_fp8_storage_is_no_quantization(tmp_path, native):
    sd = convert_checkpoint(native, "wanvideo")
    path = save(plain_fp8(sd, block_linear_weights(sd)), tmp_path / "fp8.safetensors")
    ckpt = open_dit_checkpoint(path)
    assert not ckpt.plan.quantized and ckpt.stored_dtype == torch.float8_e4m3fn
    got = dict(ckpt)
    qkv = torch.cat([native["blocks.0.attn.qkv.weight"].chunk(3)[j].to(torch.float8_e4m3fn) for j in range(3)])
    assert got["blocks.0.attn.qkv.weight"].dtype == torch.float8_e4m3fn
    assert torch.equal(got["blocks.0.attn.qkv.weight"].view(torch.uint8), qkv.view(torch.uint8))


def test_fastvideo_converter_output_folder_and_its_config(tmp_path, native):
    """longcat_to_fastvideo.py writes transformer/model.safetensors + config.json (no index); the config must name
    a LongCat transformer of the weights' size."""
    folder = tmp_path / "transformer"
    folder.mkdir()
    save(convert_checkpoint(native, "fastvideo"), folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({"_class_name": "LongCatTransformer3DModel", "depth": 2,
                                                    "hidden_size": 256}))
    assert_same(dict(open_dit_checkpoint(folder)), native)
    (folder / "config.json").write_text(json.dumps({"_class_name": "WanTransformer3DModel"}))
    expect_error(folder, "config.json names WanTransformer3DModel, not a LongCat-Video transformer")
    (folder / "config.json").write_text(json.dumps({"_class_name": "LongCatTransformer3DModel", "depth": 48}))
    expect_error(folder, "blocks 2..47 missing: its config.json says the model has 48 blocks, the weights hold "
                         "blocks 0..1")
