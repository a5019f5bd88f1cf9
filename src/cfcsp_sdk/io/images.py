"""Still images in, 8-bit BGR arrays out (OpenCV's channel order), with typed errors for bad input."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from cfcsp_sdk.errors import InvalidInputError, MediaError

MAX_IMAGE_PIXELS = 200_000_000
"""Images with more pixels are refused (a 14000 x 14000 photo is ~196 M pixels)."""


def to_bgr_uint8(image: np.ndarray, color: str = "bgr") -> np.ndarray:
    """Convert an image array to ``H x W x 3`` uint8 BGR.

    Accepts ``H x W`` grey, ``H x W x 1``, ``H x W x 3`` (``color`` says BGR or RGB) and ``H x W x 4``
    (alpha dropped) arrays of dtype uint8, or uint16 (scaled down by 257, 65535 -> 255). Float and
    other dtypes are refused: their value range is ambiguous.
    """
    if not isinstance(image, np.ndarray):
        raise InvalidInputError(f"an image must be a numpy array or a path, got {type(image).__name__}")
    if image.dtype == np.uint16:
        image = (image.astype(np.uint32) * 255 + 32767) // 65535
        image = image.astype(np.uint8)
    elif image.dtype != np.uint8:
        raise InvalidInputError(f"images must be uint8 or uint16, got {image.dtype}; for floats in 0..1 "
                                "pass (img * 255).round().astype(np.uint8)")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] in (3, 4):
        if color not in ("bgr", "rgb"):
            raise InvalidInputError(f"color must be 'bgr' or 'rgb', got {color!r}")
        out = image[..., :3]
        if color == "rgb":
            out = out[..., ::-1]
    else:
        raise InvalidInputError(f"an image must be HxW, HxWx1, HxWx3 or HxWx4, got shape {image.shape}")
    if out.shape[0] < 1 or out.shape[1] < 1:
        raise InvalidInputError(f"the image is empty (shape {image.shape})")
    if out.shape[0] * out.shape[1] > MAX_IMAGE_PIXELS:
        raise InvalidInputError(f"image of {out.shape[1]}x{out.shape[0]} pixels exceeds {MAX_IMAGE_PIXELS} pixels")
    return np.ascontiguousarray(out)


def load_image(source: str | os.PathLike[str] | np.ndarray, color: str = "bgr") -> np.ndarray:
    """Read an image file (any format OpenCV decodes) or take an array; returns uint8 BGR ``H x W x 3``."""
    if isinstance(source, np.ndarray):
        return to_bgr_uint8(source, color)
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidInputError(f"an image must be a path or a numpy array, got {type(source).__name__}")
    path = Path(source)
    if not path.exists():
        raise MediaError(f"no such file: {path}", path)
    if not path.is_file():
        raise MediaError(f"not a file: {path}", path)
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        raise MediaError(f"empty file: {path}", path)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise MediaError(f"not an image OpenCV can decode (or corrupt): {path}", path)
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]  # BGRA from imdecode
    return to_bgr_uint8(image, "bgr")
