"""Bad LoRA files give one clear error naming the file and the problem, and never touch the model."""
import json
import math
import pickle
import re
from datetime import timedelta

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from longcat_pack.nodes.core.lora_files import MAX_LORA_TENSORS, inspect_lora, read_lora
from longcat_pack.nodes.core.safetensors_file import ModelFileError
from support.model_files import tensor_shapes
from lora_writers import MALFORMED_LORAS, official_stem, random_factor, write_kohya, write_malformed_lora, \
    write_official, write_peft, write_raw_safetensors


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
    raw = re.escape(key)
    with pytest.raises(ModelFileError, match=rf"nan.safetensors: module blocks\.1\.ffn\.w3: lora_up\.weight \({raw}\) "
                                             "contains NaN or Inf"):
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


@pytest.mark.parametrize("name", sorted(MALFORMED_LORAS))
def test_malformed_files_of_the_probe(tmp_path, name):
    """A shape or offsets given as strings, a header nested 100,000 levels deep, an empty alpha_scale, a rank-0
    kohya file: each a ModelFileError naming the file, official keys shown as module paths (raw key in
    parentheses)."""
    expect_error(write_malformed_lora(tmp_path / name), MALFORMED_LORAS[name][1])


def test_more_tensors_than_a_lora_has(tmp_path):
    header = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(MAX_LORA_TENSORS + 1)}
    path = write_raw_safetensors(tmp_path / "huge.safetensors", header)
    expect_error(path, f"lists {MAX_LORA_TENSORS + 1} tensors, more than the {MAX_LORA_TENSORS} allowed")


def peft_file(folder, adapter_config):
    g = torch.Generator().manual_seed(6)
    a, (b,) = random_factor(256, 256, 8, g)
    return write_peft(folder / "adapter_model.safetensors", {"blocks.0.attn.proj": (a, b, None)},
                      adapter_config=adapter_config)


@pytest.mark.parametrize("config,problem", [
    ({"lora_alpha": "sixteen"}, "lora_alpha must be a number"),
    ({"lora_alpha": True}, "lora_alpha must be a number"),
    ({"lora_alpha": 8, "alpha_pattern": ["blocks.0.attn.proj"]}, "alpha_pattern must map module names to numbers"),
    ({"lora_alpha": 8, "alpha_pattern": {"blocks.0.attn.proj": None}}, "alpha_pattern must map module names"),
    ([8], "not a JSON object"),
])
def test_bad_adapter_config(tmp_path, config, problem):
    path = peft_file(tmp_path, config)
    for reader in (read_lora, inspect_lora):
        with pytest.raises(ModelFileError, match=f"adapter_config.json: {problem}"):
            reader(path)


def test_adapter_config_not_utf8_or_nested_too_deeply(tmp_path):
    path = peft_file(tmp_path, {"lora_alpha": 8})
    config = tmp_path / "adapter_config.json"
    for content in (b"\xff\xfe\x00", b"[" * 100_000 + b"]" * 100_000):
        config.write_bytes(content)
        with pytest.raises(ModelFileError, match="adapter_config.json: unreadable"):
            inspect_lora(path)


def test_adapter_config_linked_from_outside_the_folder(tmp_path):
    folder = tmp_path / "peft"
    folder.mkdir()
    path = peft_file(folder, None)
    outside = tmp_path / "elsewhere.json"
    outside.write_text(json.dumps({"lora_alpha": 2}))
    (folder / "adapter_config.json").symlink_to(outside)
    with pytest.raises(ModelFileError, match="adapter_config.json: links to a file outside the LoRA's folder"):
        inspect_lora(path)


DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I8": 1, "BOOL": 1}
ranks = st.integers(min_value=0, max_value=3)
dtypes = st.sampled_from(["F32"] * 4 + sorted(DTYPE_BYTES))
scalar_shapes = st.sampled_from([None, [], [], [0], [1], [2], [1, 1], [0, 3]])
modules = st.fixed_dictionaries({
    "rank": ranks, "up_rank": ranks, "pieces": st.sampled_from([1, 1, 2, 3]),
    "down_rows_extra": st.sampled_from([0, 0, 1]), "alpha_shape": scalar_shapes,
    "dtypes": st.tuples(dtypes, dtypes, dtypes), "drop": st.sampled_from([None, "down", "up"])})


def lora_layout(stem, style, m):
    """{key: (dtype, shape)} for one module in the official (`lora_up.blocks.j`, alpha_scale) or kohya style."""
    down_dtype, up_dtype, alpha_dtype = m["dtypes"]
    rows = m["rank"] * m["pieces"] + m["down_rows_extra"]
    layout = {f"{stem}.lora_down.weight": (down_dtype, [rows, 4])}
    if style == "official" and m["pieces"] > 1:
        layout.update({f"{stem}.lora_up.blocks.{j}.weight": (up_dtype, [4, m["up_rank"]]) for j in range(m["pieces"])})
    else:
        layout[f"{stem}.lora_up.weight"] = (up_dtype, [4, m["up_rank"]])
    if m["alpha_shape"] is not None:
        layout[f"{stem}.{'alpha_scale' if style == 'official' else 'alpha'}"] = (alpha_dtype, m["alpha_shape"])
    if m["drop"]:
        layout = {k: v for k, v in layout.items() if f".lora_{m['drop']}" not in k}
    return layout


@settings(max_examples=200, deadline=timedelta(seconds=5), database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(official=modules, kohya=modules, draw=st.data())
def test_mutated_lora_files_never_raise_anything_else(tmp_path, official, kohya, draw):
    """Property: a well-formed safetensors file holding LoRA modules with any ranks (0 included), mismatched
    factors, empty or oversized alpha scalars, integer dtypes, missing matrices and random tensor bytes (NaN, zero or
    huge alphas) gives a description or a ModelFileError naming the file, through both readers."""
    layout = {**lora_layout(official_stem("blocks.0.attn.qkv"), "official", official),
              **lora_layout("lora_unet_blocks_1_ffn_w2", "kohya", kohya)}
    header, offset = {}, 0
    for key, (dtype, shape) in layout.items():
        size = DTYPE_BYTES[dtype] * math.prod(shape)
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    path = write_raw_safetensors(tmp_path / "mutated.safetensors", header,
                                 draw.draw(st.binary(min_size=offset, max_size=offset)))
    for reader in (inspect_lora, read_lora):
        try:
            reader(path)
        except ModelFileError as e:
            assert str(e).startswith("mutated.safetensors: "), e
