"""Frames -> faces -> crops -> cascade -> per-track smoothing, in chunks of frames, with memory that
does not grow with video length.

Offline (centred SP) the fine networks' decision for an observation waits until the coarse scores of
the ``w`` following observations of the same track exist; until then only that observation's
preprocessed crop is kept. Final smoothing runs over the stored scores (a few numbers per face).
A fine network runs on a face when the raw or the smoothed coarse decision is its group (or always,
with ``fine_policy="always"``), so both the raw and the smoothed results come from real scores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import numpy as np

from cfcsp_sdk.cascade import Cascade
from cfcsp_sdk.config import ModelConfig
from cfcsp_sdk.faces.alignment import align_face, box_landmarks
from cfcsp_sdk.faces.detection import Detection, Detector, detect_many
from cfcsp_sdk.faces.tracking import FaceTracker, appearance_descriptor
from cfcsp_sdk.io.video import Frame
from cfcsp_sdk.preprocess import crops_to_batch
from cfcsp_sdk.results import FaceRow
from cfcsp_sdk.smoother import Smoother, softmax


def aligned_crops(image: np.ndarray, detections: Sequence[Detection], config: ModelConfig) -> list[np.ndarray]:
    """Crops of ``detections`` aligned on the model's face template (box-derived points without landmarks)."""
    template = config.preprocessing.face_template
    return [
        align_face(image, d.landmarks if d.landmarks is not None else box_landmarks(d.box, template), template)
        for d in detections
    ]


@dataclass
class _Track:
    rows: list[int] = field(default_factory=list)  # row indices, in time order
    decided: int = 0  # how many of them have their fine decision made


class VideoPipeline:
    """Runs detection, alignment, tracking, the cascade and SP over a stream of frames.

    Use :meth:`process` per chunk of frames, then :meth:`finish`; or :meth:`stream` for causal,
    frame-by-frame output.
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
    ) -> None:
        self.config, self.cascade, self.smoother, self.detector = config, cascade, smoother, detector
        self.batch_size = batch_size
        self.tracker = tracker or FaceTracker()
        # detectors that cost nothing and are exact (whole-image crops, given boxes) are never carried
        self.detect_every = detect_every if getattr(detector, "carry_faces", True) else 1
        self._since_detection = self.detect_every  # sampled frames since the detector last ran
        self.rows: dict[int, FaceRow] = {}  # row id -> row (ids grow; streaming drops old rows)
        self.coarse: dict[int, np.ndarray] = {}
        self.fine: dict[int, dict[int, np.ndarray]] = {i: {} for i in range(len(config.cascade.groups))}
        self.tracks: dict[int, _Track] = {}
        self._next_row = 0
        self.ended: set[int] = set()
        self.timings = {"detect": 0.0, "align": 0.0, "model": 0.0, "smooth": 0.0}  # seconds per stage
        self.pending: dict[int, np.ndarray] = {}  # row -> preprocessed crop awaiting the fine decision

    # ---- stages ------------------------------------------------------------------------------
    def _run(self, fn, batch: np.ndarray) -> np.ndarray:
        return np.concatenate([fn(batch[i : i + self.batch_size]) for i in range(0, len(batch), self.batch_size)])

    def process(self, frames: Sequence[Frame]) -> list[int]:
        """Detect, align, track and run the coarse network on a chunk of frames; returns new row indices."""
        if not frames:
            return []
        t0 = time.perf_counter()
        batched = detect_many(self.detector, [f.image for f in frames]) if self.detect_every == 1 else None
        self.timings["detect"] += time.perf_counter() - t0
        new_rows, crops, ended_all = [], [], []
        for i, frame in enumerate(frames):
            t1 = time.perf_counter()
            dets, ids, ended = self._faces(frame, batched[i] if batched is not None else None)
            t2 = time.perf_counter()
            self.timings["detect"] += t2 - t1
            frame_crops = aligned_crops(frame.image, dets, self.config)
            if ids is None:
                ids, ended = self.tracker.update(
                    dets, frame.time, [appearance_descriptor(c) for c in frame_crops],
                    image=frame.image)
            ended_all += ended
            if not dets:
                new_rows.append(self._add_row(FaceRow(frame=frame.index, time=frame.time)))
            for det, tid, crop in zip(dets, ids, frame_crops):
                r = self._add_row(FaceRow(frame=frame.index, time=frame.time, track=tid, box=det.box,
                                          landmarks=det.landmarks, detection_score=det.score))
                self.tracks.setdefault(tid, _Track()).rows.append(r)
                crops.append((r, crop))
                new_rows.append(r)
            self.timings["align"] += time.perf_counter() - t2
        t2 = time.perf_counter()
        if crops:
            batch = crops_to_batch([c for _, c in crops], self.config.preprocessing, "bgr")
            t3 = time.perf_counter()
            self.timings["align"] += t3 - t2
            logits = self._run(self.cascade.run_coarse, batch)
            for (r, _), x, lg in zip(crops, batch, logits):
                self.coarse[r] = lg
                self.pending[r] = x
        t4 = time.perf_counter()
        self._decide_fine(ended=set(ended_all))
        self.timings["model"] += time.perf_counter() - (t3 if crops else t4)
        self.ended = set(ended_all)
        return new_rows

    def _faces(self, frame: Frame, detected: list[Detection] | None
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

    def _add_row(self, row: FaceRow) -> int:
        r = self._next_row
        self._next_row += 1
        self.rows[r] = row
        return r

    def _decide_fine(self, ended: set[int] = frozenset(), flush: bool = False) -> None:  # type: ignore[assignment]
        """Run fine networks on every pending face whose smoothed coarse score is final."""
        w = self.smoother.delay
        todo: dict[int, list[int]] = {i: [] for i in self.fine}
        decided: list[int] = []
        for tid, tr in self.tracks.items():
            n = len(tr.rows)
            last = n if (flush or tid in ended) else n - w  # observations [decided, last) are decidable
            if last <= tr.decided:
                continue
            lo = max(0, tr.decided - (self.smoother.window - 1 if self.smoother.mode == "causal" else w))
            hi = min(n, last + w)
            seq = np.stack([self.coarse[r] for r in tr.rows[lo:hi]])  # type: ignore[misc]
            smooth = self.smoother.smooth(seq)[tr.decided - lo : last - lo]
            raw = seq[tr.decided - lo : last - lo]
            needed = self.cascade.fine_needed(softmax(raw))
            needed_s = self.cascade.fine_needed(smooth)
            for g in self.fine:
                mask = needed[g] | needed_s[g]
                todo[g] += [r for r, m in zip(tr.rows[tr.decided : last], mask) if m]
            decided += tr.rows[tr.decided : last]
            tr.decided = last
        for g, rows in todo.items():
            if not rows:
                continue
            logits = self._run(lambda b, g=g: self.cascade.run_group(g, b), np.stack([self.pending[r] for r in rows]))
            for r, lg in zip(rows, logits):
                self.fine[g][r] = lg
        for r in decided:
            self.pending.pop(r, None)

    # ---- final scores ------------------------------------------------------------------------
    def _finalize(self, track_rows: Iterable[tuple[int, list[int]]], only: set[int] | None = None) -> None:
        labels = self.config.labels
        groups = self.config.cascade.groups
        for _, rows in track_rows:
            coarse = np.stack([self.coarse[r] for r in rows])  # type: ignore[misc]
            fine = {g: np.stack([self.fine[g].get(r, np.full(len(groups[g].labels), np.nan, np.float32)) for r in rows])
                    for g in self.fine}
            raw_p, raw_l = self.cascade.combine(softmax(coarse), {g: softmax(v) for g, v in fine.items()})
            sm_p, sm_l = self.cascade.combine(self.smoother.smooth(coarse), {g: self.smoother.smooth(v) for g, v in fine.items()})
            for i, r in enumerate(rows):
                if only is not None and r not in only:
                    continue
                row = self.rows[r]
                row.raw_probabilities = dict(zip(labels, map(float, raw_p[i])))
                row.raw_label = labels[int(raw_l[i])]
                row.probabilities = dict(zip(labels, map(float, sm_p[i])))
                row.label = labels[int(sm_l[i])]

    def finish(self) -> list[FaceRow]:
        """Decide every pending face, smooth every track over its whole length, return all rows."""
        t0 = time.perf_counter()
        self._decide_fine(flush=True)
        t1 = time.perf_counter()
        self._finalize((t, tr.rows) for t, tr in self.tracks.items())
        self.timings["model"] += t1 - t0
        self.timings["smooth"] += time.perf_counter() - t1
        return [self.rows[r] for r in sorted(self.rows)]

    def stream(self, frames: Iterable[Frame], chunk: int = 1) -> Iterator[tuple[Frame, list[FaceRow]]]:
        """Causal processing: yields each frame with its finished rows as soon as its chunk is done."""
        if self.smoother.mode != "causal":
            raise ValueError("stream() needs a causal smoother")
        buf: list[Frame] = []

        def flush() -> Iterator[tuple[Frame, list[FaceRow]]]:
            new = self.process(buf)
            new_set = set(new)
            touched = {self.rows[r].track for r in new if self.rows[r].has_face}
            history = self.smoother.window - 1
            self._finalize(((t, self.tracks[t].rows[-(history + len(new)):]) for t in touched), only=new_set)
            by_frame: dict[int, list[FaceRow]] = {}
            for r in new:
                by_frame.setdefault(self.rows[r].frame, []).append(self.rows[r])
            for f in buf:
                yield f, by_frame.get(f.index, [])
            # streaming keeps no history beyond the smoothing window
            for t in touched | self.ended:
                tr = self.tracks.get(t)
                if tr is None:
                    continue
                keep = tr.rows[-history:] if history and t not in self.ended else []
                for r in tr.rows[: len(tr.rows) - len(keep)]:
                    self.coarse.pop(r, None)
                    for g in self.fine:
                        self.fine[g].pop(r, None)
                if t in self.ended:
                    del self.tracks[t]
                else:
                    tr.rows, tr.decided = keep, len(keep)
            kept = {r for tr in self.tracks.values() for r in tr.rows}
            for r in list(self.rows):
                if r not in kept:
                    del self.rows[r]

        for frame in frames:
            buf.append(frame)
            if len(buf) >= chunk:
                yield from flush()
                buf = []
        if buf:
            yield from flush()
