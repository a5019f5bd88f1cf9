"""Face tracking across frames by box overlap: every face gets a track id that stays with it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cfcsp_sdk.faces.detection import Detection, iou_matrix


@dataclass
class _Track:
    id: int
    box: tuple[float, float, float, float]
    last_seen: int


class IouTracker:
    """Greedy IoU matching of each frame's detections to live tracks.

    A detection joins the live track it overlaps most (IoU >= ``iou_threshold``), best pairs first,
    one detection per track, so two faces in a frame never share an id. Unmatched detections start
    new tracks with fresh ids (ids are never reused). A track not matched for more than ``max_age``
    processed frames ends; a face returning after that gets a new id.
    """

    def __init__(self, iou_threshold: float = 0.3, max_age: int = 10) -> None:
        self.iou_threshold = iou_threshold
        self.max_age = max_age
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._step = -1

    def reset(self) -> None:
        self._tracks.clear()
        self._next_id = 0
        self._step = -1

    def update(self, detections: list[Detection]) -> tuple[list[int], list[int]]:
        """Assign ids to one frame's detections; returns (ids in detection order, ids of tracks that ended)."""
        self._step += 1
        ids = [-1] * len(detections)
        if self._tracks and detections:
            iou = iou_matrix([t.box for t in self._tracks], [d.box for d in detections])
            pairs = np.argwhere(iou >= self.iou_threshold)
            order = np.argsort(-iou[pairs[:, 0], pairs[:, 1]]) if len(pairs) else []
            used_t, used_d = set(), set()
            for k in order:
                ti, di = map(int, pairs[k])
                if ti in used_t or di in used_d:
                    continue
                used_t.add(ti)
                used_d.add(di)
                track = self._tracks[ti]
                track.box, track.last_seen = detections[di].box, self._step
                ids[di] = track.id
        for di, det in enumerate(detections):
            if ids[di] < 0:
                track = _Track(self._next_id, det.box, self._step)
                self._next_id += 1
                self._tracks.append(track)
                ids[di] = track.id
        ended = [t.id for t in self._tracks if self._step - t.last_seen > self.max_age]
        self._tracks = [t for t in self._tracks if self._step - t.last_seen <= self.max_age]
        return ids, ended

    @property
    def live_ids(self) -> list[int]:
        return [t.id for t in self._tracks]
