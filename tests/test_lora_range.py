"""LoRA factors that are finite one by one but whose product overflows: refused before anything is applied, naming
the file and the module; the real LoRAs at the slider's extremes pass in every compute dtype."""
import pytest
import torch
from safetensors.torch import load_file, save_file

from longcat_pack.nodes.core.lora_files import read_lora
from longcat_pack.nodes.core.lora_range import check_lora_range, output_bound, output_limit
from longcat_pack.nodes.core.safetensors_file import ModelFileError
from support.model_files import tensor_shapes
from lora_writers import official_stem


@pytest.fixture(scope="module")
def model_shapes(golden_dir):
    return tensor_shapes(golden_dir / "tiny_dit.safetensors")


def blown_up(golden_dir, path, key_suffix, factor):
    """The golden distill LoRA with one tensor of blocks.1.ffn.w3 multiplied by `factor` (still finite)."""
    sd = load_file(str(golden_dir / "lora_distill.safetensors"))
    key = official_stem("blocks.1.ffn.w3") + key_suffix
    sd[key] = sd[key] * factor
    assert torch.isfinite(sd[key]).all()
    save_file(sd, str(path))
    return path


@pytest.mark.parametrize("key_suffix,factor", [(".alpha_scale", 2e38), (".lora_up.weight", 1e30)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_huge_finite_factors_are_refused(tmp_path, golden_dir, model_shapes, key_suffix, factor, dtype):
    path = blown_up(golden_dir, tmp_path / "huge.safetensors", key_suffix, factor)
    description = read_lora(path, model_shapes)  # every tensor is finite: the file reads
    with pytest.raises(ModelFileError, match=r"huge\.safetensors: module blocks\.1\.ffn\.w3: strength 0\.5 x "
                                             r"alpha/rank x up @ down can add .* past the .* far too large"):
        check_lora_range(description, 0.5, dtype)


@pytest.mark.parametrize("name", ["lora_distill.safetensors", "lora_refine.safetensors"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_real_loras_pass_at_the_slider_extremes(golden_dir, model_shapes, name, dtype):
    description = read_lora(golden_dir / name, model_shapes)
    for strength in (-10.0, 10.0):
        check_lora_range(description, strength, dtype)


def test_the_bound_holds_for_the_worst_input(golden_dir, model_shapes):
    """The bound is the largest output of the term over inputs in [-1, 1]: reached by the sign pattern of the row
    that attains it, and never exceeded by random inputs."""
    factor = read_lora(golden_dir / "lora_distill.safetensors", model_shapes).targets["blocks.0.ffn.w2"][0]
    delta = (factor.up.double() @ factor.down.double())
    bound = output_bound(factor, 1.0)
    x = torch.rand(64, delta.shape[1], dtype=torch.float64) * 2 - 1
    assert (x @ delta.T).abs().max() <= bound * (1 + 1e-6)
    # |up| |down| bounds |up @ down| entrywise; with one rank the bound is exact
    rank_one = type(factor)(None, factor.down[:1], factor.up[:, :1], factor.alpha_over_rank)
    row = (rank_one.up.double() @ rank_one.down.double()).abs().sum(dim=1).max()
    assert abs(output_bound(rank_one, 1.0) - float(row)) <= 1e-5 * float(row)


def test_limits():
    assert output_limit(torch.float16) == torch.finfo(torch.float16).max
    assert output_limit(torch.bfloat16) == output_limit(torch.float32) == pytest.approx(1.8446744e19, rel=1e-6)
