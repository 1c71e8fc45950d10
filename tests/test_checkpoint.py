"""Reading DiT checkpoints: single file and sharded folder agree; every bad input is a CheckpointError naming it."""
import json
import pickle
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file, save_file

from longcat_pack.nodes.core.checkpoint import CONFIG_NAME, INDEX_NAME, CheckpointError, fill_parameters, \
    open_dit_checkpoint
from longcat_pack.nodes.core.dit import LongCatDiT
from support.model_files import load_dit

SHARD = "diffusion_pytorch_model-{:05d}-of-00003.safetensors"


@pytest.fixture(scope="module")
def single(golden_dir):
    return golden_dir / "tiny_dit.safetensors"


@pytest.fixture(scope="module")
def weights(single):
    return load_file(single)


def write_sharded(folder, weights, shards=3):
    """The reference `dit/` layout: keys split over shards plus the index json."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = sorted(weights)
    weight_map = {}
    for i in range(shards):
        name = SHARD.format(i + 1)
        part = {k: weights[k] for k in keys[i::shards]}
        save_file(part, folder / name)
        weight_map.update(dict.fromkeys(part, name))
    total = sum(t.numel() * t.element_size() for t in weights.values())
    (folder / INDEX_NAME).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))
    return folder


@pytest.fixture
def sharded(tmp_path, weights):
    return write_sharded(tmp_path / "dit", weights)


def read_all(path, **kwargs):
    return dict(open_dit_checkpoint(path, **kwargs))


def assert_same(a, b):
    assert set(a) == set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


def test_single_file_reads_every_tensor(single, weights):
    ckpt = open_dit_checkpoint(single)
    assert len(ckpt) == len(weights) == 56
    assert ckpt.config["depth"] == 2 and ckpt.config["hidden_size"] == 256
    assert_same(read_all(single), weights)


def test_sharded_folder_equals_single_file(sharded, single, weights):
    ckpt = open_dit_checkpoint(sharded)
    assert len(ckpt.shards) == 3
    assert_same(dict(ckpt), weights)
    assert_same(read_all(sharded / INDEX_NAME), weights)  # the index file itself also works
    assert ckpt.config == open_dit_checkpoint(single).config


def test_stream_is_shard_by_shard(sharded):
    """Tensors come one shard after another, so only one shard is ever open."""
    ckpt = open_dit_checkpoint(sharded)
    order = [k for k, _ in ckpt]
    assert order == [k for _, keys in ckpt.shards for k in keys]


def test_dtype_conversion_per_tensor(sharded, weights):
    got = read_all(sharded, dtype=torch.bfloat16)
    assert all(t.dtype == torch.bfloat16 for t in got.values())
    assert all(torch.equal(got[k], weights[k].to(torch.bfloat16)) for k in weights)


def test_stored_dtype_is_the_largest_tensors(single, tmp_path, weights):
    assert open_dit_checkpoint(single).stored_dtype == torch.float32
    mixed = {k: (v.bfloat16() if v.dim() == 2 else v) for k, v in weights.items()}  # norms and biases stay fp32
    bf16 = write_sharded(tmp_path / "bf16", mixed)
    assert open_dit_checkpoint(bf16).stored_dtype == torch.bfloat16


def test_progress_is_reported_per_tensor(sharded):
    calls = []
    read_all(sharded, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 56) for i in range(1, 57)]


def test_load_dit_builds_the_model(sharded, weights):
    calls = []
    model = load_dit(sharded, progress=lambda d, t: calls.append(d))
    assert_same(model.state_dict(), weights)
    assert calls[-1] == 56
    assert next(load_dit(sharded, dtype=torch.bfloat16).parameters()).dtype == torch.bfloat16


class LazyLinear(torch.nn.Linear):
    """A layer that holds `weight = None` until loaded, as ComfyUI's Linear does under DynamicVRAM."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        torch.nn.Module.__init__(self)
        self.in_features, self.out_features = in_features, out_features
        self.weight = None
        self.bias = None


def test_lazily_created_parameters_are_filled(single, weights):
    lazy = SimpleNamespace(Linear=LazyLinear, Conv3d=torch.nn.Conv3d, LayerNorm=torch.nn.LayerNorm)
    checkpoint = open_dit_checkpoint(single)
    model = LongCatDiT(**checkpoint.config, device="meta", operations=lazy).to_empty(device="cpu")
    assert model.blocks[0].attn.qkv.weight is None
    fill_parameters(model, checkpoint)
    assert_same(model.state_dict(), weights)
    assert isinstance(model.blocks[0].attn.qkv.weight, torch.nn.Parameter)


def test_comfyui_prefix_is_stripped(tmp_path, weights):
    path = tmp_path / "saved.safetensors"
    save_file({f"model.diffusion_model.{k}": v for k, v in weights.items()}, path)
    assert_same(read_all(path), weights)


def expect_error(path, match, names=None):
    with pytest.raises(CheckpointError, match=match) as info:
        open_dit_checkpoint(path)
    assert str(names or path) in str(info.value)
    return info.value


def test_missing_path(tmp_path):
    expect_error(tmp_path / "nope.safetensors", "not found")


def test_not_safetensors(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("this is a text file, not a model " * 10)
    expect_error(path, "not a safetensors file")


def test_pickle_is_never_unpickled(tmp_path):
    path = tmp_path / "model.ckpt"
    path.write_bytes(pickle.dumps({"x": 1}))
    expect_error(path, "pickled checkpoints are never loaded")


def test_header_not_json(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes((16).to_bytes(8, "little") + b"{not json at all" + b"\0" * 64)
    expect_error(path, "not JSON")


def test_truncated_file(tmp_path, single):
    path = tmp_path / "cut.safetensors"
    path.write_bytes(single.read_bytes()[:-1000])
    expect_error(path, "truncated")


def test_truncated_header(tmp_path, single):
    path = tmp_path / "cut.safetensors"
    path.write_bytes(single.read_bytes()[:100])
    expect_error(path, "truncated")


def test_truncated_shard_names_the_shard(sharded):
    shard = sharded / SHARD.format(2)
    shard.write_bytes(shard.read_bytes()[:-10])
    expect_error(sharded, "truncated", names=shard)


def test_index_names_absent_shard(sharded):
    (sharded / SHARD.format(3)).unlink()
    err = expect_error(sharded, "missing", names=sharded / INDEX_NAME)
    assert SHARD.format(3) in str(err)


def test_index_not_json(sharded):
    (sharded / INDEX_NAME).write_text("{")
    expect_error(sharded, "not a valid safetensors index", names=sharded / INDEX_NAME)


def test_index_key_not_in_its_shard(sharded):
    index = json.loads((sharded / INDEX_NAME).read_text())
    key = "blocks.0.ffn.w1.weight"
    wrong = next(SHARD.format(i) for i in (1, 2, 3) if SHARD.format(i) != index["weight_map"][key])
    index["weight_map"][key] = wrong
    (sharded / INDEX_NAME).write_text(json.dumps(index))
    err = expect_error(sharded, "does not hold", names=sharded / wrong)
    assert key in str(err)


def test_folder_without_checkpoint(tmp_path):
    expect_error(tmp_path, "no .safetensors file")


def test_missing_keys(tmp_path, weights):
    path = tmp_path / "partial.safetensors"
    save_file({k: v for k, v in weights.items() if not k.startswith("blocks.1.ffn")}, path)
    err = expect_error(path, "3 keys of the native LongCat .* layout missing")
    assert "blocks.1.ffn.w1.weight" in str(err)


def test_extra_keys(tmp_path, weights):
    path = tmp_path / "extra.safetensors"
    save_file({**weights, "blocks.0.attn.rope.freqs": torch.zeros(4)}, path)
    err = expect_error(path, "1 keys not in the native LongCat .* layout")
    assert "blocks.0.attn.rope.freqs" in str(err)


def test_wrong_shape(tmp_path, weights):
    path = tmp_path / "shape.safetensors"
    save_file({**weights, "blocks.1.attn.proj.bias": torch.zeros(128)}, path)
    expect_error(path, "wrong shape: blocks.1.attn.proj.bias")


def test_not_a_longcat_dit(tmp_path):
    path = tmp_path / "sd15.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(8, 4, 3, 3)}, path)
    expect_error(path, "not a LongCat-Video DiT")


def move_shard_outside(sharded, entry_for):
    """Move shard 3 out of the folder and point its index entries at it with `entry_for(outside path)`."""
    outside = sharded.parent / "outside.safetensors"
    (sharded / SHARD.format(3)).rename(outside)
    index = json.loads((sharded / INDEX_NAME).read_text())
    index["weight_map"] = {k: (entry_for(outside) if v == SHARD.format(3) else v)
                           for k, v in index["weight_map"].items()}
    (sharded / INDEX_NAME).write_text(json.dumps(index))
    return outside


@pytest.mark.parametrize("entry_for", [lambda outside: "../outside.safetensors", lambda outside: str(outside),
                                       lambda outside: "sub/../../outside.safetensors"],
                         ids=["relative", "absolute", "normalised"])
def test_index_entry_outside_its_folder(sharded, entry_for):
    """An index naming a shard outside its own folder is refused, naming the index and the entry."""
    outside = move_shard_outside(sharded, entry_for)
    err = expect_error(sharded, "outside the folder of the index", names=sharded / INDEX_NAME)
    assert entry_for(outside) in str(err)


def test_shard_linked_from_outside_its_folder(sharded):
    outside = move_shard_outside(sharded, lambda outside: SHARD.format(3))
    (sharded / SHARD.format(3)).symlink_to(outside)
    err = expect_error(sharded, "outside the folder of the index", names=sharded / INDEX_NAME)
    assert SHARD.format(3) in str(err)


def test_shards_in_a_subfolder_and_links_inside_the_folder_are_fine(sharded, weights):
    (sharded / "part").mkdir()
    (sharded / SHARD.format(3)).rename(sharded / "part" / SHARD.format(3))
    (sharded / SHARD.format(2)).rename(sharded / "part" / "real2.safetensors")
    (sharded / SHARD.format(2)).symlink_to(sharded / "part" / "real2.safetensors")
    index = json.loads((sharded / INDEX_NAME).read_text())
    index["weight_map"] = {k: (f"part/{v}" if v == SHARD.format(3) else v) for k, v in index["weight_map"].items()}
    (sharded / INDEX_NAME).write_text(json.dumps(index))
    assert_same(read_all(sharded), weights)


def test_index_linked_from_outside_the_folder(sharded, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (sharded / INDEX_NAME).rename(elsewhere / INDEX_NAME)
    (sharded / INDEX_NAME).symlink_to(elsewhere / INDEX_NAME)
    expect_error(sharded, "outside the checkpoint folder", names=sharded / INDEX_NAME)


@pytest.mark.parametrize("weight_map,problem", [
    ({"blocks.0.ffn.w1.weight": 5}, "'blocks.0.ffn.w1.weight' names 5, not a shard file name"),
    ({"blocks.0.ffn.w1.weight": ""}, "'blocks.0.ffn.w1.weight' names '', not a shard file name"),
    ({"blocks.0.ffn.w1.weight": "a\u0000b.safetensors"}, "not a shard file name"),
    ({"blocks.0.ffn.w1.weight": ["x.safetensors"]}, "not a shard file name"),
])
def test_index_entry_that_is_not_a_file_name(sharded, weight_map, problem):
    index = json.loads((sharded / INDEX_NAME).read_text())
    index["weight_map"].update(weight_map)
    (sharded / INDEX_NAME).write_text(json.dumps(index))
    expect_error(sharded, problem, names=sharded / INDEX_NAME)


def test_index_nested_too_deeply(sharded):
    (sharded / INDEX_NAME).write_text('{"weight_map": ' + "[" * 100_000 + "]" * 100_000 + "}")
    expect_error(sharded, "not a valid safetensors index", names=sharded / INDEX_NAME)


def test_config_linked_from_outside_the_folder(sharded, tmp_path):
    outside = tmp_path / "elsewhere.json"
    outside.write_text("{}")
    (sharded / CONFIG_NAME).symlink_to(outside)
    expect_error(sharded, "outside the checkpoint folder", names=sharded / CONFIG_NAME)


def test_single_file_of_a_folder_linked_from_outside(tmp_path, single):
    folder = tmp_path / "dit"
    folder.mkdir()
    (folder / "model.safetensors").symlink_to(single)
    expect_error(folder, "outside the checkpoint folder", names=folder / "model.safetensors")
