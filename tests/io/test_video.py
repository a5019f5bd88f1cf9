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
