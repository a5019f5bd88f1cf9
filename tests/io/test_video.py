import cv2
import numpy as np
import pytest

from cfcsp_sdk import InvalidInputError, MediaError
from cfcsp_sdk.io import VideoReader


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
