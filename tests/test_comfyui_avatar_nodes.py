"""LongCat-Video-Avatar nodes in real ComfyUI (in-process, CPU): the model knows it is an avatar model, and bad
audio, masks and latents are refused with messages naming the input."""
import pytest
import torch

from test_comfyui_avatar_pipeline import CASES, avatar_condition, avatar_env, longcat_audio, node, outputs, tensors  # noqa: F401

CASE = CASES["ai2v"]


def sample(pack, model, positive, negative, latent, guider="avatar"):
    import comfy.samplers
    import comfy_extras.nodes_custom_sampler as custom
    if guider == "avatar":
        g = node(pack, "LongCatAvatarGuider").get_guider(model, positive, negative, 1.0, 1.0)[0]
    else:
        g = outputs(custom.BasicGuider.execute(model, positive))[0]
    noise = outputs(custom.RandomNoise.execute(0))[0]
    sigmas = node(pack, "LongCatSigmas").sigmas("avatar_distill", 2, 0.5)[0]
    return outputs(custom.SamplerCustomAdvanced.execute(noise, g, comfy.samplers.sampler_object("euler"), sigmas,
                                                        latent))[0]


def test_plain_dit_refuses_avatar_audio_and_avatar_dit_needs_audio(avatar_env, tensors):
    pack, _ = avatar_env
    positive, negative, latent = avatar_condition(pack, tensors, CASE)
    plain = node(pack, "LongCatDiTLoader").load("longcat_tiny.safetensors", "fp32")[0]
    with pytest.raises(ValueError, match="not a LongCat-Video-Avatar model"):
        sample(pack, plain, positive, negative, latent)
    avatar = node(pack, "LongCatDiTLoader").load("longcat_avatar_tiny.safetensors", "fp32")[0]
    text = [[positive[0][0], {}]]
    with pytest.raises(ValueError, match="LongCat-Video-Avatar DiT: it needs audio"):
        sample(pack, avatar, text, text, latent, guider="basic")


def test_v10_audio_on_a_v15_dit_names_the_encoder_and_the_dit(avatar_env, tensors):
    pack, _ = avatar_env
    audio = {"embeddings": torch.randn(40, 12, 768), "fps": 16, "stride": 2, "encoder": "chinese-wav2vec2-base",
             "seconds": 1.25}
    positive, negative, latent = node(pack, "LongCatAvatarCondition").condition(
        [[torch.zeros(1, 512, 256), {}]], [[torch.zeros(1, 512, 256), {}]], audio, 96, 64, 17, 0)
    avatar = node(pack, "LongCatDiTLoader").load("longcat_avatar_tiny.safetensors", "fp32")[0]
    with pytest.raises(ValueError, match="chinese-wav2vec2-base.*longcat_avatar_tiny.safetensors"):
        sample(pack, avatar, positive, negative, latent)


@pytest.mark.parametrize("change, message", [
    (lambda a: dict(a, embeddings=a["embeddings"].clone().fill_(float("nan"))), "avatar_audio: .*NaN"),
    (lambda a: {"fps": 25}, "avatar_audio: not a LONGCAT_AUDIO"),
])
def test_bad_audio_is_named(avatar_env, tensors, change, message):
    pack, _ = avatar_env
    audio = change(longcat_audio(tensors, CASE))
    with pytest.raises(ValueError, match=message):
        node(pack, "LongCatAvatarCondition").condition([], [], audio, 96, 64, 17, 0)


def test_start_past_the_audio_and_short_audio(avatar_env, tensors, caplog):
    pack, _ = avatar_env
    audio = longcat_audio(tensors, CASE)
    frames = audio["embeddings"].shape[0]
    with pytest.raises(ValueError, match="audio_start_frame .* past the audio's end"):
        node(pack, "LongCatAvatarCondition").condition([], [], audio, 96, 64, 17, frames)
    with caplog.at_level("WARNING"):
        node(pack, "LongCatAvatarCondition").condition([], [], audio, 96, 64, 17, frames - 5)
    assert "ends 12 frame(s) before the clip" in caplog.text


def test_speaker_masks_must_match_the_speakers(avatar_env, tensors):
    pack, _ = avatar_env
    case = CASES["ai2v_multi"]
    audio, audio_2 = longcat_audio(tensors, case), longcat_audio(tensors, case, "full_audio_emb_2")
    masks = tensors["ai2v_multi.speaker_masks"]
    condition = node(pack, "LongCatAvatarCondition").condition
    with pytest.raises(ValueError, match="speaker_masks holds 1 mask.* for 2 speakers"):
        condition([], [], audio, 96, 64, 17, 0, avatar_audio_2=audio_2, speaker_masks=masks[:1])
    with pytest.raises(ValueError, match="avatar_audio_2 needs speaker_masks"):
        condition([], [], audio, 96, 64, 17, 0, avatar_audio_2=audio_2)
    with pytest.raises(ValueError, match="speaker_masks: mask \\[2\\] is empty"):
        condition([], [], audio, 96, 64, 17, 0, avatar_audio_2=audio_2, speaker_masks=masks * torch.tensor([1.0, 0])[:, None, None])
    positive = condition([[torch.zeros(1, 512, 256), {}]], [], audio, 96, 64, 17, 0, avatar_audio_2=audio_2,
                         speaker_masks=masks, audio_mix="add")[0]
    mixed = positive[0][1]["longcat_avatar"].audio
    assert mixed.shape[:2] == (2, 17) and bool((mixed[1] == 0).all())  # speaker 2 waits until speaker 1 is done


def test_audio_mix_para_and_add():
    from longcat_pack.nodes.core.avatar.condition import mixed_embeddings
    first, second = torch.randn(6, 5, 32), torch.randn(4, 5, 32)
    para = mixed_embeddings(first, second, "para")
    assert torch.equal(para[0], first) and torch.equal(para[1][:4], second) and bool((para[1][4:] == 0).all())
    add = mixed_embeddings(first, second, "add")
    assert torch.equal(add[0][:6], first) and bool((add[0][6:] == 0).all())
    assert bool((add[1][:6] == 0).all()) and torch.equal(add[1][6:], second)


def test_condition_latents_must_fit_the_video(avatar_env, tensors):
    pack, _ = avatar_env
    audio = longcat_audio(tensors, CASE)
    cond = {"samples": tensors["ai2v.cond_raw"]}
    with pytest.raises(ValueError, match="cond_latent .* does not fit a 128x64 video"):
        node(pack, "LongCatAvatarCondition").condition([], [], audio, 128, 64, 17, 0, cond_latent=cond)
    with pytest.raises(ValueError, match="length 18: an avatar clip has 1 \\+ 4k frames"):
        node(pack, "LongCatAvatarCondition").condition([], [], audio, 96, 64, 18, 0)
    with pytest.raises(ValueError, match="ref_latent is for a continuation"):
        node(pack, "LongCatAvatarCondition").condition([], [], audio, 96, 64, 17, 0, ref_latent=cond)


def test_memory_estimate_counts_the_reference_latent(avatar_env):
    """A continuation's reference latent is one more frame in every step and in the condition cache."""
    pack, _ = avatar_env
    model = node(pack, "LongCatDiTLoader").load("longcat_avatar_tiny.safetensors", "fp32")[0].model
    shape = [2, 16, 10, 60, 104]
    plain = model.memory_required(shape, {})
    with_ref = model.memory_required(shape, {"avatar_ref_latent": [(1, 16, 1, 60, 104)]})
    assert with_ref > plain
    assert with_ref == model.memory_required([2, 16, 11, 60, 104], {})
