import numpy as np
import onnxruntime as ort
import pytest

from cfcsp_sdk import BackendError, InvalidInputError, ModelConfig
from cfcsp_sdk.backends import get_backend


def test_session_options_are_applied(tiny_repo):
    b = get_backend("onnx", intra_op_num_threads=1, inter_op_num_threads=1, graph_optimization_level="basic")
    assert b.options.intra_op_num_threads == 1
    assert b.options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    cfg = ModelConfig.from_file(tiny_repo / "config.json")
    net = b.load_network(tiny_repo, "coarse", cfg.networks["coarse"])
    assert net.session.get_providers() == ["CPUExecutionProvider"]
    for n in (1, 3, 17):  # dynamic batch
        assert net(np.zeros((n, 3, 32, 32), np.float32)).shape == (n, 5)
    assert net(np.zeros((0, 3, 32, 32), np.float32)).shape == (0, 5)
    with pytest.raises(InvalidInputError):
        net(np.zeros((1, 3, 32, 32), np.float64))
    with pytest.raises(BackendError):
        net(np.zeros((1, 3, 31, 32), np.float32))
    assert b.describe()["providers"] == ["CPUExecutionProvider"]


def test_cuda_when_absent_is_a_clear_error():
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert get_backend("onnx", device="cuda").providers[0] == "CUDAExecutionProvider"
    else:
        with pytest.raises(BackendError, match="lacks CUDAExecutionProvider"):
            get_backend("onnx", device="cuda")
    with pytest.raises(BackendError):
        get_backend("onnx", device="tpu")
    with pytest.raises(BackendError):
        get_backend("onnx", graph_optimization_level="max")


def test_missing_and_corrupt_weight_files(tiny_repo, tmp_path):
    cfg = ModelConfig.from_file(tiny_repo / "config.json")
    b = get_backend("onnx")
    with pytest.raises(BackendError, match="coarse.onnx"):
        b.load_network(tmp_path, "coarse", cfg.networks["coarse"])
    (tmp_path / "coarse.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(BackendError, match="could not load"):
        b.load_network(tmp_path, "coarse", cfg.networks["coarse"])
