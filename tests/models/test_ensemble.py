"""cfcsp-ensemble: members of different architectures, a weighted mean of their logits, in torch, in ONNX and
in a model repository under both backends."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_compact_cnn import assert_exported_graph_matches

from cfcsp_sdk.errors import ModelConfigError
from cfcsp_sdk.models import build_network

RESNET = {"in_channels": 1, "widths": [4, 8, 8, 8], "blocks": [1, 1, 1, 1], "dropout": 0.0}
CNN = {"in_channels": 1, "widths": [4, 8, 8, 8], "dropout": 0.0}
ENSEMBLE = {
    "members": ["cfcsp-resnet", "cfcsp-compact-cnn", "cfcsp-compact-cnn"],
    "weights": [2, 1, 1],
    "per_member": ["widths", "blocks"],
    "in_channels": 1,
    "dropout": 0.0,
    "widths": [[4, 8, 8, 8], [4, 8, 8, 8], [8, 8, 8, 8]],
    "blocks": [[1, 1, 1, 1], None, None],
}


def _randomised(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    with torch.no_grad():
        for param in net.parameters():
            param.normal_(0, 0.3)
        for buf in net.buffers():
            if buf.is_floating_point():
                buf.uniform_(0.5, 1.5)
    return net.eval()


def test_weighted_mean_of_members_of_different_architectures(tmp_path):
    members = [
        _randomised(build_network("cfcsp-resnet", 4, RESNET), 1),
        _randomised(build_network("cfcsp-compact-cnn", 4, CNN), 2),
        _randomised(build_network("cfcsp-compact-cnn", 4, {**CNN, "widths": [8, 8, 8, 8]}), 3),
    ]
    ens = build_network("cfcsp-ensemble", 4, ENSEMBLE).eval()
    for i, m in enumerate(members):
        ens.members[i].load_state_dict(m.state_dict(), strict=True)  # each member's own names under members.<i>.
    assert set(ens.state_dict()) == {f"members.{i}.{k}" for i, m in enumerate(members) for k in m.state_dict()}
    x = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        outs = [m(x) for m in members]
        expected = 0.5 * outs[0] + 0.25 * outs[1] + 0.25 * outs[2]
        torch.testing.assert_close(ens(x), expected, atol=1e-5, rtol=1e-5)
        assert (outs[0] - outs[1]).abs().max() > 1e-2
    assert_exported_graph_matches(ens, tmp_path, seed=3)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"members": []}, "members"),
        ({"members": "cfcsp-resnet"}, "members"),
        ({"members": ["cfcsp-resnet"] * 9}, "members"),
        ({"members": ["cfcsp-ensemble", "cfcsp-resnet", "cfcsp-resnet"]}, "members"),
        ({"members": ["cfcsp-compact-cnn-ensemble", "cfcsp-resnet", "cfcsp-resnet"]}, "members"),
        ({"members": ["no-such-net", "cfcsp-resnet", "cfcsp-resnet"]}, "members"),
        ({"weights": [1, 1]}, "weights"),
        ({"weights": [1, 0, 1]}, "weights"),
        ({"weights": [1, -1, 1]}, "weights"),
        ({"weights": [1, True, 1]}, "weights"),
        ({"widths": [[4, 8, 8, 8]]}, "widths"),
        ({"per_member": "widths"}, "per_member"),
        ({"blocks": [[0, 1, 1, 1], None, None]}, "members"),  # the member's own builder refuses it
    ],
)
def test_bad_ensembles_are_model_config_errors(change, field):
    with pytest.raises(ModelConfigError, match=field):
        build_network("cfcsp-ensemble", 4, {**ENSEMBLE, **change})


def test_an_ensemble_repository_agrees_between_backends(tmp_path):
    from cfcsp_sdk import ModelConfig, Recognizer
    from cfcsp_sdk.export import write_model_repository
    from conftest import affwild_config_dict

    d = affwild_config_dict(color="gray", size=32)
    for spec in d["networks"].values():
        spec["architecture"], spec["args"] = "cfcsp-ensemble", dict(ENSEMBLE)
    config = ModelConfig.from_dict(d)  # flat arguments pass the config's own checks
    modules = {
        name: _randomised(build_network("cfcsp-ensemble", spec.num_classes, spec.args), seed=10 + i)
        for i, (name, spec) in enumerate(config.networks.items())
    }
    write_model_repository(tmp_path, config, modules, weights_dtype="float32")
    x = np.random.default_rng(5).random((6, 1, 32, 32), dtype=np.float32)
    outs = {b: Recognizer(str(tmp_path), backend=b, fine_policy="always").run_cascade(x) for b in ("onnx", "torch")}
    np.testing.assert_allclose(outs["onnx"].coarse_logits, outs["torch"].coarse_logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(outs["onnx"].fine_logits[0], outs["torch"].fine_logits[0], rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        expected = modules[config.cascade.coarse_network](torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(outs["torch"].coarse_logits, expected, rtol=1e-4, atol=1e-4)


def test_merge_models_gives_the_weighted_mean_of_the_models(tmp_path):
    """training/merge_models.py: a compact-CNN model and a resnet model of one cascade merge into one repository
    whose logits are the weighted mean of theirs, under both backends, and a calibration is baked on top."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from cfcsp_sdk import Recognizer
    from conftest import affwild_config_dict, build_repo

    cnn = build_repo(tmp_path / "cnn", affwild_config_dict(color="gray", size=32), seed=1)
    d = affwild_config_dict(color="gray", size=32)
    for spec in d["networks"].values():
        spec["architecture"], spec["args"] = "cfcsp-resnet", dict(RESNET)
    resnet = build_repo(tmp_path / "resnet", d, seed=2)
    script = Path(__file__).resolve().parents[2] / "training" / "merge_models.py"

    def merge(out, *extra):
        cmd = [sys.executable, script, "--model", cnn, "--weight", 3, "--model", resnet, "--weight", 1, "--out", out]
        subprocess.run([str(a) for a in [*cmd, "--weights-dtype", "float32", *extra]], check=True, timeout=300)

    merge(tmp_path / "merged")
    x = np.random.default_rng(5).random((6, 1, 32, 32), dtype=np.float32)
    a, b = (Recognizer(str(f), fine_policy="always").run_cascade(x) for f in (cnn, resnet))
    assert np.abs(a.coarse_logits - b.coarse_logits).max() > 1e-2
    for backend in ("onnx", "torch"):
        m = Recognizer(str(tmp_path / "merged"), backend=backend, fine_policy="always").run_cascade(x)
        np.testing.assert_allclose(m.coarse_logits, 0.75 * a.coarse_logits + 0.25 * b.coarse_logits, atol=1e-4)
        np.testing.assert_allclose(m.fine_logits[0], 0.75 * a.fine_logits[0] + 0.25 * b.fine_logits[0], atol=1e-4)
    cal = {
        "coarse": {"temperature": 2.0, "offsets": [0.5, 0, 0, 0, 0]},
        "negative": {"temperature": 0.5, "offsets": [0, 0, 0.25, 0]},
        "fitted_on": "test data",
    }
    (tmp_path / "cal.json").write_text(json.dumps(cal))
    merge(tmp_path / "calibrated", "--calibration", tmp_path / "cal.json")
    m = Recognizer(str(tmp_path / "merged"), fine_policy="always").run_cascade(x)
    c = Recognizer(str(tmp_path / "calibrated"), fine_policy="always").run_cascade(x)
    np.testing.assert_allclose(c.coarse_logits, m.coarse_logits / 2.0 + [0.5, 0, 0, 0, 0], atol=1e-4)
    np.testing.assert_allclose(c.fine_logits[0], m.fine_logits[0] / 0.5 + [0, 0, 0.25, 0], atol=1e-4)


def test_per_member_may_be_left_out():
    net = build_network("cfcsp-ensemble", 4, {"members": ["cfcsp-compact-cnn", "cfcsp-resnet"], **CNN})
    assert len(net.members) == 2
