"""Where an ONNX file says its weights are stored, checked before any runtime opens it.

An ONNX tensor may keep its bytes in another file (``data_location: EXTERNAL`` with a ``location``
entry). Older ONNX Runtime releases follow such a location anywhere (``../../secret.bin``,
``/etc/passwd``), so a model file could make us read any file as weights. :func:`check_external_data`
lists every tensor's external-data location and refuses any that is not an existing regular file
inside the model's folder.

The ONNX file is read with the small protobuf wire-format walker below rather than with the ``onnx``
package: it needs nothing but the standard library (``onnx`` may not be installed; ONNX Runtime
offers no way to list external data before loading), reads the file through ``mmap`` without copying
the weights, and visits every place a tensor can sit (graph initializers, sparse initializers, node
attributes, subgraphs of control-flow nodes, functions, training info). A file it cannot parse is
refused, so it fails closed.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

from cfcsp_sdk.errors import BackendError, UnsafeFileError
from cfcsp_sdk.io.files import file_inside

_MAX_DEPTH = 64  # subgraph nesting; deeper is refused, not recursed into

# the message types that can hold tensors, and which of their fields lead to them (field number -> type),
# from onnx.proto (IR version 10)
_MODEL, _GRAPH, _NODE, _ATTRIBUTE, _FUNCTION, _TRAINING, _SPARSE, _TENSOR = range(8)
_FIELDS = {
    _MODEL: {7: _GRAPH, 20: _TRAINING, 25: _FUNCTION},
    _TRAINING: {1: _GRAPH, 2: _GRAPH},
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},
    _NODE: {5: _ATTRIBUTE},
    _FUNCTION: {7: _NODE, 11: _ATTRIBUTE},
    _ATTRIBUTE: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},
}
_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION, _TENSOR_NAME = 13, 14, 8
_EXTERNAL = 1


class _Malformed(Exception):
    pass


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Malformed("bad varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: memoryview):
    """(field number, wire type, value) for each field of one message; value is an int for varints and a
    memoryview for length-delimited fields (fixed-width fields are skipped)."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise _Malformed("field runs past the end")
            yield number, wire, buf[pos : pos + size]
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:  # groups (3, 4) do not occur in ONNX files
            raise _Malformed(f"unexpected wire type {wire}")
    if pos != len(buf):
        raise _Malformed("message runs past the end")


def _text(buf: memoryview) -> str:
    try:
        return bytes(buf).decode("utf-8")
    except UnicodeDecodeError:
        raise _Malformed("a string is not UTF-8") from None


def _tensor_location(buf: memoryview) -> tuple[str, str | None] | None:
    """(tensor name, external location or None when unnamed) if the tensor stores data externally."""
    name, location, external, entries = "", None, False, False
    for number, wire, value in _fields(buf):
        if number == _TENSOR_NAME and wire == 2:
            name = _text(value)
        elif number == _TENSOR_DATA_LOCATION and wire == 0:
            external = value == _EXTERNAL
        elif number == _TENSOR_EXTERNAL_DATA and wire == 2:
            entries = True
            key = val = None
            for n, w, v in _fields(value):
                if w == 2 and n == 1:
                    key = _text(v)
                elif w == 2 and n == 2:
                    val = _text(v)
            if key == "location":
                location = val
    return (name, location) if external or entries else None


def _walk(buf: memoryview, kind: int, depth: int, found: list[tuple[str, str | None]]) -> None:
    if depth > _MAX_DEPTH:
        raise _Malformed(f"graphs nested more than {_MAX_DEPTH} deep")
    if kind == _TENSOR:
        hit = _tensor_location(buf)
        if hit is not None:
            found.append(hit)
        return
    children = _FIELDS[kind]
    for number, wire, value in _fields(buf):
        if wire == 2 and number in children:
            _walk(value, children[number], depth + 1, found)


def external_data_locations(model_path: str | os.PathLike[str]) -> list[tuple[str, str | None]]:
    """(tensor name, location) of every tensor in the ONNX file that keeps its data in another file
    (location ``None`` where the tensor says external but names no file).

    Raises:
        BackendError: the file is not a parsable ONNX protobuf.
    """
    found: list[tuple[str, str | None]] = []
    problem = None
    with open(model_path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise BackendError(f"could not load {model_path}: the file is empty")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            view = memoryview(mm)
            try:
                _walk(view, _MODEL, 0, found)
            except (_Malformed, RecursionError) as exc:
                # only the message leaves this block: the exception's traceback holds slices of the
                # map, and the map cannot close while they live (BufferError)
                problem = str(exc) or type(exc).__name__
            finally:
                view.release()
    if problem is not None:
        raise BackendError(f"could not load {model_path}: not a well-formed ONNX file ({problem})")
    return found


def check_external_data(model_path: str | os.PathLike[str]) -> list[Path]:
    """Refuse an ONNX file whose tensors keep data outside its folder; returns the external files.

    Every location must be a relative path without ``..`` that, symlinks resolved, names an existing
    regular file inside the ONNX file's folder (ONNX Runtime resolves locations against that folder).
    Special locations such as ONNX Runtime's in-memory marker are refused the same way, since they are
    not files in the folder.

    Raises:
        UnsafeFileError: a location is absolute, contains ``..``, leads out through a symlink, or names
            no file in the folder.
        BackendError: the file cannot be parsed as ONNX.
    """
    model_path = Path(model_path)
    folder = model_path.parent
    files = []
    for tensor, location in external_data_locations(model_path):
        what = f"external data of tensor {tensor!r} in {model_path.name}"
        if location is None:
            raise UnsafeFileError(f"{what} names no location; refused")
        path = file_inside(folder, location, what)
        if not path.resolve().is_file():
            raise UnsafeFileError(f"{what}: {location!r} is not a file in the model folder {folder}; refused")
        files.append(path)
    return files
