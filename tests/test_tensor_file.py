"""The safetensors layout as both loaders read it: every malformed header is refused."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import save

from textclf.tensor_file import numpy_view, read_specs


def _file(header: object, body: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def test_specs_view_what_safetensors_wrote() -> None:
    tensors = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3), "empty": torch.zeros(0, 4)}
    data = save(tensors)
    specs = read_specs(data)
    assert {k: (s.dtype, s.shape) for k, s in specs.items()} == {
        "a": ("F32", (2, 3)),
        "empty": ("F32", (0, 4)),
    }
    assert np.array_equal(numpy_view(data, specs["a"]), tensors["a"].numpy())
    assert numpy_view(data, specs["empty"]).shape == (0, 4)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"\x01\x00", "shorter than its header"),
        (struct.pack("<Q", 99) + b"{}", "runs past the end"),
        (_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4), "fit"),
        (_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 8), "fit"),
        (_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}, b"\0" * 4), "fit"),
        (_file({"a": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4), "I32"),
        (_file([1, 2]), "not an object"),
    ],
    ids=["short", "header-past-end", "past-data", "wrong-size", "negative", "dtype", "list"],
)
def test_a_malformed_file_is_refused(data: bytes, needle: str) -> None:
    with pytest.raises((ValueError, KeyError, TypeError), match=needle):
        read_specs(data)


def test_numpy_cannot_view_bfloat16() -> None:
    data = save({"a": torch.zeros(2, dtype=torch.bfloat16)})
    with pytest.raises(ValueError, match="BF16"):
        numpy_view(data, read_specs(data)["a"])
