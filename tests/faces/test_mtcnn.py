import numpy as np
import pytest

from cfcsp_sdk.faces.detection import iou_matrix
from cfcsp_sdk.faces.mtcnn import MtcnnDetector, build_onnx, load_mtcnn_weights, mtcnn_weights_dir
from cfcsp_sdk.faces.yunet import YuNetDetector
from cfcsp_sdk.io import load_image


@pytest.fixture(scope="module")
def mtcnn():
    return MtcnnDetector()


def test_weights_come_from_the_mtcnn_package_without_importing_it():
    import sys

    weights = load_mtcnn_weights(str(mtcnn_weights_dir()))
    assert [w.shape for w in weights["pnet"]][:3] == [(3, 3, 3, 10), (10,), (1, 1, 10)]
    assert weights["onet"][-2].shape == (256, 2)
    assert "mtcnn" not in sys.modules and "tensorflow" not in sys.modules


def test_the_default_detector_needs_no_onnx_package(media):
    import subprocess
    import sys

    code = (
        "import sys; from cfcsp_sdk.faces.mtcnn import MtcnnDetector; from cfcsp_sdk.io import load_image; "
        f"n = len(MtcnnDetector(threads=1).detect(load_image({str(media('single_face.jpg'))!r}))); "
        "print(n, 'onnx' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1", "False"]


def test_group_photo_faces_and_landmarks_agree_with_yunet(mtcnn, media, yunet_dynamic):
    img = load_image(media("multi_face.jpg"))
    dets = mtcnn.detect(img)
    assert len(dets) == 5 and all(d.detection_score > 0.9 for d in dets)
    yunet = YuNetDetector(yunet_dynamic).detect(img)
    iou = iou_matrix([d.box for d in dets], [d.box for d in yunet])
    assert (iou.max(axis=1) > 0.5).all()
    for d in dets:
        match = yunet[int(iou[dets.index(d)].argmax())]
        size = d.box[2] - d.box[0]
        # the same five points, in the same order, within a tenth of the face size
        assert np.abs(d.landmarks - match.landmarks).max() < 0.1 * size


def test_onnx_and_torch_networks_agree(media):
    import onnx
    import onnxruntime as ort
    import torch

    from cfcsp_sdk.faces.mtcnn import build_torch

    weights = load_mtcnn_weights(str(mtcnn_weights_dir()))
    rng = np.random.default_rng(0)
    for name, size in (("pnet", 37), ("rnet", 24), ("onet", 48)):
        x = rng.normal(size=(3, 3, size, size)).astype(np.float32)
        graph = build_onnx(name, weights[name])  # written without the onnx package: check it with onnx
        onnx.checker.check_model(onnx.load_from_string(graph), full_check=True)
        assert onnx.load_from_string(graph).SerializeToString() == graph
        a = ort.InferenceSession(graph).run(None, {"input": x})
        with torch.inference_mode():
            b = [o.numpy() for o in build_torch(name, weights[name])(torch.from_numpy(x))]
        assert len(a) == len(b)
        for u, v in zip(a, b):
            np.testing.assert_allclose(u, v, atol=1e-4)
    img = load_image(media("single_face.jpg"))
    d1 = MtcnnDetector(backend="onnx").detect(img)
    d2 = MtcnnDetector(backend="torch").detect(img)
    assert len(d1) == len(d2) == 1 and np.allclose(d1[0].box, d2[0].box, atol=0.5)


def test_no_face_and_tiny_images(mtcnn, media):
    assert mtcnn.detect(load_image(media("free-mountain-vector-01.jpg"))) == []
    assert mtcnn.detect(np.zeros((8, 8, 3), np.uint8)) == []


def _frames(path, wanted):
    import cv2

    cap, out, i = cv2.VideoCapture(str(path)), {}, 0
    while len(out) < len(wanted):
        ok, frame = cap.read()
        if not ok:
            break
        if i in wanted:
            out[i] = frame
        i += 1
    return out


def test_session_options_reach_every_mtcnn_session():
    quiet = MtcnnDetector(threads=1)
    spinning = MtcnnDetector(threads=2, allow_spinning=True)
    for net in (quiet.pnet, quiet.rnet, quiet.onet):
        opts = net.session.get_session_options()
        assert opts.intra_op_num_threads == 1
        assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert opts.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    opts = spinning.onet.session.get_session_options()
    assert opts.intra_op_num_threads == 2 and opts.get_session_config_entry("session.intra_op.allow_spinning") == "1"


@pytest.mark.parametrize(
    "options",
    [
        {"min_face": 0},
        {"min_face_ratio": 1.0},
        {"min_face_ratio": -0.1},
        {"min_score": 1.5},
        {"min_score": float("nan")},
        {"scale_factor": 1.2},
        {"min_face": "20"},
        {"thresholds": (0.6, 0.7)},
        {"min_face_cap": 0},
    ],
)
def test_options_out_of_range_are_refused(options):
    from cfcsp_sdk import InvalidInputError

    with pytest.raises(InvalidInputError):
        MtcnnDetector(**options)


def test_smallest_face_is_the_larger_of_pixels_and_ratio():
    det = MtcnnDetector(min_face=20, min_face_ratio=0.05, min_face_cap=1000)
    assert det.smallest_face(360, 640) == 20
    assert det.smallest_face(720, 1280) == pytest.approx(36)
    assert det.smallest_face(10000, 10000) == pytest.approx(500)
    default = MtcnnDetector()  # the ratio's limit is capped, so large photos keep faces of 100 px
    assert [
        default.smallest_face(h, w) for h, w in ((360, 640), (720, 1280), (1080, 1920), (3000, 4000))
    ] == pytest.approx([36, 72, 100, 100])


def test_detection_on_a_downscaled_frame_maps_boxes_and_landmarks_back(media):
    """A 3x upscaled group photo is detected on a frame scaled down to the smallest face's 48 pixels;
    its boxes and landmarks, in the large image's pixels, are the small photo's times three."""
    import cv2

    small = load_image(media("multi_face.jpg"))
    large = cv2.resize(small, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    det = MtcnnDetector(min_face=20, min_face_ratio=0.05)
    assert det.smallest_face(*large.shape[:2]) / 48 > 2  # the large image really is scaled down
    a = MtcnnDetector(min_face=20, min_face_ratio=0).detect(small)
    b = det.detect(large)
    assert len(a) == len(b) == 5
    iou = iou_matrix([d.box for d in a], [np.asarray(d.box) / 3 for d in b])
    for i, d in enumerate(a):
        j = int(iou[i].argmax())
        size = d.box[2] - d.box[0]
        assert iou[i, j] > 0.8
        # O-Net places points within a few % of the face size; a missed mapping (x3) would be off by 100s of %
        np.testing.assert_array_less(np.abs(b[j].landmarks / 3 - d.landmarks), 0.1 * size)


def test_batched_stages_give_the_single_image_result(media):
    import cv2

    det = MtcnnDetector(threads=1)
    group = load_image(media("multi_face.jpg"))
    single = load_image(media("single_face.jpg"))
    empty = load_image(media("free-mountain-vector-01.jpg"))
    flipped = cv2.flip(group, 1)
    images = [group, single, empty, flipped, group]
    batched = det.detect_batch(images)
    for img, found in zip(images, batched):
        alone = det.detect(img)
        assert len(found) == len(alone)
        for x, y in zip(found, alone):
            np.testing.assert_allclose(x.box, y.box, atol=1e-2)
            np.testing.assert_allclose(x.landmarks, y.landmarks, atol=1e-2)
            assert x.detection_score == pytest.approx(y.detection_score, abs=1e-4)
    assert [len(f) for f in batched] == [5, 1, 0, 5, 5]


def test_a_face_cut_by_the_border_gets_a_box_inside_the_image(mtcnn, media):
    img = load_image(media("single_face.jpg"))
    (whole,) = mtcnn.detect(img)
    x1, y1, x2, y2 = whole.box
    cut = np.ascontiguousarray(img[:, int(x1 + 0.3 * (x2 - x1)) :])  # the left 30% of the face is gone
    (face,) = mtcnn.detect(cut)
    h, w = cut.shape[:2]
    assert face.box[0] == 0.0 and 0 <= face.box[1] < face.box[3] <= h and face.box[2] <= w
    assert whole.box[0] > 0  # (the uncut photo's face lies inside it, so clipping is what moved x1 to 0)


def test_default_recall_and_false_positives_on_real_video(mtcnn, media):
    """The defaults find the face in face/no-face clips and nothing on the title card, whose letters
    MTCNN took for a face (score 0.84 on frame 20 with the previous settings, up to 0.93 elsewhere)."""
    faces = {"face_noface.mov": {0, 40, 71}, "noface_face.mov": {96, 130, 167}}
    empty = {"face_noface.mov": {72, 93, 160, 161, 168}, "noface_face.mov": {20, 87, 95, 168}}
    for name in faces:
        frames = _frames(media(name), faces[name] | empty[name])
        found = dict(zip(frames, mtcnn.detect_batch(list(frames.values()))))
        assert all(len(found[i]) == 1 for i in faces[name]), name
        assert all(found[i] == [] for i in empty[name]), {i: [d.detection_score for d in found[i]] for i in empty[name]}


def test_min_score_drops_weaker_faces(media):
    img = load_image(media("multi_face.jpg"))
    scores = sorted(d.detection_score for d in MtcnnDetector(min_score=0, thresholds=(0.6, 0.7, 0.3)).detect(img))
    strict = MtcnnDetector(min_score=scores[0] + 1e-6, thresholds=(0.6, 0.7, 0.3)).detect(img)
    assert len(strict) == len(scores) - sum(s == scores[0] for s in scores)
    assert all(d.detection_score > scores[0] for d in strict)


def test_no_face_below_the_size_limit(media):
    img = load_image(media("multi_face.jpg"))  # faces of 79-105 px, shorter side 667 px

    def sides(dets):
        return [min(d.box[2] - d.box[0], d.box[3] - d.box[1]) for d in dets]

    assert len(MtcnnDetector(min_face=20, min_face_ratio=0).detect(img)) == 5
    for det in (MtcnnDetector(min_face=90, min_face_ratio=0), MtcnnDetector(min_face=20, min_face_ratio=0.135)):
        found = sides(det.detect(img))
        assert 0 < len(found) < 5 and min(found) >= 90
