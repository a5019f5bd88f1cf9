"""Faces in frames: detection (pluggable), 5-point alignment and tracking across frames."""

from cfcsp_sdk.faces.alignment import align_face, similarity_transform
from cfcsp_sdk.faces.base import Detection, Detector, FaceDetector, nms
from cfcsp_sdk.faces.detection import GivenFaces, WholeImageFace, available_detectors, get_detector, register_detector
from cfcsp_sdk.faces.tracking import FaceTracker, appearance_descriptor

__all__ = [
    "Detection",
    "Detector",
    "FaceDetector",
    "GivenFaces",
    "FaceTracker",
    "WholeImageFace",
    "align_face",
    "appearance_descriptor",
    "available_detectors",
    "get_detector",
    "nms",
    "register_detector",
    "similarity_transform",
]
