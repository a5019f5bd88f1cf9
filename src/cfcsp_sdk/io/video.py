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


MAX_CONSECUTIVE_FAILURES = 50
"""Decoding a video file ends after this many undecodable frames in a row; a damaged stretch shorter
than that is skipped and reported (:attr:`VideoReader.skipped_frames`)."""


DECODER_DELAY = 16
"""Frames after an undecodable one during which a jump in timestamps counts as lost frames."""


class VideoReader:
    """Iterate over the frames of a video file, webcam (an int) or stream URL, one at a time.

    Args:
        source: a file path, a camera index, or a URL (``rtsp://...``).
        stride: keep every ``stride``-th frame.
        fps: keep frames at about this rate, by their timestamps (overrides ``stride``).
        max_frames: stop after this many kept frames.

    In a file, undecodable frames (a damaged stretch) are skipped and decoding goes on, up to
    :data:`MAX_CONSECUTIVE_FAILURES` in a row; :attr:`skipped_frames` and :attr:`skipped_times` list
    them, and the frames after the gap keep their own indices and timestamps (the gap's length comes
    from the timestamps). URLs and cameras stop at the first failure (retrying a dropped connection
    could wait out a network timeout each time).

    After iteration, :attr:`error` holds a message if decoding stopped before the container's stated
    end (a truncated or corrupt file, or a whole video over http(s) whose connection dropped), however
    few frames are missing; the frames already yielded stay valid. :attr:`frames_read` is the number
    of frames gone through (decoded or skipped), which may differ from the container's estimate
    :attr:`VideoInfo.frame_count`. Live streams and cameras state no length, so for them a dropped
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
        self.skipped_frames: list[int] = []  # undecodable frames passed over, by index
        self.skipped_times: list[float] = []  # and their (estimated) times in seconds
        self.frames_read = 0  # frames gone through, decoded or skipped, up to the last one decoded
        self._start_frames = 0
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
        failures = 0  # undecodable frames in a row
        watch = 0  # frames after a failure during which a jump in timestamps counts as lost frames
        last_time: float | None = None
        try:
            while self.max_frames is None or kept < self.max_frames:
                if not self._cap.grab():
                    failures += 1
                    # a URL or camera that fails may be gone: retrying could wait out a network timeout
                    if not self.is_file or failures >= MAX_CONSECUTIVE_FAILURES:
                        break
                    continue
                msec = self._cap.get(cv2.CAP_PROP_POS_MSEC)
                timed = bool(msec and msec > 0) or index < 0 and failures == 0
                step = 1
                if failures:
                    # the decoder hands frames out a few reads late (reordering), so the gap a damaged
                    # stretch leaves in the timestamps shows up to DECODER_DELAY frames later
                    watch = DECODER_DELAY
                if watch and timed:
                    before = last_time if last_time is not None else -1.0 / fps
                    step = max(1, round((msec / 1000.0 - before) * fps))
                    watch -= 1
                elif failures:
                    step = failures + 1  # no timestamps: one lost frame per failed read
                if index < 0:
                    self._start_frames = self._first_frame_offset(msec, fps)
                for lost in range(index + 1, index + step):
                    self.skipped_frames.append(lost)
                    self.skipped_times.append(round((last_time if last_time is not None else -1.0 / fps)
                                                    + (lost - index) / fps, 6))
                index += step
                failures = 0
                t = msec / 1000.0 if timed else index / fps
                last_time = t
                self.frames_read = index + 1
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
                    if not self.is_file:
                        self.error = f"frame {index} could not be decoded"
                        break
                    self.skipped_frames.append(index)
                    self.skipped_times.append(round(t, 6))
                    continue
                kept += 1
                yield Frame(index=index, time=t, image=image)
        finally:
            self.close()
        stopped_early = self.max_frames is not None and kept >= self.max_frames
        if self.error is None and not stopped_early:
            self.error = self._shortfall(index + 1)
        if index < 0 and self.error is None:
            self.error = "no frame could be decoded"

    def _first_frame_offset(self, msec: float, fps: float) -> int:
        """Frames between time 0 of the container and the first frame (a cut from a longer recording
        keeps its timestamps): OpenCV's ``CAP_PROP_PTS`` counts from 0 in frames, its ``POS_MSEC``
        from the first frame."""
        pts = self._cap.get(cv2.CAP_PROP_PTS) if hasattr(cv2, "CAP_PROP_PTS") else 0.0
        if not pts or not math.isfinite(pts) or pts <= 0:
            return 0
        return max(0, int(round(pts - (msec or 0.0) / 1000.0 * fps)))

    def _shortfall(self, frames: int) -> str | None:
        """Why the frames read fall short of the container's length, or ``None`` if they do not.

        For files every frame short counts: a file cut short must never pass silently, and the
        container's own packets (:func:`container_check`) tell a cut from a wrong estimate (such as a
        length counted from time 0 for a cut from a recording whose timestamps start at 5 s). For URLs
        of whole videos, whose packets cannot be read again without a second download, a length
        counted from time 0 is recognised by the first frame's timestamp, and only a shortfall of more
        than 5 frames and 5 % counts. Live streams and cameras state no length (0): for them an ended
        stream and a dropped one look the same.
        """
        expected = self.info.frame_count
        short = expected > 0 and frames < expected
        message = (f"decoding stopped at frame {frames} of {expected or '?'} (truncated or corrupt video, or a "
                   "dropped connection)")
        if self.is_file and _ends_inside_a_ts_packet(self.source):  # type: ignore[arg-type]
            # MPEG-TS states no length and its demuxer drops a cut last packet without a word
            return message
        if not short and not (self.is_file and self.skipped_frames):
            return None
        if not self.is_file:
            # only a clear shortfall counts (an edit list's pre-roll makes OpenCV's count a few too many)
            from_zero = frames > 0 and frames + self._start_frames == expected
            return message if not from_zero and expected - frames > max(5, 0.05 * expected) else None
        # OpenCV's count may be an estimate or include frames never shown (an edit list's pre-roll), and
        # frames skipped near the end may be a cut file: ask the container itself
        packets = container_check(self.source)  # type: ignore[arg-type]
        if packets is None:
            return message if short else None
        if packets.damaged or frames < packets.frames or packets.end_short:
            return message
        return None


def _ends_inside_a_ts_packet(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an MPEG transport stream (188-byte packets, or 192 with a 4-byte time code
    in front, as in Blu-ray's M2TS) whose size is not a whole number of packets: a file cut short."""
    try:
        with open(path, "rb") as f:
            head = f.read(3 * 192 + 4)
        size = os.path.getsize(path)
    except OSError:
        return False
    for packet, offset in ((188, 0), (192, 4)):
        if len(head) > 2 * packet + offset and all(head[offset + k * packet] == 0x47 for k in range(3)):
            return size % packet != 0
    return False


@dataclass
class ContainerCheck:
    """What demuxing a file's video stream (reading its packets, decoding none) shows.

    Attributes:
        frames: packets that hold a shown frame (a pre-roll that an edit list discards is not counted).
        damaged: the demuxer hit a read error, a packet it flags corrupt (data cut off mid-packet), or
            fewer packets than the span of their timestamps holds at the stream's frame rate.
        end_short: the last packet ends before the duration the stream states (a file cut at a packet
            boundary). Matroska states its duration from time 0, not from the first frame, and only in
            its header; other containers' whole-file durations (FLV's metadata) are not used.
    """

    frames: int
    damaged: bool
    end_short: bool


def container_check(path: str | os.PathLike[str]) -> ContainerCheck | None:
    """Demux the first video stream of ``path`` with PyAV; ``None`` if PyAV cannot open it."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError):
        return None
    frames, damaged, first, end = 0, False, None, None
    with container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        tb = float(stream.time_base) if stream.time_base else 0.0
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the end-of-stream marker
                damaged |= bool(packet.is_corrupt)
                if packet.is_discard:
                    continue
                frames += 1
                if packet.pts is not None and tb:
                    t = packet.pts * tb
                    first = t if first is None else min(first, t)
                    end = max(end if end is not None else t, t + (packet.duration or 0) * tb)
        except (av.error.FFmpegError, OSError):
            damaged = True
        stated = None  # seconds from the first frame, or (Matroska) from time 0
        if stream.duration and tb:
            stated = stream.duration * tb
        elif container.duration and "matroska" in container.format.name:
            stated = container.duration / 1e6
        rate = float(stream.average_rate or stream.guessed_rate or 0)
    end_short = False
    if end is not None and first is not None and rate > 0:
        damaged |= frames < round((end - first) * rate)
        if stated:
            slack = 0.5 / rate  # half a frame
            end_short = end - first + slack < stated and end + slack < stated
    return ContainerCheck(frames, damaged, end_short)
