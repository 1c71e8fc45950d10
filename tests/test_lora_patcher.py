"""The patcher: merge equals the reference delta formula, restore is bit-exact over many cycles, runtime and
merge agree, and a stack that fails validation (or an interrupted merge) leaves every weight as it was."""
import pytest
import torch
from safetensors.torch import load_file

from longcat_pack.nodes.core.lora_files import read_lora
from longcat_pack.nodes.core.lora_patcher import RuntimeLora, WeightMerger, linear_weights, prepare_stack
from longcat_pack.nodes.core.safetensors_file import ModelFileError
from lora_writers import dense_delta, random_factor, write_kohya, write_official


def linear_tree(state_dict, dtype):
    """A module tree holding one nn.Linear per 2-D weight of `state_dict`, named like the DiT."""
    root = torch.nn.Module()
    for key, w in state_dict.items():
        if not key.endswith(".weight") or w.dim() != 2:
            continue
        parent = root
        *path, leaf = key[:-len(".weight")].split(".")
        for part in path:
            if not hasattr(parent, part):
                parent.add_module(part, torch.nn.Module())
            parent = getattr(parent, part)
        layer = torch.nn.Linear(w.shape[1], w.shape[0], bias=False, dtype=dtype)
        layer.weight.data.copy_(w)
        parent.add_module(leaf, layer)
    return root.requires_grad_(False)


@pytest.fixture(scope="module")
def base_sd(golden_dir):
    return load_file(str(golden_dir / "tiny_dit.safetensors"))


@pytest.fixture(scope="module")
def loras(golden_dir):
    return read_lora(golden_dir / "lora_distill.safetensors"), read_lora(golden_dir / "lora_refine.safetensors")


def snapshot(root):
    return {n: w.detach().clone() for n, w in linear_weights(root).items()}


def assert_bytes_equal(root, snap):
    for name, w in linear_weights(root).items():
        assert torch.equal(w.view(torch.uint8) if w.dtype != torch.float32 else w.view(torch.int32),
                           snap[name].view(torch.uint8) if w.dtype != torch.float32 else snap[name].view(torch.int32)), name


def reference_weights(base_sd, stack):
    """W + sum strength * alpha_scale_m / common * blockdiag(up) @ down, computed in float64 from the files."""
    out = {}
    for description, strength in stack:
        for module, factors in description.targets.items():
            w = out.setdefault(module, base_sd[module + ".weight"].double().clone())
            rows = [(f.rows or (0, w.shape[0]), f.up, f.down,
                     strength * f.alpha_over_rank / description.default_strength) for f in factors]
            w += dense_delta(rows, *w.shape)
    return out


@pytest.mark.parametrize("backup_on_device", [True, False])
def test_merge_matches_delta_formula_fp32(base_sd, loras, backup_on_device):
    distill, refine = loras
    root = linear_tree(base_sd, torch.float32)
    stack = [(distill, 0.6), (refine, 0.5)]
    WeightMerger(root).merge(prepare_stack(stack, linear_weights(root)), backup_on_device=backup_on_device)
    expected = reference_weights(base_sd, stack)
    assert len(expected) == 18
    for module, w in expected.items():
        torch.testing.assert_close(root.get_submodule(module).weight.double(), w, atol=2e-6, rtol=1e-6)


def test_strength_scales_delta_linearly(base_sd, loras):
    distill, _ = loras
    module = "blocks.0.attn.qkv"
    deltas = []
    for strength in (0.5, 1.0):
        root = linear_tree(base_sd, torch.float32)
        WeightMerger(root).merge(prepare_stack([(distill, strength)], linear_weights(root)))
        deltas.append(root.get_submodule(module).weight.double() - base_sd[module + ".weight"].double())
    torch.testing.assert_close(deltas[1], 2 * deltas[0], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("backup_on_device", [True, False])
def test_restore_is_bit_exact_over_many_cycles(base_sd, loras, dtype, backup_on_device):
    distill, refine = loras
    root = linear_tree(base_sd, dtype)
    original = snapshot(root)
    merger = WeightMerger(root)
    stacks = [[(distill, 0.5)], [(refine, 0.5)], [(distill, 1.0), (refine, 0.7)], [(refine, -2.0)]]
    prepared = [prepare_stack(s, linear_weights(root)) for s in stacks]
    after_first = None
    for cycle in range(40):
        merger.merge(prepared[cycle % len(prepared)], backup_on_device=backup_on_device)
        if cycle == 0:
            after_first = snapshot(root)
        if cycle % len(prepared) == 0 and cycle:
            assert_bytes_equal(root, after_first)  # the same stack always gives the same bytes
        if cycle % 3 == 0:
            merger.restore()
            assert_bytes_equal(root, original)
    merger.restore()
    assert_bytes_equal(root, original)
    assert not merger.merged


def test_merge_changes_exactly_the_targets(base_sd, loras):
    distill, _ = loras
    root = linear_tree(base_sd, torch.float32)
    original = snapshot(root)
    WeightMerger(root).merge(prepare_stack([(distill, 0.5)], linear_weights(root)))
    changed = {n for n, w in linear_weights(root).items() if not torch.equal(w, original[n])}
    assert changed == set(distill.targets)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
def test_runtime_and_merge_agree(base_sd, loras, dtype, tol):
    distill, refine = loras
    stack = [(distill, 0.5), (refine, 0.8)]
    merged_root, runtime_root = linear_tree(base_sd, dtype), linear_tree(base_sd, dtype)
    WeightMerger(merged_root).merge(prepare_stack(stack, linear_weights(merged_root)))
    runtime = RuntimeLora(runtime_root, prepare_stack(stack, linear_weights(runtime_root))).attach()
    expected = reference_weights(base_sd, stack)
    g = torch.Generator().manual_seed(0)
    for module, w in expected.items():
        x = torch.randn(2, 5, w.shape[1], generator=g)
        reference = x.double() @ w.t()
        for root in (merged_root, runtime_root):
            y = root.get_submodule(module)(x.to(dtype)).double()
            assert (y - reference).abs().max() <= tol * reference.abs().max(), module
    runtime.detach()
    plain = runtime_root.get_submodule("blocks.0.attn.qkv")
    x = torch.randn(3, 256, generator=g)
    torch.testing.assert_close(plain(x.to(dtype)), x.to(dtype) @ plain.weight.t())


def test_runtime_leaves_weights_untouched(base_sd, loras):
    root = linear_tree(base_sd, torch.float32)
    original = snapshot(root)
    RuntimeLora(root, prepare_stack([(loras[0], 1.0)], linear_weights(root))).attach()
    root.get_submodule("blocks.0.ffn.w1")(torch.randn(4, 256))
    assert_bytes_equal(root, original)


def test_zero_strength_is_identity(base_sd, loras):
    root = linear_tree(base_sd, torch.bfloat16)
    original = snapshot(root)
    WeightMerger(root).merge(prepare_stack([(loras[0], 0.0)], linear_weights(root)))
    assert_bytes_equal(root, original)


def test_mixed_fused_and_split_stack(base_sd, tmp_path):
    """A fused LoRA and a split q/k/v LoRA on the same qkv weight add their deltas."""
    g = torch.Generator().manual_seed(3)
    down, (up,) = random_factor(768, 256, 4, g)
    fused = read_lora(write_kohya(tmp_path / "fused.safetensors", {"blocks.0.attn.qkv": (down, up, 4.0)}))
    split_modules = {f"blocks.0.attn.{n}": (*random_factor(256, 256, 2, g), 1.0) for n in ("k", "v")}
    split = read_lora(write_official(tmp_path / "split.safetensors", split_modules))
    stack = [(fused, 1.0), (split, 1.0)]
    root = linear_tree(base_sd, torch.float32)
    WeightMerger(root).merge(prepare_stack(stack, linear_weights(root)))
    torch.testing.assert_close(root.get_submodule("blocks.0.attn.qkv").weight.double(),
                               reference_weights(base_sd, stack)["blocks.0.attn.qkv"], atol=2e-6, rtol=1e-6)


def test_bad_stack_leaves_weights_unchanged(base_sd, loras, tmp_path):
    """Validation covers the whole stack before the first weight is touched."""
    g = torch.Generator().manual_seed(4)
    down, (up,) = random_factor(256, 128, 4, g)  # wrong input width for attn.proj (256)
    wrong = read_lora(write_kohya(tmp_path / "wrong_width.safetensors", {"blocks.1.attn.proj": (down, up, None)}))
    root = linear_tree(base_sd, torch.bfloat16)
    merger = WeightMerger(root)
    merger.merge(prepare_stack([(loras[1], 0.5)], linear_weights(root)))
    merged = snapshot(root)
    with pytest.raises(ModelFileError, match="wrong_width.safetensors.*blocks.1.attn.proj"):
        merger.merge(prepare_stack([(loras[0], 0.5), (wrong, 1.0)], linear_weights(root)))
    assert_bytes_equal(root, merged)


def test_overflowing_strength_is_rejected_before_merge(base_sd, loras):
    root = linear_tree(base_sd, torch.float16)
    original = snapshot(root)
    with pytest.raises(ModelFileError, match="lora_distill.safetensors.*NaN or Inf"):
        WeightMerger(root).merge(prepare_stack([(loras[0], 1e6)], linear_weights(root)))
    assert_bytes_equal(root, original)


@pytest.mark.parametrize("backup_on_device", [True, False])
def test_interrupted_merge_rolls_back(base_sd, loras, backup_on_device):
    root = linear_tree(base_sd, torch.bfloat16)
    original = snapshot(root)
    calls = []

    def interrupt_on_fifth():
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt("user pressed cancel")

    merger = WeightMerger(root)
    with pytest.raises(KeyboardInterrupt):
        merger.merge(prepare_stack([(loras[1], 0.5)], linear_weights(root)), backup_on_device=backup_on_device,
                     check_interrupt=interrupt_on_fifth)
    assert_bytes_equal(root, original)
    assert not merger.merged


def test_merge_refuses_fp8_weights(base_sd, loras):
    if not hasattr(torch, "float8_e4m3fn"):
        pytest.skip("no float8 in this torch")
    root = linear_tree(base_sd, torch.float32)
    qkv = root.get_submodule("blocks.0.attn.qkv")
    qkv.weight.data = qkv.weight.data.to(torch.float8_e4m3fn)
    original = snapshot(root)
    with pytest.raises(ValueError, match="runtime"):
        WeightMerger(root).merge(prepare_stack([(loras[0], 0.5)], linear_weights(root)))
    assert_bytes_equal(root, original)


def test_progress_is_reported(base_sd, loras):
    root = linear_tree(base_sd, torch.float32)
    seen = []
    WeightMerger(root).merge(prepare_stack([(loras[0], 0.5)], linear_weights(root)),
                             progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (14, 14) and len(seen) == 14
