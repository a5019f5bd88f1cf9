"""Faces in frames: detection (pluggable), 5-point alignment and tracking across frames."""

from cfcsp_sdk.faces.alignment import align_face, similarity_transform
from cfcsp_sdk.faces.detection import Detection, Detector, GivenFaces, WholeImageFace, get_detector, nms
from cfcsp_sdk.faces.tracking import FaceTracker, appearance_descriptor

__all__ = [
    "Detection",
    "Detector",
    "GivenFaces",
    "FaceTracker",
    "WholeImageFace",
    "align_face",
    "appearance_descriptor",
    "get_detector",
    "nms",
    "similarity_transform",
]
