"""Progress reporting, one home for every bar the SDK draws (tqdm, on stderr).

* :class:`FrameProgress`: the frames of one video, for ``predict_video(progress=...)`` and
  ``cfcsp predict``. ``progress`` is ``True`` (a bar), ``False`` (nothing) or the caller's callable
  ``(frames_done, frames_total)``.
* :class:`BatchProgress`: videos and frames of a corpus, for ``run_batch``/``run_batch_ray``.

A frame bar is drawn at its first update (a video refused before its first frame leaves no empty bar)
but its clock starts when the :class:`FrameProgress` is made, before the work: a bar started at the
first update counted a whole chunk of frames against the microseconds since, and a short video's bar
ended on ~100,000 frame/s.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

ProgressCallback = Callable[[int, int], None]
Progress = bool | ProgressCallback
"""What ``progress=`` takes: ``True`` for a bar, ``False`` for none, or a callable ``(done, total)``."""


def _bar(**kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(**kwargs)


class FrameProgress:
    """Progress over the frames of one video.

    Args:
        progress: ``True`` for a bar on stderr, ``False`` for none, or a callable ``(frames_done,
            frames_total)``; ``frames_total`` is the estimate given here or to :meth:`update` (0 if
            unknown) until :meth:`finish`, which passes the frames actually gone through for both, so a
            bar ends at 100 %.
        total: the container's frame count, 0 if unknown.
        desc: the bar's label.

    Use as a context manager (or call :meth:`close`), so the bar is closed when the video fails.
    """

    def __init__(self, progress: Progress, total: int = 0, desc: str = "cfcsp") -> None:
        self.total = max(0, int(total or 0))
        self.done = 0
        self._callback: ProgressCallback | None = progress if callable(progress) else None
        self._show = progress is True
        self._desc = desc
        self._started = time.time()  # tqdm's clock
        self._bar: Any = None

    def update(self, done: int, total: int | None = None) -> None:
        """``done`` frames gone through so far (a count, not an increase); ``total`` a new estimate."""
        if total is not None:
            self.total = max(0, int(total))
        self.done = int(done)
        if self._callback is not None:
            self._callback(self.done, self.total)
        if self._show and self._bar is None:
            self._bar = _bar(total=self.total or None, unit="frame", desc=self._desc)
            self._bar.start_t = self._bar.last_print_t = self._started
        if self._bar is not None:
            if total is not None:
                self._bar.total = self.total or None
            self._bar.update(self.done - self._bar.n)

    def finish(self, done: int) -> None:
        """The video ended after ``done`` frames: that is the total now (bar at 100 %)."""
        self.update(done, total=done)
        if self._bar is not None:
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._show = False
        self._bar = None

    def __enter__(self) -> FrameProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Record(Protocol):
    # read-only members: a record whose status is a Literal (VideoRecord) still matches
    @property
    def source(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def error(self) -> str | None: ...


class BatchProgress:
    """Two bars for a corpus (videos, and frames over all videos), or nothing when ``show`` is false.

    Args:
        show: draw the bars.
        videos: the number of videos.
    """

    def __init__(self, show: bool, videos: int) -> None:
        self.videos = _bar(total=videos, unit="video", desc="videos", position=0) if show else None
        self.frames = _bar(unit="frame", desc="frames", position=1) if show else None

    def frame(self, n: int) -> None:
        """``n`` more frames done."""
        if self.frames is not None and n:
            self.frames.update(n)

    def video(self, record: _Record) -> None:
        """One more video ended (a failed one is also written above the bars)."""
        if self.videos is not None:
            self.videos.update(1)
            if record.status == "failed":
                self.videos.write(f"failed: {record.source}: {record.error}", file=sys.stderr)

    def close(self) -> None:
        for bar in (self.videos, self.frames):
            if bar is not None:
                bar.close()
        self.videos = self.frames = None

    def __enter__(self) -> BatchProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
