"""Every supported LoRA format becomes the same description: targets, row slices, ranks, alpha/rank."""
import os

import pytest
import torch
from safetensors.torch import load_file

from longcat_pack.nodes.core import lora_files
from longcat_pack.nodes.core.demo_files import lora_target_shapes
from longcat_pack.nodes.core.lora_files import inspect_lora, read_lora
from longcat_pack.nodes.core.safetensors_file import ModelFileError
from support.model_files import tensor_shapes
from lora_writers import dense_delta, random_factor, write_kohya, write_official, write_peft, \
    write_sparse_official

IN = 256


@pytest.fixture(scope="module")
def model_shapes(golden_dir):
    return tensor_shapes(golden_dir / "tiny_dit.safetensors")


def factor_rows(description, module, strength):
    """(rows, up, down, scale) of each factor, scaled by the strength rule the patcher applies."""
    return [(f.rows or (0, f.up.shape[0]), f.up, f.down, description.scale_for(f, strength))
            for f in description.targets[module]]


def test_official_distill_layout(golden_dir, model_shapes):
    d = read_lora(golden_dir / "lora_distill.safetensors", model_shapes)
    assert d.format == "longcat"
    assert d.ranks == [8]
    assert d.default_strength == 0.5
    assert d.exceptions == {}
    assert len(d.targets) == 14 and not d.skipped_keys and d.layout == "native"
    qkv = d.targets["blocks.0.attn.qkv"]
    assert [f.rows for f in qkv] == [(0, 256), (256, 512), (512, 768)]
    kv = d.targets["blocks.1.cross_attn.kv_linear"]
    assert [f.rows for f in kv] == [(0, 256), (256, 512)]
    assert d.targets["blocks.0.ffn.w2"][0].rows is None


def test_official_delta_matches_golden(golden_dir):
    """At strength = the file's default, the dense delta equals the reference's stored delta."""
    d = read_lora(golden_dir / "lora_distill.safetensors")
    cases = load_file(str(golden_dir / "cases.safetensors"))
    for module, out in (("blocks.0.attn.qkv", 768), ("blocks.0.cross_attn.kv_linear", 512)):
        delta = dense_delta(factor_rows(d, module, d.default_strength), out, IN)
        torch.testing.assert_close(delta.float(), cases[f"delta.{module}"], atol=1e-6, rtol=1e-5)


def test_official_refine_layout_and_exception(golden_dir, model_shapes):
    d = read_lora(golden_dir / "lora_refine.safetensors", model_shapes)
    assert len(d.targets) == 18
    assert d.default_strength == 0.5
    assert d.exceptions == {"blocks.1.ffn.w2": 0.25}
    w2 = d.targets["blocks.1.ffn.w2"][0]
    assert d.scale_for(w2, 0.5) == pytest.approx(0.25)
    assert d.scale_for(w2, 1.0) == pytest.approx(0.5)
    assert len(d.targets["blocks.0.adaLN_modulation.1"]) == 6
    assert [f.rows for f in d.targets["final_layer.adaLN_modulation.1"]] == [(0, 256), (256, 512)]
    assert d.targets["final_layer.linear"][0].rows is None


def test_official_bf16_resave(golden_dir, tmp_path):
    sd = load_file(str(golden_dir / "lora_distill.safetensors"))
    from safetensors.torch import save_file
    save_file({k: (v.bfloat16() if v.dim() else v) for k, v in sd.items()}, str(tmp_path / "bf16.safetensors"))
    d = read_lora(tmp_path / "bf16.safetensors")
    assert d.dtype == "bf16" and d.default_strength == 0.5 and len(d.targets) == 14
    assert d.targets["blocks.0.attn.qkv"][0].down.dtype == torch.bfloat16


@pytest.mark.parametrize("prefix", ["lora_unet_", "diffusion_model."])
def test_kohya(tmp_path, prefix, model_shapes):
    g = torch.Generator().manual_seed(0)
    down, (up,) = random_factor(768, IN, 4, g)
    down2, (up2,) = random_factor(256, 768, 4, g)
    path = write_kohya(tmp_path / "k.safetensors", {"blocks.0.attn.qkv": (down, up, 2.0),
                                                    "blocks.1.ffn.w2": (down2, up2, 4.0)}, prefix=prefix)
    d = read_lora(path, model_shapes)
    assert d.format == "kohya" and d.ranks == [4]
    assert d.module_ratios == {"blocks.0.attn.qkv": 0.5, "blocks.1.ffn.w2": 1.0}
    f = d.targets["blocks.0.attn.qkv"][0]
    assert f.rows is None and torch.equal(f.down, down) and torch.equal(f.up, up)


def test_peft_alpha_key_and_prefixes(tmp_path, model_shapes):
    g = torch.Generator().manual_seed(1)
    a, (b,) = random_factor(256, IN, 8, g)
    path = write_peft(tmp_path / "p.safetensors", {"blocks.1.attn.proj": (a, b, 4.0)}, prefix="base_model.model.")
    d = read_lora(path, model_shapes)
    assert d.format == "peft" and d.default_strength == 0.5
    assert list(d.targets) == ["blocks.1.attn.proj"]


def test_peft_adapter_config_alpha(tmp_path):
    g = torch.Generator().manual_seed(2)
    a, (b,) = random_factor(256, IN, 8, g)
    a2, (b2,) = random_factor(768, IN, 8, g)
    path = write_peft(tmp_path / "adapter_model.safetensors",
                      {"blocks.0.attn.proj": (a, b, None), "blocks.1.attn.proj": (a, b, None),
                       "blocks.0.ffn.w1": (a2, b2, None)},
                      adapter_config={"r": 8, "lora_alpha": 16, "alpha_pattern": {"blocks.0.ffn.w1": 4}})
    d = read_lora(path)
    assert d.default_strength == 2.0
    assert d.module_ratios["blocks.0.ffn.w1"] == 0.5


def test_no_alpha_means_alpha_equals_rank(tmp_path):
    g = torch.Generator().manual_seed(3)
    a, (b,) = random_factor(256, IN, 8, g)
    d = read_lora(write_peft(tmp_path / "n.safetensors", {"blocks.0.attn.proj": (a, b, None)}))
    assert d.default_strength == 1.0 and d.module_ratios == {"blocks.0.attn.proj": 1.0}


def test_split_qkv_and_kv_onto_fused_rows(tmp_path, model_shapes):
    g = torch.Generator().manual_seed(4)
    modules = {}
    for name in ("attn.q", "attn.k", "attn.v"):
        down, ups = random_factor(256, IN, 4, g)
        modules[f"blocks.0.{name}"] = (down, ups, 0.5)
    for name in ("cross_attn.k_linear", "cross_attn.v_linear"):
        down, ups = random_factor(256, IN, 4, g)
        modules[f"blocks.1.{name}"] = (down, ups, 0.25)
    d = read_lora(write_official(tmp_path / "split.safetensors", modules), model_shapes)
    assert d.format == "longcat+split"
    assert sorted(d.targets) == ["blocks.0.attn.qkv", "blocks.1.cross_attn.kv_linear"]
    assert sorted(f.rows for f in d.targets["blocks.0.attn.qkv"]) == [(0, 256), (256, 512), (512, 768)]
    k = [f for f in d.targets["blocks.0.attn.qkv"] if f.rows == (256, 512)][0]
    assert torch.equal(k.down, modules["blocks.0.attn.k"][0])
    assert sorted(f.rows for f in d.targets["blocks.1.cross_attn.kv_linear"]) == [(0, 256), (256, 512)]
    assert d.default_strength == 0.5 and d.exceptions == {"blocks.1.cross_attn.k_linear": 0.25,
                                                          "blocks.1.cross_attn.v_linear": 0.25}


def test_split_with_kohya_alpha(tmp_path, model_shapes):
    g = torch.Generator().manual_seed(5)
    modules = {}
    for name in ("attn.q", "attn.k", "attn.v"):
        down, (up,) = random_factor(256, IN, 4, g)
        modules[f"blocks.1.{name}"] = (down, up, 4.0)
    d = read_lora(write_kohya(tmp_path / "s.safetensors", modules), model_shapes)
    assert d.format == "kohya+split" and d.default_strength == 1.0
    assert len(d.targets["blocks.1.attn.qkv"]) == 3


def test_targets_this_model_lacks_are_an_error_not_a_partial_apply(tmp_path, model_shapes):
    """A LoRA for a deeper model (blocks.30 on a 2-block DiT) is refused whole; it used to be applied in part."""
    g = torch.Generator().manual_seed(6)
    down, (up,) = random_factor(256, IN, 4, g)
    path = write_kohya(tmp_path / "deep.safetensors", {"blocks.0.attn.proj": (down, up, None),
                                                       "blocks.30.attn.proj": (down, up, None)})
    with pytest.raises(ModelFileError, match=r"deep.safetensors.*1 of its 2 target modules are not in this model "
                                             r"\(blocks.30.attn.proj\).*not applied in part"):
        read_lora(path, model_shapes)


def test_text_encoder_keys_are_skipped_and_listed(tmp_path):
    g = torch.Generator().manual_seed(7)
    down, (up,) = random_factor(256, IN, 4, g)
    from safetensors.torch import save_file
    te_keys = ["lora_te_text_model_encoder_layers_0.lora_down.weight", "text_encoder.encoder.block.0.q.lora_A.weight"]
    save_file({"lora_unet_blocks_0_attn_proj.lora_down.weight": down,
               "lora_unet_blocks_0_attn_proj.lora_up.weight": up,
               **{k: down.clone() for k in te_keys}}, str(tmp_path / "u.safetensors"))
    d = read_lora(tmp_path / "u.safetensors")
    assert d.skipped_keys == {"text encoder": sorted(te_keys)}
    assert list(d.targets) == ["blocks.0.attn.proj"]


def test_keys_that_match_no_dit_target_are_an_error(tmp_path):
    """A norm is no LoRA target, a Wan I2V image-attention key does not exist in LongCat: naming either refuses
    the whole file (no silent half-apply)."""
    g = torch.Generator().manual_seed(7)
    down, (up,) = random_factor(256, IN, 4, g)
    for stray in ("blocks.0.cross_attn.k_img", "blocks.0.self_attn.norm_q"):
        path = write_kohya(tmp_path / "stray.safetensors", {"blocks.0.attn.proj": (down, up, 4.0), stray: (down, up, 4.0)},
                           prefix="diffusion_model.")
        with pytest.raises(ModelFileError, match=rf"stray.safetensors: 3 keys match no LoRA target.*{stray}"):
            read_lora(path)


def test_inspect_reads_header_only_and_agrees(golden_dir):
    full = read_lora(golden_dir / "lora_refine.safetensors")
    info = inspect_lora(golden_dir / "lora_refine.safetensors")
    assert info.targets == {}
    assert (info.format, info.ranks, info.default_strength, info.exceptions, info.factor_count) == \
           (full.format, full.ranks, full.default_strength, full.exceptions,
            sum(len(v) for v in full.targets.values()))
    assert info.factor_count == 2 * (3 + 1 + 1 + 2 + 3 + 6) + 2 + 1  # qkv proj q kv ffn adaLN, final


def test_inspecting_a_full_size_file_reads_only_the_alpha_scalars(tmp_path, monkeypatch):
    """The official distill LoRA at full LongCat size (2.5 GB of fp32 factors; a sparse file here): the inspection
    behind the slider default asks for its alpha_scale scalars and no factor tensor."""
    shapes = lora_target_shapes(dict(depth=48, hidden_size=4096, ffn_hidden=11008, adaln_tembed_dim=512))
    path = write_sparse_official(tmp_path / "distill_full.safetensors", shapes, rank=128, alpha_scale=0.5)
    assert os.path.getsize(path) > 2.5e9
    asked = []
    real_load = lora_files.load_tensors
    monkeypatch.setattr(lora_files, "load_tensors",
                        lambda p, names=None, **kwargs: asked.append(names) or real_load(p, names, **kwargs))
    info = inspect_lora(path)
    assert (info.format, info.ranks, info.default_strength) == ("longcat", [128], 0.5)
    assert info.factor_count == 48 * (3 + 1 + 1 + 2 + 1 + 1 + 1)
    assert len(asked) == 1 and len(asked[0]) == len(shapes)
    assert all(name.endswith(".alpha_scale") for name in asked[0])


def test_each_reading_parses_the_header_once(golden_dir, monkeypatch):
    """The header is the reader's main cost (and holds the interpreter lock): once per inspection or read."""
    from longcat_pack.nodes.core import safetensors_file
    calls = []
    real = safetensors_file.read_safetensors_header

    def counted(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(safetensors_file, "read_safetensors_header", counted)
    monkeypatch.setattr(lora_files, "read_safetensors_header", counted)
    inspect_lora(golden_dir / "lora_distill.safetensors")
    read_lora(golden_dir / "lora_distill.safetensors")
    assert len(calls) == 2


def test_no_match_at_all_is_an_error(tmp_path, model_shapes):
    g = torch.Generator().manual_seed(8)
    down, (up,) = random_factor(256, IN, 4, g)
    path = write_kohya(tmp_path / "far.safetensors", {"blocks.40.attn.proj": (down, up, None)})
    with pytest.raises(ModelFileError, match="far.safetensors.*none of its 1 target modules exist"):
        read_lora(path, model_shapes)
