"""Which frames of a video are processed: one :class:`Sampling`, checked once where it is made."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from cfcsp_sdk.errors import InvalidInputError, require_positive_int, require_positive_number

T = TypeVar("T")


@dataclass(frozen=True)
class Sampling:
    """Frame sampling of a video, validated when made.

    Args:
        fps: keep frames at about this rate, by their timestamps (``None``: by ``stride``).
        stride: or keep every ``stride``-th frame (``None`` or 1: every frame).
        max_frames: stop after this many kept frames (``None``: no limit).

    Raises:
        InvalidInputError: a value that is not a positive number (``stride``, ``max_frames``: a positive
            integer), or ``fps`` together with a ``stride`` other than 1 (one would silently override
            the other).
    """

    fps: float | None = None
    stride: int = 1
    max_frames: int | None = None

    def __post_init__(self) -> None:
        stride = 1 if self.stride is None else require_positive_int("stride", self.stride)
        object.__setattr__(self, "stride", stride)
        if self.fps is not None:
            object.__setattr__(self, "fps", require_positive_number("fps", self.fps))
            if stride != 1:
                raise InvalidInputError(
                    f"fps={self.fps:g} and stride={stride}: sample by time (fps) or by frame count (stride), not both"
                )
        if self.max_frames is not None:
            object.__setattr__(self, "max_frames", require_positive_int("max_frames", self.max_frames))

    def kwargs(self) -> dict[str, Any]:
        """``{"fps", "stride", "max_frames"}``: the keyword arguments of :class:`~cfcsp_sdk.io.video.VideoReader`
        and :meth:`Recognizer.predict_video`."""
        return {"fps": self.fps, "stride": self.stride, "max_frames": self.max_frames}

    @property
    def every_frame(self) -> bool:
        """Whether every frame is kept (no fps, stride 1, no limit)."""
        return self == Sampling()


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), lazily: frames batched for the networks or
    for sending, without holding more than one chunk."""
    size = require_positive_int("size", size)
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
