"""The residual backbone (cfcsp-resnet): built from config arguments, bad arguments refused, and its ONNX
export gives the torch module's logits through ONNX Runtime, on its own and as a model repository."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_compact_cnn import assert_exported_graph_matches

from cfcsp_sdk.errors import ModelConfigError
from cfcsp_sdk.models import build_network

ARGS = {"in_channels": 1, "widths": [4, 8, 8, 16], "blocks": [2, 1, 1, 1], "dropout": 0.0}


def _randomised(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights and BatchNorm statistics, so that a wrongly exported layer shows in the logits."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("running_var"):
                t.uniform_(0.5, 2.0)
            elif t.dtype.is_floating_point:
                t.normal_(0, 0.5)
    return net.eval()


def test_builds_with_the_asked_shape():
    net = build_network("cfcsp-resnet", 4, ARGS).eval()
    blocks = list(net.features)
    assert len(blocks) == sum(ARGS["blocks"])
    # the first block of every stage after the first halves the resolution, through a projection
    assert [b.conv1.stride[0] for b in blocks] == [1, 1, 2, 2, 2]
    assert [b.shortcut is not None for b in blocks] == [False, False, True, True, True]
    x = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        feats = net.forward_features(x)
        assert feats.shape == (3, 16)
        torch.testing.assert_close(net.head(feats), net(x))  # training's extra heads rely on this
    assert net(x).shape == (3, 4)


def test_default_arguments_match_the_documented_size():
    net = build_network("cfcsp-resnet", 4, {})
    assert 1.1e6 < sum(p.numel() for p in net.parameters()) < 1.3e6


@pytest.mark.parametrize(
    "args",
    [
        {"widths": [4, 8], "blocks": [1, 1, 1]},
        {"widths": [], "blocks": []},
        {"widths": [4, 0, 8, 8]},
        {"blocks": [1, 0, 1, 1]},
        {"depth": 18},
    ],
)
def test_bad_arguments_raise_model_config_error(args):
    with pytest.raises(ModelConfigError):
        build_network("cfcsp-resnet", 4, {"in_channels": 1, **args})


def test_onnx_export_matches_onnx_runtime(tmp_path):
    net = _randomised(build_network("cfcsp-resnet", 4, ARGS), seed=1)
    assert_exported_graph_matches(net, tmp_path, seed=4)


@pytest.mark.parametrize("weights_dtype", ["float32", "float16"])
def test_model_repository_agrees_between_backends(tmp_path, weights_dtype):
    """A cascade of two cfcsp-resnet networks written as a model repository: the onnx and torch
    backends give the same logits (float16 storage included, where both files hold the same values)."""
    from cfcsp_sdk import ModelConfig, Recognizer
    from cfcsp_sdk.export import write_model_repository
    from conftest import affwild_config_dict

    d = affwild_config_dict(color="gray", size=32)
    for spec in d["networks"].values():
        spec["architecture"], spec["args"] = "cfcsp-resnet", dict(ARGS)
    config = ModelConfig.from_dict(d)
    modules = {
        name: _randomised(build_network("cfcsp-resnet", spec.num_classes, spec.args), seed=10 + i)
        for i, (name, spec) in enumerate(config.networks.items())
    }
    write_model_repository(tmp_path, config, modules, weights_dtype=weights_dtype)
    x = np.random.default_rng(5).random((6, 1, 32, 32), dtype=np.float32)
    outs = {}
    for backend in ("onnx", "torch"):
        rec = Recognizer(str(tmp_path), backend=backend, fine_policy="always")
        outs[backend] = rec.run_cascade(x)
    np.testing.assert_allclose(outs["onnx"].coarse_logits, outs["torch"].coarse_logits, rtol=1e-4, atol=1e-4)
    for i in outs["onnx"].fine_logits:
        np.testing.assert_allclose(outs["onnx"].fine_logits[i], outs["torch"].fine_logits[i], rtol=1e-4, atol=1e-4)
    assert np.ptp(outs["onnx"].coarse_logits, axis=0).max() > 1e-2  # the faces really score differently
    with torch.no_grad():  # and the repository holds these networks, not others
        coarse = config.cascade.coarse_network
        expected = modules[coarse](torch.from_numpy(x)).numpy()
    tol = 1e-4 if weights_dtype == "float32" else 5e-2
    np.testing.assert_allclose(outs["torch"].coarse_logits, expected, rtol=tol, atol=tol)


def _write_run(run, nets: dict[str, torch.nn.Module], state: dict, checkpoint: dict | None = None) -> None:
    """A train_long.py run folder as that script leaves it (run.json, state.json, finished networks with
    their metadata, the checkpoint of the network in training)."""
    import json

    from safetensors.torch import save_file

    run.mkdir()
    cfg = {
        "widths": ARGS["widths"],
        "blocks": ARGS["blocks"],
        "dropout": ARGS["dropout"],
        "epochs": {"coarse": 3, "negative": 2},
        "ema_decay": 0.999,
        "seed": 1,
    }
    (run / "run.json").write_text(json.dumps(cfg))
    (run / "state.json").write_text(json.dumps(state))
    meta = {"architecture": "cfcsp-resnet", "args": json.dumps(ARGS)}
    for name, net in nets.items():
        save_file(
            {k: v.contiguous() for k, v in net.state_dict().items()},
            str(run / f"{name}.safetensors"),
            {**meta, "num_classes": str(net.head.out_features)},
        )
    if checkpoint is not None:
        save_file(checkpoint, str(run / "checkpoint.safetensors"))


def _template() -> dict:
    pts = [[16.3, 22.1], [31.7, 22.1], [24.0, 30.7], [17.8, 39.4], [30.2, 39.4]]
    return {"size": [48, 48], "points": pts}


def _training_path():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))


def _logits(folder, backend: str, x: np.ndarray):
    from cfcsp_sdk import Recognizer

    return Recognizer(str(folder), backend=backend, fine_policy="always").run_cascade(x)


def test_package_model_packages_a_finished_run(tmp_path):
    _training_path()
    from package_model import package_run

    nets = {
        "coarse": _randomised(build_network("cfcsp-resnet", 4, ARGS), 21),
        "negative": _randomised(build_network("cfcsp-resnet", 4, ARGS), 22),
        "flat": _randomised(build_network("cfcsp-resnet", 7, ARGS), 23),
    }
    _write_run(tmp_path / "run", nets, {"task": "negative", "epoch": 2, "step": 0, "done": True})
    cal = {
        "coarse": {"temperature": 0.5, "offsets": [-0.3, 0.0, 0.0, 0.0]},
        "negative": {"temperature": 2.0, "offsets": [0.0, 0.1, 0.0, 0.0]},
        "fitted_on": "test",
    }
    package_run(
        tmp_path / "run",
        tmp_path / "model",
        template=_template(),
        calibration=cal,
        flat_out=tmp_path / "flat",
        weights_dtype="float32",
    )
    x = np.random.default_rng(6).random((5, 1, 48, 48), dtype=np.float32)
    onnx, torch_out = _logits(tmp_path / "model", "onnx", x), _logits(tmp_path / "model", "torch", x)
    np.testing.assert_allclose(onnx.coarse_logits, torch_out.coarse_logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(onnx.fine_logits[0], torch_out.fine_logits[0], rtol=1e-4, atol=1e-4)
    with torch.no_grad():  # the run's networks, calibrated as asked, and the mirror view

        def viewed(net):
            t = torch.from_numpy(x)
            return ((net(t) + net(torch.flip(t, dims=[3]))) / 2).numpy()

        np.testing.assert_allclose(
            onnx.coarse_logits, viewed(nets["coarse"]) / 0.5 + np.array([-0.3, 0, 0, 0]), rtol=1e-4, atol=1e-4
        )
        np.testing.assert_allclose(
            onnx.fine_logits[0], viewed(nets["negative"]) / 2.0 + np.array([0, 0.1, 0, 0]), rtol=1e-4, atol=1e-4
        )
        np.testing.assert_allclose(
            _logits(tmp_path / "flat", "onnx", x).coarse_logits, viewed(nets["flat"]), rtol=1e-4, atol=1e-4
        )


def test_package_model_reads_the_checkpoint_of_a_run_in_progress(tmp_path):
    """While the coarse network trains: its EMA weights (float16) become a coarse-only model and the
    auxiliary 7-class head the flat one; without --checkpoint there is nothing to package."""
    _training_path()
    from package_model import package_run

    coarse = _randomised(build_network("cfcsp-resnet", 4, ARGS), 31)
    aux = torch.nn.Linear(16, 7)
    ema = {
        f"ema.net.{k}": (v.half() if v.is_floating_point() and v.numel() >= 16 else v)
        for k, v in coarse.state_dict().items()
    }
    ema.update(
        {f"ema.aux.{k}": v.detach().half() if v.numel() >= 16 else v.detach() for k, v in aux.state_dict().items()}
    )
    model_part = {f"model.net.{k}": torch.zeros_like(v) for k, v in coarse.state_dict().items()}
    _write_run(tmp_path / "run", {}, {"task": "coarse", "epoch": 1, "step": 5}, {**ema, **model_part})
    with pytest.raises(SystemExit, match="no coarse network"):
        package_run(tmp_path / "run", tmp_path / "none", template=_template())
    weights = package_run(
        tmp_path / "run",
        tmp_path / "model",
        checkpoint=True,
        template=_template(),
        flat_out=tmp_path / "flat",
        weights_dtype="float32",
    )
    assert "negative: not trained yet" in weights.note
    from cfcsp_sdk import Recognizer

    rec = Recognizer(str(tmp_path / "model"))
    assert rec.labels == ("Neutral", "Happiness", "Surprise", "Negative")
    x = np.random.default_rng(7).random((4, 1, 48, 48), dtype=np.float32)
    with torch.no_grad():
        t = torch.from_numpy(x)
        half = build_network("cfcsp-resnet", 4, ARGS).eval()
        half.load_state_dict(
            {k[8:]: v.float() if v.is_floating_point() else v for k, v in ema.items() if k.startswith("ema.net.")}
        )
        expected = ((half(t) + half(torch.flip(t, dims=[3]))) / 2).numpy()
        feats = (half.forward_features(t) + half.forward_features(torch.flip(t, dims=[3]))) / 2
        flat_expected = aux.half().float()(feats).numpy()  # linear: the mean of the views' logits
    np.testing.assert_allclose(rec.run_cascade(x).coarse_logits, expected, rtol=1e-4, atol=1e-4)
    flat = Recognizer(str(tmp_path / "flat"), backend="torch")
    assert len(flat.labels) == 7
    np.testing.assert_allclose(flat.run_cascade(x).coarse_logits, flat_expected, rtol=1e-4, atol=1e-4)
