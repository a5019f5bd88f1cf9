import cv2
import numpy as np
import pytest

from cfcsp_sdk import InvalidInputError, MediaError
from cfcsp_sdk.io import VideoReader
from made_video import damaged_mp4, encode


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
    worker = threading.Thread(target=lambda: got.setdefault("huge", [f.index for f in VideoReader(path, fps=1e20)]),
                              daemon=True)
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
    assert VideoReader(tmp_path / "cut.mkv").info.frame_count == 222  # Matroska's duration counts from 0
    # the file: MPEG-TS whose sound starts at 0 s and picture at 5 s; OpenCV estimates 222 frames
    path = encode(media, tmp_path / "with_sound.ts", "mpegts", start=5.0, sound_from_0=True)
    r = VideoReader(path)
    frames = list(r)
    assert r.info.frame_count == 222 and len(frames) == r.frames_read == 72 and r.error is None
    assert frames[0].time == 0 and frames[-1].time == pytest.approx(71 / 30, abs=2e-3)


def test_pre_roll_an_edit_list_discards_is_not_truncation(media):
    r = VideoReader(media("no_face.mp4"))
    assert len(list(r)) == 95 and r.info.frame_count == 98 and r.error is None


@pytest.mark.parametrize("fmt,suffix,options", [("matroska", ".mkv", None), ("mpegts", ".ts", None),
                                                ("mp4", ".mp4", {"movflags": "+faststart"})])
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
