"""5-point similarity alignment of a face onto a model's face template."""

from __future__ import annotations

import cv2
import numpy as np

from cfcsp_sdk.config import FaceTemplate
from cfcsp_sdk.errors import InvalidInputError


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` points onto
    ``dst`` points (Umeyama's closed form, no reflection); returns a 2 x 3 matrix."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise InvalidInputError(f"need matching N x 2 point sets (N >= 2), got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s**2).sum() / len(src)
    if var_s < 1e-12:
        raise InvalidInputError("landmarks are all at one point")
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = (sig * np.diag(sign)).sum() / var_s
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def box_landmarks(box: tuple[float, float, float, float], template: FaceTemplate) -> np.ndarray:
    """Stand-in landmarks for a face known only by its box: the template's points stretched over the box.

    Used when a detector gives no landmarks; it frames the box like the template frames a face.
    """
    x1, y1, x2, y2 = box
    tw, th = template.size
    pts = np.asarray(template.points, dtype=np.float64)
    # the template's landmark spread covers about the middle of its canvas; map the canvas onto the box
    return np.stack([x1 + pts[:, 0] / tw * (x2 - x1), y1 + pts[:, 1] / th * (y2 - y1)], axis=1)


def align_face(image: np.ndarray, landmarks: np.ndarray, template: FaceTemplate) -> np.ndarray:
    """Warp ``image`` so that ``landmarks`` (5 x 2, image order) land on the template's points.

    Returns a crop of the template's canvas size; pixels from outside the image are replicated from
    its border, as frames of a video would continue beyond the crop.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (5, 2) or not np.isfinite(lm).all():
        raise InvalidInputError(f"landmarks must be 5 x 2 finite numbers, got shape {lm.shape}")
    m = similarity_transform(lm, np.asarray(template.points))
    w, h = template.size
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
