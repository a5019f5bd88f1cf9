import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from cfcsp_sdk import BackendError, ModelConfig, ModelConfigError
from cfcsp_sdk.backends import get_backend


def test_loads_and_runs_on_cpu(tiny_repo):
    cfg = ModelConfig.from_file(tiny_repo / "config.json")
    b = get_backend("torch", device="cpu")
    net = b.load_network(tiny_repo, "negative", cfg.networks["negative"])
    out = net(np.zeros((4, 3, 32, 32), np.float32))
    assert out.shape == (4, 4) and out.dtype == np.float32
    assert b.describe()["device"] == "cpu"


def test_unavailable_device_is_a_clear_error():
    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match="cuda"):
            get_backend("torch", device="cuda")
    with pytest.raises(BackendError):
        get_backend("torch", device="warp-drive")


def test_weights_that_do_not_fit_name_the_keys(tiny_repo, tmp_path):
    cfg = ModelConfig.from_file(tiny_repo / "config.json")
    state = load_file(str(tiny_repo / "coarse.safetensors"))
    state.pop("head.bias")
    state["extra.weight"] = torch.zeros(1)
    state["head.weight"] = torch.zeros(3, 8)
    save_file(state, str(tmp_path / "coarse.safetensors"))
    with pytest.raises(ModelConfigError) as err:
        get_backend("torch").load_network(tmp_path, "coarse", cfg.networks["coarse"])
    msg = str(err.value)
    assert "missing ['head.bias']" in msg and "unexpected ['extra.weight']" in msg and "head.weight" in msg
    (tmp_path / "coarse.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(BackendError, match="safetensors"):
        get_backend("torch").load_network(tmp_path, "coarse", cfg.networks["coarse"])
