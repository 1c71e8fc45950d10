"""LoRAs in the layouts other projects write (Kijai / WanVideoWrapper, FastVideo, DiffSynth / PEFT) become the same
description as the official files: same targets, same deltas at the file's default strength; nothing is ever
applied in part."""
import pytest
import torch
from safetensors.torch import save_file

from longcat_pack.nodes.core.lora_files import inspect_lora, read_lora
from longcat_pack.nodes.core.safetensors_file import ModelFileError
from support.model_files import tensor_shapes
from layout_writers import fastvideo_lora, official_modules, peft_lora, wanvideo_lora
from lora_writers import dense_delta, random_factor, write_kohya

KINDS = {"distill": "lora_distill.safetensors", "refine": "lora_refine.safetensors"}


@pytest.fixture(scope="module")
def model_shapes(golden_dir):
    return tensor_shapes(golden_dir / "tiny_dit.safetensors")


def write(kind, layout, golden_dir, folder):
    official = official_modules(golden_dir / KINDS[kind])
    folder.mkdir(parents=True, exist_ok=True)
    if layout == "wanvideo":
        return wanvideo_lora(official, folder / f"{kind}.safetensors")
    if layout == "wanvideo_unet":
        return wanvideo_lora(official, folder / f"{kind}.safetensors", key_style="lora_unet_")
    if layout == "fastvideo":
        return fastvideo_lora(official, folder / f"{kind}.safetensors")
    if layout == "fastvideo_alpha_scale":
        return fastvideo_lora(official, folder / f"{kind}.safetensors", alpha_key="alpha_scale")
    return peft_lora(official, folder / kind)


def deltas(description, model_shapes):
    """Dense delta per target at the file's default strength (the reference multiplier 1.0), where each factor's
    scale is strength * its alpha/rank / the default = its own alpha/rank."""
    out = {}
    for module, factors in description.targets.items():
        rows, cols = model_shapes[module + ".weight"]
        out[module] = dense_delta([((f.rows or (0, rows)), f.up, f.down, f.alpha_over_rank) for f in factors], rows, cols)
    return out


LAYOUTS = {"wanvideo": ("wanvideo", "kohya+split"), "wanvideo_unet": ("wanvideo", "kohya+split"),
           "fastvideo": ("fastvideo", "fastvideo+split"), "fastvideo_alpha_scale": ("fastvideo", "fastvideo+split"),
           "peft": ("native", "peft")}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_each_layout_reads_like_the_official_file(tmp_path, golden_dir, model_shapes, layout, kind):
    official = read_lora(golden_dir / KINDS[kind], model_shapes)
    got = read_lora(write(kind, layout, golden_dir, tmp_path / layout), model_shapes)
    assert got.layout == LAYOUTS[layout][0]
    assert got.format == LAYOUTS[layout][1] + ("+diff" if kind == "refine" and layout.startswith("wan") else "")
    assert got.default_strength == 0.5 and sorted(got.targets) == sorted(official.targets)
    assert not got.skipped_keys
    expected = deltas(official, model_shapes)
    for module, delta in deltas(got, model_shapes).items():
        torch.testing.assert_close(delta, expected[module], atol=1e-6, rtol=1e-5, msg=module)
    assert inspect_lora(got.path).default_strength == 0.5


def test_kijai_refinement_lora_modulations_are_dense_deltas(tmp_path, golden_dir, model_shapes):
    """The adaLN modulations of Kijai's refinement LoRA are stored as `.diff`; ComfyUI applies them as strength x
    delta, so relative to the slider they count with alpha/rank 1 and the file keeps its 0.5 default."""
    d = read_lora(write("refine", "wanvideo", golden_dir, tmp_path), model_shapes)
    assert d.module_ratios["blocks.0.adaLN_modulation.1"] == 1.0
    assert d.module_ratios["final_layer.adaLN_modulation.1"] == 1.0
    assert d.module_ratios["blocks.1.ffn.w2"] == 0.25
    assert {d.scale_for(f, 0.5) for f in d.targets["blocks.0.adaLN_modulation.1"]} == {1.0}
    assert d.ranks == [8]


def test_a_wanvideo_lora_is_applied_whole(tmp_path, golden_dir, model_shapes):
    """Regression: 30 of the 60 keys of a WanVideoWrapper LoRA (self_attn.q/k/v/o, cross_attn.q) used to match
    nothing and be skipped while the rest was applied. Every key now lands on its native target."""
    path = write("distill", "wanvideo", golden_dir, tmp_path)
    d = read_lora(path, model_shapes)
    keys = tensor_shapes(path)
    assert len(keys) == 2 * 10 * 3  # 2 blocks x (q k v o, cross q k v o, w1 w2 w3 -> 10 modules) x down/up/alpha
    assert sum(len(f) for f in d.targets.values()) == 2 * 10
    assert set(d.targets) == {f"blocks.{i}.{m}" for i in range(2) for m in (
        "attn.qkv", "attn.proj", "cross_attn.q_linear", "cross_attn.kv_linear", "ffn.w1", "ffn.w2", "ffn.w3")}


@pytest.mark.parametrize("alpha,rank,expected", [(64.0, 128, 0.5), (None, 16, 1.0), (16.0, 16, 1.0)])
def test_default_strength_is_alpha_over_rank(tmp_path, alpha, rank, expected):
    g = torch.Generator().manual_seed(1)
    down, (up,) = random_factor(256, 256, rank, g)
    path = write_kohya(tmp_path / "k.safetensors", {"blocks.0.self_attn.o": (down, up, alpha)}, prefix="diffusion_model.")
    assert inspect_lora(path).default_strength == expected


def test_fastvideo_alpha_forms(tmp_path):
    g = torch.Generator().manual_seed(2)
    a, (b,) = random_factor(256, 256, 8, g)
    for key, value in (("lora_alpha", 4.0), ("alpha_scale", 0.5)):
        save_file({"blocks.0.self_attn.to_out.lora_A": a, "blocks.0.self_attn.to_out.lora_B": b,
                   f"blocks.0.self_attn.to_out.{key}": torch.tensor(value)}, str(tmp_path / "f.safetensors"))
        d = inspect_lora(tmp_path / "f.safetensors")
        assert (d.layout, d.default_strength, list(d.module_ratios)) == ("fastvideo", 0.5, ["blocks.0.attn.proj"])


def wan_file(tmp_path, extra):
    g = torch.Generator().manual_seed(3)
    down, (up,) = random_factor(256, 256, 4, g)
    sd = {"diffusion_model.blocks.0.self_attn.o.lora_down.weight": down,
          "diffusion_model.blocks.0.self_attn.o.lora_up.weight": up}
    sd.update({k: v(down, up) for k, v in extra.items()})
    save_file({k: v.clone() for k, v in sd.items()}, str(tmp_path / "wan.safetensors"))
    return tmp_path / "wan.safetensors"


def test_text_encoder_keys_of_a_wan_lora_are_skipped_and_listed(tmp_path):
    path = wan_file(tmp_path, {"lora_te_encoder_block_0_layer_0_SelfAttention_q.lora_down.weight": lambda d, u: d})
    d = inspect_lora(path)
    assert d.skipped_keys == {"text encoder": ["lora_te_encoder_block_0_layer_0_SelfAttention_q.lora_down.weight"]}


@pytest.mark.parametrize("extra,message", [
    ({"blocks.0.self_attn.to_q.lora_A": lambda d, u: d, "blocks.0.self_attn.to_q.lora_B": lambda d, u: u},
     "mixes module names of different layouts"),
    ({"diffusion_model.blocks.0.attn.qkv.lora_down.weight": lambda d, u: d,
      "diffusion_model.blocks.0.attn.qkv.lora_up.weight": lambda d, u: torch.cat([u, u, u])},
     "blocks.0.attn.qkv in native names, diffusion_model.blocks.0.self_attn.o in wanvideo names"),
    ({"diffusion_model.blocks.0.modulation.1.diff_b": lambda d, u: torch.zeros(1536)}, "bias deltas"),
    ({"diffusion_model.blocks.0.modulation.1.diff": lambda d, u: torch.zeros(1536, 64),
      "diffusion_model.blocks.0.modulation.1.lora_down.weight": lambda d, u: torch.zeros(4, 64)},
     "both a dense delta and LoRA matrices"),
    ({"diffusion_model.blocks.0.self_attn.k_img.lora_down.weight": lambda d, u: d}, "match no LoRA target"),
])
def test_inconsistent_files_are_refused_whole(tmp_path, extra, message, model_shapes):
    """Mixed layouts, unsupported bias deltas, a delta and factors on one module, keys of no target."""
    path = wan_file(tmp_path, extra)
    for reader in (inspect_lora, lambda p: read_lora(p, model_shapes)):
        with pytest.raises(ModelFileError, match=message) as info:
            reader(path)
        assert "wan.safetensors" in str(info.value)


def test_a_fused_target_named_whole_and_split_is_refused(tmp_path):
    g = torch.Generator().manual_seed(4)
    down, (up,) = random_factor(768, 256, 4, g)
    q_down, (q_up,) = random_factor(256, 256, 4, g)
    path = write_kohya(tmp_path / "twice.safetensors", {"blocks.0.attn.qkv": (down, up, 4.0),
                                                        "blocks.0.attn.q": (q_down, q_up, 4.0)})
    with pytest.raises(ModelFileError, match="twice.safetensors: names blocks.0.attn.qkv both whole.*and split"):
        inspect_lora(path)
