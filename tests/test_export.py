"""Export and parity: the torch and ONNX Runtime backends agree through Cascade and Smoother."""

import numpy as np
import onnx
import torch
from safetensors.torch import load_file

from cfcsp_sdk import Recognizer, Smoother
from cfcsp_sdk.export import save_safetensors
from cfcsp_sdk.smoother import softmax


def test_repository_has_both_formats_and_dynamic_batch(tiny_repo):
    for net in ("coarse", "negative"):
        assert (tiny_repo / f"{net}.safetensors").is_file()
        model = onnx.load(str(tiny_repo / f"{net}.onnx"))
        onnx.checker.check_model(model)
        dim0 = model.graph.input[0].type.tensor_type.shape.dim[0]
        assert dim0.dim_param == "batch"


def test_weights_get_the_same_permissions_as_the_other_files(tiny_repo):
    # a model folder shared between users (or served over HTTP) must not hide its weights from them
    mode = (tiny_repo / "config.json").stat().st_mode & 0o777
    for net in ("coarse", "negative"):
        assert (tiny_repo / f"{net}.safetensors").stat().st_mode & 0o777 == mode
        assert (tiny_repo / f"{net}.onnx").stat().st_mode & 0o777 == mode


def test_backends_agree_through_cascade_and_smoother(tiny_repo, face_crops):
    onnx_rec = Recognizer(tiny_repo, backend="onnx", fine_policy="always")
    torch_rec = Recognizer(tiny_repo, backend="torch", fine_policy="always")
    batch = onnx_rec.preprocess(face_crops)
    a, b = onnx_rec.run_cascade(batch), torch_rec.run_cascade(batch)
    np.testing.assert_allclose(a.coarse_logits, b.coarse_logits, atol=1e-4)
    np.testing.assert_allclose(a.fine_logits[0], b.fine_logits[0], atol=1e-4)
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-4)
    np.testing.assert_array_equal(a.labels, b.labels)
    # the crops as a 12-frame sequence of one face: smoothed scores agree too
    for mode, window in (("centered", 5), ("causal", 3)):
        s = Smoother(window=window, mode=mode)
        np.testing.assert_allclose(s.smooth(a.coarse_logits), s.smooth(b.coarse_logits), atol=1e-4)
        np.testing.assert_allclose(s.smooth(a.fine_logits[0]), s.smooth(b.fine_logits[0]), atol=1e-4)
    # and the predictions are real network outputs, not a constant
    assert np.ptp(softmax(a.coarse_logits), axis=0).max() > 0.05


def test_saving_over_old_weights_replaces_them_whole(tmp_path):
    old = tmp_path / "net.safetensors"
    old.write_bytes(b"an older, private file")
    old.chmod(0o600)
    reference = tmp_path / "reference.txt"
    reference.write_text("written with the umask's permissions")
    module = torch.nn.Linear(3, 2)
    save_safetensors(module, old)
    assert old.stat().st_mode & 0o777 == reference.stat().st_mode & 0o777
    torch.testing.assert_close(load_file(str(old))["weight"], module.weight.detach())
    assert sorted(f.name for f in tmp_path.iterdir()) == ["net.safetensors", "reference.txt"]


def test_float16_storage_halves_the_files_and_keeps_the_outputs(tmp_path, face_crops):
    from cfcsp_sdk.config import ModelConfig
    from cfcsp_sdk.export import write_model_repository
    from cfcsp_sdk.models import build_network
    from conftest import affwild_config_dict, build_repo

    config = affwild_config_dict(widths=(8, 16, 32, 32))
    full = build_repo(tmp_path / "full", config)
    cfg = ModelConfig.from_dict(config)
    modules = {}
    for name, spec in cfg.networks.items():
        m = build_network(spec.architecture, spec.num_classes, spec.args)
        m.load_state_dict(load_file(str(full / f"{name}.safetensors")), strict=False)
        modules[name] = m.eval()
    half = write_model_repository(tmp_path / "half", cfg, modules, weights_dtype="float16")
    for name in cfg.networks:
        # every tensor of 16 values or more in half precision; smaller ones (head biases) kept whole, as in ONNX
        assert {t.dtype for t in load_file(str(half / f"{name}.safetensors")).values() if t.numel() >= 16} == {
            torch.float16
        }
        for suffix in (".safetensors", ".onnx"):
            ratio = (half / f"{name}{suffix}").stat().st_size / (full / f"{name}{suffix}").stat().st_size
            assert 0.45 < ratio < 0.65, (name, suffix, ratio)
    ref = Recognizer(full, backend="onnx", fine_policy="always")
    batch = ref.preprocess(face_crops)
    expected = ref.run_cascade(batch)
    for backend in ("onnx", "torch"):
        got = Recognizer(half, backend=backend, fine_policy="always").run_cascade(batch)
        np.testing.assert_allclose(got.coarse_logits, expected.coarse_logits, atol=0.02, rtol=0.01)
        np.testing.assert_allclose(got.probabilities, expected.probabilities, atol=0.01)


def test_unknown_weights_dtype_is_refused(tmp_path, tiny_repo):
    import pytest

    from cfcsp_sdk.errors import ModelConfigError
    from cfcsp_sdk.export import save_safetensors

    with pytest.raises(ModelConfigError, match="weights_dtype"):
        save_safetensors(torch.nn.Linear(2, 2), tmp_path / "x.safetensors", weights_dtype="int8")


class _FailsWhenTraced(torch.nn.Module):
    def forward(self, x):
        raise RuntimeError("this network cannot be traced")


def test_a_failed_onnx_export_keeps_the_old_file(tmp_path):
    import pytest

    from cfcsp_sdk.export import export_onnx

    path = tmp_path / "net.onnx"
    export_onnx(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2)), path, 3, 2, 2)
    before = path.read_bytes()
    onnx.checker.check_model(onnx.load(str(path)))
    with pytest.raises(RuntimeError, match="cannot be traced"):
        export_onnx(_FailsWhenTraced(), path, 3, 2, 2)
    assert path.read_bytes() == before and [f.name for f in tmp_path.iterdir()] == ["net.onnx"]


def test_write_model_repository_refuses_names_that_are_paths(tmp_path, tiny_repo):
    import dataclasses

    import pytest

    from cfcsp_sdk import ModelConfig, ModelConfigError
    from cfcsp_sdk.export import write_model_repository

    cfg = ModelConfig.from_file(tiny_repo / "config.json")
    evil = dataclasses.replace(cfg, networks={**cfg.networks, "../../evilnet": cfg.networks["negative"]})
    out = tmp_path / "a" / "b" / "repo"
    with pytest.raises(ModelConfigError, match="plain identifier"):
        write_model_repository(out, evil, {n: torch.nn.Linear(1, 1) for n in evil.networks})
    assert not (tmp_path / "evilnet.onnx").exists() and not (tmp_path / "evilnet.safetensors").exists()


def test_float16_storage_gives_both_backends_the_same_weights(tmp_path, face_crops):
    # the ONNX graph must hold the same float16 values as the safetensors file: BatchNorm folded into the
    # convolutions before rounding gave the backends different weights (logits 1e-3 apart)
    from cfcsp_sdk.config import ModelConfig
    from cfcsp_sdk.export import write_model_repository
    from cfcsp_sdk.models import build_network
    from conftest import affwild_config_dict

    cfg = ModelConfig.from_dict(affwild_config_dict(widths=(8, 16, 32, 32)))
    torch.manual_seed(0)
    modules = {}
    for name, spec in cfg.networks.items():
        m = build_network(spec.architecture, spec.num_classes, spec.args)
        with torch.no_grad():  # trained-looking BatchNorm statistics, far from the identity
            for mod in m.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.uniform_(-1, 1)
                    mod.running_var.uniform_(0.05, 3)
                    mod.weight.uniform_(0.5, 2)
                    mod.bias.uniform_(-0.5, 0.5)
        modules[name] = m.eval()
    half = write_model_repository(tmp_path / "half", cfg, modules, weights_dtype="float16")
    onnx_rec = Recognizer(half, backend="onnx", fine_policy="always")
    batch = onnx_rec.preprocess(face_crops)
    a = onnx_rec.run_cascade(batch)
    b = Recognizer(half, backend="torch", fine_policy="always").run_cascade(batch)
    np.testing.assert_allclose(a.coarse_logits, b.coarse_logits, atol=1e-4, rtol=1e-4)
    for k in a.fine_logits:
        np.testing.assert_allclose(a.fine_logits[k], b.fine_logits[k], atol=1e-4, rtol=1e-4)
    # and tensor by tensor: the ONNX initializers (float16 ones cast back) are the safetensors values
    import onnx
    from onnx import numpy_helper

    for name in cfg.networks:
        stored = {k: v.float().numpy() for k, v in load_file(str(half / f"{name}.safetensors")).items()}
        graph = {
            i.name.removesuffix("__float16"): numpy_helper.to_array(i).astype(np.float32)
            for i in onnx.load(str(half / f"{name}.onnx")).graph.initializer
        }
        assert stored.keys() <= graph.keys()
        for key, value in stored.items():
            np.testing.assert_array_equal(graph[key], value, err_msg=key)
