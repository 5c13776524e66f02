"""The safetensors layout, read without torch: each tensor's dtype, shape and byte range.

The format is an 8-byte little-endian header size, a JSON header of dtype, shape and byte range
per tensor, then the bytes. Both loaders view the bytes in place from these specs (torch in
`textclf.artifact`, NumPy in `textclf.host`), so a memory-mapped weights file is never copied and
processes loading one model share its pages.
"""

from __future__ import annotations

import json
import math
import mmap
from typing import NamedTuple

import numpy as np

ITEM_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}
_NUMPY = {"F64": np.float64, "F32": np.float32, "F16": np.float16}  # NumPy has no bfloat16


class TensorSpec(NamedTuple):
    dtype: str  # the file's name for it: F32, F16, ...
    shape: tuple[int, ...]
    offset: int  # from the start of the file
    n_items: int


def read_specs(data: bytes | mmap.mmap) -> dict[str, TensorSpec]:
    """Every tensor's spec, checked to lie inside the file; ValueError, KeyError or TypeError
    if the file is malformed."""
    if len(data) < 8:
        raise ValueError("shorter than its header")
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8:
        raise ValueError("header runs past the end of the file")
    header = json.loads(bytes(data[8 : 8 + size]))
    if not isinstance(header, dict):
        raise TypeError(f"the header is a JSON {type(header).__name__}, not an object")
    start, end = 8 + size, len(data)
    specs = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = str(entry["dtype"])
        if dtype not in ITEM_SIZES:
            raise ValueError(f"tensor {name!r} has dtype {dtype}, not one of {sorted(ITEM_SIZES)}")
        shape = tuple(int(n) for n in entry["shape"])
        begin, stop = (start + int(offset) for offset in entry["data_offsets"])  # ValueError: not 2
        count = math.prod(shape)
        if not start <= begin <= stop <= end or stop - begin != count * ITEM_SIZES[dtype]:
            raise ValueError(f"tensor {name!r} does not fit its byte range")
        specs[name] = TensorSpec(dtype, shape, begin, count)
    return specs


def numpy_view(data: bytes | mmap.mmap, spec: TensorSpec) -> np.ndarray:
    """The tensor as a NumPy array over `data` (no copy); ValueError for bfloat16."""
    dtype = _NUMPY.get(spec.dtype)
    if dtype is None:
        raise ValueError(f"NumPy cannot view {spec.dtype} weights")
    if spec.n_items == 0:
        return np.zeros(spec.shape, dtype)
    flat = np.frombuffer(data, dtype=dtype, count=spec.n_items, offset=spec.offset)
    flat.flags.writeable = False  # the weights are the model's; nothing scores by editing them
    return flat.reshape(spec.shape)
