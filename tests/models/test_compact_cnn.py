"""The compact CNN's test-time views (mirror averaging, shifted copies): same weights, output = mean of the views' logits,
and the exported ONNX graph does the same."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from cfcsp_sdk.export import export_onnx
from cfcsp_sdk.models import build_network

ARGS = {"in_channels": 1, "widths": [4, 8, 8, 8], "dropout": 0.0}


def assert_exported_graph_matches(module: torch.nn.Module, tmp_path, seed: int) -> None:
    """The module exported to ONNX gives the module's own logits through ONNX Runtime."""
    path = export_onnx(module, tmp_path / "net.onnx", channels=1, height=32, width=32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    xs = np.random.default_rng(seed).random((2, 1, 32, 32), dtype=np.float32)
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: xs})
    with torch.no_grad():
        np.testing.assert_allclose(onnx_out, module(torch.from_numpy(xs)).numpy(), rtol=1e-4, atol=1e-4)


@pytest.fixture()
def nets():
    torch.manual_seed(0)
    plain = build_network("cfcsp-compact-cnn", 4, ARGS).eval()
    with torch.no_grad():  # large random weights, so that a crop and its mirror score clearly apart
        for param in plain.parameters():
            param.normal_()
    mirrored = build_network("cfcsp-compact-cnn", 4, {**ARGS, "flip_average": True}).eval()
    mirrored.load_state_dict(plain.state_dict(), strict=True)  # no new parameters
    return plain, mirrored


def test_flip_average_is_mean_of_crop_and_mirror(nets):
    plain, mirrored = nets
    x = torch.rand(5, 1, 32, 32)
    with torch.no_grad():
        expected = (plain(x) + plain(torch.flip(x, dims=[3]))) / 2
        got = mirrored(x)
        # the averaged network cannot tell a crop from its mirror image
        mirror_got = mirrored(torch.flip(x, dims=[3]))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mirror_got, got, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        assert (plain(x) - got).abs().max() > 1e-2


def test_flip_average_survives_onnx_export(nets, tmp_path):
    _, mirrored = nets
    path = export_onnx(mirrored, tmp_path / "net.onnx", channels=1, height=32, width=32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).random((3, 1, 32, 32), dtype=np.float32)
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x})
    with torch.no_grad():
        torch_out = mirrored(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(onnx_out, torch_out, rtol=1e-4, atol=1e-4)
    (onnx_mirror,) = session.run(None, {session.get_inputs()[0].name: x[..., ::-1].copy()})
    np.testing.assert_allclose(onnx_mirror, onnx_out, rtol=1e-4, atol=1e-4)


def test_forward_features_feed_the_head(nets):
    # training attaches extra heads to these pooled features; the network's own output must be
    # exactly its head applied to them (eval mode: dropout is the identity)
    plain, _ = nets
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        feats = plain.forward_features(x)
        assert feats.shape == (2, ARGS["widths"][-1])
        torch.testing.assert_close(plain.head(feats), plain(x))


def test_shift_views_average_the_shifted_crops(nets, tmp_path):
    plain, _ = nets
    shifted = build_network("cfcsp-compact-cnn", 4, {**ARGS, "shift_views": [[1, 1], [-2, 0]]}).eval()
    shifted.load_state_dict(plain.state_dict(), strict=True)  # no new parameters
    x = torch.rand(3, 1, 32, 32)
    # by hand: right/down by 1 and left by 2, the gap filled with the nearest border pixels
    right_down = torch.cat([x[:, :, :1], x[:, :, :-1]], dim=2)
    right_down = torch.cat([right_down[:, :, :, :1], right_down[:, :, :, :-1]], dim=3)
    left_two = torch.cat([x[:, :, :, 2:], x[:, :, :, -1:], x[:, :, :, -1:]], dim=3)
    with torch.no_grad():
        expected = (plain(x) + plain(right_down) + plain(left_two)) / 3
        got = shifted(x)
        assert (plain(x) - got).abs().max() > 1e-2
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)

    assert_exported_graph_matches(shifted, tmp_path, seed=2)


def _randomised(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    with torch.no_grad():
        for param in net.parameters():
            param.normal_()
    return net.eval()


def test_ensemble_returns_the_mean_of_its_members_logits(tmp_path):
    a = _randomised(build_network("cfcsp-compact-cnn", 4, ARGS), 1)
    b = _randomised(build_network("cfcsp-compact-cnn", 4, ARGS), 2)
    ens = build_network("cfcsp-compact-cnn-ensemble", 4, {"members": 2, **ARGS}).eval()
    # weights are the members' own, under members.<i>.
    ens.members[0].load_state_dict(a.state_dict(), strict=True)
    ens.members[1].load_state_dict(b.state_dict(), strict=True)
    assert set(ens.state_dict()) == {f"members.{i}.{k}" for i in (0, 1) for k in a.state_dict()}
    x = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        expected = (a(x) + b(x)) / 2
        got = ens(x)
        assert (a(x) - b(x)).abs().max() > 1e-2  # the members really differ
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)

    assert_exported_graph_matches(ens, tmp_path, seed=3)


@pytest.mark.parametrize("members", [0, 17, "2", 2.5, True])
def test_ensemble_size_is_bounded(members):
    from cfcsp_sdk.errors import ModelConfigError

    with pytest.raises(ModelConfigError, match="members"):
        build_network("cfcsp-compact-cnn-ensemble", 4, {"members": members, **ARGS})
