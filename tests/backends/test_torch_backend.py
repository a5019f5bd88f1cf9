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


def test_a_builder_that_fails_is_a_config_error_naming_the_network(tiny_repo, tmp_path):
    """Arguments the config bounds allow but the architecture cannot build (a layer the builder refuses)
    fail at load time as ModelConfigError, not as torch's RuntimeError (issue 14)."""
    import json
    import shutil

    from cfcsp_sdk import ModelConfig, ModelConfigError
    from cfcsp_sdk.backends import get_backend
    from cfcsp_sdk.models import register_architecture

    @register_architecture("test-builder-refuses")
    def build(num_classes, width=8):
        return torch.nn.Conv2d(3, width - 9, 3)  # negative channels for the default width: torch refuses

    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo, repo)
    cfg = json.loads((repo / "config.json").read_text())
    cfg["networks"]["coarse"]["architecture"] = "test-builder-refuses"
    cfg["networks"]["coarse"]["args"] = {}
    (repo / "config.json").write_text(json.dumps(cfg))
    spec = ModelConfig.from_file(repo / "config.json").networks["coarse"]
    with pytest.raises(ModelConfigError, match="cannot be built") as err:
        get_backend("torch").load_network(repo, "coarse", spec)
    assert err.value.field == "networks.coarse.args"


@pytest.mark.parametrize("architecture", [None, "no-such-net"])
def test_torch_needs_a_known_architecture_and_names_the_field(tiny_repo, tmp_path, architecture):
    """The architecture id is checked by the backend that builds from it, at load time."""
    import json
    import shutil

    from cfcsp_sdk import ModelConfigError, Recognizer

    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo, repo)
    cfg = json.loads((repo / "config.json").read_text())
    if architecture is None:
        del cfg["networks"]["negative"]["architecture"]
    else:
        cfg["networks"]["negative"]["architecture"] = architecture
    (repo / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(
        ModelConfigError,
        match="no architecture"
        if architecture is None
        else "unknown architecture 'no-such-net'; available: cfcsp-compact-cnn",
    ) as err:
        Recognizer(repo, backend="torch")
    assert err.value.field == "networks.negative.architecture"
    assert str(err.value).count("architecture:") == 1  # the field named once
    Recognizer(repo, backend="onnx")  # the ONNX files are the whole networks
