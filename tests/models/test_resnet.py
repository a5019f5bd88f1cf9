"""The residual backbone (cfcsp-resnet): built from config arguments, bad arguments refused, and its ONNX
export gives the torch module's logits through ONNX Runtime, on its own and as a model repository."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cfcsp_sdk.errors import ModelConfigError
from cfcsp_sdk.models import build_network

from test_compact_cnn import assert_exported_graph_matches

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


@pytest.mark.parametrize("args", [
    {"widths": [4, 8], "blocks": [1, 1, 1]},
    {"widths": [], "blocks": []},
    {"widths": [4, 0, 8, 8]},
    {"blocks": [1, 0, 1, 1]},
    {"depth": 18},
])
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
    from conftest import affwild_config_dict

    from cfcsp_sdk import ModelConfig, Recognizer
    from cfcsp_sdk.export import write_model_repository

    d = affwild_config_dict(color="gray", size=32)
    for spec in d["networks"].values():
        spec["architecture"], spec["args"] = "cfcsp-resnet", dict(ARGS)
    config = ModelConfig.from_dict(d)
    modules = {name: _randomised(build_network("cfcsp-resnet", spec.num_classes, spec.args), seed=10 + i)
               for i, (name, spec) in enumerate(config.networks.items())}
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
