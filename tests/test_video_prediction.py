"""predict_video / predict_image / stream on real media (tiny model: these test the plumbing)."""

import json
import tracemalloc

import cv2
import numpy as np
import pytest

from cfcsp_sdk import InvalidInputError, MediaError
from cfcsp_sdk.faces import GivenFaces
from cfcsp_sdk.smoother import Smoother


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
    assert s["frames_with_face"] == 72 and set(s["tracks"]) == {"0"}
    track = res.tracks()[0]
    assert track.frames == 72 and sum(track.label_counts.values()) == 72
    assert track.segments[0].start_frame == 0 and track.segments[-1].end_frame == 71
    assert sum(seg.end_frame - seg.start_frame + 1 for seg in track.segments) == 72
    text = res.to_csv(tmp_path / "v.csv")
    header = text.splitlines()[0].split(",")
    assert header[:4] == ["frame", "time", "track", "face"] and "p_Neutral" in header and "raw_p_Other" in header
    assert len(text.splitlines()) == 1 + len(res.rows)
    d = json.loads(res.to_json(tmp_path / "v.json"))
    assert len(d["rows"]) == len(res.rows) and d["summary"]["overall"]["dominant_label"] in res.labels
    df = res.to_dataframe()
    assert len(df) == len(res.rows) and (df["face"] == 0).sum() == 97


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
        for frame, rows in video_recognizer.stream(cut):
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
    for frame, rows in gen:
        frames += 1
        seen += [r for r in rows if r.has_face]
    assert frames == 169 and len(seen) == 72
    # causal SP over the raw coarse scores equals the offline causal smoother
    raw = np.array([[r.raw_probabilities[k] for k in video_recognizer.labels] for r in seen])
    assert np.isfinite(raw).all()
    assert all(r.label is not None for r in seen)


def test_streaming_memory_does_not_grow_with_length(video_recognizer, media):
    from cfcsp_sdk.io.video import Frame
    from cfcsp_sdk.pipeline import VideoPipeline

    cap = cv2.VideoCapture(str(media("single_face.mp4")))
    ok, image = cap.read()
    pipe = VideoPipeline(video_recognizer.config, video_recognizer.cascade, Smoother(5, "causal"),
                         GivenFaces([[100, 60, 300, 300]]))
    frames = (Frame(i, i / 30, image) for i in range(400))
    sizes = []
    tracemalloc.start()
    for i, _ in enumerate(pipe.stream(frames, chunk=8)):
        if i in (99, 399):
            sizes.append((len(pipe.rows), len(pipe.coarse), tracemalloc.get_traced_memory()[0]))
    tracemalloc.stop()
    assert sizes[0][:2] == sizes[1][:2] and sizes[1][0] <= 4 + 8  # smoothing history + one chunk
    assert sizes[1][2] < sizes[0][2] + 200_000


def test_predict_image_on_a_group_photo(video_recognizer, media):
    res = video_recognizer.predict_image(media("multi_face.jpg"))
    assert len(res) == 5 and (res.width, res.height) == (1000, 667)
    assert all(abs(sum(f.prediction.probabilities.values()) - 1) < 1e-5 for f in res)
    csv = res.to_csv()
    assert len(csv.splitlines()) == 6
    assert len(video_recognizer.predict_image(media("free-mountain-vector-01.jpg"))) == 0
    grey = cv2.cvtColor(cv2.imread(str(media("multi_face.jpg"))), cv2.COLOR_BGR2GRAY)
    assert len(video_recognizer.predict_image(grey)) == 5
    deep = (cv2.imread(str(media("multi_face.jpg"))).astype(np.uint16) * 257)
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
