import numpy as np
import pytest

from cfcsp_sdk import BackendError, Cascade, InvalidInputError, ModelConfig
from cfcsp_sdk.backends import get_backend
from cfcsp_sdk.smoother import softmax
from conftest import affwild_config_dict


class CountingNetwork:
    """Wraps a real network and records how many faces it was run on."""

    def __init__(self, net):
        self.net, self.seen = net, 0

    def __call__(self, batch):
        self.seen += len(batch)
        return self.net(batch)


@pytest.fixture()
def affwild(tiny_repo):
    cfg = ModelConfig.from_file(tiny_repo / "config.json")
    backend = get_backend("onnx")
    nets = {n: CountingNetwork(backend.load_network(tiny_repo, n, s)) for n, s in cfg.networks.items()}
    return cfg, nets


def test_hard_rule_hand_computed(affwild):
    cfg, nets = affwild
    cascade = Cascade(cfg.cascade, nets, rule="hard")
    coarse = np.array(
        [
            [0.1, 0.6, 0.1, 0.1, 0.1],  # Happiness wins directly
            [0.1, 0.1, 0.1, 0.2, 0.5],  # Negative wins -> fine argmax (Sadness)
            [0.3, 0.0, 0.0, 0.0, 0.7],  # Negative wins -> fine argmax (Anger)
        ]
    )
    fine = {0: np.array([[0.25, 0.25, 0.25, 0.25], [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]])}
    probs, labels = cascade.combine(coarse, fine)
    assert [cfg.labels[k] for k in labels] == ["Happiness", "Sadness", "Anger"]
    # final order: Neutral, Anger, Disgust, Fear, Happiness, Sadness, Surprise, Other
    np.testing.assert_allclose(probs[1], [0.1, 0.05, 0.1, 0.15, 0.1, 0.2, 0.1, 0.2], atol=1e-6)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-6)


def test_soft_rule_can_differ_from_hard(affwild):
    cfg, nets = affwild
    coarse = np.array([[0.0, 0.3, 0.0, 0.0, 0.7]])  # Negative is the coarse argmax ...
    fine = {0: np.array([[0.25, 0.25, 0.25, 0.25]])}  # ... but spread thin: 0.175 each < Happiness 0.3
    _, hard = Cascade(cfg.cascade, nets, rule="hard").combine(coarse, fine)
    probs, soft = Cascade(cfg.cascade, nets, rule="soft").combine(coarse, fine)
    assert cfg.labels[hard[0]] == "Anger"  # first of the tied fine classes
    assert cfg.labels[soft[0]] == "Happiness"
    np.testing.assert_allclose(probs[0][[1, 2, 3, 5]], 0.175, atol=1e-6)


def test_missing_fine_scores_split_the_group_evenly(affwild):
    cfg, nets = affwild
    cascade = Cascade(cfg.cascade, nets)
    probs, labels = cascade.combine(np.array([[0.6, 0.0, 0.0, 0.0, 0.4]]), {0: np.full((1, 4), np.nan)})
    assert cfg.labels[labels[0]] == "Neutral"
    np.testing.assert_allclose(probs[0][[1, 2, 3, 5]], 0.1, atol=1e-6)


def test_fine_network_runs_only_where_needed(affwild, tiny_repo, face_crops):
    from cfcsp_sdk.preprocess import crops_to_batch

    cfg, nets = affwild
    batch = crops_to_batch(list(face_crops), cfg.preprocessing, "bgr")
    out = Cascade(cfg.cascade, nets)(batch)
    needed = out.coarse_logits.argmax(1) == 4
    assert nets["coarse"].seen == len(batch)
    assert nets["negative"].seen == needed.sum()
    assert np.isnan(out.fine_logits[0][~needed]).all() and not np.isnan(out.fine_logits[0][needed]).any()

    always = Cascade(cfg.cascade, nets, fine_policy="always")(batch)
    assert not np.isnan(always.fine_logits[0]).any()
    # running the fine network everywhere never changes a label (a group label needs its group on top)
    np.testing.assert_array_equal(always.labels, out.labels)
    ref = always.probabilities
    np.testing.assert_allclose(out.probabilities[needed], ref[needed], atol=1e-6)
    np.testing.assert_allclose(out.probabilities.sum(1), 1, atol=1e-5)


def test_generic_grouping_with_two_groups(tmp_path):
    """Coarse: Neutral, Positive(group), Negative(group); nothing is specific to the paper's 5+4."""
    from conftest import build_repo

    d = affwild_config_dict(color="gray", size=16)
    d["labels"] = ["Neutral", "Happy", "Surprised", "Angry", "Sad"]
    d["cascade"] = {
        "coarse": {"network": "coarse", "labels": ["Neutral", "Positive", "Negative"], "to_final": [0, None, None]},
        "groups": [
            {"coarse_index": 1, "network": "pos", "labels": ["Happy", "Surprised"], "to_final": [1, 2]},
            {"coarse_index": 2, "network": "neg", "labels": ["Angry", "Sad"], "to_final": [3, 4]},
        ],
    }
    args = d["networks"]["coarse"]["args"]
    d["networks"] = {
        "coarse": {"architecture": "cfcsp-compact-cnn", "num_classes": 3, "args": args},
        "pos": {"architecture": "cfcsp-compact-cnn", "num_classes": 2, "args": args},
        "neg": {"architecture": "cfcsp-compact-cnn", "num_classes": 2, "args": args},
    }
    repo = build_repo(tmp_path, d)
    cfg = ModelConfig.from_file(repo / "config.json")
    nets = {n: get_backend("onnx").load_network(repo, n, s) for n, s in cfg.networks.items()}
    cascade = Cascade(cfg.cascade, nets)
    coarse = np.array([[0.2, 0.5, 0.3], [0.1, 0.2, 0.7], [0.8, 0.1, 0.1]])
    fine = {0: np.array([[0.9, 0.1], [0.5, 0.5], [0.5, 0.5]]), 1: np.array([[0.5, 0.5], [0.3, 0.7], [0.5, 0.5]])}
    probs, labels = cascade.combine(coarse, fine)
    assert [cfg.labels[k] for k in labels] == ["Happy", "Sad", "Neutral"]
    np.testing.assert_allclose(probs[0], [0.2, 0.45, 0.05, 0.15, 0.15], atol=1e-6)
    x = np.random.default_rng(0).normal(size=(5, 1, 16, 16)).astype(np.float32)
    out = cascade(x)
    np.testing.assert_allclose(out.probabilities.sum(1), 1, atol=1e-5)
    top = softmax(out.coarse_logits).argmax(1)
    assert (np.isnan(out.fine_logits[0]).any(1) == (top != 1)).all()
    assert (np.isnan(out.fine_logits[1]).any(1) == (top != 2)).all()


def test_bad_rule_and_policy(affwild):
    cfg, nets = affwild
    with pytest.raises(InvalidInputError):
        Cascade(cfg.cascade, nets, rule="max")
    with pytest.raises(InvalidInputError):
        Cascade(cfg.cascade, nets, fine_policy="never")


class BrokenOutput:
    """A real network whose output a faulty plug-in backend mangles."""

    def __init__(self, net, mangle):
        self.net, self.mangle = net, mangle

    def __call__(self, batch):
        return self.mangle(self.net(batch))


@pytest.mark.parametrize(
    "mangle,message",
    [
        (lambda out: out[:, :-1], "expected"),  # too few classes
        (lambda out: out[:-1], "expected"),  # a face lost
        (lambda out: out.tolist(), "expected"),  # not an array
        (lambda out: np.where(np.arange(out.shape[1]) == 0, np.nan, out).astype(np.float32), "non-finite"),
    ],
)
def test_a_plugin_network_with_bad_output_is_a_backend_error(affwild, face_crops, mangle, message):
    from cfcsp_sdk.preprocess import crops_to_batch

    cfg, nets = affwild
    batch = crops_to_batch(list(face_crops), cfg.preprocessing)
    for broken in (cfg.cascade.coarse_network, cfg.cascade.groups[0].network):
        mangled = {n: BrokenOutput(net, mangle) if n == broken else net for n, net in nets.items()}
        with pytest.raises(BackendError, match=message):
            Cascade(cfg.cascade, mangled, fine_policy="always")(batch)


def test_views_average_the_logits_of_mirrored_and_shifted_crops(tiny_repo, face_crops):
    """Cascade-level views give the same logits as scoring each view by hand and averaging."""
    from cfcsp_sdk import Recognizer
    from cfcsp_sdk.views import Views

    plain = Recognizer(tiny_repo, fine_policy="always", views="none")
    viewed = Recognizer(tiny_repo, fine_policy="always", views={"mirror": True, "shifts": [[1, 1], [-2, 0]]})
    assert viewed.cascade.views == Views(mirror=True, shifts=((1, 1), (-2, 0)))
    assert viewed.cascade.views.passes == 6
    batch = plain.preprocess(face_crops)
    padded = np.pad(batch, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
    # (1, 1): content moved right and down by one; (-2, 0): moved left by two
    by_hand = [batch, padded[:, :, 1:-3, 1:-3], padded[:, :, 2:-2, 4:]]
    crops = by_hand + [v[..., ::-1] for v in by_hand]
    expected = np.mean([plain.run_cascade(np.ascontiguousarray(c)).coarse_logits for c in crops], axis=0)
    np.testing.assert_allclose(viewed.run_cascade(batch).coarse_logits, expected, atol=1e-4)
    # the mirror view makes a face and its mirror image score the same
    mirror_only = Recognizer(tiny_repo, fine_policy="always", views="mirror")
    a = mirror_only.run_cascade(batch).coarse_logits
    b = mirror_only.run_cascade(np.ascontiguousarray(batch[..., ::-1])).coarse_logits
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_bad_views_are_refused(tiny_repo):
    import copy
    import json

    import pytest

    from cfcsp_sdk import Recognizer
    from cfcsp_sdk.config import ModelConfig
    from cfcsp_sdk.errors import InvalidInputError, ModelConfigError

    for bad in ("mirrors", {"mirror": "yes"}, {"shifts": [[1]]}, {"shifts": [[20, 0]]}, {"flip": True}, 3):
        with pytest.raises(InvalidInputError):
            Recognizer(tiny_repo, views=bad)
    data = json.loads((tiny_repo / "config.json").read_text())
    for bad in ({"shifts": [[1, True]]}, {"shifts": [[0, 40]]}, [1, 2], {"mirror": 1}):
        d = copy.deepcopy(data)
        d["views"] = bad
        with pytest.raises(ModelConfigError, match="views"):
            ModelConfig.from_dict(d)
    d = copy.deepcopy(data)
    d["views"] = {"mirror": True, "shifts": [[1, 1]]}
    cfg = ModelConfig.from_dict(d)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg and cfg.views.passes == 4


def test_views_reach_every_network_in_images_and_video(tiny_repo, media):
    """Each network call sees passes x faces crops, the fine network in the video pipeline too."""
    from cfcsp_sdk import Recognizer

    rec = Recognizer(tiny_repo, detector="aligned", fine_policy="always", views={"mirror": True, "shifts": [[1, 1]]})
    calls = []
    for name, net in list(rec.cascade.networks.items()):

        def counted(batch, net=net, name=name):
            calls.append((name, len(batch)))
            return net(batch)

        rec.cascade.networks[name] = counted
    video = rec.predict_video(media("single_face.mp4"), max_frames=6, progress=False)
    assert len(video.rows) == 6
    assert {name for name, _ in calls} == {"coarse", "negative"}
    for name in ("coarse", "negative"):
        assert sum(n for c, n in calls if c == name) == 4 * 6, calls


def test_views_on_an_empty_batch(tiny_repo):
    from cfcsp_sdk import Recognizer

    rec = Recognizer(tiny_repo, views="mirror")
    empty = rec.predict_faces(np.zeros((0, 40, 40, 3), np.uint8))
    assert len(empty) == 0
    assert rec.run_cascade(np.zeros((0, 3, 32, 32), np.float32)).probabilities.shape == (0, 8)


# ---- label offsets (issue 24: the operating point moved without retraining) ----------------------------
def test_a_coarse_label_offset_is_a_prior_shift_of_the_final_distribution(tiny_repo, face_crops):
    """An offset b on Neutral (a coarse label) multiplies Neutral's odds against every final label by
    exp(b): the final probabilities are the unshifted ones with p(Neutral) * e^b, renormalised."""
    from cfcsp_sdk import Recognizer

    plain = Recognizer(tiny_repo, fine_policy="always")
    shifted = Recognizer(tiny_repo, fine_policy="always", label_offsets={"Neutral": -0.7})
    batch = plain.preprocess(face_crops)
    p = plain.run_cascade(batch).probabilities.astype(np.float64)
    q = shifted.run_cascade(batch).probabilities
    neutral = plain.labels.index("Neutral")
    expected = p.copy()
    expected[:, neutral] *= np.exp(-0.7)
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(q, expected, atol=2e-6)
    assert (q[:, neutral] < p[:, neutral]).all()


def test_a_fine_label_offset_moves_odds_inside_its_group_only(tiny_repo, face_crops):
    from cfcsp_sdk import Recognizer

    plain = Recognizer(tiny_repo, fine_policy="always")
    shifted = Recognizer(tiny_repo, fine_policy="always", label_offsets={"Sadness": 1.2})
    batch = plain.preprocess(face_crops)
    p, q = plain.run_cascade(batch).probabilities, shifted.run_cascade(batch).probabilities
    group = [plain.labels.index(x) for x in ("Anger", "Disgust", "Fear", "Sadness")]
    others = [i for i in range(len(plain.labels)) if i not in group]
    np.testing.assert_allclose(q[:, others], p[:, others], atol=1e-6)  # the coarse network is untouched
    np.testing.assert_allclose(q[:, group].sum(1), p[:, group].sum(1), atol=1e-6)
    sad, anger = plain.labels.index("Sadness"), plain.labels.index("Anger")
    np.testing.assert_allclose(q[:, sad] / q[:, anger], np.exp(1.2) * p[:, sad] / p[:, anger], rtol=1e-4)


def test_label_offsets_reach_images_faces_and_video(tiny_repo, media):
    """A large offset decides the label on every path: crops, photos, and the video pipeline's raw and
    SP-smoothed rows (the fine network on the Negative group too, under the default when_needed policy)."""
    from cfcsp_sdk import Recognizer

    rec = Recognizer(tiny_repo, label_offsets={"Negative": 40.0, "Fear": 40.0})
    assert "label_offsets={'Negative': 40.0, 'Fear': 40.0}" in repr(rec)
    rng = np.random.default_rng(3)
    crops = rng.integers(0, 256, (5, 40, 40, 3), dtype=np.uint8)
    assert [p.label for p in rec.predict_faces(crops)] == ["Fear"] * 5
    image = rec.predict_image(media("single_face.jpg"))
    assert len(image) >= 1 and all(f.prediction.label == "Fear" for f in image.faces)
    video = rec.predict_video(media("single_face.mp4"), max_frames=6, progress=False)
    faces = [r for r in video.rows if r.label is not None]
    assert len(faces) == 6 and {r.label for r in faces} == {"Fear"} and {r.raw_label for r in faces} == {"Fear"}


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"Contempt": 1.0}, "no label 'Contempt'"),
        ({"Neutral": float("nan")}, "must be a number in -1000..1000"),
        ({"Neutral": float("inf")}, "must be a number"),
        ({"Neutral": -1e300}, "must be a number"),
        ({"Neutral": 10**400}, "must be a number"),
        ([], "mapping"),  # finite, but infinite in float32
        ({"Neutral": True}, "must be a number"),
        ({"Neutral": "-0.5"}, "must be a number"),
        (["Neutral"], "mapping"),
    ],
)
def test_bad_label_offsets_are_refused(tiny_repo, bad, message):
    from cfcsp_sdk import Recognizer

    with pytest.raises(InvalidInputError, match=message):
        Recognizer(tiny_repo, label_offsets=bad)


def test_label_offset_text_form():
    from cfcsp_sdk.cascade import parse_label_offset

    assert parse_label_offset("Neutral=-0.5") == ("Neutral", -0.5)
    assert parse_label_offset(" Fear = 2 ") == ("Fear", 2.0)
    for bad in ("Neutral", "=1", "Neutral=", "Neutral=x", "Neutral=nan", "Neutral=inf"):
        with pytest.raises(InvalidInputError, match="LABEL=OFFSET"):
            parse_label_offset(bad)


def test_a_label_offset_moves_only_its_own_slot_of_a_shared_network(tmp_path):
    """Two groups may share one fine network; an offset on one group's label must not shift the other's."""
    from conftest import build_repo

    d = affwild_config_dict(color="gray", size=16)
    d["labels"] = ["Neutral", "Happy", "Surprised", "Angry", "Sad"]
    d["cascade"] = {
        "coarse": {"network": "coarse", "labels": ["Neutral", "Positive", "Negative"], "to_final": [0, None, None]},
        "groups": [
            {"coarse_index": 1, "network": "fine", "labels": ["Happy", "Surprised"], "to_final": [1, 2]},
            {"coarse_index": 2, "network": "fine", "labels": ["Angry", "Sad"], "to_final": [3, 4]},
        ],
    }
    args = d["networks"]["coarse"]["args"]
    d["networks"] = {
        "coarse": {"architecture": "cfcsp-compact-cnn", "num_classes": 3, "args": args},
        "fine": {"architecture": "cfcsp-compact-cnn", "num_classes": 2, "args": args},
    }
    repo = build_repo(tmp_path, d)
    cfg = ModelConfig.from_file(repo / "config.json")
    nets = {n: get_backend("onnx").load_network(repo, n, s) for n, s in cfg.networks.items()}
    x = np.random.default_rng(0).normal(size=(5, 1, 16, 16)).astype(np.float32)
    plain = Cascade(cfg.cascade, nets, fine_policy="always")(x)
    shifted = Cascade(cfg.cascade, nets, fine_policy="always", label_offsets={"Happy": 5.0})(x)
    np.testing.assert_allclose(shifted.fine_logits[0], plain.fine_logits[0] + [5.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(shifted.fine_logits[1], plain.fine_logits[1], atol=1e-6)
    np.testing.assert_allclose(shifted.coarse_logits, plain.coarse_logits, atol=1e-6)
