"""The fused merge kernel's indexing and its once-rounding epilogue, run on the CPU by Triton's interpreter for fp32
and float16 weights (the interpreter computes the products in plain fp32, whatever the precision asked for, and
converts to bfloat16 by truncation, so bfloat16 is left to the GPU). On a GPU, tests/test_gpu_merge.py runs the
compiled kernel in every dtype."""
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import PACK_ROOT

SCRIPT = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, "tests")
    import conftest
    from longcat_pack.nodes.core import merge_kernel
    from test_gpu_merge import assert_grouped_merge_rounds_once, assert_merged_once
    for dtype in (torch.float32, torch.float16):
        weights, prepared, stack = assert_grouped_merge_rounds_once(conftest.GOLDEN, dtype, "cpu")
        base = {n: w.clone() for n, w in weights.items()}
        merge_kernel.grouped_merge([(weights[n].data, prepared[n], weights[n].data) for n in prepared])  # in place
        assert_merged_once(weights, base, stack)
        print("kernel ok:", dtype, len(prepared), "targets")
""")


def test_kernel_indexing_under_the_triton_interpreter(golden_dir):
    pytest.importorskip("triton", reason="Triton is not installed (CPU-only torch build)")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=PACK_ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0 and result.stdout.count(" 18 targets") == 2, result.stdout + result.stderr[-3000:]
