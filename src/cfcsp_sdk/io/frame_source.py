"""What the SDK reads video frames from: a :class:`FrameSource`.

:class:`~cfcsp_sdk.io.video.VideoReader` (files, cameras, URLs) and
:class:`~cfcsp_sdk.batch_ray.RemoteFrames` (frames decoded by a Ray task) are frame sources; so is any
object of an integrator's with the same attributes (frames from a camera SDK, a GStreamer sink, a
queue), which :meth:`Recognizer.predict_video` and :meth:`Recognizer.stream` then take as they take
a path. Frames that arrive one by one without a source are pushed into a
:class:`~cfcsp_sdk.pipeline.VideoPipeline` instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from cfcsp_sdk.io.video import Frame, VideoInfo


@runtime_checkable
class FrameSource(Protocol):
    """Frames of one video, in time order, with what is known about the video.

    Attributes:
        info: source name, width and height in pixels, fps and frame count (0 where unknown), known
            before the first frame.
        error: after iteration, why decoding stopped before the video's end (``None``: it did not).
        frames_read: after iteration, the frames gone through (decoded or lost), by index.
        skipped_frames, skipped_times: indices and times in seconds of frames lost to damage.

    Iterating yields :class:`~cfcsp_sdk.io.video.Frame` objects (``index`` increasing, ``time`` in
    seconds not going back, ``image`` a BGR uint8 ``H x W x 3`` array).
    """

    info: VideoInfo
    error: str | None
    frames_read: int
    skipped_frames: list[int]
    skipped_times: list[float]

    def __iter__(self) -> Iterator[Frame]: ...
