"""Load LongCat DiT and Apply LongCat LoRA on the files other projects write, inside real ComfyUI (in-process,
CPU): every DiT layout gives the native weights and golden case a; every LoRA layout gives cases c, d and h at its
default strength, merged and at run time; quantized checkpoints run on ComfyUI's own ops, stay within fp8 (or
their format's) tolerance of the bf16 model, and take their LoRAs at run time without being re-quantized."""
import json

import pytest
import torch

from layout_writers import block_linear_weights, comfy_quant_fp8, convert_checkpoint, plain_fp8, save, scaled_fp8
from test_checkpoint import write_sharded
from test_comfyui_lora_patching import GOLDEN_STACKS, assert_reproduces, cases, checkpoint, nodes_of, raw_output, \
    with_loras  # noqa: F401  (fixtures)
from test_comfyui_dynamic_vram import dynamic_vram_on  # noqa: F401  (fixture)
from test_lora_layouts import KINDS, write as write_lora

DIT_LAYOUTS = {"wanvideo": "layouts/LongCat_tiny_comfy_fp32.safetensors",
               "fastvideo": "layouts/longcat_tiny_fastvideo.safetensors",
               "fastvideo_folder": "layouts/LongCat-Video-T2V-Diffusers/transformer/"}
LORA_LAYOUTS = ("wanvideo", "wanvideo_unet", "fastvideo", "fastvideo_alpha_scale", "peft")
# Relative L2 distance of case a from the bf16 model's that each storage may reach (measured on this tiny model:
# fp8 e4m3 1.5-2.5 %, e5m2 about twice that, 4-bit formats 8-13 %); bf16 rounding alone is 0.3 %.
QUANT_TOLERANCE = {"fp8_e4m3fn": 0.05, "fp8_e5m2": 0.1, "scaled_fp8_KJ": 0.05, "float8_e4m3fn": 0.05,
                   "float8_e5m2": 0.1, "mxfp8": 0.05, "int8_tensorwise": 0.03, "nvfp4": 0.25, "convrot_w4a4": 0.3,
                   "asym_w4a8_int8": 0.25}
COMFY_FORMATS = ("float8_e4m3fn", "float8_e5m2", "nvfp4", "mxfp8", "int8_tensorwise", "convrot_w4a4",
                 "asym_w4a8_int8")


@pytest.fixture(scope="module")
def files(comfy_env, comfy_model_dirs, golden_dir, checkpoint):
    """Every layout of the golden DiT and LoRAs, written into the folders the in-process ComfyUI reads."""
    dits = comfy_model_dirs["diffusion_models"]
    (dits / "layouts").mkdir(exist_ok=True)
    save(convert_checkpoint(checkpoint, "wanvideo"), dits / DIT_LAYOUTS["wanvideo"])
    save(convert_checkpoint(checkpoint, "fastvideo"), dits / DIT_LAYOUTS["fastvideo"])
    folder = write_sharded(dits / DIT_LAYOUTS["fastvideo_folder"], convert_checkpoint(checkpoint, "fastvideo"))
    (folder / "config.json").write_text(json.dumps({"_class_name": "LongCatTransformer3DModel"}))

    (dits / "quant").mkdir(exist_ok=True)
    save({k: v.bfloat16() for k, v in checkpoint.items()}, dits / "quant/bf16.safetensors")
    wan = convert_checkpoint(checkpoint, "wanvideo")
    save(plain_fp8(wan, block_linear_weights(wan)), dits / "quant/fp8_e4m3fn.safetensors")
    save(plain_fp8(wan, block_linear_weights(wan), torch.float8_e5m2), dits / "quant/fp8_e5m2.safetensors")
    save(scaled_fp8(wan, block_linear_weights(wan)), dits / "quant/scaled_fp8_KJ.safetensors")
    for fmt in COMFY_FORMATS:
        save(comfy_quantized(checkpoint, fmt), dits / f"quant/{fmt}.safetensors")

    for layout in LORA_LAYOUTS:
        for kind in KINDS:
            write_lora(kind, layout, golden_dir, comfy_model_dirs["loras"] / "layouts" / layout)
    return comfy_model_dirs


def comfy_quantized(native, fmt):
    """The block linears quantized by ComfyUI's own quantizer in `fmt` (ComfyUI's per-layer format). Formats
    this ComfyUI lacks are written the way 0.33 writes int8_tensorwise (weight_scale = amax / 127), or as fp8."""
    import comfy.quant_ops
    keys = block_linear_weights(native)
    if fmt not in comfy.quant_ops.QUANT_ALGOS:
        return int8_tensorwise(native, keys)
    if fmt.startswith("float8"):
        return comfy_quant_fp8(native, keys, fmt)
    out = dict(native)
    layout = comfy.quant_ops.QUANT_ALGOS[fmt]["comfy_tensor_layout"]
    for key in keys:
        layer = key[:-len(".weight")]
        out.update(comfy.quant_ops.QuantizedTensor.from_float(native[key], layout).state_dict(key))
        out[f"{layer}.comfy_quant"] = torch.tensor(list(json.dumps({"format": fmt}).encode()), dtype=torch.uint8)
    return out


def int8_tensorwise(native, keys):
    out = dict(native)
    for key in keys:
        layer = key[:-len(".weight")]
        scale = native[key].abs().max() / 127
        out[key] = torch.round(native[key] / scale).to(torch.int8)
        out[f"{layer}.weight_scale"] = scale
        out[f"{layer}.comfy_quant"] = torch.tensor(list(b'{"format": "int8_tensorwise"}'), dtype=torch.uint8)
    return out


def load(comfy_env, name, dtype="default"):
    pack, mm = comfy_env
    mm.unload_all_models()
    model = nodes_of(pack)[0].load(name, dtype)[0]
    mm.load_models_gpu([model])
    return model


@pytest.mark.parametrize("layout", sorted(DIT_LAYOUTS))
def test_each_dit_layout_holds_the_native_weights_and_reproduces_case_a(comfy_env, files, cases, checkpoint, layout):
    model = load(comfy_env, DIT_LAYOUTS[layout], "fp32")
    for key, value in model.model.diffusion_model.state_dict().items():
        assert torch.equal(value.cpu(), checkpoint[key]), key
    assert_reproduces(model, cases, "a_base")


@pytest.mark.parametrize("mode", ["merge", "runtime"])
@pytest.mark.parametrize("case", ["c_distill", "d_refine", "h_distill_plus_refine"])
@pytest.mark.parametrize("layout", LORA_LAYOUTS)
def test_each_lora_layout_reproduces_golden_at_its_default_strength(comfy_env, files, cases, layout, case, mode):
    """The strength each file defaults to (its alpha/rank: 0.5 here, as for Kijai's alpha 64 / rank 128) gives the
    reference at multiplier 1.0."""
    from longcat_pack.nodes.core.lora_files import inspect_lora
    names = {"lora_distill.safetensors": "distill", "lora_refine.safetensors": "refine"}
    stack = []
    for name, _ in GOLDEN_STACKS[case]:
        path = f"layouts/{layout}/{names[name]}" + ("/adapter_model.safetensors" if layout == "peft" else ".safetensors")
        default = inspect_lora(files["loras"] / path).default_strength
        assert default == 0.5
        stack.append((path, default))
    model = with_loras(comfy_env, load(comfy_env, "longcat_tiny.safetensors", "fp32"), stack, mode)
    comfy_env[1].load_models_gpu([model])
    assert model.lora_state().applied[1] == mode
    assert_reproduces(model, cases, case)


def relative_distance(a, b):
    return float((a - b).norm() / b.norm())


def weight_dtype_for(name):
    """Plain fp8 files keep fp8 storage when the user picks it (on a CPU "default" would upcast them)."""
    return name if name in ("fp8_e4m3fn", "fp8_e5m2") else "default"


def stored_bytes(tensor):
    """The bytes a weight is stored as (a ComfyUI QuantizedTensor's quantized data)."""
    return getattr(tensor, "_qdata", tensor).detach().clone().view(torch.uint8)


@pytest.mark.parametrize("name", ["fp8_e4m3fn", "fp8_e5m2", "scaled_fp8_KJ", *COMFY_FORMATS])
def test_quantized_checkpoints_match_the_bf16_model_within_their_tolerance(comfy_env, files, cases, name):
    """Each storage runs through ComfyUI's ops where this ComfyUI knows it (0.8.0: fp8 and nvfp4; 0.33 adds
    mxfp8, int8_tensorwise, convrot_w4a4, asym_w4a8_int8); elsewhere loading is a clear error."""
    import comfy.quant_ops
    meta, tensors = cases
    if name in COMFY_FORMATS and name not in comfy.quant_ops.QUANT_ALGOS:
        with pytest.raises(ValueError, match=r"int8_tensorwise, which this ComfyUI does not support .*update ComfyUI"):
            nodes_of(comfy_env[0])[0].load(f"quant/{name}.safetensors", "default")
        return
    reference = raw_output(load(comfy_env, "quant/bf16.safetensors"), meta["a_base"]["inputs"], tensors)
    model = load(comfy_env, f"quant/{name}.safetensors", weight_dtype_for(name))
    out = raw_output(model, meta["a_base"]["inputs"], tensors)
    distance = relative_distance(out, reference)
    assert 0.003 < distance < QUANT_TOLERANCE[name], distance  # quantized, not silently upcast, and still close
    qkv = model.model.diffusion_model.blocks[0].attn.qkv
    weight = qkv.parts[0].weight if name == "scaled_fp8_KJ" else qkv.weight
    if name.startswith("fp8_"):
        assert weight.dtype == getattr(torch, "float8_" + name[4:])  # plain fp8 storage, ComfyUI's manual cast
    else:
        assert isinstance(weight, comfy.quant_ops.QuantizedTensor)


@pytest.mark.parametrize("name", ["scaled_fp8_KJ", "float8_e4m3fn", "fp8_e4m3fn"])
def test_loras_on_quantized_weights_apply_at_run_time_and_never_requantize(comfy_env, files, cases, name):
    meta, tensors = cases
    base = load(comfy_env, f"quant/{name}.safetensors", weight_dtype_for(name))
    weights = dict(base.model.diffusion_model.named_parameters())
    stored = {k: stored_bytes(v) for k, v in weights.items()}
    base_out = raw_output(base, meta["c_distill"]["inputs"], tensors)
    model = with_loras(comfy_env, base, GOLDEN_STACKS["c_distill"], "merge")
    comfy_env[1].load_models_gpu([model])
    assert model.lora_state().applied[1] == "runtime"
    for key, value in model.model.diffusion_model.named_parameters():
        assert torch.equal(stored_bytes(value), stored[key]), key
    out = raw_output(model, meta["c_distill"]["inputs"], tensors)
    expected = tensors["c_distill.out"]
    assert relative_distance(out, expected) < 0.05 < relative_distance(base_out, expected)
    comfy_env[1].load_models_gpu([base])  # the plain branch: hooks come off, weights untouched
    torch.testing.assert_close(raw_output(base, meta["c_distill"]["inputs"], tensors), base_out, atol=0, rtol=0)


def test_quantized_checkpoint_refuses_an_fp8_weight_dtype(comfy_env, files):
    with pytest.raises(ValueError, match="already quantized .*choose weight_dtype default"):
        nodes_of(comfy_env[0])[0].load("quant/scaled_fp8_KJ.safetensors", "fp8_e4m3fn")


def test_loader_lists_a_diffusers_transformer_folder(comfy_env, files):
    import sys
    names = sys.modules[comfy_env[0].__name__ + ".nodes.loaders.dit_loader"].dit_names()
    assert DIT_LAYOUTS["fastvideo_folder"] in names
    assert not any(n.startswith(DIT_LAYOUTS["fastvideo_folder"]) and n.endswith(".safetensors") for n in names)


def test_quantized_checkpoint_under_dynamic_vram_layers(comfy_env, files, cases, dynamic_vram_on):
    """With DynamicVRAM's switches on (what ComfyUI 0.33 sets on NVIDIA: lazily created layers, dynamic core
    patchers), a quantized checkpoint still loads module by module and stays within fp8 tolerance."""
    meta, tensors = cases
    reference = raw_output(load(comfy_env, "quant/bf16.safetensors"), meta["a_base"]["inputs"], tensors)
    out = raw_output(load(comfy_env, "quant/scaled_fp8_KJ.safetensors"), meta["a_base"]["inputs"], tensors)
    assert relative_distance(out, reference) < QUANT_TOLERANCE["scaled_fp8_KJ"]
