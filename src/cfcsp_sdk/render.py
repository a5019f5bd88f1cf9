"""Pictures of results: annotated frames and videos (OpenCV), per-track timeline plots (matplotlib)."""

from __future__ import annotations

import contextlib
import heapq
import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cfcsp_sdk.errors import CfcspError, MediaError, MediaWarning
from cfcsp_sdk.results import FaceRow, VideoResult

_PALETTE = [
    (66, 135, 245),
    (245, 66, 93),
    (66, 245, 141),
    (245, 200, 66),
    (194, 66, 245),
    (66, 230, 245),
    (245, 130, 66),
    (150, 150, 150),
]


def track_color(track: int) -> tuple[int, int, int]:
    """A stable BGR colour per track id."""
    return _PALETTE[track % len(_PALETTE)]


_FONT = cv2.FONT_HERSHEY_SIMPLEX
_Box = tuple[int, int, int, int]


def _text_scale(px: float) -> tuple[float, int]:
    """OpenCV font scale and stroke thickness for capital letters about ``px`` pixels high."""
    scale = px / 22.0  # FONT_HERSHEY_SIMPLEX capitals are about 22 px high at scale 1
    return scale, max(1, int(round(px / 12)))


def _overlap(a: _Box, b: _Box) -> int:
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def _fit(x: int, y: int, w: int, h: int, fw: int, fh: int) -> _Box:
    """A ``w x h`` rectangle at ``(x, y)`` moved (not resized) to lie inside an ``fw x fh`` frame."""
    x = min(max(0, x), max(0, fw - w))
    y = min(max(0, y), max(0, fh - h))
    return (x, y, x + w, y + h)


def _panel(out: np.ndarray, box: _Box, alpha: float = 0.6) -> None:
    """Darken ``box`` of ``out`` in place (a background that keeps text readable on any picture)."""
    x1, y1, x2, y2 = box
    region = out[y1:y2, x1:x2]
    region[:] = (region * (1 - alpha)).astype(out.dtype)


def annotate_frame(image: np.ndarray, rows: Sequence[FaceRow], labels: Sequence[str], bars: bool = True) -> np.ndarray:
    """A copy of ``image`` (BGR uint8) with each face's box, track id, label and probability bars drawn.

    Text and bars scale with the frame and the face (capitals at least 11 px high, so a 640x360 video
    stays readable) and stay inside the frame. Each face's probability panel goes right of, left of,
    below or above the face (level with it, else slid along that side), wherever it covers no face
    (its own or another's) and no other tag or panel; in smaller type where none fits. A face left
    without a panel (no room in a crowded photo) gets a compact label instead where its tag can grow
    without covering more: the tag also names the runner-up, ``#3 Happiness 0.81, Neutral 0.12``.
    """
    out = image.copy()
    fh, fw = out.shape[:2]
    short = min(fh, fw)
    faces = [r for r in rows if r.has_face and r.box is not None]
    boxes: list[_Box] = [tuple(int(round(v)) for v in r.box) for r in faces]  # type: ignore[misc,union-attr]
    drawn: list[_Box] = []  # tags and panels so far
    layout: list[dict[str, Any]] = []

    def place_tag(text: str, size: float, box: _Box, avoid: list[_Box]) -> tuple[_Box, int, int]:
        """The tag's rectangle, the face area it covers, and the other tags' and panels' area it covers."""
        x1, y1, x2, y2 = box
        scale, thick = _text_scale(size)
        pad = max(2, int(size * 0.25))
        (tw, th), base = cv2.getTextSize(text, _FONT, scale, thick)
        tag_w, tag_h = tw + 2 * pad, th + base + 2 * pad
        others = [b for b in boxes if b != box]
        face = (x1 + 3, y1 + 3, x2 - 3, y2 - 3)
        # above the box, else below it, else inside its top edge (left- or right-aligned): the first
        # that covers nothing, else the one covering least (other faces, tags and panels count most)
        spots = [_fit(x, y, tag_w, tag_h, fw, fh) for y in (y1 - tag_h, y2, y1) for x in (x1, x2 - tag_w)]
        spot = min(spots, key=lambda r: 10 * sum(_overlap(r, b) for b in others + avoid) + _overlap(r, face))
        return spot, sum(_overlap(spot, b) for b in others + [face]), sum(_overlap(spot, b) for b in avoid)

    for row, box in zip(faces, boxes):
        face_h = max(1, box[3] - box[1])
        px = float(np.clip(0.16 * face_h, max(11.0, 0.028 * short), max(11.0, 0.05 * short)))
        text = f"#{row.track} {row.label or ''}"
        if row.probabilities and row.label:
            text += f" {row.probabilities[row.label]:.2f}"
        tag, covers, _ = place_tag(text, px, box, drawn)
        drawn.append(tag)
        panel = None
        if bars and row.probabilities:
            others = [b for b in boxes if b != box]
            panel = _place_bars(out.shape, labels, box, others + drawn, px)
            if panel is not None:
                drawn.append(panel[0])
        layout.append(
            {"row": row, "box": box, "px": px, "size": px, "text": text, "tag": tag, "covers": covers, "panel": panel}
        )
    # the compact labels, once every tag and panel has its place (grown earlier, a tag took the room
    # later faces' panels needed)
    for item in layout:
        row = item["row"]
        if item["panel"] is not None or not bars or not row.probabilities or row.label not in row.probabilities:
            continue
        rest = [k for k in row.probabilities if k != row.label]
        if not rest:
            continue
        second = max(rest, key=row.probabilities.__getitem__)
        longer = f"{item['text']}, {second} {row.probabilities[second]:.2f}"
        avoid = [b for b in drawn if b != item["tag"]]
        for size in dict.fromkeys((item["px"], max(11.0, 0.75 * item["px"]))):
            spot, covers, on_others = place_tag(longer, size, item["box"], avoid)
            if covers <= item["covers"] and on_others == 0:
                drawn[drawn.index(item["tag"])] = spot
                item.update(text=longer, tag=spot, size=size)
                break
    for item in layout:
        (x1, y1, x2, y2), row, tag = item["box"], item["row"], item["tag"]
        color = track_color(row.track)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, max(2, _text_scale(item["px"])[1] + 1))
    for item in layout:
        row, tag, text = item["row"], item["tag"], item["text"]
        color = track_color(row.track)
        scale, thick = _text_scale(item["size"])
        pad = max(2, int(item["size"] * 0.25))
        (_, th), base = cv2.getTextSize(text, _FONT, scale, thick)
        cv2.rectangle(out, tag[:2], (tag[2] - 1, tag[3] - 1), color, -1)
        cv2.putText(out, text, (tag[0] + pad, tag[3] - pad - base), _FONT, scale, (255, 255, 255), thick, cv2.LINE_AA)
        if item["panel"] is not None:
            _draw_bars(out, row, labels, item["panel"], color)
    return out


_Panel = tuple[_Box, float]  # where, and the type size


def _bars_geometry(labels: Sequence[str], size: float) -> tuple[float, int, int, int, int, int, int, tuple[int, int]]:
    """``scale, thick, cap_w, th, gap, line, bar_w, (pw, ph)`` of a probability panel in type ``size``."""
    scale, thick = _text_scale(max(size, 9.0))
    cap_w = max(cv2.getTextSize(k[:10], _FONT, scale, thick)[0][0] for k in labels)
    (_, th), base = cv2.getTextSize("Ag", _FONT, scale, thick)
    gap = max(2, int(size * 0.3))
    line = th + base + gap
    bar_w = int(size * 5)
    return scale, thick, cap_w, th, gap, line, bar_w, (cap_w + bar_w + 3 * gap, line * len(labels) + gap)


def _place_bars(
    shape: tuple[int, ...], labels: Sequence[str], face: _Box, avoid: list[_Box], px: float
) -> _Panel | None:
    """Where a probability panel beside ``face`` covers neither ``face`` nor any of ``avoid`` (nor
    leaves the frame), and in which type size; ``None`` if there is no such place."""
    fh, fw = shape[:2]
    x1, y1, x2, y2 = face
    for size in (px * 0.8, px * 0.65, 10.0):
        *_, gap, line, _, (pw, ph) = _bars_geometry(labels, size)
        # each side level with the face first, then slid along it (a line at a time, nearest first)
        down = sorted(range(y1 - ph + line, y2 - line + 1, line), key=lambda v: abs(v - y1))
        across = sorted(range(x1 - pw + line, x2 - line + 1, line), key=lambda v: abs(v - x1))
        candidates = (
            [(x2 + gap, y1), (x1 - gap - pw, y1), (x1, y2 + gap), (x1, y1 - gap - ph)]
            + [(x2 + gap, v) for v in down]
            + [(x1 - gap - pw, v) for v in down]
            + [(v, y2 + gap) for v in across]
            + [(v, y1 - gap - ph) for v in across]
        )
        for cx, cy in candidates:
            if cx < 0 or cy < 0 or cx + pw > fw or cy + ph > fh:
                continue  # would have to move onto the face to fit the frame
            rect = (cx, cy, cx + pw, cy + ph)
            if _overlap(rect, face) == 0 and all(_overlap(rect, b) == 0 for b in avoid):
                return rect, size
    return None


def _draw_bars(
    out: np.ndarray, row: FaceRow, labels: Sequence[str], panel: _Panel, color: tuple[int, int, int]
) -> None:
    """Draw ``row``'s probability panel where :func:`_place_bars` put it."""
    box, size = panel
    scale, thick, cap_w, th, gap, line, bar_w, _ = _bars_geometry(labels, size)
    bx, by = box[0], box[1]
    _panel(out, box)
    for i, k in enumerate(labels):
        top = by + gap + i * line
        p = float((row.probabilities or {}).get(k, 0.0))
        cv2.putText(out, k[:10], (bx + gap, top + th), _FONT, scale, (255, 255, 255), thick, cv2.LINE_AA)
        left = bx + 2 * gap + cap_w
        cv2.rectangle(out, (left, top), (left + bar_w, top + th), (90, 90, 90), -1)
        if p > 0:
            cv2.rectangle(out, (left, top), (left + max(1, int(round(bar_w * p))), top + th), color, -1)


def _temp_next_to(dest: Path, tag: str) -> Path:
    """A new empty hidden file in ``dest``'s folder whose name ends in ``dest``'s suffix (writers pick
    the container by suffix)."""
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f"{tag}{dest.suffix}", dir=dest.parent)
    os.close(fd)
    return Path(name)


VIDEO_WRITERS = {".mp4": "h264", ".m4v": "h264", ".mov": "h264", ".mkv": "h264", ".avi": "MJPG", ".webm": "VP80"}
"""Annotated-video suffixes and the codec each is written with: ``"h264"`` is H.264 through PyAV's
libx264 (what browsers and phones play), the others OpenCV fourccs."""

CODEC_NAMES = {"h264": "H.264 (libx264)", "mp4v": "MPEG-4 Part 2", "MJPG": "Motion JPEG", "VP80": "VP8"}
"""What each codec of :data:`VIDEO_WRITERS` is, in words (for messages)."""

_PYAV_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def _libx264() -> bool:
    try:
        import av
    except ImportError:
        return False
    return "libx264" in av.codecs_available


class _H264Writer:
    """Frames (BGR uint8, one size) to an H.264 (yuv420p) video with PyAV; odd sides are padded by a
    pixel (4:2:0 needs even ones)."""

    def __init__(self, path: Path, suffix: str, fps: float, width: int, height: int) -> None:
        import fractions

        import av

        self._av = av
        self.container = av.open(str(path), "w", format=_PYAV_FORMATS[suffix])
        rate = fractions.Fraction(fps).limit_denominator(1001 * 1000)
        self.stream = self.container.add_stream("libx264", rate=rate, options={"preset": "veryfast", "crf": "20"})
        self.stream.width, self.stream.height = width + width % 2, height + height % 2
        self.stream.pix_fmt = "yuv420p"
        self.time_base = 1 / rate
        self.count = 0

    def write(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        if (w, h) != (self.stream.width, self.stream.height):
            image = cv2.copyMakeBorder(image, 0, self.stream.height - h, 0, self.stream.width - w, cv2.BORDER_REPLICATE)
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(image), "bgr24")
        frame.pts, frame.time_base = self.count, self.time_base
        self.count += 1
        self.container.mux(self.stream.encode(frame))

    def release(self) -> None:
        try:
            self.container.mux(self.stream.encode())
        finally:
            self.container.close()


def check_video_writer(path: str | os.PathLike[str], fourcc: str | None = None) -> str:
    """Make sure a video can be written to ``path`` before any work: a known video suffix (see
    :data:`VIDEO_WRITERS`), an existing folder, and a codec this OpenCV build can encode and decode
    (checked by writing and reading back a two-frame file next to ``path``, then deleting it).

    Returns:
        The codec to write ``path`` with (see :data:`VIDEO_WRITERS` and :data:`CODEC_NAMES`):
        ``"h264"`` for .mp4/.m4v/.mov unless ``fourcc`` names an OpenCV codec.

    Raises:
        MediaError: the suffix is not a video suffix, the folder does not exist, or the codec fails.
    """
    dest = Path(path)
    suffix = dest.suffix.lower()
    if suffix not in VIDEO_WRITERS:
        raise MediaError(f"an annotated video must end in {', '.join(VIDEO_WRITERS)}, got {str(dest)!r}", dest)
    if not dest.parent.is_dir():
        raise MediaError(f"folder {str(dest.parent)!r} does not exist", dest)
    fourcc = fourcc or VIDEO_WRITERS[suffix]
    if fourcc == "h264":
        if suffix not in _PYAV_FORMATS:
            raise MediaError(f"H.264 is written in {', '.join(_PYAV_FORMATS)} files, not {suffix}", dest)
        if not _libx264():
            raise MediaError("writing H.264 needs PyAV with libx264 (pip install av)", dest)
        return fourcc
    probe = _temp_next_to(dest, ".probe")
    try:
        writer = cv2.VideoWriter(str(probe), cv2.VideoWriter.fourcc(*fourcc), 10.0, (64, 48))
        if writer.isOpened():
            for v in (0, 255):
                writer.write(np.full((48, 64, 3), v, np.uint8))
        writer.release()
        cap = cv2.VideoCapture(str(probe))
        ok = cap.isOpened() and cap.read()[0]
        cap.release()
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    if not ok:
        raise MediaError(f"this OpenCV cannot write {suffix} video with codec {fourcc!r}; use .mp4 or .avi", dest)
    return fourcc


def copy_audio(source: str | os.PathLike[str], video: str | os.PathLike[str], dest: str | os.PathLike[str]) -> str:
    """Write ``dest``: the video stream of ``video`` with the first audio stream of ``source``, both
    copied without re-encoding, with PyAV (``pip install av``) or else an ``ffmpeg`` on PATH.

    Returns:
        ``"copied"``; ``"no audio"`` if ``source`` has none (``dest`` is not written); otherwise why it
        could not be done (no tool installed, a codec the container cannot hold), and ``dest`` is not
        written.
    """
    try:
        import av
    except ImportError:
        av = None  # type: ignore[assignment]  # the ffmpeg command below then
    if av is not None:
        try:
            return _copy_audio_pyav(av, str(source), str(video), str(dest))
        except Exception as exc:  # PyAV raises its own error types for every FFmpeg failure
            with contextlib.suppress(OSError):
                os.remove(dest)
            return f"PyAV could not copy the audio: {exc}"
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return "copying the sound needs PyAV (pip install av) or ffmpeg on PATH"
    probe = subprocess.run(
        [ffmpeg, "-v", "error", "-i", str(source), "-map", "0:a:0", "-c", "copy", "-t", "0", "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return "no audio"
    proc = subprocess.run(
        [
            ffmpeg,
            "-y",
            "-v",
            "error",
            "-i",
            str(video),
            "-i",
            str(source),
            "-map",
            "0:v:0",
            "-map",
            "1:a:0",
            "-c",
            "copy",
            "-shortest",
            str(dest),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        with contextlib.suppress(OSError):
            os.remove(dest)
        return f"ffmpeg could not copy the audio: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}"
    return "copied"


def _copy_audio_pyav(av: Any, source: str, video: str, dest: str) -> str:
    with av.open(source) as src:
        if not src.streams.audio:
            return "no audio"
        with av.open(video) as vin, av.open(dest, "w") as out:
            v_in, a_in = vin.streams.video[0], src.streams.audio[0]
            v_out = out.add_stream_from_template(v_in)
            a_out = out.add_stream_from_template(a_in)

            # the sound ends with the picture (an annotated video of the first N frames is shorter);
            # Matroska keeps no per-stream duration, but the silent file holds the picture alone
            if v_in.duration and v_in.time_base:
                end = float(v_in.duration * v_in.time_base)
            else:
                end = vin.duration / 1_000_000 if vin.duration else float("inf")  # AV_TIME_BASE units

            def packets(container: Any, stream: Any, target: Any) -> Iterator[tuple[float, int, Any]]:
                t = 0.0
                for i, pkt in enumerate(container.demux(stream)):
                    if pkt.size == 0:
                        continue  # the flush packet at the end
                    # Matroska stores presentation times only: the first frames of H.264 with B-frames
                    # come out with no dts (skipping them dropped the key frame: nothing decoded)
                    stamp = pkt.dts if pkt.dts is not None else pkt.pts
                    if stamp is not None:
                        t = float(stamp * pkt.time_base)
                    if stream is a_in and t >= end:
                        break
                    pkt.stream = target
                    yield t, i, pkt

            # interleave by time so the muxer never buffers a whole stream
            for _, _, pkt in heapq.merge(packets(vin, v_in, v_out), packets(src, a_in, a_out), key=lambda t: t[:2]):
                out.mux(pkt)
    return "copied"


def write_annotated_video(
    result: VideoResult, path: str | os.PathLike[str], fourcc: str | None = None, audio: bool = True
) -> Path:
    """Decode ``result.source`` again and write every frame with its faces drawn to ``path``.

    The video covers exactly the frames the prediction went through (:attr:`VideoResult.frames_read`:
    with ``max_frames`` it stops where the prediction stopped, instead of carrying the last boxes over
    frames never processed). Frames skipped by sampling show the rows of the latest sampled frame
    before them; undecodable frames are left out, as in the prediction. The codec
    follows the suffix (:data:`VIDEO_WRITERS`: H.264 through PyAV's libx264 in .mp4, .m4v and .mov,
    which browsers and phones play; ``fourcc`` picks an OpenCV codec instead), checked before the
    first frame (:func:`check_video_writer`, whose return value names it). With ``audio``, the source's sound is copied in (:func:`copy_audio`);
    when that cannot be done a :class:`UserWarning` says why and the video is written without it.
    The file appears whole or not at all.

    Raises:
        MediaError: see :func:`check_video_writer`, or the source cannot be decoded.
    """
    from cfcsp_sdk.io.files import atomic_path
    from cfcsp_sdk.io.video import VideoReader

    fourcc = check_video_writer(path, fourcc)
    by_frame: dict[int, list[FaceRow]] = {}
    for r in result.rows:
        by_frame.setdefault(r.frame, []).append(r)
    reader = VideoReader(result.source)
    fps = reader.info.fps if reader.info.fps > 0 else 25.0
    dest = Path(path)
    with atomic_path(dest) as final:
        silent = _temp_next_to(dest, ".video")
        try:
            writer: Any
            if fourcc == "h264":
                writer = _H264Writer(silent, dest.suffix.lower(), fps, reader.info.width, reader.info.height)
            else:
                writer = cv2.VideoWriter(
                    str(silent), cv2.VideoWriter.fourcc(*fourcc), fps, (reader.info.width, reader.info.height)
                )
            if fourcc != "h264" and not writer.isOpened():
                reader.close()
                raise MediaError(f"cannot write a video to {path} (codec {fourcc!r})", path)
            current: list[FaceRow] = []
            try:
                with warnings.catch_warnings():
                    # frames lost to damage were told when the video was predicted (result.skipped_frames);
                    # reading it again must not tell them twice
                    warnings.simplefilter("ignore", MediaWarning)
                    for frame in reader:
                        if result.frames_read and frame.index >= result.frames_read:
                            break  # never processed: their faces are unknown
                        current = by_frame.get(frame.index, current)
                        writer.write(annotate_frame(frame.image, current, result.labels))
            finally:
                writer.release()
            status = copy_audio(result.source, silent, final) if audio else "not asked for"
            if status != "copied":
                os.replace(silent, final)
                if status not in ("no audio", "not asked for"):
                    warnings.warn(f"the annotated video has no sound: {status}", UserWarning, stacklevel=2)
        finally:
            with contextlib.suppress(OSError):
                silent.unlink()
    return dest


def require_matplotlib() -> None:
    """Raise :class:`CfcspError` now if matplotlib (the ``plot`` extra) is missing, before any work."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise CfcspError("timeline plots need matplotlib: pip install matplotlib (the package's 'plot' extra)")


def _runs(times: Sequence[float], keep: Sequence[bool], step: float, end: float) -> list[tuple[float, float]]:
    """``(start, width)`` of each run of consecutive samples with ``keep``; a sample at ``times[i]``
    lasts until the next sample (the last one ``step`` seconds, at most to ``end``)."""
    spans: list[tuple[float, float]] = []
    for i, (t, k) in enumerate(zip(times, keep)):
        if not k:
            continue
        # the last sample lasts to the end of the video unless sampling stopped well before it
        stop = times[i + 1] if i + 1 < len(times) else (end if end - t <= 2 * step else t + step)
        if spans and abs(spans[-1][0] + spans[-1][1] - t) < 1e-9:
            spans[-1] = (spans[-1][0], stop - spans[-1][0])
        else:
            spans.append((t, stop - t))
    return spans


def plot_timeline(result: VideoResult, path: str | os.PathLike[str], tracks: Sequence[int] | None = None) -> Path:
    """Write :func:`timeline_figure` as a PNG to ``path`` (whole or not at all).

    Raises:
        CfcspError: matplotlib is not installed (``pip install 'cfcsp-sdk[plot]'``).
    """
    from cfcsp_sdk.io.files import atomic_path

    fig = timeline_figure(result, tracks)
    with atomic_path(path) as tmp:
        fig.savefig(str(tmp), dpi=110, format="png")
    return Path(path)


def timeline_figure(result: VideoResult, tracks: Sequence[int] | None = None) -> Any:
    """A matplotlib Figure with one panel per face track: the track's label over time as a coloured band on top,
    and the smoothed probability of every label below it.

    The time axis spans the whole video (from the container's frame count and fps, else the last
    sampled frame); sampled frames with no face at all are shaded grey on every panel. Each sampled
    frame is drawn as lasting until the next one, so a track seen in a single frame still shows. A
    video with no face gets one panel that says so (and no legend of labels).

    Raises:
        CfcspError: matplotlib is not installed (``pip install 'cfcsp-sdk[plot]'``).
    """
    require_matplotlib()
    import matplotlib
    from matplotlib.figure import Figure  # not pyplot: no global state, no GUI backend
    from matplotlib.patches import Patch

    ids = list(tracks) if tracks is not None else result.track_ids
    frame_times: dict[int, float] = {}
    with_face: dict[int, bool] = {}
    for r in result.rows:
        frame_times.setdefault(r.frame, r.time)
        with_face[r.frame] = with_face.get(r.frame, False) or r.has_face
    frames = sorted(frame_times)
    times = [frame_times[f] for f in frames]
    diffs = np.diff(times)
    step = float(np.median(diffs)) if len(diffs) else (1.0 / result.fps if result.fps > 0 else 0.04)
    end = max(
        times[-1] + step if times else 0.0,
        result.frame_count / result.fps if result.fps > 0 and result.frame_count > 0 else 0.0,
    )
    no_face = _runs(times, [not with_face[f] for f in frames], step, end)
    colors = {k: matplotlib.colormaps["tab10"](i % 10) for i, k in enumerate(result.labels)}

    n = max(1, len(ids))
    height = 2.3 * n + 1.2  # inches: panels, then 0.7 at the top for the title and the legend
    fig = Figure(figsize=(11, height))
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)
    for ax in axes[:, 0]:
        for start, width in no_face:
            ax.axvspan(start, start + width, color="0.85", lw=0, zorder=0)
        ax.set_xlim(0, end)
        ax.set_ylim(-0.02, 1.3)
        ax.set_yticks([0, 0.5, 1])
        ax.axhline(1.0, color="0.6", lw=0.6, ls=":", zorder=1)
        ax.grid(alpha=0.25, axis="x")
    if not ids:
        axes[0, 0].text(
            end / 2 if end else 0.5, 0.5, f"no face found in {len(frames)} sampled frames", ha="center", va="center"
        )
    summaries = result.tracks()
    for ax, tid in zip(axes[:, 0], ids):
        rows = result.track(tid)
        seen = {r.frame: r for r in rows}
        t = [r.time for r in rows]
        marker = "o" if len(rows) < 3 else None
        for k in result.labels:
            ax.plot(
                t,
                [r.probabilities[k] for r in rows],  # type: ignore[index]  # rows with a face
                color=colors[k],
                lw=1.3,
                marker=marker,
                ms=3,
                zorder=2,
            )
        for k in result.labels:  # the band: one coloured span per run of the same label
            spans = _runs(times, [f in seen and seen[f].label == k for f in frames], step, end)
            if spans:
                ax.broken_barh(spans, (1.08, 0.17), facecolors=colors[k], lw=0, zorder=3)
        ax.set_ylabel(f"track {tid}")
        summary = summaries.get(tid)
        if summary is not None:
            n = summary.label_counts.get(summary.dominant_label, 0)  # frames with that label, not all of them
            ax.text(
                1.0,
                1.0,
                f"mostly {summary.dominant_label} ({n} of {summary.frames} frame{'s' if summary.frames != 1 else ''})",
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=8,
            )
    axes[-1, 0].set_xlabel("time (s)")
    handles = [Patch(color=colors[k], label=k) for k in result.labels] if ids else []
    if no_face:
        handles.append(Patch(color="0.85", label="no face"))
    if handles:
        fig.legend(
            handles=handles,
            ncol=min(9, len(handles)),
            fontsize=8,
            loc="upper center",
            bbox_to_anchor=(0.5, 1 - 0.3 / height),
            frameon=False,
        )
    fig.suptitle(f"{Path(result.source).name}: label per track (band) and smoothed probabilities", y=0.995, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / height))
    return fig
