"""The push pipeline: frames -> faces -> crops -> cascade -> per-track SP, one frame at a time.

:class:`VideoPipeline` takes frames from whoever decodes them: :meth:`~VideoPipeline.push` one frame (a
:class:`~cfcsp_sdk.io.video.Frame` or a BGR array) and get back the frames it could finish, or
:meth:`~VideoPipeline.run` it over a :class:`~cfcsp_sdk.io.frame_source.FrameSource`.
:meth:`Recognizer.predict_video` and :meth:`Recognizer.stream` are thin wrappers over it.

Frames come back in the order they were pushed, each with all of its rows. When a frame is finished
depends on the smoothing mode:

* ``"causal"`` (streaming): as soon as its chunk of ``chunk_frames`` frames has been processed; SP
  averages the track's ``window`` most recent observations (:meth:`Smoother.update`).
* ``"centered"`` (offline, the paper's SP): once every face in it has the ``w = window // 2`` later
  observations of its track that its window needs, twice over (the fine networks' decision for an
  observation waits for its smoothed coarse score, and its smoothed fine scores for the fine decisions
  of the ``w`` observations after it), or once its track has ended. Until then only the preprocessed
  crop of a face waiting for its fine decision is kept, and a few numbers per observation in a window.

A fine network runs on a face when the raw or the smoothed coarse decision is its group (or always,
with ``fine_policy="always"``), so both the raw and the smoothed results come from real scores.
Memory holds the smoothing windows and the frames not yet finished, never the whole video.
"""

from __future__ import annotations

import functools
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple, cast

import numpy as np

from cfcsp_sdk.cascade import Cascade
from cfcsp_sdk.config import ModelConfig
from cfcsp_sdk.errors import CfcspError, InvalidInputError, is_real_number, require_positive_int
from cfcsp_sdk.faces.alignment import align_face, box_landmarks
from cfcsp_sdk.faces.detection import Detection, Detector, as_face_detector, detect_many
from cfcsp_sdk.faces.tracking import FaceTracker, appearance_descriptor
from cfcsp_sdk.io.video import Frame
from cfcsp_sdk.preprocess import crops_to_batch
from cfcsp_sdk.results import FaceRow
from cfcsp_sdk.smoother import Smoother, softmax

STAGES = ("detect", "align", "model", "smooth")
_NO_IMAGE = np.zeros((0, 0, 3), np.uint8)


def aligned_crops(image: np.ndarray, detections: Sequence[Detection], config: ModelConfig) -> list[np.ndarray]:
    """Crops of ``detections`` aligned on the model's face template (box-derived points without landmarks)."""
    template = config.preprocessing.face_template
    return [
        align_face(image, d.landmarks if d.landmarks is not None else box_landmarks(d.box, template), template)
        for d in detections
    ]


class FrameRows(NamedTuple):
    """A finished frame and its rows: one :class:`FaceRow` per face, or one row with ``track == -1``
    when the frame has no face. Unpacks as ``frame, rows``."""

    frame: Frame
    rows: list[FaceRow]


@dataclass(eq=False)
class _Observation:
    """One face in one frame, from detection to its final probabilities."""

    row: FaceRow
    coarse: np.ndarray | None = None  # coarse logits [Kc]
    fine: dict[int, np.ndarray] = field(default_factory=dict)  # group position -> logits [Kg], where it ran
    crop: np.ndarray | None = None  # preprocessed crop, kept until the fine decision is made
    final: bool = False


@dataclass(eq=False)
class _Track:
    """The observations of one track still needed by a smoothing window, in time order."""

    obs: list[_Observation] = field(default_factory=list)
    decided: int = 0  # obs[:decided] have their fine decision
    final: int = 0  # obs[:final] have their final probabilities
    ended: bool = False


class VideoPipeline:
    """Detection, alignment, tracking, the cascade and SP over frames pushed one at a time.

    Usually made by :meth:`Recognizer.pipeline`. Push frames in time order; each call returns the frames
    it finished (see the module docstring for when that is); :meth:`finish` ends the stream and returns
    the rest. One pipeline holds one video's or one camera's tracks and smoothing state: use one per stream.

    Args:
        config: the model's configuration, as a :class:`Recognizer` holds it.
        cascade: the model's networks.
        smoother: its ``window`` and ``mode`` are used (the pipeline keeps its own streaming state).
        detector: the face detector (any object with ``detect(image)`` is wrapped in a
            :class:`~cfcsp_sdk.faces.base.FaceDetector`).
        batch_size: faces per network call.
        tracker: the face tracker (default: a new :class:`~cfcsp_sdk.faces.tracking.FaceTracker`).
        detect_every: run the detector on every k-th frame and carry faces between.
        chunk_frames: frames processed together (their faces share network calls); a frame comes back
            at the earliest when its chunk is full, or on :meth:`flush` / :meth:`finish`.
        keep_images: give each finished frame back with its pixels. ``False`` drops them once the frame
            is processed (``frame.image`` is then an empty ``0 x 0 x 3`` array): in centred mode frames
            wait for later ones, and a track the tracker keeps alive while it re-identifies a returning
            face can hold back seconds of frames.

    An exception inside the pipeline (a backend failing, say) ends it: every later call raises
    :class:`~cfcsp_sdk.errors.CfcspError` naming it, instead of going on with half-processed frames.

    Attributes:
        timings: seconds spent per stage (``detect``, ``align``, ``model``, ``smooth``).
        frames_pushed: frames accepted so far.
    """

    def __init__(
        self,
        config: ModelConfig,
        cascade: Cascade,
        smoother: Smoother,
        detector: Detector,
        batch_size: int = 64,
        tracker: FaceTracker | None = None,
        detect_every: int = 1,
        chunk_frames: int = 1,
        keep_images: bool = True,
    ) -> None:
        self.keep_images = bool(keep_images)
        self.config, self.cascade, self.detector = config, cascade, as_face_detector(detector)
        self.batch_size = require_positive_int("batch_size", batch_size)
        self.chunk_frames = require_positive_int("chunk_frames", chunk_frames)
        self.smoother = Smoother(window=smoother.window, mode=smoother.mode)
        self.tracker = tracker or FaceTracker()
        detect_every = require_positive_int("detect_every", detect_every)
        # detectors that cost nothing and are exact (whole-image crops, given boxes) are never carried
        self.detect_every = detect_every if self.detector.carry_faces else 1
        self._since_detection = self.detect_every  # frames since the detector last ran
        self._groups = range(len(config.cascade.groups))
        self._tracks: dict[int, _Track] = {}
        self._buffer: list[Frame] = []  # pushed, not processed yet
        self._waiting: deque[tuple[Frame, list[_Observation]]] = deque()  # processed, not finished yet
        self._last: tuple[int, float] | None = None  # index and time of the last frame pushed
        self._clock: tuple[float, float] | None = None  # (monotonic clock, frame time) when the clock started
        self._finished = False
        self.failed: BaseException | None = None
        self.frames_pushed = 0
        self.timings = {stage: 0.0 for stage in STAGES}

    @property
    def mode(self) -> str:
        return self.smoother.mode

    @property
    def observations_held(self) -> int:
        """Faces held in smoothing windows and unfinished frames (bounded: it does not grow with length)."""
        return sum(len(t.obs) for t in self._tracks.values()) + sum(len(o) for _, o in self._waiting)

    @property
    def frames_held(self) -> int:
        """Frames pushed and not given back yet (buffered for a chunk, or waiting for later frames)."""
        return len(self._buffer) + len(self._waiting)

    # ---- the public flow ---------------------------------------------------------------------
    def push(self, frame: Frame | np.ndarray, time: float | None = None) -> list[FrameRows]:
        """Add the next frame; returns the frames finished by it (possibly none, possibly several).

        Args:
            frame: a :class:`Frame` (its ``index`` and ``time`` are kept), or a BGR uint8 ``H x W x 3``
                array (numbered 0, 1, ... in push order).
            time: for an array, its time in seconds (default: seconds since the first frame pushed, by
                the monotonic clock: right for a live camera).

        Raises:
            InvalidInputError: an image that is not ``H x W x 3`` uint8, frame indices that do not
                increase, times that go back, or a push after :meth:`finish`.
        """
        self._check_usable()
        if self._finished:
            raise InvalidInputError("this pipeline has finished; make a new one for another stream")
        frame = self._as_frame(frame, time)
        self._last = (frame.index, frame.time)
        self.frames_pushed += 1
        self._buffer.append(frame)
        if len(self._buffer) < self.chunk_frames:
            return []
        return self._process()

    def flush(self) -> list[FrameRows]:
        """Process the frames of an unfilled chunk now (tracks go on); returns the frames finished."""
        self._check_usable()
        return self._process() if self._buffer else []

    def finish(self) -> list[FrameRows]:
        """End the stream: process what is buffered, end every track, return every remaining frame."""
        self._check_usable()
        if self._finished:
            return []
        out = self._process(end=True)
        self._finished = True
        return out

    def run(self, frames: Iterable[Frame | np.ndarray]) -> Iterator[FrameRows]:
        """Push every frame of ``frames`` (a :class:`~cfcsp_sdk.io.frame_source.FrameSource` or any
        iterable of frames), yielding finished frames as they come, and :meth:`finish` at the end."""
        for frame in frames:
            yield from self.push(frame)
        yield from self.finish()

    # ---- steps -------------------------------------------------------------------------------
    def _check_usable(self) -> None:
        if self.failed is not None:
            raise CfcspError(
                f"this pipeline stopped on an error ({type(self.failed).__name__}: {self.failed}); make a new one"
            ) from self.failed

    def _as_frame(self, frame: Frame | np.ndarray, t: float | None) -> Frame:
        if isinstance(frame, Frame):
            if t is not None:
                raise InvalidInputError("time= is for arrays: a Frame carries its own time")
            index, t, image = frame.index, frame.time, frame.image
        elif isinstance(frame, np.ndarray):
            image = frame
            index = self._last[0] + 1 if self._last is not None else 0
            if t is None:
                now = time.monotonic()
                if self._clock is None:  # the clock goes on from the last time given, if any
                    self._clock = (now, self._last[1] if self._last is not None else 0.0)
                t = self._clock[1] + now - self._clock[0]
        else:
            raise InvalidInputError(f"push() takes a Frame or a BGR uint8 array, got {type(frame).__name__}")
        if (
            not isinstance(image, np.ndarray)
            or image.dtype != np.uint8
            or image.ndim != 3
            or image.shape[2] != 3
            or image.shape[0] == 0
            or image.shape[1] == 0
        ):
            shape = getattr(image, "shape", None)
            raise InvalidInputError(
                f"a frame must be a BGR uint8 H x W x 3 array, got "
                f"{getattr(image, 'dtype', type(image).__name__)} {shape}"
            )
        if not is_real_number(t) or not math.isfinite(float(t)):
            raise InvalidInputError(f"a frame's time must be a finite number of seconds, got {t!r:.40}")
        if self._last is not None:
            if int(index) <= self._last[0]:
                raise InvalidInputError(f"frame indices must increase: {index} after {self._last[0]}")
            if t < self._last[1]:
                raise InvalidInputError(f"frame times must not go back: {t} s after {self._last[1]} s")
        if isinstance(frame, Frame) and isinstance(frame.time, float):
            return frame
        return Frame(index=int(index), time=float(t), image=image)

    @contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] += time.perf_counter() - t0

    def _process(self, end: bool = False) -> list[FrameRows]:
        try:
            return self._process_chunk(end)
        except BaseException as exc:
            self.failed = exc  # tracks and windows are half updated: nothing after this could be trusted
            raise

    def _process_chunk(self, end: bool) -> list[FrameRows]:
        frames, self._buffer = self._buffer, []
        ended: set[int] = set()
        new: list[_Observation] = []
        if frames:
            with self._stage("detect"):
                batched = detect_many(self.detector, [f.image for f in frames]) if self.detect_every == 1 else None
            for i, frame in enumerate(frames):
                obs, gone = self._observe(frame, batched[i] if batched is not None else None)
                ended.update(gone)
                new += [o for o in obs if o.row.has_face]
                self._waiting.append((frame if self.keep_images else Frame(frame.index, frame.time, _NO_IMAGE), obs))
            self._run_coarse(new)
        for tid in ended:
            if tid in self._tracks:
                self._tracks[tid].ended = True
        if end:
            for track in self._tracks.values():
                track.ended = True
        if self.mode == "causal":
            self._finish_causal(new)
        else:
            self._advance_centered()
        for tid in [t for t, tr in self._tracks.items() if tr.ended and tr.final == len(tr.obs)]:
            del self._tracks[tid]
            self.smoother.reset(("coarse", tid))
            for g in self._groups:
                self.smoother.reset((g, tid))
        return self._emit()

    def _observe(self, frame: Frame, detected: list[Detection] | None) -> tuple[list[_Observation], list[int]]:
        """The frame's observations (one without a face if it has none) and the tracks that ended."""
        with self._stage("detect"):
            dets, ids, ended = self._faces(frame, detected)
        with self._stage("align"):
            crops = aligned_crops(frame.image, dets, self.config)
            if ids is None:
                ids, ended = self.tracker.update(
                    dets, frame.time, [appearance_descriptor(c) for c in crops], image=frame.image
                )
            if not dets:
                return [_Observation(FaceRow(frame=frame.index, time=frame.time), final=True)], list(ended)
            obs = []
            for det, tid, crop in zip(dets, ids, crops):
                o = _Observation(
                    FaceRow(
                        frame=frame.index,
                        time=frame.time,
                        track=tid,
                        box=det.box,
                        landmarks=det.landmarks,
                        detection_score=det.detection_score,
                    ),
                    crop=crop,
                )
                self._tracks.setdefault(tid, _Track()).obs.append(o)
                obs.append(o)
            return obs, list(ended)

    def _faces(
        self, frame: Frame, detected: list[Detection] | None
    ) -> tuple[list[Detection], list[int] | None, list[int]]:
        """The frame's faces: ``detected`` (from a batched detector call), or carried from the previous
        frame by the tracker, or from the detector. Ids and ended tracks come with carried faces only."""
        if detected is not None:
            return detected, None, []
        if self._since_detection + 1 < self.detect_every:
            carried = self.tracker.carry(frame.image, frame.time)
            if carried is not None:  # None: a face moved too fast or could not be followed
                self._since_detection += 1
                return carried[0], carried[1], carried[2]
        self._since_detection = 0
        return self.detector.detect(frame.image), None, []

    def _batches(self, fn: Callable[[np.ndarray], np.ndarray], batch: np.ndarray) -> np.ndarray:
        return np.concatenate([fn(batch[i : i + self.batch_size]) for i in range(0, len(batch), self.batch_size)])

    def _run_coarse(self, new: list[_Observation]) -> None:
        if not new:
            return
        with self._stage("align"):
            batch = crops_to_batch([o.crop for o in new], self.config.preprocessing, "bgr")  # type: ignore[misc]
        with self._stage("model"):
            logits = self._batches(self.cascade.run_coarse, batch)
        for o, x, lg in zip(new, batch, logits):
            o.coarse, o.crop = lg, x

    def _run_fine(self, todo: dict[int, list[_Observation]]) -> None:
        """Run each group's network on its observations; every observation in ``todo`` is decided after."""
        with self._stage("model"):
            for g, obs in todo.items():
                if obs:
                    crops = cast("list[np.ndarray]", [o.crop for o in obs])  # kept until decided
                    logits = self._batches(functools.partial(self.cascade.run_group, g), np.stack(crops))
                    for o, lg in zip(obs, logits):
                        o.fine[g] = lg

    def _needed(self, raw_logits: np.ndarray, smoothed: np.ndarray) -> dict[int, np.ndarray]:
        raw, smooth = self.cascade.fine_needed(softmax(raw_logits)), self.cascade.fine_needed(smoothed)
        return {g: raw[g] | smooth[g] for g in self._groups}

    def _fine_rows(self, obs: Sequence[_Observation], g: int) -> np.ndarray:
        k = len(self.config.cascade.groups[g].labels)
        nan = np.full(k, np.nan, np.float32)
        return np.stack([o.fine.get(g, nan) for o in obs])

    def _set_final(
        self,
        obs: Sequence[_Observation],
        coarse: np.ndarray,
        fine: dict[int, np.ndarray],
        sm_coarse: np.ndarray,
        sm_fine: dict[int, np.ndarray],
    ) -> None:
        labels = self.config.labels
        raw_p, raw_l = self.cascade.combine(softmax(coarse), {g: softmax(v) for g, v in fine.items()})
        sm_p, sm_l = self.cascade.combine(sm_coarse, sm_fine)
        for i, o in enumerate(obs):
            o.row.raw_probabilities = dict(zip(labels, map(float, raw_p[i])))
            o.row.raw_label = labels[int(raw_l[i])]
            o.row.probabilities = dict(zip(labels, map(float, sm_p[i])))
            o.row.label = labels[int(sm_l[i])]
            o.final, o.crop = True, None

    def _finish_causal(self, new: list[_Observation]) -> None:
        """Causal SP: every new observation is final once its chunk's networks have run."""
        if not new:
            return
        with self._stage("smooth"):
            coarse = np.stack([o.coarse for o in new])  # type: ignore[misc]
            sm_coarse = np.stack([self.smoother.update(("coarse", o.row.track), o.coarse) for o in new])  # type: ignore[arg-type]
            needed = self._needed(coarse, sm_coarse)
        self._run_fine({g: [o for o, m in zip(new, needed[g]) if m] for g in self._groups})
        with self._stage("smooth"):
            fine = {g: self._fine_rows(new, g) for g in self._groups}
            sm_fine = {
                g: np.stack([self.smoother.update((g, o.row.track), f) for o, f in zip(new, fine[g])])
                for g in self._groups
            }
            self._set_final(new, coarse, fine, sm_coarse, sm_fine)
        for o in new:  # causal windows live in the smoother: tracks keep no observations
            tr = self._tracks[o.row.track]
            tr.obs.clear()
            tr.decided = tr.final = 0

    def _advance_centered(self) -> None:
        """Centred SP: make the fine decisions and final scores whose windows are complete."""
        w = self.smoother.delay
        todo: dict[int, list[_Observation]] = {g: [] for g in self._groups}
        decided: list[_Observation] = []
        with self._stage("smooth"):
            for tr in self._tracks.values():
                n = len(tr.obs)
                last = n if tr.ended else n - w  # obs[decided:last] can be decided
                if last <= tr.decided:
                    continue
                lo, hi = max(0, tr.decided - w), min(n, last + w)
                seq = np.stack([o.coarse for o in tr.obs[lo:hi]])  # type: ignore[misc]
                part = slice(tr.decided - lo, last - lo)
                needed = self._needed(seq[part], self.smoother.smooth(seq)[part])
                for g in self._groups:
                    todo[g] += [o for o, m in zip(tr.obs[tr.decided : last], needed[g]) if m]
                decided += tr.obs[tr.decided : last]
                tr.decided = last
        self._run_fine(todo)
        for o in decided:
            o.crop = None
        with self._stage("smooth"):
            for tr in self._tracks.values():
                n = len(tr.obs)
                # smoothed fine scores need the fine decisions of the w observations after
                last = n if tr.ended else min(tr.decided - w, n - 2 * w)
                if last > tr.final:
                    lo, hi = max(0, tr.final - w), min(n, last + w)
                    window = tr.obs[lo:hi]
                    coarse = np.stack([o.coarse for o in window])  # type: ignore[misc]
                    fine = {g: self._fine_rows(window, g) for g in self._groups}
                    part = slice(tr.final - lo, last - lo)
                    self._set_final(
                        tr.obs[tr.final : last],
                        coarse[part],
                        {g: v[part] for g, v in fine.items()},
                        self.smoother.smooth(coarse)[part],
                        {g: self.smoother.smooth(v)[part] for g, v in fine.items()},
                    )
                    tr.final = last
                # keep what the windows of the observations not final yet still need
                cut = max(0, tr.final - w)
                if cut and not tr.ended:
                    del tr.obs[:cut]
                    tr.decided -= cut
                    tr.final -= cut

    def _emit(self) -> list[FrameRows]:
        out = []
        while self._waiting and all(o.final for o in self._waiting[0][1]):
            frame, obs = self._waiting.popleft()
            out.append(FrameRows(frame, [o.row for o in obs]))
        return out
