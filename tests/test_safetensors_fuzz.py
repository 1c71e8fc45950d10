"""Property test of the safetensors header reader: random and mutated headers (wrong types, offsets, sizes, deep
nesting, unicode, huge numbers, damaged bytes) give a clean read or a ModelFileError naming the file, never another
exception and never a hang. Bounded (a few hundred examples per property, a deadline per example) to run in CI in
seconds."""
import json
import math
import struct
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longcat_pack.nodes.core.safetensors_file import DTYPE_SIZES, ModelFileError, read_safetensors_header
from lora_writers import write_raw_safetensors

BOUNDED = settings(max_examples=200, deadline=timedelta(seconds=5), database=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
NAME = "fuzzed.safetensors"

huge_ints = st.integers(min_value=-(2 ** 70), max_value=2 ** 70) | st.sampled_from([0, 1, 2 ** 63, 2 ** 64, 10 ** 400])
scalars = (st.none() | st.booleans() | huge_ints | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
dtypes = st.sampled_from(sorted(DTYPE_SIZES) + ["F31", "f32", "", "Q4_K"]) | json_values
shapes = st.lists(st.integers(min_value=-3, max_value=40) | huge_ints, max_size=4) | json_values
offsets = st.lists(st.integers(min_value=-8, max_value=600) | huge_ints, min_size=2, max_size=2) | json_values
entries = st.fixed_dictionaries({"dtype": dtypes, "shape": shapes, "data_offsets": offsets},
                                optional={"extra": json_values}) | json_values
names = st.text(max_size=16) | st.sampled_from(["__metadata__", "lora___lorahyphen___blocks___lorahyphen___0.alpha"])
headers = st.dictionaries(names, entries, max_size=6)


@pytest.fixture(scope="module")
def fuzz_file(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / NAME


def assert_clean_read_or_model_file_error(path):
    try:
        header, metadata = read_safetensors_header(path)
    except ModelFileError as e:
        assert str(e).startswith(NAME + ": ") and e.problem, e
        return
    data_size = path.stat().st_size - 8 - struct.unpack("<Q", path.read_bytes()[:8])[0]
    assert isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    for info in header.values():
        assert info["dtype"] in DTYPE_SIZES
        assert all(type(n) is int and n >= 0 for n in info["shape"])
        start, end = info["data_offsets"]
        assert type(start) is int and 0 <= start <= end <= data_size
        assert end - start == math.prod(info["shape"]) * DTYPE_SIZES[info["dtype"]]


@BOUNDED
@given(header=headers, data=st.binary(max_size=64), ascii_only=st.booleans())
def test_random_headers(fuzz_file, header, data, ascii_only):
    write_raw_safetensors(fuzz_file, json.dumps(header, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass"), data)
    assert_clean_read_or_model_file_error(fuzz_file)


@BOUNDED
@given(depth=st.integers(min_value=1, max_value=200_000), brackets=st.sampled_from(["[]", "{}"]))
def test_deeply_nested_headers(fuzz_file, depth, brackets):
    opening, closing = brackets
    inner = (opening + ('"k":' if opening == "{" else "")) * depth + closing * depth
    write_raw_safetensors(fuzz_file, ('{"w": ' + inner.replace(':' + closing, ':0' + closing, 1) + "}").encode(), b"")
    assert_clean_read_or_model_file_error(fuzz_file)


def valid_file_bytes():
    header = {"__metadata__": {"format": "pt"},
              "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
              "b": {"dtype": "BF16", "shape": [], "data_offsets": [24, 26]},
              "c": {"dtype": "I64", "shape": [0], "data_offsets": [26, 26]}}
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + bytes(range(26))


@BOUNDED
@given(edits=st.lists(st.tuples(st.integers(min_value=0, max_value=400), st.integers(min_value=0, max_value=255)),
                      max_size=6),
       cut=st.none() | st.integers(min_value=0, max_value=400),
       header_length=st.none() | st.integers(min_value=0, max_value=2 ** 64 - 1))
def test_damaged_bytes(fuzz_file, edits, cut, header_length):
    data = bytearray(valid_file_bytes())
    for position, value in edits:
        data[position % len(data)] = value
    if header_length is not None:
        data[:8] = struct.pack("<Q", header_length)
    fuzz_file.write_bytes(bytes(data[:cut] if cut is not None else data))
    assert_clean_read_or_model_file_error(fuzz_file)
