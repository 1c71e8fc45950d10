"""The reference's avatar loops (golden/avatar `avatar_pipeline_cases`) through real ComfyUI (in-process, CPU): Load
LongCat DiT -> (Apply LongCat LoRA) -> LongCat Avatar Condition -> LongCat Avatar Guider + LongCat Sigmas -> stock
SamplerCustomAdvanced, merged and runtime LoRA alike. LONGCAT_AUDIO is built from the stored `full_audio_emb`, as
LongCat Avatar Audio gives it."""
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from conftest import GOLDEN
from test_comfyui_pipeline_cases import StoredNoise, outputs

AVATAR = GOLDEN / "avatar"
CASES = {c["name"]: c for c in json.loads((AVATAR / "avatar_pipeline_cases.json").read_text())["cases"]}
TOLERANCE = 1e-3  # the golden README: loops <= 1e-3 max abs on normalized latents
DITS = {"avatar_dit.safetensors": "longcat_avatar_tiny.safetensors", "avatar_dit_int8/": "longcat_avatar_int8/"}


@pytest.fixture(scope="module")
def avatar_env(comfy_env, tmp_path_factory):
    """comfy_env with the tiny avatar DiT (plain and INT8) and the DMD LoRA in extra model folders."""
    import folder_paths
    root = tmp_path_factory.mktemp("avatar_models")
    (root / "diffusion_models").mkdir()
    (root / "loras").mkdir()
    shutil.copy(AVATAR / "avatar_dit.safetensors", root / "diffusion_models" / DITS["avatar_dit.safetensors"])
    shutil.copytree(AVATAR / "avatar_dit_int8", root / "diffusion_models" / "longcat_avatar_int8")
    shutil.copy(AVATAR / "lora_dmd.safetensors", root / "loras" / "longcat_avatar_dmd.safetensors")
    folder_paths.add_model_folder_path("diffusion_models", str(root / "diffusion_models"))
    folder_paths.add_model_folder_path("loras", str(root / "loras"))
    return comfy_env


@pytest.fixture(scope="module")
def tensors():
    return load_file(str(AVATAR / "avatar_pipeline_cases.safetensors"))


def conditioning(tensors, prefix):
    text, mask = tensors[f"prompt.{prefix}"], tensors[f"prompt.{prefix}_mask"]
    return [[text[:, 0] * mask[..., None].to(text.dtype), {}]]


def node(pack, name):
    return pack.NODE_CLASS_MAPPINGS[name]()


def longcat_audio(tensors, case, key="full_audio_emb"):
    emb = tensors[f"{case['name']}.{key}"]
    return {"embeddings": emb, "fps": case["fps"], "stride": case["stride"],
            "encoder": "whisper-large-v3" if case["stride"] == 1 else "chinese-wav2vec2-base",
            "seconds": emb.shape[0] / (case["fps"] * case["stride"])}


def load_model(pack, case, mode):
    model = node(pack, "LongCatDiTLoader").load(DITS[case["dit"]], "fp32")[0]
    for lora in case["loras"]:
        model = node(pack, "LongCatLoraLoader").apply(model, "longcat_avatar_dmd.safetensors", lora["pack_strength"],
                                                      mode)["result"][0]
    return model


def avatar_condition(pack, tensors, case):
    name = case["name"]
    positive = conditioning(tensors, "text")
    negative = conditioning(tensors, "neg_text") if "neg_text" in case["prompt_keys"] else positive
    extra = {}
    if f"{name}.cond_raw" in tensors:
        extra["cond_latent"] = {"samples": tensors[f"{name}.cond_raw"]}
    if f"{name}.ref_raw" in tensors:
        extra.update(ref_latent={"samples": tensors[f"{name}.ref_raw"]}, ref_img_index=case["ref_img_index"],
                     mask_frame_range=case["mask_frame_range"])
    if case["speakers"] == 2:
        extra.update(avatar_audio_2=longcat_audio(tensors, case, "full_audio_emb_2"),
                     speaker_masks=tensors[f"{name}.speaker_masks"], audio_mix="para")
    return node(pack, "LongCatAvatarCondition").condition(
        positive, negative, longcat_audio(tensors, case), case["width"], case["height"], case["num_frames"],
        case["audio_start_frame"], **extra)


def run_case(avatar_env, tensors, name, mode):
    pack, mm = avatar_env
    case = CASES[name]
    mm.unload_all_models()
    model = load_model(pack, case, mode)
    positive, negative, latent = avatar_condition(pack, tensors, case)
    guider = node(pack, "LongCatAvatarGuider").get_guider(model, positive, negative, case["text_guidance"],
                                                          case["audio_guidance"])[0]
    sigmas = node(pack, "LongCatSigmas").sigmas(case["sigmas_stage"], case["steps"], 0.5)[0]
    torch.testing.assert_close(sigmas, torch.tensor(case["sigmas"]), atol=1e-6, rtol=0)
    import comfy.samplers
    import comfy_extras.nodes_custom_sampler as custom
    out = outputs(custom.SamplerCustomAdvanced.execute(StoredNoise(tensors[f"{name}.noise"]), guider,
                                                       comfy.samplers.sampler_object("euler"), sigmas, latent))[0]
    return model.model.process_latent_in(out["samples"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_avatar_pipeline_case_through_comfyui(avatar_env, tensors, name):
    modes = ["merge", "runtime"] if CASES[name]["loras"] else ["merge"]
    for mode in modes:
        result = run_case(avatar_env, tensors, name, mode)
        error = (result - tensors[f"{name}.out"]).abs().max().item()
        print(f"{name} ({mode}): max abs {error:.2e}")
        assert error <= TOLERANCE, f"{name} ({mode}): max abs {error:.2e}"


def test_the_speakers_background_is_derived_as_the_reference_does(avatar_env, tensors):
    pack, _ = avatar_env
    case = CASES["ai2v_multi"]
    positive, _, _ = avatar_condition(pack, tensors, case)
    cond = positive[0][1]["longcat_avatar"]
    torch.testing.assert_close(cond.speaker_masks, tensors["ai2v_multi.ref_target_masks"], atol=0, rtol=0)
    torch.testing.assert_close(cond.audio, tensors["ai2v_multi.audio_emb"], atol=0, rtol=0)
