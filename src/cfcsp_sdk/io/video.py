"""Streaming video decoding: files with PyAV (frames numbered by their presentation timestamps,
damage counted), cameras and URLs with OpenCV; a few frames in memory at a time, frame-stride and
time-based sampling."""

from __future__ import annotations

import heapq
import math
import os
import warnings
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cfcsp_sdk.errors import InvalidInputError, MediaError, MediaWarning, require_positive_int, require_positive_number


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


REORDER_FRAMES = 4
"""Decoded frames held back and put in timestamp order before they are numbered: after damage a
decoder may hand a frame out a few frames late."""

_NEAR_END = 4  # frames lost among the last this many (a B-frame group) make a file count as cut short
_PENDING_PACKETS = 4096  # packets read whose frames have not come out; beyond that they are lost


def ffmpeg_messages(level: str | None = "warning") -> None:
    """Show FFmpeg's own messages (``"warning"``, ``"error"``, ``"info"``, ``"verbose"``...) for video
    files, through Python's :mod:`logging` (loggers ``libav.*``), or hide them again with ``None``.

    They are hidden by default, in the Python API as in the ``cfcsp`` command: a damaged file would
    print dozens of decoder lines, while what was lost is counted in :attr:`VideoReader.skipped_frames`
    and :attr:`VideoReader.error` and told by a :class:`~cfcsp_sdk.errors.MediaWarning`.
    """
    import av.logging

    if level is None:
        av.logging.set_level(None)
        return
    levels = {
        "quiet": None,
        "panic": av.logging.PANIC,
        "fatal": av.logging.FATAL,
        "error": av.logging.ERROR,
        "warning": av.logging.WARNING,
        "info": av.logging.INFO,
        "verbose": av.logging.VERBOSE,
        "debug": av.logging.DEBUG,
    }
    if level not in levels:
        raise InvalidInputError(f"FFmpeg message level must be one of {', '.join(levels)}, got {level!r}")
    av.logging.set_level(levels[level])


class VideoReader:
    """Iterate over the frames of a video file, webcam (an int) or stream URL, one at a time.

    Args:
        source: a file path, a camera index, or a URL (``rtsp://...``).
        stride: keep every ``stride``-th frame (by frame index).
        fps: keep frames at about this rate, by their timestamps (overrides ``stride``).
        max_frames: stop after this many kept frames.

    Files are decoded with PyAV (FFmpeg). A frame's :attr:`Frame.index` and :attr:`Frame.time` come from
    its presentation timestamp: time 0 is the first frame, and the index is the time at the video
    stream's frame rate, so every frame that survives damage keeps the index and time it has in the
    intact file. Frames the decoder loses (a damaged stretch) are skipped, decoding goes on, and
    :attr:`skipped_frames` and :attr:`skipped_times` list them; a frame is counted lost only where the
    file shows damage (a decoding error, a packet flagged corrupt, fewer frames decoded than packets
    read), so the uneven timestamps of a variable-frame-rate video are not mistaken for it. URLs and
    cameras are read with OpenCV and stop at the first failure (retrying a dropped connection could
    wait out a network timeout each time).

    After iteration, :attr:`error` holds a message if decoding stopped before the video stream's end
    (a read error, a file cut short, or a whole video over http(s) whose connection dropped), however
    few frames are missing; the frames already yielded stay valid. The stream's end is what the video
    stream itself states (its frame count or duration), never the container's or another stream's
    length. :attr:`frames_read` is the number of frames gone through, decoded or skipped. Lost frames
    and an early stop are also told by a :class:`~cfcsp_sdk.errors.MediaWarning` when iteration ends.
    Live streams and cameras state no length, so for them a dropped connection looks like the end.

    Raises:
        MediaError: the file is missing, empty, not a video or has no video stream.
        InvalidInputError: a sampling argument is not a positive number.
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
        self.skipped_frames: list[int] = []  # frames lost to damage, by index
        self.skipped_times: list[float] = []  # and their times in seconds
        self.frames_read = 0  # frames gone through, decoded or skipped
        self._start_frames = 0
        self._container: Any = None
        self._cap: Any = None
        self.is_file = not isinstance(source, int) and "://" not in str(source)
        self.source = source
        if self.is_file:
            path = Path(source)  # type: ignore[arg-type]
            if not path.exists():
                raise MediaError(f"no such file: {path}", path)
            if not path.is_file() or path.stat().st_size == 0:
                raise MediaError(f"not a video file (empty or a folder): {path}", path)
            self.info = self._open_file(path)
            return
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

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
        if self._container is not None:
            self._container.close()

    def __iter__(self) -> Iterator[Frame]:
        frames = self._file_frames() if self.is_file else self._capture_frames()
        try:
            yield from frames
        finally:
            frames.close()
            self.close()
        self._warn()

    # ---- files: PyAV ---------------------------------------------------------------------------
    def _open_file(self, path: Path) -> VideoInfo:
        import av

        try:
            container = av.open(str(path))
        except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
            raise MediaError(f"cannot open as a video: {path} ({exc})", path) from None
        try:
            if not container.streams.video:
                raise MediaError(f"no video stream in {path}", path)
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width <= 0 or height <= 0:
                raise MediaError(f"no video stream in {path}", path)
            self._rotation = _first_frame_rotation(path)
            if self._rotation % 2:
                width, height = height, width
            rate = float(stream.average_rate or stream.guessed_rate or 0.0)
            self._stated = _stated_duration(container, stream)
            frame_count = stream.frames or (round(self._stated * rate) if self._stated and rate else 0)
        except BaseException:
            container.close()
            raise
        stream.thread_type = "AUTO"
        self._container, self._stream = container, stream
        return VideoInfo(source=str(path), width=width, height=height, fps=rate, frame_count=max(int(frame_count), 0))

    def _decoded(self, state: _FileState) -> Generator[Any, None, None]:
        """The stream's frames in the decoder's order; packets and damage are noted in ``state``."""
        import av

        stream = self._stream
        try:
            for packet in self._container.demux(stream):
                if packet.size:
                    state.damage |= bool(packet.is_corrupt)
                    state.discarded += bool(packet.is_discard)
                    if not packet.is_discard:  # an edit list's pre-roll is decoded, never shown
                        state.packets += 1
                        if packet.pts is not None:
                            heapq.heappush(state.pending, (packet.pts, packet.duration or 0))
                            state.note_packet(packet.pts, packet.duration or 0, float(stream.time_base or 0))
                try:
                    decoded = packet.decode()  # the last, empty packet flushes the decoder
                except av.error.FFmpegError:
                    state.damage = True
                    continue
                yield from decoded
        except (av.error.FFmpegError, OSError) as exc:  # a read error: the rest of the file is unreachable
            state.read_error = str(exc)
            state.damage = True
            try:
                flushed = stream.codec_context.decode(None)
            except av.error.FFmpegError:
                flushed = []
            yield from flushed

    def _file_frames(self) -> Generator[Frame, None, None]:
        """Frames numbered by their place among the stream's packets (in presentation order): a packet
        whose frame never comes out of the decoder is a lost frame, with its own index and time, so
        every frame that survives keeps the index and time it has in the intact file."""
        state = _FileState()
        fps = self.info.fps if self.info.fps > 0 else 30.0
        tb = float(self._stream.time_base or 0)
        held: list[tuple[int, int, Any]] = []  # the reorder window: (pts, order, frame)
        order, kept, next_sample = 0, 0, 0
        counter = 0  # frames placed so far, decoded or lost
        last_pts: int | None = None
        last_duration = 0  # the stated duration of the frame at last_pts (its packet's), in time_base
        origin: int | None = None
        stopped_early = False
        tail: list[tuple[int, int]] = []  # frames lost after the last decoded one: (pts, duration)
        # MP4/MOV index every packet, so the demuxer never drops one, and their packet durations are
        # decoding-time steps (not the gap to the next frame shown): no holes to look for there
        holes = "mp4" not in self._container.format.name

        def lose(pts: int | None) -> None:
            nonlocal counter
            self.skipped_frames.append(counter)
            t = (pts - origin) * tb if pts is not None and origin is not None else counter / fps
            self.skipped_times.append(round(t, 6))
            counter += 1

        def place(frame: Any) -> Frame | None:
            nonlocal counter, last_pts, last_duration, origin, kept, next_sample
            state.decoded += 1
            pts = frame.pts
            if pts is None or not tb:  # no timestamps: one index per frame
                t = counter / fps
            else:
                if last_pts is not None and pts <= last_pts:
                    return None  # handed out too late to place: already counted lost
                if origin is None:
                    origin = min(pts, state.pending[0][0]) if state.pending else pts
                previous, duration = last_pts, last_duration
                while state.pending and state.pending[0][0] < pts:  # packets whose frames never came
                    missing, missing_duration = heapq.heappop(state.pending)
                    if previous is None or missing > previous:
                        lose(missing)
                        previous, duration = missing, missing_duration
                if holes and previous is not None and duration > 0 and pts - previous > 1.5 * duration:
                    # packets the demuxer itself dropped (a cut Matroska file, MPEG-TS resync past
                    # damage) leave a hole longer than the frame before it says it lasts
                    for k in range(1, max(2, round((pts - previous) / duration))):
                        lose(previous + k * duration)
                last_duration = 0
                if state.pending and state.pending[0][0] == pts:
                    last_duration = heapq.heappop(state.pending)[1]
                last_pts = pts
                t = (pts - origin) * tb
            index = counter
            counter += 1
            self.frames_read = counter
            if self.sample_fps is not None:
                # times by index, not by adding 1/fps up (which stops changing a large sum and
                # would loop forever for a huge fps); the next due sample is the first after t
                if t + 1e-6 < next_sample / self.sample_fps:
                    return None
                next_sample = max(next_sample + 1, math.floor((t + 1e-6) * self.sample_fps) + 1)
            elif index % self.stride:
                return None
            image = frame.to_ndarray(format="bgr24")
            if self._rotation:
                image = np.ascontiguousarray(np.rot90(image, self._rotation))
            kept += 1
            return Frame(index=index, time=round(t, 6), image=image)

        decoded = self._decoded(state)
        try:
            for frame in decoded:
                heapq.heappush(held, (frame.pts if frame.pts is not None else -1, order, frame))
                order += 1
                while len(held) > REORDER_FRAMES or len(state.pending) > _PENDING_PACKETS:
                    if not held:  # the decoder gives nothing back for this long: those frames are lost
                        lose(heapq.heappop(state.pending)[0])
                        continue
                    out = place(heapq.heappop(held)[2])
                    if out is not None:
                        yield out
                        if self.max_frames is not None and kept >= self.max_frames:
                            stopped_early = True
                            return
            while held:
                out = place(heapq.heappop(held)[2])
                if out is not None:
                    yield out
                    if self.max_frames is not None and kept >= self.max_frames:
                        stopped_early = True
                        return
            while state.pending:  # packets at the end whose frames never came out
                unplaced = heapq.heappop(state.pending)
                if last_pts is None or unplaced[0] > last_pts:
                    tail.append(unplaced)
        finally:
            decoded.close()
            if not stopped_early:
                self._file_end(state, last_pts is not None or state.decoded > 0, fps, len(tail))

    def _file_end(self, state: _FileState, any_frame: bool, fps: float, tail: int) -> None:
        """Whether the file stops short of the end its video stream states: frames lost after the last
        one decoded, a read error, a cut packet, or the last packet ending before the stated duration.
        Frames lost after the last decoded one are not in :attr:`skipped_frames`: decoding stopped."""
        if not any_frame:
            self.error = "no frame could be decoded"
            return
        expected = max(self.info.frame_count, self.frames_read + tail)
        message = f"decoding stopped at frame {self.frames_read} of {expected} (truncated or corrupt video)"
        near_end = [i for i in self.skipped_frames[-_NEAR_END:] if i >= self.frames_read - _NEAR_END]
        counted = self._stream.frames - state.discarded  # the stream's own frame count (MP4, AVI headers)
        if tail or self.frames_read < counted:
            self.error = (
                f"decoding stopped at frame {self.frames_read} of {max(expected, counted)} (truncated or corrupt video)"
            )
        elif near_end:
            # the last packets of a cut file may be frames shown a little earlier (B-frames)
            self.error = (
                f"{len(near_end)} of the last {_NEAR_END} frames lost, frame {near_end[0]} first "
                "(truncated or corrupt video)"
            )
        elif state.read_error is not None:
            self.error = f"{message}: {state.read_error}"
        elif _ends_inside_a_ts_packet(self.source):  # type: ignore[arg-type]
            # MPEG-TS states no length and its demuxer drops a cut last packet without a word
            self.error = message
        elif self._stated and state.packet_end is not None and state.first_packet is not None:
            # the last packet ends before the duration the video stream states: a file cut at a packet
            # boundary
            slack = 0.5 / fps
            if state.packet_end - state.first_packet + slack < self._stated:
                self.error = (
                    f"decoding stopped at frame {self.frames_read} of "
                    f"{max(round(self._stated * fps), self.frames_read)} (truncated or corrupt video)"
                )

    # ---- cameras and URLs: OpenCV --------------------------------------------------------------
    def _capture_frames(self) -> Generator[Frame, None, None]:
        index, kept = -1, 0
        next_sample = 0
        fps = self.info.fps if self.info.fps > 0 else 30.0
        while self.max_frames is None or kept < self.max_frames:
            if not self._cap.grab():
                break
            msec = self._cap.get(cv2.CAP_PROP_POS_MSEC)
            timed = bool(msec and msec > 0) or index < 0
            if index < 0:
                self._start_frames = self._first_frame_offset(msec, fps)
            index += 1
            t = msec / 1000.0 if timed else index / fps
            self.frames_read = index + 1
            if self.sample_fps is not None:
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
        """Why the frames read from a URL fall short of its stated length, or ``None``.

        Only whole videos over http(s) state a length. Their packets cannot be read again without a
        second download, so a length counted from time 0 is recognised by the first frame's timestamp,
        and only a shortfall of more than 5 frames and 5 % counts (an edit list's pre-roll makes OpenCV's
        count a few too many). Live streams and cameras state no length (0): for them an ended stream
        and a dropped one look the same.
        """
        expected = self.info.frame_count
        if expected <= 0 or frames >= expected:
            return None
        from_zero = frames > 0 and frames + self._start_frames == expected
        if from_zero or expected - frames <= max(5, 0.05 * expected):
            return None
        return f"decoding stopped at frame {frames} of {expected} (truncated video or a dropped connection)"

    def _warn(self) -> None:
        if not self.skipped_frames and not self.error:
            return
        parts = []
        if self.skipped_frames:
            parts.append(
                f"{len(self.skipped_frames)} of {self.frames_read} frames lost to damage "
                f"(first at {self.skipped_times[0]:.3f} s, frame {self.skipped_frames[0]})"
            )
        if self.error:
            parts.append(self.error)
        warnings.warn(MediaWarning(f"{self.info.source}: " + "; ".join(parts)), stacklevel=3)


@dataclass
class _FileState:
    """What decoding a file has shown so far."""

    packets: int = 0  # packets of shown frames read
    discarded: int = 0  # packets of frames never shown (an edit list's pre-roll)
    decoded: int = 0  # frames the decoder handed out
    damage: bool = False  # a decoding error, a corrupt packet or a read error was seen
    read_error: str | None = None
    pending: list[tuple[int, int]] = field(
        default_factory=list
    )  # heap: (pts, duration) of packets whose frames are due
    first_packet: float | None = None  # seconds
    packet_end: float | None = None  # seconds: the end of the latest packet

    def note_packet(self, pts: int, duration: int, time_base: float) -> None:
        if not time_base:
            return
        t = pts * time_base
        self.first_packet = t if self.first_packet is None else min(self.first_packet, t)
        end = t + duration * time_base
        self.packet_end = end if self.packet_end is None else max(self.packet_end, end)


def _stated_duration(container: Any, stream: Any) -> float | None:
    """The video stream's own duration in seconds from its first frame, or ``None`` where it states
    none. Matroska keeps it
    in the stream's ``DURATION`` tag (written at the end of the file); its header's duration is the
    longest stream's, used only when the video is the file's only stream."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    start = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
    tag = (stream.metadata or {}).get("DURATION")  # the end of the last frame, from time 0
    if tag:
        try:
            h, m, sec = tag.split(":")
            return max(int(h) * 3600 + int(m) * 60 + float(sec) - start, 0.0) or None
        except ValueError:
            pass
    if container.duration and len(container.streams) == 1 and "matroska" in container.format.name:
        return max(container.duration / 1e6 - start, 0.0) or None
    return None


def _first_frame_rotation(path: Path) -> int:
    """Quarter turns counterclockwise that show the video upright (its display matrix, as phones
    record portrait video), from its first decodable frame; 0 if none decodes."""
    import av

    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                return round((frame.rotation or 0) / 90) % 4
    except (av.error.FFmpegError, OSError, ValueError):
        pass
    return 0


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
