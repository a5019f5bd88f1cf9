"""Aligned face crops (uint8 images) -> the float32 NCHW batch a model's networks take."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np

from cfcsp_sdk.config import Preprocessing
from cfcsp_sdk.errors import InvalidInputError

CropColor = Literal["bgr", "rgb", "gray"]
Crops = np.ndarray | Sequence[np.ndarray]

_INTERPOLATION = {
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
}


def split_crops(crops: Crops) -> tuple[list[np.ndarray], bool]:
    """Normalise one crop or a batch into a list of 2-D/3-D crops; the flag says a single crop came in.

    One crop is ``H x W`` (grey), ``H x W x 1``, ``H x W x 3`` or ``H x W x 4`` (alpha is dropped); a
    batch is an ``N x H x W x C`` array, an ``N x H x W`` grey array, or a list. A 3-D array whose last
    axis is 1, 3 or 4 is read as one crop, never as a batch of that many pixels wide grey crops.
    """
    if isinstance(crops, np.ndarray):
        if crops.ndim == 2 or (crops.ndim == 3 and crops.shape[-1] in (1, 3, 4)):
            return [crops], True
        if crops.ndim in (3, 4):
            return list(crops), False
        raise InvalidInputError(f"crops must be HxW, HxWxC or a batch of those, got an array of shape {crops.shape}")
    if isinstance(crops, (list, tuple)):
        if not all(isinstance(c, np.ndarray) for c in crops):
            raise InvalidInputError("a list of crops must hold numpy arrays only")
        return list(crops), False
    raise InvalidInputError(f"crops must be a numpy array or a list of arrays, got {type(crops).__name__}")


def _to_model_color(crop: np.ndarray, color: CropColor, target: str) -> np.ndarray:
    if crop.ndim == 2:
        grey = crop
        if target == "gray":
            return grey
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB if target == "rgb" else cv2.COLOR_GRAY2BGR)
    if color == "gray":
        raise InvalidInputError(f"color='gray' needs HxW crops, got shape {crop.shape}")
    if target == "gray":
        return cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY if color == "bgr" else cv2.COLOR_RGB2GRAY)
    return crop if target == color else crop[..., ::-1]


def crops_to_batch(crops: Sequence[np.ndarray], pre: Preprocessing, color: CropColor = "bgr") -> np.ndarray:
    """Resize, colour-convert and normalise uint8 crops into a float32 ``[N, C, H, W]`` batch.

    Args:
        crops: uint8 arrays, ``H x W`` (grey) or ``H x W x 3`` in ``color`` channel order
            (``H x W x 1`` is grey; the alpha of ``H x W x 4`` is dropped).
        pre: the model's preprocessing section.
        color: channel order of 3-channel crops: ``"bgr"`` (OpenCV's, the default) or ``"rgb"``.
    """
    if color not in ("bgr", "rgb", "gray"):
        raise InvalidInputError(f"color must be 'bgr', 'rgb' or 'gray', got {color!r}")
    h, w = pre.input_size
    out = np.empty((len(crops), pre.channels, h, w), np.float32)
    mean = np.asarray(pre.mean, np.float32).reshape(-1, 1, 1)
    std = np.asarray(pre.std, np.float32).reshape(-1, 1, 1)
    for i, crop in enumerate(crops):
        if crop.dtype != np.uint8:
            raise InvalidInputError(f"crop {i} must be uint8 (0..255), got {crop.dtype}")
        if not (crop.ndim == 2 or (crop.ndim == 3 and crop.shape[2] in (1, 3, 4))) or min(crop.shape[:2]) < 1:
            raise InvalidInputError(f"crop {i} must be HxW, HxWx1, HxWx3 or HxWx4, got shape {crop.shape}")
        if crop.ndim == 3 and crop.shape[2] != 3:
            crop = crop[..., 0] if crop.shape[2] == 1 else crop[..., :3]
        img = _to_model_color(np.ascontiguousarray(crop), color, pre.color)
        if img.shape[:2] != (h, w):
            img = cv2.resize(img, (w, h), interpolation=_INTERPOLATION[pre.interpolation])
        chw = img[None] if img.ndim == 2 else img.transpose(2, 0, 1)
        out[i] = (chw.astype(np.float32) * pre.scale - mean) / std
    return out
