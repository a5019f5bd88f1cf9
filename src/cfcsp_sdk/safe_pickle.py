"""Reading pickled arrays without running pickled code.

Pickles can execute arbitrary code when loaded. The readers here admit only numpy arrays, numpy
dtypes and plain containers: every other global a pickle names is refused with
:class:`~cfcsp_sdk.errors.UnsafePickleError` before it is imported or called. They serve the
converters (Paddle ``.pdparams`` checkpoints, the ``mtcnn`` package's joblib weight files); the SDK
itself never stores pickles.
"""

from __future__ import annotations

import collections
import io
import pickle
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import numpy as np

from cfcsp_sdk.errors import UnsafePickleError


def _dtype(*args: Any) -> np.dtype:
    dt = np.dtype(*args)
    if dt.hasobject:
        raise UnsafePickleError("the pickle asks for an object array, which could hold code; refused")
    return dt


def _plain_dtype(dtype: Any) -> np.dtype:
    try:
        dt = dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)
    except TypeError as exc:
        raise UnsafePickleError(f"bad numpy dtype in pickle: {exc}") from None
    if dt.hasobject:
        raise UnsafePickleError("the pickle asks for an object array, which could hold code; refused")
    return dt


def _ndarray(shape: Any, dtype: Any = float, *args: Any) -> np.ndarray:
    """``numpy.ndarray`` as a pickle may call it (``ndarray(shape, dtype, buffer, ...)``), with the dtype
    checked first: numpy's own class would make an object array (``ndarray((2,), 'O')``)."""
    return np.ndarray(shape, _plain_dtype(dtype), *args)


def _reconstruct(cls: Any, shape: Any, dtype_code: Any) -> np.ndarray:
    if cls is not _ndarray:
        raise UnsafePickleError("only plain numpy arrays may be reconstructed")
    return np.ndarray.__new__(np.ndarray, shape, _plain_dtype(dtype_code))


def _scalar(dtype: np.dtype, data: bytes) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise UnsafePickleError("bad numpy scalar in pickle")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: str) -> np.ndarray:
    """numpy's protocol-5 array constructor, checked: raw bytes, a plain dtype, a shape."""
    if (
        not isinstance(buf, (bytes, bytearray, pickle.PickleBuffer))
        or not isinstance(dtype, np.dtype)
        or dtype.hasobject
        or not isinstance(shape, tuple)
        or order not in ("C", "F")
    ):
        raise UnsafePickleError("malformed numpy buffer in pickle")
    layout: Literal["C", "F"] = "F" if order == "F" else "C"
    return np.frombuffer(memoryview(buf), dtype=dtype).reshape(shape, order=layout).copy()


def _latin1_bytes(text: Any, encoding: str = "latin1") -> bytes:
    """Protocol-2 pickles store bytes as ``_codecs.encode(str, "latin1")``: allow exactly that."""
    if not isinstance(text, str) or encoding != "latin1":
        raise UnsafePickleError("unexpected _codecs.encode call in pickle")
    return text.encode("latin1")


class _JoblibArrayHeader:
    """Stands in for joblib's NumpyArrayWrapper: only its fields are read, as data."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise UnsafePickleError("malformed joblib array header")
        self.state = state


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): _ndarray,
    ("numpy", "dtype"): _dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "tuple"): tuple,
    ("builtins", "list"): list,
    ("builtins", "dict"): dict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): _latin1_bytes,
}


class RestrictedUnpickler(pickle._Unpickler):  # the Python implementation: its BUILD step is overridable
    """An unpickler whose ``find_class`` admits only numpy arrays, dtypes and plain containers.

    With ``joblib=True`` it also reads joblib's numpy format, where raw array bytes follow each array
    header in the stream.
    """

    # pickle._Unpickler's own state, which typeshed leaves undeclared (it is undocumented); BUILD reads it
    stack: list[Any]
    _unframer: Any
    # typeshed types the table's entries as taking the C Unpickler; they are called with self
    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: io.BufferedIOBase, joblib: bool = False) -> None:
        super().__init__(file)
        self._raw = file
        self._joblib = joblib

    def find_class(self, module: str, name: str) -> Any:
        if self._joblib and (module, name) == ("joblib.numpy_pickle", "NumpyArrayWrapper"):
            return _JoblibArrayHeader
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"the pickle refers to {module}.{name}; only numpy arrays and plain containers are allowed, "
                "so it was refused without running it"
            ) from None

    def _load_build(self) -> None:
        stack = self.stack
        state = stack.pop()
        inst = stack[-1]
        if isinstance(inst, np.ndarray):
            if not isinstance(state, tuple):
                raise UnsafePickleError("malformed numpy array state")
            if any(isinstance(s, np.dtype) and s.hasobject for s in state):
                raise UnsafePickleError("object arrays are refused")
            inst.__setstate__(state)
        elif isinstance(inst, np.dtype):
            if not isinstance(state, tuple):
                raise UnsafePickleError("malformed numpy dtype state")
            inst.__setstate__(state)  # type: ignore[attr-defined]  # numpy's stubs omit dtype.__setstate__
            if inst.hasobject:
                raise UnsafePickleError("object dtypes are refused")
        elif isinstance(inst, _JoblibArrayHeader):
            inst.__setstate__(state)
            stack[-1] = self._read_joblib_array(inst.state)
        elif isinstance(inst, (dict, list)) and state is None:
            pass
        else:
            raise UnsafePickleError(f"the pickle tries to set the state of a {type(inst).__name__}; refused")

    dispatch[pickle.BUILD[0]] = _load_build

    def _read_joblib_array(self, header: dict[str, Any]) -> np.ndarray:
        dtype, shape, order = header.get("dtype"), header.get("shape"), header.get("order", "C")
        if not isinstance(dtype, np.dtype) or dtype.hasobject or header.get("subclass") is not _ndarray:
            raise UnsafePickleError("joblib array of a kind other than a plain numeric ndarray; refused")
        if not isinstance(shape, tuple) or not all(isinstance(s, int) and s >= 0 for s in shape):
            raise UnsafePickleError("malformed joblib array shape")
        frame = getattr(self._unframer, "current_frame", None)
        if frame is not None and frame.tell() != len(frame.getbuffer()):
            raise UnsafePickleError("joblib array data inside a pickle frame; malformed file")
        if header.get("numpy_array_alignment_bytes") is not None:
            pad = self._raw.read(1)
            if len(pad) != 1:
                raise UnsafePickleError("truncated joblib file")
            self._raw.read(pad[0])
        count = int(np.prod(shape, dtype=np.int64))
        data = self._raw.read(count * dtype.itemsize)
        if len(data) != count * dtype.itemsize:
            raise UnsafePickleError("truncated joblib file")
        arr = np.frombuffer(data, dtype=dtype).copy()
        return arr.reshape(shape, order="F" if order == "F" else "C")


def _refuse_objects(value: Any, depth: int = 0) -> None:
    """A last check on the loaded value: no array or scalar of an object dtype anywhere, however it was
    built (the checks while loading should already have refused it)."""
    if depth > 200:
        raise UnsafePickleError("containers nested too deeply")
    if isinstance(value, (np.ndarray, np.generic)):
        if value.dtype.hasobject:
            raise UnsafePickleError("object arrays are refused")
    elif isinstance(value, dict):
        for k, v in value.items():
            _refuse_objects(k, depth + 1)
            _refuse_objects(v, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            _refuse_objects(v, depth + 1)


def restricted_loads(data: bytes, joblib: bool = False) -> Any:
    """Unpickle ``data`` admitting only numpy arrays, dtypes and plain containers (object dtypes are
    refused however they are asked for)."""
    try:
        value = RestrictedUnpickler(io.BytesIO(data), joblib=joblib).load()
        _refuse_objects(value)
        return value
    except UnsafePickleError:
        raise
    except Exception as exc:
        raise UnsafePickleError(f"not a readable pickle of arrays: {type(exc).__name__}: {exc}") from exc


def load_joblib_lz4_arrays(path: str) -> Any:
    """Read a joblib file compressed with LZ4 (as the ``mtcnn`` package ships its weights)."""
    import lz4.frame

    with open(path, "rb") as f:
        raw = f.read()
    try:
        data = lz4.frame.decompress(raw)
    except RuntimeError as exc:
        raise UnsafePickleError(f"{path} is not an LZ4 frame: {exc}") from exc
    return restricted_loads(data, joblib=True)
