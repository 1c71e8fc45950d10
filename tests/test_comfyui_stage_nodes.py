"""The stage nodes inside real ComfyUI (in-process, CPU): sigmas, the refinement noise that SamplerCustomAdvanced
adds, block-sparse attention on a branch, CFG-Zero* against the reference formula, upscale and trim."""
import numpy as np
import pytest
import torch


@pytest.fixture
def tiny_model(comfy_env):
    pack, mm = comfy_env
    mm.unload_all_models()
    return pack.NODE_CLASS_MAPPINGS["LongCatDiTLoader"]().load("longcat_tiny.safetensors", "fp32")[0]


def node(comfy_env, name):
    return comfy_env[0].NODE_CLASS_MAPPINGS[name]()


def text_cond(seed=0, tokens=7):
    g = torch.Generator().manual_seed(seed)
    return [[torch.cat([torch.randn(1, tokens, 256, generator=g), torch.zeros(1, 512 - tokens, 256)], 1), {}]]


def test_sigmas_node_gives_the_reference_schedules(comfy_env):
    sigmas = node(comfy_env, "LongCatSigmas")
    distill = sigmas.sigmas("distill", 0, 0.5)[0]
    assert len(distill) == 17 and distill[-1] == 0
    grid = np.array([1.0, .94, .88, .82, .76, .70, .64, .58, .50, .44, .38, .32, .26, .20, .14, .08])
    np.testing.assert_allclose(distill[:-1].numpy(), 12 * grid / (1 + 11 * grid), rtol=1e-6)
    refine = sigmas.sigmas("refine", 0, 0.5)[0]
    np.testing.assert_allclose(refine[:-1].numpy() * 1000, [500, 443.0, 343.5, 207.8, 11.9], atol=0.1)
    assert len(sigmas.sigmas("base", 0, 0.5)[0]) == 51 and len(sigmas.sigmas("distill", 8, 0.5)[0]) == 9


def capture_model_inputs(model):
    """A clone whose every model call records (input x, sigma) before running."""
    seen = []
    m = model.clone()

    def wrapper(apply_model, args):
        seen.append((args["input"].clone(), args["timestep"].clone()))
        return apply_model(args["input"], args["timestep"], **args["c"])

    m.set_model_unet_function_wrapper(wrapper)
    return m, seen


def test_refinement_noise_is_the_reference_mix(comfy_env, tiny_model):
    """SamplerCustomAdvanced with add_noise and the refine sigmas starts from z = (1 - t) z0 + t eps at t = 0.5,
    in the sampler's latent space (Wan 2.1 normalisation), exactly as the reference noises its latent."""
    import comfy.sample
    import comfy.samplers
    model, seen = capture_model_inputs(tiny_model)
    g = torch.Generator().manual_seed(1)
    z0 = torch.randn(1, 16, 3, 6, 8, generator=g)
    noise = torch.randn(z0.shape, generator=g)
    sigmas = node(comfy_env, "LongCatSigmas").sigmas("refine", 0, 0.5)[0]
    sampler = comfy.samplers.sampler_object("euler")
    comfy.sample.sample_custom(model, noise, 1.0, sampler, sigmas, text_cond(), text_cond(), z0, disable_pbar=True)
    first_x, first_sigma = seen[0]
    assert float(first_sigma[0]) == pytest.approx(0.5)
    z0_in = model.model.process_latent_in(z0)
    torch.testing.assert_close(first_x, 0.5 * z0_in + 0.5 * noise, atol=1e-6, rtol=1e-6)
    assert len(seen) == 5


def one_model_call(model, seed=2):
    """One Euler step from sigma 0.7 to 0 returns the model's denoised prediction; the latent grid (8, 8, 8)
    holds 8 tiles of 4x4x4 tokens."""
    import comfy.sample
    import comfy.samplers
    noise = torch.randn(1, 16, 8, 16, 16, generator=torch.Generator().manual_seed(seed))
    return comfy.sample.sample_custom(model, noise, 1.0, comfy.samplers.sampler_object("euler"),
                                      torch.tensor([0.7, 0.0]), text_cond(), text_cond(), torch.zeros_like(noise),
                                      disable_pbar=True)


def test_block_sparse_attention_on_a_branch(comfy_env, tiny_model):
    bsa = node(comfy_env, "LongCatBlockSparseAttention")
    dense = one_model_call(tiny_model)
    sparse_zero = one_model_call(bsa.patch(tiny_model, 0.0)[0])
    torch.testing.assert_close(sparse_zero, dense, atol=1e-5, rtol=1e-5)  # sparsity 0 is dense attention
    sparse = one_model_call(bsa.patch(tiny_model, 0.75)[0])
    assert (sparse - dense).abs().max() > 1e-4  # 1 of 4 key tiles kept: a different result
    again = one_model_call(tiny_model)  # the plain branch is still dense
    torch.testing.assert_close(again, dense, atol=0, rtol=0)


def test_cfg_zero_star_matches_the_reference_formula(comfy_env, tiny_model):
    """v = s* v_u + g (v_c - s* v_u) on velocities, s* = <v_c, v_u> / (|v_u|^2 + 1e-8) per sample."""
    patched = node(comfy_env, "LongCatCFGZeroStar").patch(tiny_model)[0]
    post_cfg = patched.model_options["sampler_post_cfg_function"][-1]
    g = torch.Generator().manual_seed(4)
    x, cond_d, uncond_d = (torch.randn(2, 16, 2, 4, 4, generator=g) for _ in range(3))
    sigma = torch.tensor([0.7, 0.3])
    out = post_cfg(dict(input=x, sigma=sigma, cond_denoised=cond_d, uncond_denoised=uncond_d, cond_scale=4.0,
                              denoised=None))
    s = sigma.view(-1, 1, 1, 1, 1)
    v_c, v_u = ((x - cond_d) / s).double(), ((x - uncond_d) / s).double()
    star = (v_c * v_u).flatten(1).sum(1) / ((v_u * v_u).flatten(1).sum(1) + 1e-8)
    star = star.view(-1, 1, 1, 1, 1)
    expected = x.double() - s * (star * v_u + 4.0 * (v_c - star * v_u))
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)


def test_refine_upscale_and_trim(comfy_env):
    frames = torch.rand(93, 480, 832, 3)
    up, keep, fps, skip = node(comfy_env, "LongCatRefineUpscale").upscale(frames, "720p bucket", False)
    assert up.shape == (192, 704, 1280, 3) and keep == 186 and fps == 2.0 and skip == 0
    assert torch.equal(up[186:], up[185:186].expand(6, -1, -1, -1))  # padding repeats the last frame
    trimmed = node(comfy_env, "LongCatTrimFrames").trim(torch.rand(189, 8, 8, 3), keep)[0]
    assert trimmed.shape[0] == 186
    same, keep, _, _ = node(comfy_env, "LongCatRefineUpscale").upscale(torch.rand(9, 64, 64, 3), "same as input", True)
    assert same.shape == (16, 64, 64, 3) and keep == 9  # 9 frames -> 3 latents -> padded to 4 latents
