"""The plain-torch avatar DiT against the reference's forward outputs (golden/avatar, fp32, CPU, atol 1e-4): audio
and text to video, image to video, continuation from the condition cache and without it, two speakers, the DMD
LoRA through the pack's LoRA reader and patcher, the INT8 checkpoint."""
import json

import pytest
import torch
from safetensors.torch import load_file

from longcat_pack.nodes.core.avatar.avatar_dit import LongCatAvatarDiT, avatar_config_from_state_dict
from support.model_files import load_dit, tensor_shapes
from longcat_pack.nodes.core.demo_files import lora_target_shapes, write_official_lora
from longcat_pack.nodes.core.condition_attention import ConditionCache
from longcat_pack.nodes.core.lora_files import read_lora
from longcat_pack.nodes.core.lora_patcher import RuntimeLora, WeightMerger, linear_weights, prepare_stack

TOL = dict(atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def avatar_dir(golden_dir):
    return golden_dir / "avatar"


@pytest.fixture(scope="module")
def golden(avatar_dir):
    cases = {c["name"]: c for c in json.loads((avatar_dir / "avatar_cases.json").read_text())["cases"]}
    return cases, load_file(avatar_dir / "avatar_cases.safetensors")


def build(weights):
    model = LongCatAvatarDiT(**avatar_config_from_state_dict({k: tuple(v.shape) for k, v in weights.items()}))
    model.load_state_dict(weights, strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def model(avatar_dir):
    return build(load_file(avatar_dir / "avatar_dit.safetensors"))


def inputs(golden, name):
    cases, tensors = golden
    case = cases[name]
    got = {k: (tensors[v["key"]] if isinstance(v, dict) else v) for k, v in case["inputs"].items()}
    return got, tensors[case["output"]["key"]]


def run(model, args, **extra):
    audio = args["audio_embs"]
    masks = args.get("ref_target_masks")
    audio = audio[None] if masks is not None else audio[:, None]  # [B, speakers, frames, window, groups, channels]
    with torch.no_grad():
        return model(args["hidden_states"], args["timestep"], args["encoder_hidden_states"], audio,
                     context_mask=args["encoder_attention_mask"], num_cond_latents=args.get("num_cond_latents", 0),
                     num_ref_latents=args.get("num_ref_latents", 0), ref_img_index=args.get("ref_img_index", 10),
                     mask_frame_range=args.get("mask_frame_range", 3), speaker_masks=masks, **extra)


@pytest.mark.parametrize("name", ["a_at2v", "b_ai2v", "c_avc_nokv", "d_multi"])
def test_forward_case(model, golden, name):
    args, expected = inputs(golden, name)
    torch.testing.assert_close(run(model, args), expected, **TOL)


def test_continuation_from_the_condition_cache(model, golden):
    """c_avc_kv: the condition (reference latent + 4 condition latents) runs once into the cache; the noisy frames
    then attend to its keys. The output's noisy frames equal the reference's cached call."""
    args, expected = inputs(golden, "c_avc_kv")
    cond = args.pop("cond_latents")
    n_c = cond.shape[2]
    args["hidden_states"] = torch.cat([cond, args["hidden_states"]], dim=2)
    args["timestep"] = torch.cat([torch.zeros(1, n_c), args["timestep"]], dim=1)
    cache = ConditionCache()
    out = run(model, args, condition_cache=cache)
    assert cache.kv is not None and len(cache.kv) == len(model.blocks)
    torch.testing.assert_close(out[:, :, n_c:], expected, **TOL)
    assert bool((out[:, :, :n_c] == 0).all())


def test_two_speakers_need_their_masks_and_the_background(model, golden):
    """Without the background mask (speakers only) the output moves: the background takes part in the routing."""
    args, expected = inputs(golden, "d_multi")
    args["ref_target_masks"] = golden[1]["d_multi.speaker_masks"]
    with pytest.raises(ValueError, match="speaker masks route two or more|background"):
        run(model, dict(args, audio_embs=args["audio_embs"][:1]))
    assert (run(model, args) - expected).abs().max() > 1e-2


@pytest.mark.parametrize("mode", ["merge", "runtime"])
def test_dmd_lora_through_the_pack_patcher(avatar_dir, golden, mode):
    """e_at2v_dmd: the reference multiplier 1.0 is strength 0.5 (alpha/rank) on the pack's slider."""
    model = build(load_file(avatar_dir / "avatar_dit.safetensors"))
    lora = read_lora(avatar_dir / "lora_dmd.safetensors", {k: tuple(v.shape) for k, v in model.state_dict().items()})
    assert lora.default_strength == 0.5
    prepared = prepare_stack([(lora, 0.5)], linear_weights(model))
    assert any("audio_cross_attn" in m for m in prepared) and any("audio_adaLN" in m for m in prepared)
    if mode == "merge":
        WeightMerger(model).merge(prepared)
    else:
        RuntimeLora(model, prepared).attach()
    args, expected = inputs(golden, "e_at2v_dmd")
    torch.testing.assert_close(run(model, args), expected, **TOL)


def test_dmd_lora_targets_are_the_reference_files(avatar_dir, tmp_path):
    """lora_target_shapes for the avatar DiT's config (what the memory bench sizes the full-size DMD LoRA by): a
    LoRA written from it has the reference DMD file's keys and shapes; the avatar has no refinement LoRA."""
    config = avatar_config_from_state_dict(tensor_shapes(avatar_dir / "avatar_dit.safetensors"))
    written = write_official_lora(tmp_path / "dmd.safetensors", lora_target_shapes(config), rank=8)
    assert tensor_shapes(written) == tensor_shapes(avatar_dir / "lora_dmd.safetensors")
    with pytest.raises(ValueError, match="no refinement LoRA"):
        lora_target_shapes(config, refinement=True)


def test_int8_checkpoint_dequantized_by_the_checkpoint_reader(avatar_dir, golden):
    """f_at2v_int8: the reference's INT8 folder (weight_int8 + per-channel weight_scale, final_layer.linear kept)
    read by the pack's checkpoint reader and computed in fp32 gives the reference's QuantizedLinear output."""
    model = load_dit(avatar_dir / "avatar_dit_int8", dtype=torch.float32).eval()
    assert isinstance(model, LongCatAvatarDiT)
    args, expected = inputs(golden, "f_at2v_int8")
    torch.testing.assert_close(run(model, args), expected, **TOL)
    plain = build(load_file(avatar_dir / "avatar_dit.safetensors"))
    assert (run(plain, args) - expected).abs().max() > 1e-3  # quantization is visible: the dequantized weights ran


def test_avatar_checkpoint_reads_in_the_reference_and_kijai_layouts(avatar_dir, golden, tmp_path):
    """The reference key names and Kijai's (WanVideoWrapper names, the projection as multitalk_audio_proj) load to
    the same avatar model; a LONGCAT_AUDIO-sized mismatch of the projection is named."""
    from safetensors.torch import save_file
    from layout_writers import convert_checkpoint
    weights = load_file(avatar_dir / "avatar_dit.safetensors")
    reference = load_dit(avatar_dir / "avatar_dit.safetensors", dtype=torch.float32)
    kijai = convert_checkpoint(weights, "wanvideo")
    assert any(k.startswith("multitalk_audio_proj.") for k in kijai)
    save_file(kijai, str(tmp_path / "kijai_avatar.safetensors"))
    converted = load_dit(tmp_path / "kijai_avatar.safetensors", dtype=torch.float32)
    args, expected = inputs(golden, "a_at2v")
    torch.testing.assert_close(run(converted, args), run(reference, args), atol=0, rtol=0)
    with pytest.raises(ValueError, match="do not fit this DiT's audio projection"):
        run(reference, dict(args, audio_embs=args["audio_embs"][..., :16]))


def test_kijai_conversion_of_the_dmd_lora(avatar_dir, golden, tmp_path):
    """The DMD LoRA as Kijai converts LoRAs for WanVideoWrapper (split q/k/v, `.alpha`, dense `.diff` for the fused
    modulations and the audio kv) starts at the same strength and gives the reference output."""
    from layout_writers import official_modules, wanvideo_lora
    model = build(load_file(avatar_dir / "avatar_dit.safetensors"))
    path = tmp_path / "dmd_kijai.safetensors"
    wanvideo_lora(official_modules(avatar_dir / "lora_dmd.safetensors"), path)
    lora = read_lora(path, {k: tuple(v.shape) for k, v in model.state_dict().items()})
    assert lora.layout == "wanvideo" and lora.default_strength == 0.5
    WeightMerger(model).merge(prepare_stack([(lora, lora.default_strength)], linear_weights(model)))
    args, expected = inputs(golden, "e_at2v_dmd")
    torch.testing.assert_close(run(model, args), expected, **TOL)


def test_demo_avatar_dit_listens_through_wav2vec2_base(tmp_path):
    """The demo set's tiny avatar DiT loads as an avatar model whose projection takes chinese-wav2vec2-base
    features (12 groups x 768, the smallest encoder ComfyUI loads), and runs a clip."""
    from longcat_pack.nodes.core.demo_files import TINY_AVATAR_DIT, write_demo_dit
    model = load_dit(write_demo_dit(tmp_path / "avatar.safetensors", TINY_AVATAR_DIT), dtype=torch.float32).eval()
    assert isinstance(model, LongCatAvatarDiT)
    text = torch.cat([torch.randn(1, 3, 256), torch.zeros(1, 509, 256)], dim=1)
    with torch.no_grad():
        out = model(torch.randn(1, 16, 2, 4, 4), torch.tensor([500.0]), text, torch.randn(1, 1, 5, 5, 12, 768))
    assert out.shape == (1, 16, 2, 4, 4) and bool(torch.isfinite(out).all())
