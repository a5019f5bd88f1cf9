"""Streaming video decoding with OpenCV: one frame in memory at a time, container timestamps,
frame-stride and time-based sampling."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from cfcsp_sdk.errors import MediaError, require_positive_int, require_positive_number


@dataclass
class Frame:
    """A decoded frame: its index in the video, its presentation time in seconds, BGR pixels."""

    index: int
    time: float
    image: np.ndarray


@dataclass
class VideoInfo:
    """What the container says about a video (frame count and fps may be estimates or 0 for streams)."""

    source: str
    width: int
    height: int
    fps: float
    frame_count: int

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else float("nan")


class VideoReader:
    """Iterate over the frames of a video file, webcam (an int) or stream URL, one at a time.

    Args:
        source: a file path, a camera index, or a URL (``rtsp://...``).
        stride: keep every ``stride``-th frame.
        fps: keep frames at about this rate, by their timestamps (overrides ``stride``).
        max_frames: stop after this many kept frames.

    After iteration, :attr:`error` holds a message if decoding stopped before the container's stated
    end (a truncated or corrupt file, or a whole video over http(s) whose connection dropped); the frames
    already yielded stay valid. Live streams and cameras state no length, so for them a dropped
    connection looks like the end.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | int,
        stride: int = 1,
        fps: float | None = None,
        max_frames: int | None = None,
    ) -> None:
        stride = require_positive_int("stride", stride)
        if max_frames is not None:
            max_frames = require_positive_int("max_frames", max_frames)
        if fps is not None:
            fps = require_positive_number("fps", fps)
        self.stride, self.sample_fps, self.max_frames = stride, fps, max_frames
        self.error: str | None = None
        self.is_file = not isinstance(source, int) and "://" not in str(source)
        if self.is_file:
            path = Path(source)  # type: ignore[arg-type]
            if not path.exists():
                raise MediaError(f"no such file: {path}", path)
            if not path.is_file() or path.stat().st_size == 0:
                raise MediaError(f"not a video file (empty or a folder): {path}", path)
        self.source = source
        self._cap = cv2.VideoCapture(source if isinstance(source, int) else str(source))
        if not self._cap.isOpened():
            self._cap.release()
            raise MediaError(f"cannot open as a video: {source}", source)
        self.info = VideoInfo(
            source=str(source),
            width=int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            fps=float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0),
            frame_count=max(int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0),
        )
        if self.is_file and (self.info.width <= 0 or self.info.height <= 0):
            self._cap.release()
            raise MediaError(f"no video stream in {source}", source)

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._cap.release()

    def __iter__(self) -> Iterator[Frame]:
        index, kept = -1, 0
        next_sample = 0  # sample k is due at k / sample_fps seconds
        fps = self.info.fps if self.info.fps > 0 else 30.0
        try:
            while self.max_frames is None or kept < self.max_frames:
                if not self._cap.grab():
                    break
                index += 1
                msec = self._cap.get(cv2.CAP_PROP_POS_MSEC)
                t = msec / 1000.0 if msec and msec > 0 or index == 0 else index / fps
                if self.sample_fps is not None:
                    # times by index, not by adding 1/fps up (which stops changing a large sum and
                    # would loop forever for a huge fps); the next due sample is the first after t
                    if t + 1e-6 < next_sample / self.sample_fps:
                        continue
                    next_sample = max(next_sample + 1, math.floor((t + 1e-6) * self.sample_fps) + 1)
                elif index % self.stride:
                    continue
                ok, image = self._cap.retrieve()
                if not ok or image is None or image.size == 0:
                    self.error = f"frame {index} could not be decoded"
                    break
                kept += 1
                yield Frame(index=index, time=t, image=image)
        finally:
            self.close()
        # containers often state an estimated frame count: only a clear shortfall means truncation. This
        # holds for files and for URLs of whole videos; live streams and cameras state no count (0), so for
        # them an ended stream and a dropped one look the same
        shortfall = self.info.frame_count - (index + 1)
        if self.error is None and shortfall > max(5, 0.05 * self.info.frame_count) \
                and (self.max_frames is None or kept < self.max_frames):
            self.error = f"decoding stopped at frame {index + 1} of {self.info.frame_count} (truncated or corrupt video, or a dropped connection)"
        if index < 0 and self.error is None:
            self.error = "no frame could be decoded"
