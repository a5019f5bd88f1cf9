"""Face detections and the Detector protocol; built-in detectors are looked up by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from cfcsp_sdk.errors import InvalidInputError, is_real_number, require_accepted_options


@dataclass
class Detection:
    """One face in an image.

    Attributes:
        box: ``(x1, y1, x2, y2)`` in pixels.
        score: detector confidence in 0..1.
        landmarks: ``5 x 2`` (x, y) in image order: left-in-image eye, right-in-image eye, nose tip,
            left-in-image mouth corner, right-in-image mouth corner; ``None`` if the detector has none.
    """

    box: tuple[float, float, float, float]
    score: float = 1.0
    landmarks: Optional[np.ndarray] = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [float(v) for v in self.box],
            "score": float(self.score),
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


def detect_many(detector: Detector, images: Sequence[np.ndarray]) -> list[list[Detection]]:
    """Detect on several images, batched when the detector supports ``detect_batch``; every box is
    clipped to its image (see :func:`clip_detections`), whichever detector made it."""
    batch = getattr(detector, "detect_batch", None)
    found = batch(images) if batch is not None else [detector.detect(img) for img in images]
    return [clip_detections(d, img.shape[1], img.shape[0]) for d, img in zip(found, images)]


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
        out.append(d if box == tuple(d.box) else Detection(box=tuple(map(float, box)), score=d.score, landmarks=d.landmarks))
    return out


def check_face_limits(min_face: float, min_face_ratio: float, min_score: float) -> None:
    """Raise :class:`InvalidInputError` unless ``min_face`` (pixels) is > 0, ``min_face_ratio`` is in
    [0, 1) and ``min_score`` in [0, 1] (the options every built-in detector takes)."""
    checks = (("min_face", min_face, lambda v: v > 0, "a number of pixels > 0"),
              ("min_face_ratio", min_face_ratio, lambda v: 0 <= v < 1, "a fraction in [0, 1)"),
              ("min_score", min_score, lambda v: 0 <= v <= 1, "a score in [0, 1]"))
    for name, value, ok, what in checks:
        if not is_real_number(value) or not np.isfinite(value) or not ok(value):
            raise InvalidInputError(f"{name} must be {what}, got {value!r}")


class WholeImageFace:
    """For images that already are aligned face crops: the whole image is one face."""

    carry_faces = False  # detection costs nothing and is exact: never carried between frames

    def detect(self, image: np.ndarray) -> list[Detection]:
        h, w = image.shape[:2]
        return [Detection(box=(0.0, 0.0, float(w), float(h)), score=1.0, landmarks=None)]


class GivenFaces:
    """Bring your own boxes and landmarks: returns the detections it was given (for every image).

    Args:
        boxes: ``N x 4`` boxes ``(x1, y1, x2, y2)``.
        landmarks: optional ``N x 5 x 2`` landmarks (image order, see :class:`Detection`).
        scores: optional ``N`` scores (default 1).
    """

    carry_faces = False  # the caller's faces are exact: never carried between frames

    def __init__(self, boxes: Any, landmarks: Any = None, scores: Any = None) -> None:
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) if len(boxes) else np.zeros((0, 4))
        if not np.isfinite(b).all() or (b[:, 2] <= b[:, 0]).any() or (b[:, 3] <= b[:, 1]).any():
            raise InvalidInputError("boxes must be finite (x1, y1, x2, y2) with x2 > x1 and y2 > y1")
        lm = None
        if landmarks is not None:
            lm = np.asarray(landmarks, dtype=np.float64)
            if lm.shape != (len(b), 5, 2) or not np.isfinite(lm).all():
                raise InvalidInputError(f"landmarks must be finite, shape ({len(b)}, 5, 2), got {lm.shape}")
        s = np.ones(len(b)) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(s) != len(b):
            raise InvalidInputError("scores must have one value per box")
        self.detections = [
            Detection(box=tuple(map(float, b[i])), score=float(s[i]), landmarks=None if lm is None else lm[i])
            for i in range(len(b))
        ]

    def detect(self, image: np.ndarray) -> list[Detection]:
        return list(self.detections)


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


def iou_matrix(a: Iterable[Sequence[float]], b: Iterable[Sequence[float]]) -> np.ndarray:
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


def _detector_factory(detector: str | None) -> Callable[..., Detector]:
    if detector == "yunet":
        from cfcsp_sdk.faces.yunet import YuNetDetector

        return YuNetDetector
    if detector is None or detector == "mtcnn":
        from cfcsp_sdk.faces.mtcnn import MtcnnDetector

        return MtcnnDetector
    if detector == "aligned":
        return WholeImageFace
    raise InvalidInputError(f"unknown detector {detector!r}; use 'yunet', 'mtcnn', 'aligned' or a Detector")


def check_detector(detector: str | Detector | None, **options: Any) -> None:
    """Raise :class:`InvalidInputError` now for what :func:`get_detector` would refuse later (an unknown
    name, an object that is not a Detector, options the detector does not take), without loading it."""
    if detector is None or isinstance(detector, str):
        require_accepted_options(_detector_factory(detector), options, f"detector {detector or 'mtcnn'!r}")
    elif not isinstance(detector, Detector):
        raise InvalidInputError(f"{type(detector).__name__} has no detect(image) method, so it is not a Detector")
    elif options:
        raise InvalidInputError("detector options go to a named detector, not to a Detector instance")


def get_detector(detector: str | Detector | None, **options: Any) -> Detector:
    """A detector by name (``"mtcnn"``, the default, ``"yunet"``, ``"aligned"`` for pre-aligned crops)
    or passed through."""
    check_detector(detector, **options)
    if detector is None or isinstance(detector, str):
        return _detector_factory(detector)(**options)
    return detector
