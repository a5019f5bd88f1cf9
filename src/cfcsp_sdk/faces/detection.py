"""Picking a face detector: the detector registry, :func:`get_detector`, and the two simple detectors
(:class:`WholeImageFace`, :class:`GivenFaces`).

The types every detector shares (:class:`Detection`, :class:`Detector`, :class:`FaceDetector`, the box
helpers) live in :mod:`cfcsp_sdk.faces.base`, below the detectors, and are importable from here too.
Built-in detectors are registered by import path, so naming or checking one imports only that one;
packages add detectors through the ``cfcsp_sdk.detectors`` entry-point group, or at run time with
:func:`register_detector`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cfcsp_sdk.errors import InvalidInputError, require_accepted_options
from cfcsp_sdk.faces.base import (
    Detection,
    Detector,
    FaceDetector,
    as_box,
    check_face_limits,
    clip_detections,
    iou_matrix,
    nms,
)
from cfcsp_sdk.registry import Registry

__all__ = [
    "DETECTORS",
    "ENTRY_POINT_GROUP",
    "Detection",
    "Detector",
    "FaceDetector",
    "GivenFaces",
    "WholeImageFace",
    "as_face_detector",
    "available_detectors",
    "check_detector",
    "check_face_limits",
    "clip_detections",
    "detect_many",
    "get_detector",
    "iou_matrix",
    "nms",
    "register_detector",
]

ENTRY_POINT_GROUP = "cfcsp_sdk.detectors"
DEFAULT_DETECTOR = "mtcnn"

DETECTORS: Registry[Callable[..., Detector]] = Registry(
    "detector",
    ENTRY_POINT_GROUP,
    {
        "mtcnn": "cfcsp_sdk.faces.mtcnn:MtcnnDetector",
        "yunet": "cfcsp_sdk.faces.yunet:YuNetDetector",
        "aligned": "cfcsp_sdk.faces.detection:WholeImageFace",
    },
    error=InvalidInputError,
)
"""Every named detector: a factory (usually a :class:`FaceDetector` subclass) taking the detector's options."""


class WholeImageFace(FaceDetector):
    """For images that already are aligned face crops: the whole image is one face."""

    carry_faces = False  # detection costs nothing and is exact: never carried between frames

    def detect(self, image: np.ndarray) -> list[Detection]:
        h, w = image.shape[:2]
        return [Detection(box=(0.0, 0.0, float(w), float(h)), detection_score=1.0, landmarks=None)]


class GivenFaces(FaceDetector):
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
            Detection(box=as_box(b[i]), detection_score=float(s[i]), landmarks=None if lm is None else lm[i])
            for i in range(len(b))
        ]

    def detect(self, image: np.ndarray) -> list[Detection]:
        return list(self.detections)


class _ProtocolDetector(FaceDetector):
    """A :class:`FaceDetector` around an object that only follows the :class:`Detector` protocol (has
    ``detect``). Other attributes are the object's own (``rec.detector.threshold`` still works)."""

    def __init__(self, detector: Detector) -> None:
        self.wrapped = detector
        # the abilities such objects declared by attribute before FaceDetector existed: honoured for
        # one release, with a warning, so a detector written for 0.x keeps its batching and carrying
        legacy = [n for n in ("detect_batch", "carry_faces", "smallest_face") if hasattr(detector, n)]
        if legacy:
            warnings.warn(
                f"{type(detector).__name__} declares {', '.join(legacy)} without subclassing "
                "cfcsp_sdk.faces.FaceDetector; subclass it (these attributes will stop being read)",
                DeprecationWarning,
                stacklevel=4,
            )
            if "carry_faces" in legacy:
                self.carry_faces = bool(detector.carry_faces)  # type: ignore[attr-defined]
        self._legacy = legacy

    def __getattr__(self, name: str) -> Any:
        if name == "wrapped":  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.wrapped, name)

    def __repr__(self) -> str:
        return repr(self.wrapped)

    def detect(self, image: np.ndarray) -> list[Detection]:
        return self.wrapped.detect(image)

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        if "detect_batch" in self._legacy:
            return self.wrapped.detect_batch(images)  # type: ignore[attr-defined]  # a legacy detector's own method
        return super().detect_batch(images)

    def smallest_face(self, height: int, width: int) -> float | None:
        if "smallest_face" in self._legacy:
            return self.wrapped.smallest_face(height, width)  # type: ignore[attr-defined]  # a legacy detector's own
        return None


def as_face_detector(detector: Detector) -> FaceDetector:
    """``detector`` itself if it is a :class:`FaceDetector`, else a FaceDetector around it (plain
    ``detect`` objects get the base class's defaults: per-image batches, carried faces, no smallest face)."""
    if isinstance(detector, FaceDetector):
        return detector
    if not isinstance(detector, Detector):
        raise InvalidInputError(f"{type(detector).__name__} has no detect(image) method, so it is not a Detector")
    return _ProtocolDetector(detector)


def detect_many(detector: Detector, images: Sequence[np.ndarray]) -> list[list[Detection]]:
    """Detect on several images with the detector's :meth:`FaceDetector.detect_batch`; every box is
    clipped to its image (see :func:`clip_detections`), whichever detector made it."""
    found = as_face_detector(detector).detect_batch(images)
    return [clip_detections(d, img.shape[1], img.shape[0]) for d, img in zip(found, images)]


def register_detector(name: str, factory: Callable[..., Detector]) -> Callable[..., Detector]:
    """Register a detector factory (usually a :class:`FaceDetector` subclass) under ``name`` at run time,
    so ``Recognizer(detector=name, detector_options=...)`` and ``cfcsp --detector name`` find it; warns
    with :class:`~cfcsp_sdk.registry.RegistryOverwriteWarning` if the name was already known."""
    return DETECTORS.register(name, factory)


def available_detectors() -> list[str]:
    """Names of every detector: built-in, registered at run time and from installed entry points."""
    return DETECTORS.names()


def check_detector(detector: str | Detector | None, **options: Any) -> None:
    """Raise :class:`InvalidInputError` now for what :func:`get_detector` would refuse later (an unknown
    name, an object that is not a Detector, options the detector does not take), without running it."""
    if detector is None or isinstance(detector, str):
        name = detector or DEFAULT_DETECTOR
        require_accepted_options(DETECTORS.get(name), options, f"detector {name!r}")
    elif not isinstance(detector, Detector):
        raise InvalidInputError(f"{type(detector).__name__} has no detect(image) method, so it is not a Detector")
    elif options:
        raise InvalidInputError("detector options go to a named detector, not to a Detector instance")


def get_detector(detector: str | Detector | None, **options: Any) -> FaceDetector:
    """A detector by name (``"mtcnn"``, the default, ``"yunet"``, ``"aligned"`` for pre-aligned crops, or
    a registered one) made with ``options``, or an object passed through (as a :class:`FaceDetector`)."""
    check_detector(detector, **options)
    if detector is None or isinstance(detector, str):
        name = detector or DEFAULT_DETECTOR
        made = DETECTORS.get(name)(**options)
        if not isinstance(made, Detector):
            raise InvalidInputError(
                f"detector {name!r} factory returned {type(made).__name__}, which has no detect(image) method"
            )
        return as_face_detector(made)
    return as_face_detector(detector)
