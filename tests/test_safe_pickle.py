"""The restricted unpickler admits arrays and plain containers and refuses code before running it."""

import io
import os
import pickle

import numpy as np
import pytest

from cfcsp_sdk import UnsafePickleError
from cfcsp_sdk.safe_pickle import restricted_loads


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_arrays_and_containers_round_trip():
    data = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": [np.int64(3), (1, 2.5, "x")],
        "c": np.zeros((0, 4), np.float16),
        "f": np.asfortranarray(np.ones((3, 2))),
    }
    for proto in (4, 5):  # the protocols numpy, Paddle and joblib write today
        got = restricted_loads(pickle.dumps(data, protocol=proto))
        np.testing.assert_array_equal(got["a"], data["a"])
        assert got["b"][1] == (1, 2.5, "x") and got["c"].shape == (0, 4) and got["f"].shape == (3, 2)


def test_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"model": RunsCode(marker)})
    with pytest.raises(UnsafePickleError, match="posix.system|os.system|refused"):
        restricted_loads(payload)
    assert not marker.exists()
    with pytest.raises(UnsafePickleError):
        restricted_loads(pickle.dumps(io.BytesIO(b"x")))
    with pytest.raises(UnsafePickleError, match="object"):
        restricted_loads(pickle.dumps(np.array([1, "a"], dtype=object)))


def test_garbage_is_a_typed_error():
    with pytest.raises(UnsafePickleError):
        restricted_loads(b"\x80\x04not a pickle at all")


def _call(module: bytes, name: bytes, *args: bytes) -> bytes:
    """Protocol-2 opcodes for ``module.name(*args)`` (REDUCE), with args already pickled."""
    return b"c" + module + b"\n" + name + b"\n(" + b"".join(args) + b"tR"


@pytest.mark.parametrize(
    "payload",
    [
        # numpy.ndarray((2,), 'O') through REDUCE: numpy's class itself makes an object array
        b"\x80\x02" + _call(b"numpy", b"ndarray", b"K\x02\x85", b"X\x01\x00\x00\x00O") + b".",
        # the same with a dtype object built from 'O' ...
        b"\x80\x02"
        + _call(b"numpy", b"ndarray", b"K\x02\x85", _call(b"numpy", b"dtype", b"X\x02\x00\x00\x00O8"))
        + b".",
        # ... and through numpy's _reconstruct with an object type code
        b"\x80\x02"
        + _call(b"numpy.core.multiarray", b"_reconstruct", b"cnumpy\nndarray\n", b"K\x00\x85", b"X\x01\x00\x00\x00O")
        + b".",
        # a structured dtype with an object field
        b"\x80\x02"
        + _call(b"numpy", b"ndarray", b"K\x01\x85", b"]q\x00(X\x01\x00\x00\x00aX\x01\x00\x00\x00Oq\x01\x86e")
        + b".",
    ],
)
def test_object_dtypes_are_refused_however_constructed(payload):
    with pytest.raises(UnsafePickleError, match="object"):
        restricted_loads(payload)


def test_plain_ndarray_calls_still_work():
    # numpy.ndarray((2,), 'f4') through REDUCE is a plain (uninitialised) float array
    arr = restricted_loads(b"\x80\x02" + _call(b"numpy", b"ndarray", b"K\x02\x85", b"X\x02\x00\x00\x00f4") + b".")
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float32 and arr.shape == (2,)
