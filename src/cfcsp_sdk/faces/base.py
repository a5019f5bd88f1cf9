"""What every face detector shares: the :class:`Detection` type, the :class:`Detector` protocol, the
:class:`FaceDetector` base class that declares a detector's optional abilities, and the box helpers
(clipping, limits, NMS, IoU). The detectors (mtcnn.py, yunet.py, detection.py's simple ones) import
this module; :mod:`cfcsp_sdk.faces.detection`, which picks a detector by name, sits above them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from cfcsp_sdk._deprecation import warn_deprecated
from cfcsp_sdk.errors import InvalidInputError, is_real_number


@dataclass(init=False)
class Detection:
    """One face in an image.

    Attributes:
        box: ``(x1, y1, x2, y2)`` in pixels.
        detection_score: detector confidence in 0..1 (``score``, as attribute or keyword, is its
            deprecated name).
        landmarks: ``5 x 2`` (x, y) in image order: left-in-image eye, right-in-image eye, nose tip,
            left-in-image mouth corner, right-in-image mouth corner; ``None`` if the detector has none.
    """

    box: tuple[float, float, float, float]
    detection_score: float = 1.0
    landmarks: np.ndarray | None = None

    def __init__(
        self,
        box: tuple[float, float, float, float],
        detection_score: float = 1.0,
        landmarks: np.ndarray | None = None,
        *,
        score: float | None = None,
    ) -> None:
        if score is not None:
            warn_deprecated("Detection(score=...)", "Detection(detection_score=...)")
            detection_score = score
        self.box, self.detection_score, self.landmarks = box, detection_score, landmarks

    @property
    def score(self) -> float:
        """Deprecated: :attr:`detection_score`."""
        warn_deprecated("Detection.score", "Detection.detection_score")
        return self.detection_score

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [float(v) for v in self.box],
            "detection_score": float(self.detection_score),
            "landmarks": None if self.landmarks is None else np.asarray(self.landmarks, float).tolist(),
        }

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)


@runtime_checkable
class Detector(Protocol):
    """Anything with ``detect(image_bgr) -> list[Detection]`` is a detector."""

    def detect(self, image: np.ndarray) -> list[Detection]: ...


class FaceDetector(ABC):
    """Base class of detectors: implement :meth:`detect`; override what the detector can do better.

    The pipeline asks a detector only through these declarations (never by probing attributes):

    Attributes:
        carry_faces: whether the video pipeline may carry this detector's faces between frames by
            optical flow instead of detecting on every frame (``detect_every``). ``False`` for
            detectors whose answer costs nothing and is exact (whole images, given boxes).
    """

    carry_faces: bool = True

    @abstractmethod
    def detect(self, image: np.ndarray) -> list[Detection]:
        """The faces in one BGR ``uint8`` image."""

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """The faces in each of several images (override where batching is faster); by default
        :meth:`detect` on each."""
        return [self.detect(image) for image in images]

    def smallest_face(self, height: int, width: int) -> float | None:
        """The smallest face, in pixels, this detector looks for in a ``height`` x ``width`` image, or
        ``None`` if it does not say (then image files are always decoded at full size)."""
        return None


def as_box(values: Iterable[Any]) -> tuple[float, float, float, float]:
    """Four numbers (a sequence or an array row) as a ``(x1, y1, x2, y2)`` tuple of floats."""
    x1, y1, x2, y2 = (float(v) for v in values)
    return x1, y1, x2, y2


def clip_detections(detections: Sequence[Detection], width: int, height: int) -> list[Detection]:
    """``detections`` with boxes clipped to the ``width`` x ``height`` image (a face cut by the image
    border gets the box of its visible part); detections with nothing inside the image are dropped.
    Landmarks are kept as they are, so alignment still places a cut face as the detector saw it."""
    out = []
    for d in detections:
        x1, y1, x2, y2 = d.box
        box = (min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width), min(max(y2, 0.0), height))
        if box[2] <= box[0] or box[3] <= box[1]:
            continue
        out.append(
            d
            if box == tuple(d.box)
            else Detection(box=as_box(box), detection_score=d.detection_score, landmarks=d.landmarks)
        )
    return out


def check_face_limits(min_face: float, min_face_ratio: float, min_score: float) -> None:
    """Raise :class:`InvalidInputError` unless ``min_face`` (pixels) is > 0, ``min_face_ratio`` is in
    [0, 1) and ``min_score`` in [0, 1] (the options every built-in detector takes)."""
    checks = (
        ("min_face", min_face, lambda v: v > 0, "a number of pixels > 0"),
        ("min_face_ratio", min_face_ratio, lambda v: 0 <= v < 1, "a fraction in [0, 1)"),
        ("min_score", min_score, lambda v: 0 <= v <= 1, "a score in [0, 1]"),
    )
    for name, value, ok, what in checks:
        if not is_real_number(value) or not np.isfinite(value) or not ok(value):
            raise InvalidInputError(f"{name} must be {what}, got {value!r}")


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best score first.

    ``mode="union"`` compares intersection over union, ``"min"`` intersection over the smaller box.
    """
    order = np.argsort(-scores)
    keep = []
    areas = np.maximum(0, boxes[:, 2] - boxes[:, 0]) * np.maximum(0, boxes[:, 3] - boxes[:, 1])
    while order.size:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.maximum(0, xx2 - xx1) * np.maximum(0, yy2 - yy1)
        if mode == "min":
            iou = inter / np.maximum(np.minimum(areas[i], areas[order[1:]]), 1e-9)
        else:
            iou = inter / np.maximum(areas[i] + areas[order[1:]] - inter, 1e-9)
        order = order[1:][iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def iou_matrix(a: Iterable[Sequence[float] | np.ndarray], b: Iterable[Sequence[float] | np.ndarray]) -> np.ndarray:
    """Pairwise IoU of two lists of ``(x1, y1, x2, y2)`` boxes."""
    a = np.asarray(list(a), dtype=np.float64).reshape(-1, 4)
    b = np.asarray(list(b), dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.maximum(0, x2 - x1) * np.maximum(0, y2 - y1)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)
