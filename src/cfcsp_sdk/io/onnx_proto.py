"""Write small ONNX models (the bytes ONNX Runtime loads) without the ``onnx`` package.

ONNX models are protocol-buffer messages (``onnx.proto``). The few graphs the SDK builds at run time
(the MTCNN face detector's networks, from weights another package ships) need only float32 tensors,
nodes with int/float/string/ints attributes and typed inputs/outputs, so the base install writes
that subset of the protobuf wire format itself instead of depending on ``onnx`` (about 28 MB with
its ``ml_dtypes`` dependency). Fields are written in field-number order, the order protobuf's own
serializer uses, so ``onnx.load_from_string(b).SerializeToString() == b``; the tests check that.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import numpy as np

FLOAT = 1
"""``TensorProto.DataType.FLOAT``."""

# AttributeProto.AttributeType
_ATTR_FLOAT, _ATTR_INT, _ATTR_STRING, _ATTR_INTS = 1, 2, 3, 7


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64 values are written as their 64-bit two's complement
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(int(value))


def _bytes(field: int, value: bytes | str) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _float(field: int, value: float) -> bytes:
    return _varint(field << 3 | 5) + struct.pack("<f", value)


def tensor(name: str, array: np.ndarray) -> bytes:
    """A ``TensorProto`` initializer: ``array`` as float32 raw little-endian data."""
    a = np.ascontiguousarray(array, dtype="<f4")
    return b"".join(_int(1, d) for d in a.shape) + _int(2, FLOAT) + _bytes(8, name) + _bytes(9, a.tobytes())


def _attribute(name: str, value: int | float | str | Sequence[int]) -> bytes:
    if isinstance(value, bool) or isinstance(value, (int, np.integer)):
        return _bytes(1, name) + _int(3, int(value)) + _int(20, _ATTR_INT)
    if isinstance(value, float):
        return _bytes(1, name) + _float(2, value) + _int(20, _ATTR_FLOAT)
    if isinstance(value, str):
        return _bytes(1, name) + _bytes(4, value) + _int(20, _ATTR_STRING)
    return _bytes(1, name) + b"".join(_int(8, int(v)) for v in value) + _int(20, _ATTR_INTS)


def node(
    op_type: str, inputs: Iterable[str], outputs: Iterable[str], **attributes: int | float | str | Sequence[int]
) -> bytes:
    """A ``NodeProto`` of the default domain; attributes are written sorted by name (as ``onnx.helper`` does)."""
    return (
        b"".join(_bytes(1, i) for i in inputs)
        + b"".join(_bytes(2, o) for o in outputs)
        + _bytes(4, op_type)
        + b"".join(_bytes(5, _attribute(k, v)) for k, v in sorted(attributes.items()))
    )


def value_info(name: str, shape: Sequence[int | str], elem_type: int = FLOAT) -> bytes:
    """A ``ValueInfoProto`` for a tensor; each dimension is a size (int) or a symbolic name (str)."""
    dims = b"".join(_bytes(1, _int(1, d) if isinstance(d, int) else _bytes(2, d)) for d in shape)
    tensor_type = _int(1, elem_type) + _bytes(2, dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def model(
    nodes: Sequence[bytes],
    name: str,
    inputs: Sequence[bytes],
    outputs: Sequence[bytes],
    initializers: Sequence[bytes],
    opset: int = 17,
    ir_version: int = 8,
    producer: str = "cfcsp-sdk",
) -> bytes:
    """A serialised ``ModelProto`` with one graph, importing the default domain at ``opset``."""
    graph = (
        b"".join(_bytes(1, n) for n in nodes)
        + _bytes(2, name)
        + b"".join(_bytes(5, t) for t in initializers)
        + b"".join(_bytes(11, v) for v in inputs)
        + b"".join(_bytes(12, v) for v in outputs)
    )
    return _int(1, ir_version) + _bytes(2, producer) + _bytes(7, graph) + _bytes(8, _int(2, opset))


__all__ = ["FLOAT", "model", "node", "tensor", "value_info"]
