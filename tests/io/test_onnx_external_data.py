import numpy as np
import pytest

from cfcsp_sdk.errors import BackendError
from cfcsp_sdk.io.onnx_external_data import external_data_locations


def test_garbage_and_cut_model_files_give_backend_error_only(tiny_repo, tmp_path):
    """Issue 25, item 7: random bytes saved as a network's .onnx file made 27 of 400 files raise a raw
    BufferError (slices of the map outlived the parse). Random, truncated and bit-flipped files may only
    parse or raise BackendError."""
    rng = np.random.default_rng(25)
    real = (tiny_repo / "coarse.onnx").read_bytes()
    samples = [rng.integers(0, 256, int(rng.integers(1, 4096)), dtype=np.uint8).tobytes() for _ in range(400)]
    samples += [real[:cut] for cut in rng.integers(1, len(real), 100)]
    for _ in range(100):
        flipped = bytearray(real)
        for at in rng.integers(0, len(real), 8):
            flipped[at] ^= 1 << int(rng.integers(0, 8))
        samples.append(bytes(flipped))
    path = tmp_path / "coarse.onnx"
    raised = 0
    for data in samples:
        path.write_bytes(data)
        try:
            assert isinstance(external_data_locations(path), list)
        except BackendError:
            raised += 1
    assert raised > 400  # nearly every random file is refused, and with our error
    path.write_bytes(real)
    assert external_data_locations(path) == []
    path.write_bytes(b"")
    with pytest.raises(BackendError, match="empty"):
        external_data_locations(path)
