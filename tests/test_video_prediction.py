"""predict_video / predict_image / stream on real media (tiny model: these test the plumbing)."""

import json

import cv2
import numpy as np
import pytest

from cfcsp_sdk import InvalidInputError, MediaError


@pytest.fixture(scope="module")
def face_noface(video_recognizer, media):
    return video_recognizer.predict_video(media("face_noface.mov"))


def test_face_then_no_face_rows(face_noface):
    res = face_noface
    assert res.frames_processed == res.frame_count == 169 and res.error is None
    face_frames = sorted({r.frame for r in res.rows if r.has_face})
    assert face_frames == list(range(72))  # the face is in frames 0-71 only
    empty = [r for r in res.rows if not r.has_face]
    assert [r.frame for r in empty] == list(range(72, 169))  # no-face frames are marked, not dropped
    assert all(r.label is None and r.probabilities is None for r in empty)
    assert res.track_ids == [0]
    times = [r.time for r in res.rows]
    assert times == sorted(times) and times[-1] == pytest.approx(168 / res.fps, rel=0.02)


def test_smoothed_scores_are_sp_over_the_track(face_noface, video_recognizer):
    rows = face_noface.track(0)
    raw = np.array([[r.raw_probabilities[k] for k in face_noface.labels] for r in rows])
    smooth = np.array([[r.probabilities[k] for k in face_noface.labels] for r in rows])
    np.testing.assert_allclose(raw.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(smooth.sum(1), 1, atol=1e-5)
    # SP makes neighbouring frames agree more than raw predictions do
    assert np.abs(np.diff(smooth, axis=0)).mean() < np.abs(np.diff(raw, axis=0)).mean()


def test_summary_segments_and_exports(face_noface, tmp_path):
    res = face_noface
    s = res.summary()
    assert s["frames_with_face"] == 72 and set(s["tracks"]) == {0} == set(res.tracks())
    track = res.tracks()[0]
    assert track.frames == 72 and sum(track.label_counts.values()) == 72
    assert track.segments[0].start_frame == 0 and track.segments[-1].end_frame == 71
    assert sum(seg.end_frame - seg.start_frame + 1 for seg in track.segments) == 72
    text = res.to_csv(tmp_path / "v.csv")
    header = text.splitlines()[0].split(",")
    assert header[:4] == ["frame", "time", "track", "has_face"] and "p_Neutral" in header and "raw_p_Other" in header
    assert len(text.splitlines()) == 1 + len(res.rows)
    d = json.loads(res.to_json(tmp_path / "v.json"))
    assert len(d["rows"]) == len(res.rows) and d["summary"]["overall"]["dominant_label"] in res.labels
    df = res.to_dataframe()
    assert len(df) == len(res.rows) and (df["has_face"] == 0).sum() == 97


def test_abaw_label_file(face_noface, tmp_path):
    text = face_noface.to_abaw(tmp_path / "video.txt")
    lines = text.splitlines()
    assert lines[0] == "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other"
    assert len(lines) == 1 + 169
    values = [int(v) for v in lines[1:]]
    labels = ["Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other"]
    assert [labels[v] for v in values[:72]] == [r.label for r in face_noface.track(0)]
    assert values[72:] == [values[71]] * 97  # nearest predicted frame fills the rest
    assert face_noface.to_abaw(fill="none").splitlines()[100] == "-1"


def test_sampling_and_batching(video_recognizer, media):
    res = video_recognizer.predict_video(media("single_face.mp4"), fps=5, chunk_frames=4)
    assert res.frames_processed == 12 and len(res.track_ids) == 1
    full = video_recognizer.predict_video(media("single_face.mp4"), stride=6)
    assert [r.frame for r in full.rows] == list(range(0, 72, 6))
    for bad in (0, -1, 1.5, "4"):
        with pytest.raises(InvalidInputError, match="chunk_frames"):
            video_recognizer.predict_video(media("single_face.mp4"), chunk_frames=bad)
        with pytest.raises(InvalidInputError, match="chunk_frames"):
            video_recognizer.stream(media("single_face.mp4"), chunk_frames=bad)  # before any frame is asked for


def test_video_with_no_face_at_all(video_recognizer, media):
    res = video_recognizer.predict_video(media("no_face.mp4"))
    assert res.frames_processed > 90 and not any(r.has_face for r in res.rows)
    assert res.summary()["frames_with_face"] == 0 and res.tracks() == {}


def _refuse_constant(token):
    raise AssertionError(f"{token} is not JSON")


def test_json_has_no_nan_tokens(video_recognizer, media, tmp_path):
    res = video_recognizer.predict_video(media("no_face.mp4"), max_frames=4)
    assert not any(r.has_face for r in res.rows)
    d = json.loads(res.to_json(tmp_path / "v.json", indent=1), parse_constant=_refuse_constant)
    assert d["summary"]["overall"]["start_time"] is None and d["summary"]["overall"]["frames"] == 0
    assert d["summary"]["overall"]["mean_probabilities"] == {k: None for k in res.labels}
    json.loads((tmp_path / "v.json").read_text(), parse_constant=_refuse_constant)
    json.dumps(res.to_dict(), allow_nan=False)
    json.dumps(res.summary(), allow_nan=False)
    res.rows[0].time = float("nan")  # e.g. a stream without timestamps
    res.fps = float("inf")
    d = json.loads(res.to_json(), parse_constant=_refuse_constant)
    assert d["rows"][0]["time"] is None and d["fps"] is None
    img = video_recognizer.predict_image(media("free-mountain-vector-01.jpg"))
    json.loads(img.to_json(), parse_constant=_refuse_constant)
    img = video_recognizer.predict_image(media("single_face.jpg"))
    img.faces[0].prediction.probabilities["Fear"] = float("-inf")
    assert json.loads(img.to_json(), parse_constant=_refuse_constant)["faces"][0]["probabilities"]["Fear"] is None
    assert json.dumps(img.to_dict(), allow_nan=False)


def test_corrupt_video_keeps_rows_before_the_damage(video_recognizer, media, tmp_path):
    _, cut = _cut_avi(media, tmp_path)
    res = video_recognizer.predict_video(cut)
    assert res.error is not None and 10 < res.frames_processed < 72
    assert all(r.label for r in res.rows if r.has_face)
    with pytest.raises(MediaError):
        video_recognizer.predict_video(tmp_path / "missing.mp4")
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 4096)
    with pytest.raises(MediaError):
        video_recognizer.predict_video(tmp_path / "bad.mp4")


def _cut_avi(media, folder):
    """A 72-frame MJPG AVI of the single-face clip and a copy cut at 60% of its bytes."""
    cap = cv2.VideoCapture(str(media("single_face.mp4")))
    path = folder / "long.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (int(cap.get(3)), int(cap.get(4))))
    for _ in range(72):
        ok, frame = cap.read()
        w.write(frame)
    w.release()
    data = path.read_bytes()
    (folder / "cut.avi").write_bytes(data[: int(len(data) * 0.6)])
    return path, folder / "cut.avi"


def test_stream_ends_with_an_error_when_decoding_fails_part_way(video_recognizer, media, tmp_path):
    _, cut = _cut_avi(media, tmp_path)
    frames = []
    with pytest.raises(MediaError, match="decoding stopped"):
        for frame, _rows in video_recognizer.stream(cut):
            frames.append(frame.index)
    assert 10 < len(frames) < 72 and frames == list(range(len(frames)))  # every frame before the damage


def test_videos_over_http(video_recognizer, media, tmp_path):
    from http_media_server import MediaServer

    full, _ = _cut_avi(media, tmp_path)
    mp4 = media("single_face.mp4")
    (tmp_path / mp4.name).write_bytes(mp4.read_bytes())
    with MediaServer(tmp_path) as server:
        # MP4 keeps its index at the end: the decoder needs byte ranges, as from any web server
        res = video_recognizer.predict_video(f"{server.url}/{mp4.name}", stride=6)
        assert res.frames_processed == 12 and res.error is None and len(res.track_ids) == 1
        seen = [(f.index, len(rows)) for f, rows in video_recognizer.stream(f"{server.url}/{mp4.name}", max_frames=8)]
        assert seen == [(i, 1) for i in range(8)]
        with pytest.raises(MediaError):
            video_recognizer.stream(f"{server.url}/missing.mp4")  # when called, before any frame
    # a connection that drops at 60% of the file: the frames before it, then an error, not a quiet end
    with MediaServer(tmp_path, cut_at=int(full.stat().st_size * 0.6)) as server:
        frames = 0
        with pytest.raises(MediaError, match="decoding stopped"):
            for _ in video_recognizer.stream(f"{server.url}/{full.name}"):
                frames += 1
        assert 10 < frames < 72


def test_stream_is_causal_and_keeps_bounded_state(video_recognizer, media):
    seen, frames = [], 0
    gen = video_recognizer.stream(media("face_noface.mov"), chunk_frames=3)
    for _frame, rows in gen:
        frames += 1
        seen += [r for r in rows if r.has_face]
    assert frames == 169 and len(seen) == 72
    # causal SP over the raw coarse scores equals the offline causal smoother
    raw = np.array([[r.raw_probabilities[k] for k in video_recognizer.labels] for r in seen])
    assert np.isfinite(raw).all()
    assert all(r.label is not None for r in seen)


def test_predict_image_on_a_group_photo(video_recognizer, media):
    res = video_recognizer.predict_image(media("multi_face.jpg"))
    assert len(res) == 5 and (res.width, res.height) == (1000, 667)
    assert all(abs(sum(f.prediction.probabilities.values()) - 1) < 1e-5 for f in res)
    csv = res.to_csv()
    assert len(csv.splitlines()) == 6
    assert len(video_recognizer.predict_image(media("free-mountain-vector-01.jpg"))) == 0
    grey = cv2.cvtColor(cv2.imread(str(media("multi_face.jpg"))), cv2.COLOR_BGR2GRAY)
    assert len(video_recognizer.predict_image(grey)) == 5
    deep = cv2.imread(str(media("multi_face.jpg"))).astype(np.uint16) * 257
    assert len(video_recognizer.predict_image(deep)) == 5


def test_default_mtcnn_path_runs_without_torch(tiny_repo, media):
    """The default chain (MTCNN + ONNX Runtime) works end to end and never imports torch or TF."""
    import subprocess
    import sys

    code = f"""
import sys, json
from cfcsp_sdk import Recognizer
rec = Recognizer({str(tiny_repo)!r})
img = rec.predict_image({str(media("multi_face.jpg"))!r})
vid = rec.predict_video({str(media("single_face.mp4"))!r}, stride=12)
print(json.dumps([len(img), vid.frames_processed, len(vid.track_ids), 'torch' in sys.modules,
                  'tensorflow' in sys.modules, 'mtcnn' in sys.modules]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.splitlines()[-1]) == [5, 6, 1, False, False, False]


# ---- track ids that stay with people; detecting on every k-th frame -------------------------------


class FramesSeen:
    """A real detector (YuNet) that records a fingerprint of each frame it is asked about."""

    def __init__(self, model):
        from cfcsp_sdk.faces.yunet import YuNetDetector

        self.detector = YuNetDetector(model=str(model), threads=1)
        self.seen: list[int] = []

    def detect(self, image):
        self.seen.append(hash(image.tobytes()))
        return self.detector.detect(image)


@pytest.fixture(scope="module")
def counting(tiny_repo, yunet_dynamic):
    from cfcsp_sdk import Recognizer

    detector = FramesSeen(yunet_dynamic)
    return Recognizer(tiny_repo, detector=detector), detector


def _frames(path):
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            return out
        out.append(frame)


def _ids_per_person(result, truth):
    from cfcsp_sdk.faces.detection import iou_matrix

    seen: dict[str, list[int]] = {}
    for r in result.rows:
        if r.has_face:
            overlap = {p: iou_matrix([r.box], [b])[0, 0] for p, b in truth[r.frame].items()}
            person = max(overlap, key=overlap.get)
            assert overlap[person] > 0.5, (r.frame, r.box, truth[r.frame])
            seen.setdefault(person, []).append(r.track)
    return seen


@pytest.mark.parametrize("detect_every", [1, 3])
def test_people_crossing_keep_one_id_each(counting, media, tmp_path, detect_every):
    from moving_faces import crossing_video

    rec, _ = counting
    path, truth, hidden = crossing_video(media, tmp_path, 32, 15, 12)
    res = rec.predict_video(path, detect_every=detect_every)
    faces_per_frame = [sum(r.has_face for r in res.rows if r.frame == k) for k in range(len(truth))]
    assert all(faces_per_frame[k] == 1 for k in hidden)  # B was hidden behind A
    seen = _ids_per_person(res, truth)
    assert {p: sorted(set(v)) for p, v in seen.items()} == {"A": [seen["A"][0]], "B": [seen["B"][0]]}
    assert seen["A"][0] != seen["B"][0] and len(seen["B"]) >= len(truth) - len(hidden) - 4
    assert sorted(res.track_ids) == [0, 1] and set(res.tracks()) == {0, 1}


def test_panning_face_sampled_at_2_fps_is_one_track(counting, media, tmp_path):
    from moving_faces import panning_video

    rec, _ = counting
    path, truth = panning_video(media, tmp_path)  # A moves 1.9 face widths between samples at 2 fps
    for res in (rec.predict_video(path, fps=2), rec.predict_video(path, stride=15)):
        assert [r.frame for r in res.rows if r.track == res.rows[0].track] == [0, 15, 30, 45, 60, 75]
        seen = _ids_per_person(res, truth)
        assert len(seen["A"]) == len(seen["B"]) == 6
        assert len(set(seen["A"])) == 1 and len(set(seen["B"])) == 1 and res.track_ids == [0, 1]


def test_detect_every_carries_faces_between_detections(counting, media):
    rec, detector = counting
    frames = _frames(media("single_face.mp4"))[:24]
    detector.seen = []
    full = rec.predict_video(media("single_face.mp4"), max_frames=24, detect_every=1)
    assert len(detector.seen) == 24
    detector.seen = []
    rec.predict_video(media("single_face.mp4"), max_frames=24)  # the default: every second frame
    assert detector.seen == [hash(frames[k].tobytes()) for k in range(0, 24, 2)]
    detector.seen = []
    res = rec.predict_video(media("single_face.mp4"), max_frames=24, detect_every=4)
    assert detector.seen == [hash(frames[k].tobytes()) for k in range(0, 24, 4)]  # 0, 4, 8, ...
    assert [r.frame for r in res.rows] == list(range(24)) and res.track_ids == [0]
    from cfcsp_sdk.faces.detection import iou_matrix

    for a, b in zip(full.rows, res.rows):
        size = np.sqrt((a.box[2] - a.box[0]) * (a.box[3] - a.box[1]))
        assert iou_matrix([a.box], [b.box])[0, 0] > 0.85
        assert np.abs(np.asarray(a.landmarks) - np.asarray(b.landmarks)).max() < 0.08 * size
        assert b.label is not None and b.raw_probabilities is not None
    carried = [r for r in res.rows if r.frame % 4]
    assert all(r.detection_score == res.rows[r.frame - r.frame % 4].detection_score for r in carried)


def test_detect_every_detects_early_when_a_face_jumps(counting, media, tmp_path):
    rec, detector = counting
    frames = _frames(media("single_face.mp4"))[:20]
    frames = [f if k < 7 else np.roll(f, 100, axis=1) for k, f in enumerate(frames)]  # a cut at frame 7
    path = tmp_path / "jump.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, frames[0].shape[1::-1])
    for f in frames:
        writer.write(f)
    writer.release()
    decoded = _frames(path)
    detector.seen = []
    full = rec.predict_video(path)
    detector.seen = []
    res = rec.predict_video(path, detect_every=5)
    # 0 and 5 as scheduled, then 7 because the face cannot be carried across the jump
    assert detector.seen[:3] == [hash(decoded[k].tobytes()) for k in (0, 5, 7)]
    from cfcsp_sdk.faces.detection import iou_matrix

    assert [r.frame for r in res.rows] == list(range(20))
    assert all(iou_matrix([a.box], [b.box])[0, 0] > 0.85 for a, b in zip(full.rows, res.rows))


def test_stream_with_detect_every(counting, media):
    rec, detector = counting
    detector.seen = []
    seen = [
        (f.index, [r.track for r in rows])
        for f, rows in rec.stream(media("single_face.mp4"), max_frames=9, detect_every=3)
    ]
    assert seen == [(k, [0]) for k in range(9)] and len(detector.seen) == 3


def test_detect_every_must_be_a_positive_int(counting, tiny_repo, media):
    from cfcsp_sdk import Recognizer

    rec, _ = counting
    for bad in (0, -2, 1.5, "3"):
        with pytest.raises(InvalidInputError, match="detect_every"):
            Recognizer(tiny_repo, detector="aligned", detect_every=bad)
        with pytest.raises(InvalidInputError, match="detect_every"):
            rec.predict_video(media("single_face.mp4"), detect_every=bad)
        with pytest.raises(InvalidInputError, match="detect_every"):
            rec.stream(media("single_face.mp4"), detect_every=bad)
    assert Recognizer(tiny_repo, detector="aligned", detect_every=4).detect_every == 4


def test_damaged_video_reports_skipped_frames(video_recognizer, media, tmp_path):
    from made_video import damaged_mp4

    calls = []
    res = video_recognizer.predict_video(damaged_mp4(media, tmp_path), progress=lambda d, t: calls.append((d, t)))
    assert res.frames_processed == 71 and res.skipped_frames == [34] and res.error is None
    assert res.skipped_times == [pytest.approx(34 / 30, abs=1e-3)] and res.frames_read == 72
    assert [r.frame for r in res.rows] == [f for f in range(72) if f != 34]
    d = json.loads(res.to_json())
    assert d["skipped_frames"] == [34] and d["frames_read"] == 72
    assert calls[-1] == (72, 72)
    assert len(res.to_abaw().splitlines()) == 1 + 72


def test_offset_cut_abaw_and_progress_use_decoded_frames(video_recognizer, media, tmp_path):
    from made_video import encode

    path = encode(media, tmp_path / "cut.mkv", "matroska", start=5.0)
    for fps, processed in ((None, 72), (5, 12)):  # chunks of 16 frames: 4 calls, or only the last
        calls = []
        res = video_recognizer.predict_video(path, fps=fps, progress=lambda d, t: calls.append((d, t)))  # noqa: B023
        # the video stream's own length, not Matroska's header duration from time 0 (OpenCV said 222)
        assert res.error is None and res.frame_count == 72 and res.frames_read == 72
        assert res.frames_processed == processed
        # the stated length while decoding, then what was read: the bar ends at 100 %
        assert all(total == 72 for _, total in calls[:-1]) and calls[-1] == (72, 72)
        assert len(res.to_abaw().splitlines()) == 1 + 72  # was 1 + 222: 150 lines for frames that do not exist


def test_a_large_photo_is_decoded_small_and_boxes_come_back_in_its_pixels(video_recognizer, media, tmp_path):
    """A 3000 x 2001 JPEG group photo is decoded at a fraction of its size for detection (its
    smallest face looked for is 100 px); boxes and landmarks are in the photo's own pixels: those
    of the same pixels given as an array (no decode reduction), and of the small photo times three."""
    small = cv2.imread(str(media("multi_face.jpg")))
    large = cv2.resize(small, (3000, 2001), interpolation=cv2.INTER_CUBIC)
    path = tmp_path / "large.jpg"
    cv2.imwrite(str(path), large, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert video_recognizer.detector.smallest_face(2001, 3000) / 2 >= 48  # so the file decodes at 1/2 or less
    from_file = video_recognizer.predict_image(path)
    from_array = video_recognizer.predict_image(cv2.imread(str(path)))
    from_small = video_recognizer.predict_image(small)
    assert (from_file.width, from_file.height) == (3000, 2001)
    assert len(from_file) == len(from_array) == len(from_small) == 5
    for face in from_file:
        size = face.box[2] - face.box[0]
        for other, scale in ((from_array, 1.0), (from_small, 3.0)):
            boxes = np.array([f.box for f in other]) * scale
            j = int(np.abs(boxes - face.box).sum(1).argmin())
            np.testing.assert_allclose(boxes[j], face.box, atol=0.1 * size)
            # O-Net places points within ~10% of the face size at different scales; a wrong mapping is off by 100s of %
            np.testing.assert_allclose(other[j].landmarks * scale, face.landmarks, atol=0.12 * size)
        assert 0 <= face.box[0] < face.box[2] <= 3000 and 0 <= face.box[1] < face.box[3] <= 2001


def test_predict_images_takes_a_list_and_faces_have_shortcuts(video_recognizer, media):
    photos = [media("multi_face.jpg"), load_image_for_test(media("single_face.jpg"))]
    results = video_recognizer.predict_images(photos)
    assert isinstance(results, list) and [len(r) for r in results] == [5, 1]
    one = video_recognizer.predict_image(media("multi_face.jpg"))
    assert [f.box for f in results[0]] == [f.box for f in one]
    face = results[1][0]
    assert face.label == face.prediction.label and face.probabilities == face.prediction.probabilities
    assert video_recognizer.predict_images(()) == []


def test_fps_and_stride_together_are_refused(video_recognizer, media):
    with pytest.raises(InvalidInputError, match="not both"):
        video_recognizer.predict_video(media("single_face.mp4"), fps=5, stride=2)
    with pytest.raises(InvalidInputError, match="not both"):
        video_recognizer.stream(media("single_face.mp4"), fps=5, stride=2)


def load_image_for_test(path):
    return cv2.imread(str(path))


def test_predict_video_takes_an_open_reader_with_its_own_sampling(video_recognizer, media):
    from cfcsp_sdk.errors import InvalidInputError
    from cfcsp_sdk.io.video import VideoReader

    path = media("face_noface.mov")
    by_path = video_recognizer.predict_video(path, stride=2, max_frames=4)
    by_reader = video_recognizer.predict_video(VideoReader(path, stride=2, max_frames=4))
    assert by_reader.to_csv() == by_path.to_csv() and by_reader.source == by_path.source == str(path)
    with pytest.raises(InvalidInputError, match="frame source's own"):
        video_recognizer.predict_video(VideoReader(path), max_frames=4)


def test_detect_every_detects_at_a_cut_so_a_new_face_is_not_late(counting, media, tmp_path):
    rec, detector = counting
    empty, face = _frames(media("no_face.mp4"))[:8], _frames(media("single_face.mp4"))[:8]
    size = face[0].shape[1::-1]
    frames = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in empty] + face  # a cut at frame 8
    path = tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, size)
    for f in frames:
        writer.write(f)
    writer.release()
    decoded = _frames(path)
    detector.seen = []
    res = rec.predict_video(path, detect_every=5)
    assert detector.seen == [hash(decoded[k].tobytes()) for k in (0, 5, 8, 13)]
    assert [r.frame for r in res.rows if r.has_face] == list(range(8, 16))


def test_aligned_crops_are_never_carried(tiny_repo, tmp_path):
    """Aligned-crop videos (Aff-Wild2's cropped_aligned): with the default detect_every the whole frame
    is still the face on every frame, never a box moved by optical flow."""
    from cfcsp_sdk import Recognizer

    path = tmp_path / "crops.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (96, 96))
    base = cv2.resize(np.random.default_rng(0).integers(0, 255, (12, 12, 3)).astype(np.uint8), (192, 192))
    for k in range(8):
        writer.write(np.ascontiguousarray(base[4 * k : 4 * k + 96, 4 * k : 4 * k + 96]))  # panning content
    writer.release()
    res = Recognizer(tiny_repo, detector="aligned").predict_video(path, progress=False)
    assert len(res.rows) == 8
    assert all(tuple(r.box) == (0.0, 0.0, 96.0, 96.0) for r in res.rows)


def test_frames_lost_to_damage_are_told_through_predict_video_and_stream(video_recognizer, media, tmp_path):
    """Issue 22, item 6 and issue 25, item 2: a video with 3000 random bytes at its midpoint gave 61 of
    72 frames with ``error`` None and no warning, and the frames after the damage were numbered 12 too
    high. Both entry points now warn, count the lost frames and keep every frame's own index."""
    from cfcsp_sdk.errors import MediaWarning
    from made_video import clip, damage

    clean = clip(media, tmp_path / "clean.mp4", size=(320, 180), gop=12)
    path = damage(clean, tmp_path / "damaged.mp4")
    with pytest.warns(MediaWarning, match="lost to damage"):
        res = video_recognizer.predict_video(path)
    assert 0 < len(res.skipped_frames) < 36 and res.frames_read == 72
    assert sorted({r.frame for r in res.rows} | set(res.skipped_frames)) == list(range(72))
    assert len(res.to_abaw().splitlines()) == 1 + 72
    times = {r.frame: r.time for r in video_recognizer.predict_video(clean).rows}
    assert all(r.time == pytest.approx(times[r.frame], abs=1e-6) for r in res.rows)
    with pytest.warns(MediaWarning, match="lost to damage"):
        frames = [frame.index for frame, _ in video_recognizer.stream(path)]
    assert frames == sorted({r.frame for r in res.rows})
