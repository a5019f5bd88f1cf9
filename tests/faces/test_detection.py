import numpy as np
import pytest

from cfcsp_sdk import InvalidInputError
from cfcsp_sdk.faces.detection import (
    Detection,
    GivenFaces,
    check_face_limits,
    clip_detections,
    detect_many,
    get_detector,
)


def test_boxes_are_clipped_to_the_image_and_landmarks_kept():
    lm = np.array([[-5.0, 10], [20, 10], [5, 20], [0, 30], [15, 30]])
    dets = [
        Detection((-10.0, -4.0, 30.0, 40.0), 0.9, lm),
        Detection((90.0, 50.0, 130.0, 70.0), 0.8),
        Detection((10.0, 10.0, 20.0, 20.0), 0.7),
        Detection((120.0, 10.0, 150.0, 30.0), 0.6),
    ]
    out = clip_detections(dets, 100, 60)
    assert [d.box for d in out] == [(0.0, 0.0, 30.0, 40.0), (90.0, 50.0, 100.0, 60.0), (10.0, 10.0, 20.0, 20.0)]
    assert out[0].landmarks is lm and out[2] is dets[2]  # untouched where nothing needed clipping
    assert [d.detection_score for d in out] == [0.9, 0.8, 0.7]  # wholly outside: dropped


def test_detect_many_clips_every_detectors_boxes():
    image = np.zeros((50, 80, 3), np.uint8)
    given = GivenFaces(boxes=[[-20, 10, 30, 60], [70, -5, 100, 20]])
    (found,) = detect_many(given, [image])
    assert [d.box for d in found] == [(0.0, 10.0, 30.0, 50.0), (70.0, 0.0, 80.0, 20.0)]


@pytest.mark.parametrize(
    "args",
    [
        (0, 0.0, 0.5),
        (20, 1.0, 0.5),
        (20, 0.1, -0.1),
        (20, 0.1, 1.01),
        (float("inf"), 0.1, 0.5),
        (True, 0.1, 0.5),
        (20, "0.1", 0.5),
    ],
)
def test_face_limits_out_of_range_are_refused(args):
    with pytest.raises(InvalidInputError):
        check_face_limits(*args)


def test_named_detectors_refuse_bad_limits_when_built():
    for name in ("mtcnn", None):
        with pytest.raises(InvalidInputError, match="min_face_ratio"):
            get_detector(name, min_face_ratio=2)
        with pytest.raises(InvalidInputError, match="min_score"):
            get_detector(name, min_score=-1)


def test_face_limits_take_numpy_numbers_but_no_bools():
    import numpy as np

    from cfcsp_sdk import InvalidInputError

    check_face_limits(np.float32(20), np.float64(0.1), np.float32(0.5))  # np.float32 was refused
    check_face_limits(np.int64(20), 0, 1)
    for args in ((True, 0.1, 0.5), (20, np.bool_(False), 0.5), (20, 0.1, np.bool_(True))):
        with pytest.raises(InvalidInputError):
            check_face_limits(*args)


# ---- one registry, abilities declared on FaceDetector, no import circle (issue 22, item 3) ----------
def test_detector_modules_import_the_shared_types_from_below_never_the_factory():
    import ast
    from pathlib import Path

    import cfcsp_sdk.faces as faces

    folder = Path(faces.__file__).parent
    for name in ("base.py", "mtcnn.py", "yunet.py", "alignment.py"):
        tree = ast.parse((folder / name).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "cfcsp_sdk.faces.detection" not in imported, name


def test_abilities_come_from_the_base_class():
    from cfcsp_sdk.faces import FaceDetector, WholeImageFace

    class OneFace(FaceDetector):
        def detect(self, image):
            return [Detection((1.0, 1.0, 5.0, 5.0))]

    d = OneFace()
    assert d.carry_faces is True and d.smallest_face(100, 200) is None
    assert [[x.box for x in r] for r in d.detect_batch([np.zeros((8, 8, 3), np.uint8)] * 2)] == [
        [(1.0, 1.0, 5.0, 5.0)]
    ] * 2
    assert WholeImageFace().carry_faces is False and GivenFaces([[0, 0, 1, 1]]).carry_faces is False
    assert get_detector("mtcnn").smallest_face(720, 1280) == 72.0


def test_a_plain_detect_object_is_wrapped_and_keeps_its_attributes():
    from cfcsp_sdk.faces import FaceDetector

    class Plain:
        threshold = 0.3

        def detect(self, image):
            return [Detection((0.0, 0.0, 4.0, 4.0))]

    plain = Plain()
    d = get_detector(plain)
    assert isinstance(d, FaceDetector) and d.wrapped is plain and d.threshold == 0.3
    assert d.carry_faces is True and d.smallest_face(10, 10) is None
    assert [x.box for x in detect_many(plain, [np.zeros((3, 3, 3), np.uint8)])[0]] == [(0.0, 0.0, 3.0, 3.0)]
    with pytest.raises(InvalidInputError, match="not a Detector"):
        get_detector(object())


def test_abilities_declared_by_attribute_still_work_for_a_release_with_a_warning():
    class Legacy:
        carry_faces = False
        calls = []

        def detect(self, image):
            raise AssertionError("detect_batch should have been used")

        def detect_batch(self, images):
            self.calls.append(len(images))
            return [[] for _ in images]

    with pytest.warns(DeprecationWarning, match="Legacy declares detect_batch, carry_faces without subclassing"):
        d = get_detector(Legacy())
    assert d.carry_faces is False
    assert detect_many(d, [np.zeros((4, 4, 3), np.uint8)] * 3) == [[], [], []] and Legacy.calls == [3]


def test_registered_detector_is_found_by_name_and_overwriting_warns(tiny_repo, media):
    from cfcsp_sdk import Recognizer
    from cfcsp_sdk.faces import FaceDetector, register_detector
    from cfcsp_sdk.faces.detection import DETECTORS
    from cfcsp_sdk.registry import RegistryOverwriteWarning

    class Fixed(FaceDetector):
        def __init__(self, box=(10.0, 10.0, 60.0, 70.0)):
            self.box = tuple(box)

        def detect(self, image):
            return [Detection(self.box, 0.9)]

    try:
        register_detector("fixed-box", Fixed)
        rec = Recognizer(tiny_repo, detector="fixed-box", detector_options={"box": (20, 20, 80, 90)})
        result = rec.predict_image(media("single_face.jpg"))
        assert [f.box for f in result.faces] == [(20.0, 20.0, 80.0, 90.0)]
        with pytest.raises(InvalidInputError, match="accepted options: box"):
            Recognizer(tiny_repo, detector="fixed-box", detector_options={"size": 3})
        with pytest.warns(RegistryOverwriteWarning, match="detector 'aligned' .built in as"):
            register_detector("aligned", Fixed)
    finally:
        DETECTORS.unregister("fixed-box")
        DETECTORS.unregister("aligned")
    with pytest.raises(InvalidInputError, match="unknown detector 'fixed-box'; available: aligned, mtcnn, yunet"):
        get_detector("fixed-box")


def test_entry_point_detector(tmp_path, monkeypatch):
    from cfcsp_sdk.faces.detection import ENTRY_POINT_GROUP, available_detectors

    (tmp_path / "thirdparty_detector.py").write_text(
        "from cfcsp_sdk.faces import FaceDetector, Detection\n"
        "class Corner(FaceDetector):\n"
        "    carry_faces = False\n"
        "    def detect(self, image):\n"
        "        return [Detection((0.0, 0.0, 2.0, 2.0))]\n"
    )
    dist = tmp_path / "thirdparty_detector-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-detector\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ncorner = thirdparty_detector:Corner\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "corner" in available_detectors()
    d = get_detector("corner")
    assert type(d).__name__ == "Corner" and d.carry_faces is False
