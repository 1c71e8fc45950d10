"""The safetensors header reader checks the type of every header value and every number before using it: a
malformed file is one ModelFileError naming the file and the problem, never a raw Python error."""
import os

import pytest

from longcat_pack.nodes.core.safetensors_file import ModelFileError, read_safetensors_header
from lora_writers import write_raw_safetensors as write_raw

GOOD_ENTRY = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


def expect_error(path, pattern, **limits):
    with pytest.raises(ModelFileError, match=pattern) as info:
        read_safetensors_header(path, **limits)
    assert str(info.value).startswith(path.name + ": "), info.value
    return info.value


def test_a_good_header_reads(tmp_path):
    header, metadata = read_safetensors_header(write_raw(tmp_path / "ok.safetensors",
                                                         {"__metadata__": {"format": "pt"}, "w": GOOD_ENTRY}))
    assert header == {"w": GOOD_ENTRY} and metadata == {"format": "pt"}


@pytest.mark.parametrize("change,problem", [
    ({"shape": "2"}, "shape"),  # a shape given as a string
    ({"shape": [2.0]}, "shape"),
    ({"shape": [True, 2]}, "shape"),
    ({"shape": [-2]}, "shape"),
    ({"shape": None}, "shape"),
    ({"data_offsets": ["0", "8"]}, "data_offsets"),  # offsets given as strings
    ({"data_offsets": [0, 8, 16]}, "data_offsets"),
    ({"data_offsets": 8}, "data_offsets"),
    ({"data_offsets": [8, 0]}, "data_offsets"),
    ({"data_offsets": [-8, 0]}, "data_offsets"),
    ({"data_offsets": [0, 1e400]}, "data_offsets"),
    ({"dtype": ["F32"]}, "dtype"),
    ({"dtype": None}, "dtype"),
    ({"dtype": "F31"}, "unsupported dtype F31"),
    ({"shape": [10 ** 30]}, "byte range does not match its shape"),
    ({"data_offsets": [0, 10 ** 30], "shape": [10 ** 30 // 4]}, "past the end of the file"),
])
def test_every_header_value_is_checked(tmp_path, change, problem):
    path = write_raw(tmp_path / "bad_entry.safetensors", {"w": {**GOOD_ENTRY, **change}})
    err = expect_error(path, problem)
    assert "'w'" in str(err)


@pytest.mark.parametrize("entry", ["F32", [0, 8], 5, None, {"dtype": "F32", "shape": [2]}])
def test_an_entry_that_is_not_a_tensor_description(tmp_path, entry):
    expect_error(write_raw(tmp_path / "entry.safetensors", {"w": entry}), "header entry for tensor 'w'")


@pytest.mark.parametrize("metadata", [[1, 2], "text", {"format": 5}])
def test_metadata_must_map_names_to_strings(tmp_path, metadata):
    path = write_raw(tmp_path / "meta.safetensors", {"__metadata__": metadata, "w": GOOD_ENTRY})
    expect_error(path, "__metadata__")


def test_a_header_nested_100000_levels_deep(tmp_path):
    depth = 100_000
    path = write_raw(tmp_path / "deep.safetensors", b'{"w": ' + b"[" * depth + b"]" * depth + b"}")
    expect_error(path, "nested too deeply")


@pytest.mark.parametrize("raw,problem", [
    (b'{"w": ' + b"9" * 5000 + b"}", "not JSON"),  # beyond Python's int-digit limit: ValueError, not JSONDecodeError
    (b'["w"]', "not a JSON object"),
    (b"\xff\xfe{}", "not JSON"),
])
def test_header_bytes_that_are_not_a_json_object(tmp_path, raw, problem):
    expect_error(write_raw(tmp_path / "raw.safetensors", raw), problem)


def test_bounds_on_header_size_and_tensor_count(tmp_path):
    header = {f"t{i}": {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i in range(50)}
    path = write_raw(tmp_path / "many.safetensors", header, b"\0" * 200)
    assert len(read_safetensors_header(path, max_tensors=50)[0]) == 50
    expect_error(path, "50 tensors, more than the 49", max_tensors=49)
    size = os.path.getsize(path) - 8 - 200
    expect_error(path, f"header is {size} bytes, more than the 1000", max_header_bytes=1000)


def test_tensor_names_are_shown_through_the_label(tmp_path):
    path = write_raw(tmp_path / "label.safetensors", {"raw.name": {**GOOD_ENTRY, "dtype": "Q4"}})
    with pytest.raises(ModelFileError, match=r"tensor module\.name \(raw\.name\) has unsupported dtype Q4"):
        read_safetensors_header(path, key_label=lambda key: f"module.name ({key})")

