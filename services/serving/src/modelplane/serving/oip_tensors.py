"""Open Inference Protocol v2 tensors ⇄ numpy, shared by the gRPC and REST adapters."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelplane.kit.errors import FieldViolation, InvalidArgument
from modelplane.serving.servable_model import ModelInput

DTYPES: dict[str, Any] = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
    "UINT64": np.uint64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
    "INT64": np.int64, "FP16": np.float16, "FP32": np.float32, "FP64": np.float64,
    "BYTES": np.object_,
}
_BY_KIND = {("b", 1): "BOOL", ("u", 1): "UINT8", ("u", 2): "UINT16", ("u", 4): "UINT32",
            ("u", 8): "UINT64", ("i", 1): "INT8", ("i", 2): "INT16", ("i", 4): "INT32",
            ("i", 8): "INT64", ("f", 2): "FP16", ("f", 4): "FP32", ("f", 8): "FP64"}


def oip_datatype(arr: np.ndarray) -> str:
    if arr.dtype.kind in "USO":
        return "BYTES"
    return _BY_KIND.get((arr.dtype.kind, arr.dtype.itemsize), "FP64")


def bad_tensor(name: str, what: str, description: str) -> InvalidArgument:
    return InvalidArgument(f"input tensor {name!r}: {description}",
                           reason=f"INPUT_{what.upper()}_INVALID", metadata={"tensor": name},
                           field_violations=[FieldViolation(f"inputs[{name}].{what}",
                                                            description)])


def numpy_dtype(name: str, datatype: str) -> Any:
    dt = DTYPES.get(datatype.upper())
    if dt is None:
        raise bad_tensor(name, "datatype", f"unknown datatype {datatype!r}; expected one of "
                         + ", ".join(DTYPES))
    return dt


def deserialize_bytes(raw: bytes) -> np.ndarray:
    items: list[bytes] = []
    i = 0
    while i < len(raw):
        if i + 4 > len(raw):
            raise ValueError("truncated BYTES tensor")
        (n,) = struct.unpack_from("<I", raw, i)
        i += 4
        items.append(raw[i:i + n])
        i += n
    return np.array(items, dtype=np.object_)


def serialize_bytes(arr: np.ndarray) -> bytes:
    parts = []
    for item in arr.reshape(-1):
        b = item if isinstance(item, bytes) else str(item).encode()
        parts.append(struct.pack("<I", len(b)))
        parts.append(b)
    return b"".join(parts)


def decode_bytes_array(arr: np.ndarray) -> np.ndarray:
    """BYTES elements as str (models take strings, not bytes)."""
    return np.array([x.decode() if isinstance(x, bytes) else str(x) for x in arr.reshape(-1)],
                    dtype=object).reshape(arr.shape)


def from_raw(name: str, datatype: str, shape: Sequence[int], raw: bytes) -> np.ndarray:
    dt = numpy_dtype(name, datatype)
    try:
        if dt is np.object_:
            arr = decode_bytes_array(deserialize_bytes(raw))
        else:
            arr = np.frombuffer(raw, dtype=dt)
    except ValueError as exc:
        raise bad_tensor(name, "contents", f"raw contents do not decode as {datatype}: {exc}"
                         ) from None
    return reshape(name, arr, shape)


def reshape(name: str, arr: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    shape = [int(s) for s in shape]
    if any(s < 0 for s in shape):
        raise bad_tensor(name, "shape", f"shape {shape} has a negative dimension")
    expected = int(np.prod(shape)) if shape else 1
    if arr.size != expected:
        raise bad_tensor(name, "shape", f"shape {shape} needs {expected} element(s); "
                         f"the request has {arr.size}")
    return arr.reshape(shape)


def to_model_input(tensors: list[tuple[str, np.ndarray]]) -> ModelInput:
    """Request tensors as model rows: one 2-D tensor = a matrix; else named columns."""
    if not tensors:
        raise InvalidArgument("the request has no input tensors", reason="INPUTS_MISSING",
                              field_violations=[FieldViolation("inputs", "at least one")])
    if len(tensors) == 1 and tensors[0][1].ndim == 2:
        name, arr = tensors[0]
        return ModelInput(arr.shape[0], matrix=arr, matrix_name=name)
    n_rows: int | None = None
    cols: dict[str, np.ndarray] = {}
    for name, arr in tensors:
        if name in cols:
            raise bad_tensor(name, "name", "the same input name appears twice")
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr.reshape(-1)
        if arr.ndim != 1:
            raise bad_tensor(name, "shape", f"with several inputs each must be [N] or [N, 1]; "
                             f"got {list(arr.shape)}")
        if n_rows is None:
            n_rows = arr.shape[0]
        elif arr.shape[0] != n_rows:
            raise bad_tensor(name, "shape", f"has {arr.shape[0]} rows; other inputs have "
                             f"{n_rows}")
        cols[name] = arr
    assert n_rows is not None
    return ModelInput(n_rows, cols)


def output_array(arr: np.ndarray) -> np.ndarray:
    """An output ready to serialize: strings as object, others contiguous."""
    if arr.dtype.kind in "US":
        return arr.astype(object)
    return np.ascontiguousarray(arr)


def output_raw(arr: np.ndarray) -> tuple[str, bytes]:
    dt = oip_datatype(arr)
    if dt == "BYTES":
        return dt, serialize_bytes(arr)
    return dt, np.ascontiguousarray(arr).tobytes()
