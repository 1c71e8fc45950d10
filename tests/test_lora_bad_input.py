"""Bad LoRA files give one clear error naming the file and the problem, and never touch the model."""
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

from longcat_pack.nodes.core.lora_files import inspect_lora, read_lora
from longcat_pack.nodes.core.safetensors_file import ModelFileError, tensor_shapes
from lora_writers import official_stem, random_factor, write_kohya, write_official


@pytest.fixture(scope="module")
def model_shapes(golden_dir):
    return tensor_shapes(golden_dir / "tiny_dit.safetensors")


@pytest.fixture
def good_bytes(golden_dir):
    return (golden_dir / "lora_distill.safetensors").read_bytes()


def expect_error(path, pattern, model_shapes=None):
    for reader in (lambda p: read_lora(p, model_shapes), inspect_lora):
        with pytest.raises(ModelFileError, match=pattern) as info:
            reader(path)
        assert path.name in str(info.value)


def test_truncated_file(tmp_path, good_bytes):
    path = tmp_path / "truncated.safetensors"
    path.write_bytes(good_bytes[: len(good_bytes) // 2])
    expect_error(path, "truncated")


def test_truncated_inside_header(tmp_path, good_bytes):
    path = tmp_path / "cut_header.safetensors"
    path.write_bytes(good_bytes[:100])
    expect_error(path, "truncated")


def test_corrupt_header(tmp_path, good_bytes):
    path = tmp_path / "corrupt.safetensors"
    path.write_bytes(good_bytes[:8] + b"\xff" * 50 + good_bytes[58:])
    expect_error(path, "not JSON")


def test_not_a_safetensors_file(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("this is a text file that someone renamed")
    expect_error(path, "not a safetensors file")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    expect_error(path, "empty")


def test_pickle_is_never_unpickled(tmp_path):
    """A .ckpt holding arbitrary Python objects is refused by weights_only loading: nothing executes."""
    path = tmp_path / "evil.ckpt"

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled!')",))

    path.write_bytes(pickle.dumps({"x": Boom()}))
    expect_error(path, "weights-only")


def test_weights_only_pt_is_accepted(tmp_path, golden_dir, model_shapes):
    path = tmp_path / "distill.pt"
    torch.save(load_file(str(golden_dir / "lora_distill.safetensors")), path)
    d = read_lora(path, model_shapes)
    assert d.default_strength == 0.5 and len(d.targets) == 14


def test_rank_mismatch(tmp_path):
    g = torch.Generator().manual_seed(0)
    down, _ = random_factor(256, 256, 4, g)
    _, ups = random_factor(256, 256, 3, g)
    path = write_official(tmp_path / "rank.safetensors", {"blocks.0.attn.proj": (down, ups, 0.5)})
    expect_error(path, "rank mismatch")


def test_wrong_dims_for_target(tmp_path, model_shapes):
    g = torch.Generator().manual_seed(1)
    down, ups = random_factor(512, 256, 4, g)  # attn.proj has 256 outputs
    path = write_official(tmp_path / "rows.safetensors", {"blocks.0.attn.proj": (down, ups, 0.5)})
    with pytest.raises(ModelFileError, match="rows.safetensors.*output rows 512"):
        read_lora(path, model_shapes)
    down, ups = random_factor(256, 4096, 4, g)
    path = write_official(tmp_path / "width.safetensors", {"blocks.0.attn.proj": (down, ups, 0.5)})
    with pytest.raises(ModelFileError, match="width.safetensors.*input width 4096"):
        read_lora(path, model_shapes)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_values(tmp_path, golden_dir, bad):
    sd = load_file(str(golden_dir / "lora_distill.safetensors"))
    key = official_stem("blocks.1.ffn.w3") + ".lora_up.weight"
    sd[key][3, 2] = bad
    save_file(sd, str(tmp_path / "nan.safetensors"))
    with pytest.raises(ModelFileError, match="nan.safetensors.*blocks.1.ffn.w3.*NaN or Inf"):
        read_lora(tmp_path / "nan.safetensors")


def test_non_finite_alpha(tmp_path, golden_dir):
    sd = load_file(str(golden_dir / "lora_distill.safetensors"))
    sd[official_stem("blocks.0.ffn.w1") + ".alpha_scale"] = torch.tensor(float("nan"))
    save_file(sd, str(tmp_path / "nan_alpha.safetensors"))
    expect_error(tmp_path / "nan_alpha.safetensors", "alpha is not finite")


def test_lora_for_another_model_family(tmp_path):
    """A Flux-style kohya LoRA: no key names a LongCat module."""
    g = torch.Generator().manual_seed(2)
    down, (up,) = random_factor(3072, 3072, 4, g)
    path = tmp_path / "flux_style.safetensors"
    save_file({"lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": down,
               "lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight": up}, str(path))
    expect_error(path, "no LongCat-Video LoRA keys")


def test_lora_for_another_longcat_size(tmp_path, model_shapes):
    """Right names, wrong size (a full-size LoRA on the tiny model)."""
    g = torch.Generator().manual_seed(3)
    down, (up,) = random_factor(4096, 4096, 2, g)
    path = write_kohya(tmp_path / "big.safetensors", {"blocks.0.attn.proj": (down, up, None)})
    with pytest.raises(ModelFileError, match="big.safetensors.*input width 4096"):
        read_lora(path, model_shapes)


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nowhere.safetensors", "not found")


def test_up_without_down(tmp_path):
    g = torch.Generator().manual_seed(4)
    _, (up,) = random_factor(256, 256, 4, g)
    path = tmp_path / "half.safetensors"
    save_file({official_stem("blocks.0.attn.proj") + ".lora_up.weight": up}, str(path))
    expect_error(path, "no down matrix")
