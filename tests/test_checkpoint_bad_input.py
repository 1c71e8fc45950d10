"""Checkpoints that would load as something else without a word: blocks missing (a gap, or fewer than the model
has), scaled-fp8 scales that are not one positive finite number, an empty shard index. Each is a CheckpointError
naming the file and what is wrong, in every layout and quantized form."""
import json

import pytest
import torch
from safetensors.torch import load_file

from longcat_pack.nodes.core.checkpoint import INDEX_NAME, CheckpointError, open_dit_checkpoint
from layout_writers import (block_linear_weights, comfy_quant_fp8, convert_checkpoint, released_shapes, rename_module,
                            save, scaled_fp8, write_header_only)
from test_checkpoint import write_sharded
from test_checkpoint_layouts import expect_error


@pytest.fixture(scope="module")
def native(golden_dir):
    return load_file(str(golden_dir / "tiny_dit.safetensors"))


def three_blocks(native):
    """The tiny DiT with a third block (a copy of block 1), so a middle block can go missing."""
    extra = {k.replace("blocks.1.", "blocks.2.", 1): v.clone() for k, v in native.items() if k.startswith("blocks.1.")}
    return {**native, **extra}


def in_form(sd, form):
    if form == "native":
        return sd
    if form == "scaled_fp8":
        wan = convert_checkpoint(sd, "wanvideo")
        return scaled_fp8(wan, block_linear_weights(wan))
    return convert_checkpoint(sd, form)


@pytest.mark.parametrize("form", ["native", "wanvideo", "fastvideo", "scaled_fp8"])
def test_a_gap_in_the_blocks_names_the_missing_block(tmp_path, native, form):
    sd = in_form({k: v for k, v in three_blocks(native).items() if not k.startswith("blocks.1.")}, form)
    expect_error(save(sd, tmp_path / f"gap_{form}.safetensors"), "blocks 1 missing",
                 "the file holds blocks 0, 2")


@pytest.mark.parametrize("form", ["native", "wanvideo", "scaled_fp8"])
def test_a_folder_whose_config_has_more_blocks_than_its_weights(tmp_path, native, form):
    """The probe's case: a conversion that lost its last block, beside the config.json that gives the depth."""
    sd = in_form({k: v for k, v in native.items() if not k.startswith("blocks.1.")}, form)
    folder = write_sharded(tmp_path / form, sd)
    (folder / "config.json").write_text(json.dumps({"_class_name": "LongCatVideoTransformer3DModel", "depth": 2}))
    expect_error(folder, "blocks 1 missing: its config.json says the model has 2 blocks, the weights hold blocks 0")
    (folder / "config.json").write_text(json.dumps({"_class_name": "LongCatVideoTransformer3DModel", "depth": 1}))
    assert open_dit_checkpoint(folder).config["depth"] == 1


def test_without_config_a_tiny_model_of_any_depth_loads(tmp_path, native):
    """Sizes other than the released ones have no known depth: a 1-block tiny model is as valid as a 2-block one."""
    sd = {k: v for k, v in native.items() if not k.startswith("blocks.1.")}
    assert open_dit_checkpoint(save(sd, tmp_path / "one_block.safetensors")).config["depth"] == 1


def wan_shapes(shapes):
    """Released-size shapes in WanVideoWrapper's names, fused weights split into their row pieces."""
    out = {}
    for key, shape in shapes.items():
        module, param = key.rsplit(".", 1)
        names = rename_module(module, "wanvideo")
        for name in names:
            out[f"{name}.{param}"] = [shape[0] // len(names), *shape[1:]]
    return out


@pytest.mark.parametrize("layout", ["native", "wanvideo"])
def test_a_released_size_checkpoint_must_have_48_blocks(tmp_path, layout):
    """A 4096-wide checkpoint is the released model: its last block missing is refused (the header is read, the
    13 GB of fp8 data is a sparse hole)."""
    convert = wan_shapes if layout == "wanvideo" else dict
    full = write_header_only(tmp_path / "full.safetensors", convert(released_shapes(48)))
    assert open_dit_checkpoint(full).config["depth"] == 48
    short = write_header_only(tmp_path / "short.safetensors", convert(released_shapes(47)))
    expect_error(short, "blocks 47 missing: the released LongCat-Video DiT of hidden size 4096 has 48 blocks, the "
                        "weights hold blocks 0..46")


@pytest.mark.parametrize("scale,problem", [
    (torch.full((2,), 0.01), "has shape [2]"),
    (torch.tensor([float("nan")]), "is nan"),
    (torch.tensor([float("inf")]), "is inf"),
    (torch.tensor([0.0]), "is 0.0"),
    (torch.tensor([-1.0]), "is -1.0"),
])
def test_bad_scaled_fp8_scales_name_the_layer(tmp_path, native, scale, problem):
    wan = convert_checkpoint(native, "wanvideo")
    sd = scaled_fp8(wan, block_linear_weights(wan))
    sd["blocks.1.ffn.w2.scale_weight"] = scale
    expect_error(save(sd, tmp_path / "bad_scale.safetensors"), f"layer blocks.1.ffn.w2: its scale_weight {problem}")


def test_bad_input_scale_and_comfy_quant_weight_scale(tmp_path, native):
    wan = convert_checkpoint(native, "wanvideo")
    sd = scaled_fp8(wan, block_linear_weights(wan))
    sd["blocks.0.self_attn.q.scale_input"] = torch.tensor([-2.0])
    expect_error(save(sd, tmp_path / "input.safetensors"), "layer blocks.0.self_attn.q: its scale_input is -2.0")
    quant = comfy_quant_fp8(native, block_linear_weights(native))
    quant["blocks.0.ffn.w1.weight_scale"] = torch.tensor(float("nan"))
    expect_error(save(quant, tmp_path / "quant.safetensors"), "layer blocks.0.ffn.w1: its weight_scale is nan")


def test_an_index_with_an_empty_weight_map(tmp_path, native):
    folder = write_sharded(tmp_path / "empty_index", native)
    (folder / INDEX_NAME).write_text(json.dumps({"weight_map": {}}))
    message = expect_error(folder, "its weight_map is empty")
    assert "first keys" not in message


def test_a_file_with_no_tensors(tmp_path):
    message = expect_error(save({}, tmp_path / "nothing.safetensors"), "it holds no tensors")
    assert not message.rstrip().endswith("first keys")
