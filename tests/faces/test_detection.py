import numpy as np
import pytest

from cfcsp_sdk import InvalidInputError
from cfcsp_sdk.faces.detection import Detection, GivenFaces, check_face_limits, clip_detections, detect_many, get_detector


def test_boxes_are_clipped_to_the_image_and_landmarks_kept():
    lm = np.array([[-5.0, 10], [20, 10], [5, 20], [0, 30], [15, 30]])
    dets = [Detection((-10.0, -4.0, 30.0, 40.0), 0.9, lm), Detection((90.0, 50.0, 130.0, 70.0), 0.8),
            Detection((10.0, 10.0, 20.0, 20.0), 0.7), Detection((120.0, 10.0, 150.0, 30.0), 0.6)]
    out = clip_detections(dets, 100, 60)
    assert [d.box for d in out] == [(0.0, 0.0, 30.0, 40.0), (90.0, 50.0, 100.0, 60.0), (10.0, 10.0, 20.0, 20.0)]
    assert out[0].landmarks is lm and out[2] is dets[2]  # untouched where nothing needed clipping
    assert [d.score for d in out] == [0.9, 0.8, 0.7]  # wholly outside: dropped


def test_detect_many_clips_every_detectors_boxes():
    image = np.zeros((50, 80, 3), np.uint8)
    given = GivenFaces(boxes=[[-20, 10, 30, 60], [70, -5, 100, 20]])
    (found,) = detect_many(given, [image])
    assert [d.box for d in found] == [(0.0, 10.0, 30.0, 50.0), (70.0, 0.0, 80.0, 20.0)]


@pytest.mark.parametrize("args", [(0, 0.0, 0.5), (20, 1.0, 0.5), (20, 0.1, -0.1), (20, 0.1, 1.01),
                                  (float("inf"), 0.1, 0.5), (True, 0.1, 0.5), (20, "0.1", 0.5)])
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
