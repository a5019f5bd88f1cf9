import math

import numpy as np
import pytest

from cfcsp_sdk import InvalidInputError, Smoother


def softmax2(a, b):
    ea, eb = math.exp(a), math.exp(b)
    return ea / (ea + eb), eb / (ea + eb)


F = np.array([[1.0, 0.0], [0.0, 0.0], [3.0, 0.0]])


def test_centered_matches_hand_computation():
    p = Smoother(window=3, mode="centered").smooth(F)
    # t0: f0 + mean(f0, f1) = [1.5, 0]; t1: f1 + mean(f0..f2) = [4/3, 0]; t2: f2 + mean(f1, f2) = [4.5, 0]
    expected = [softmax2(1.5, 0), softmax2(4 / 3, 0), softmax2(4.5, 0)]
    np.testing.assert_allclose(p, expected, atol=1e-6)


def test_causal_uses_only_the_past():
    s = Smoother(window=3, mode="causal")
    p = s.smooth(F)
    # t0: f0 + f0 = [2, 0]; t1: f1 + mean(f0, f1) = [0.5, 0]; t2: f2 + mean(f0..f2) = [3 + 4/3, 0]
    expected = [softmax2(2, 0), softmax2(0.5, 0), softmax2(3 + 4 / 3, 0)]
    np.testing.assert_allclose(p, expected, atol=1e-6)
    # changing a later frame never changes an earlier causal result
    G = F.copy()
    G[2] = [-5, 7]
    np.testing.assert_allclose(s.smooth(G)[:2], p[:2], atol=1e-7)


def test_streaming_update_equals_offline_causal_and_tracks_do_not_mix():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(9, 4)), rng.normal(size=(9, 4)) * 3
    s = Smoother(window=4, mode="causal")
    out_a, out_b = [], []
    for t in range(9):  # interleaved like two faces in one video
        out_a.append(s.update("a", a[t]))
        out_b.append(s.update(7, b[t]))
    np.testing.assert_allclose(out_a, s.smooth(a), atol=1e-6)
    np.testing.assert_allclose(out_b, s.smooth(b), atol=1e-6)
    assert set(s.tracks) == {"a", 7}
    s.reset("a")
    assert s.tracks == [7]
    np.testing.assert_allclose(s.update("a", a[5]), s.smooth(a[5:6])[0], atol=1e-6)


def test_missing_rows_are_skipped_and_stay_missing():
    f = np.array([[1.0, 0.0], [np.nan, np.nan], [3.0, 0.0]])
    p = Smoother(window=3).smooth(f)
    assert np.isnan(p[1]).all()
    # t0 window holds f0 only (f1 missing): [1 + 1, 0]; t2: [3 + 3, 0]
    np.testing.assert_allclose(p[0], softmax2(2, 0), atol=1e-6)
    np.testing.assert_allclose(p[2], softmax2(6, 0), atol=1e-6)


def test_window_one_is_doubled_scores_and_rows_sum_to_one():
    f = np.random.default_rng(2).normal(size=(6, 5))
    p = Smoother(window=1).smooth(f)
    e = np.exp(2 * f)
    np.testing.assert_allclose(p, e / e.sum(1, keepdims=True), atol=1e-6)
    p5 = Smoother(window=5).smooth(f)
    np.testing.assert_allclose(p5.sum(1), 1, atol=1e-6)


def test_smoothing_suppresses_a_one_frame_flip():
    f = np.tile([2.0, 0.0], (7, 1))
    f[3] = [0.0, 1.0]  # a single noisy frame votes for class 1
    raw = f.argmax(1)
    smooth = Smoother(window=5).smooth(f).argmax(1)
    assert raw[3] == 1 and (smooth == 0).all()


@pytest.mark.parametrize("kwargs", [{"window": 0}, {"window": 4}, {"window": 2.5}, {"mode": "future"}])
def test_bad_arguments_raise_typed_errors(kwargs):
    with pytest.raises(InvalidInputError):
        Smoother(**kwargs)


def test_bad_scores_raise_typed_errors():
    s = Smoother()
    for bad in [np.zeros(3), np.zeros((2, 0)), np.array([["a", "b"]]), np.array([[np.inf, 0.0]])]:
        with pytest.raises(InvalidInputError):
            s.smooth(bad)
    with pytest.raises(InvalidInputError):
        s.update("x", np.zeros(3))  # centred mode cannot stream
    c = Smoother(mode="causal")
    c.update("x", np.zeros(3))
    with pytest.raises(InvalidInputError):
        c.update("x", np.zeros(4))
    assert Smoother().smooth(np.zeros((0, 3))).shape == (0, 3)
