"""LongCat Avatar Long Video inside real ComfyUI (in-process, CPU, the tiny avatar DiT, a random Wan 2.1 VAE): the
video follows the speech's length, each continuation is what the single-segment nodes give with the audio from
where the video so far ends."""
import torch

from test_comfyui_avatar_pipeline import avatar_env, node  # noqa: F401  (fixture)
from test_comfyui_condition_nodes import POSITIVE, frames, vae  # noqa: F401  (fixture)


def test_long_avatar_video_follows_the_speech(avatar_env, vae):
    import comfy.sample
    import comfy.samplers
    from longcat_pack.nodes.stages.long_video_nodes import decode
    pack, mm = avatar_env
    mm.unload_all_models()
    model = node(pack, "LongCatDiTLoader").load("longcat_avatar_tiny.safetensors", "fp32")[0]
    audio = {"embeddings": torch.randn(20, 5, 32, generator=torch.Generator().manual_seed(3)), "fps": 25,
             "stride": 1, "encoder": "whisper-large-v3", "seconds": 0.8}
    first = frames(13, 32, 32)
    euler = comfy.samplers.sampler_object("euler")
    sigmas = node(pack, "LongCatSigmas").sigmas("avatar_distill", 2, 0.5)[0]
    video = node(pack, "LongCatAvatarLongVideo").extend(model, POSITIVE, POSITIVE, audio, 1.0, 1.0, euler, sigmas,
                                                         vae, 7, first, 0, 5, 9)[0]
    assert video.shape == (20, 32, 32, 3) and torch.equal(video[:13], first)  # 13 + 2 x 4 frames, cut at 20

    ref = {"samples": vae.encode(first[:1])}
    cond = {"samples": vae.encode(first[-5:])}
    positive, negative, latent = node(pack, "LongCatAvatarCondition").condition(
        POSITIVE, POSITIVE, audio, 32, 32, 9, 8, cond_latent=cond, ref_latent=ref)
    guider = node(pack, "LongCatAvatarGuider").get_guider(model, positive, negative, 1.0, 1.0)[0]
    noise = comfy.sample.prepare_noise(latent["samples"], 7)
    by_hand = decode(vae, guider.sample(noise, latent["samples"], euler, sigmas, denoise_mask=latent["noise_mask"],
                                        disable_pbar=True, seed=7))
    torch.testing.assert_close(video[13:17], by_hand[5:].to(video.dtype))
