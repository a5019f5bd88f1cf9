"""Test-time views: score a face more than once (its mirror image, the crop moved a pixel) and average.

A :class:`Views` turns a preprocessed batch ``[N, C, H, W]`` into ``passes * N`` crops (view-major:
all faces in the first view, then all in the second, ...) and averages the networks' logits back to
``[N, K]``. The cascade applies them around every network call, so they work the same with every
backend and can be chosen per :class:`~cfcsp_sdk.Recognizer` (``views=``) without re-exporting a model.

A shifted view ``(dx, dy)`` is the crop moved ``dx`` pixels right and ``dy`` down, the border pixels
repeated into the gap; with ``mirror`` every view is also scored mirrored (left-right).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cfcsp_sdk.errors import InvalidInputError

MAX_SHIFT = 8  # pixels
MAX_SHIFTS = 8


@dataclass(frozen=True)
class Views:
    """Which views of each face the networks score.

    Attributes:
        mirror: also score the left-right mirror image of each view.
        shifts: extra views, each the crop moved ``(dx, dy)`` pixels (right, down), ``|d| <= 8``.
    """

    mirror: bool = False
    shifts: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.mirror, (bool, np.bool_)):
            raise InvalidInputError(f"views: mirror must be true or false, got {self.mirror!r}")
        shifts = tuple(self.shifts)
        if len(shifts) > MAX_SHIFTS:
            raise InvalidInputError(f"views: at most {MAX_SHIFTS} shifts, got {len(shifts)}")
        clean = []
        for s in shifts:
            ok = (
                isinstance(s, (list, tuple))
                and len(s) == 2
                and all(
                    isinstance(v, (int, np.integer))
                    and not isinstance(v, (bool, np.bool_))
                    and abs(int(v)) <= MAX_SHIFT
                    for v in s
                )
            )
            if not ok:
                raise InvalidInputError(
                    f"views: each shift is [dx, dy] with integers of at most {MAX_SHIFT} in size, got {s!r:.60}"
                )
            clean.append((int(s[0]), int(s[1])))
        object.__setattr__(self, "mirror", bool(self.mirror))
        object.__setattr__(self, "shifts", tuple(clean))

    @property
    def passes(self) -> int:
        """Network passes per face."""
        return (1 + len(self.shifts)) * (2 if self.mirror else 1)

    def to_dict(self) -> dict[str, Any]:
        return {"mirror": self.mirror, "shifts": [list(s) for s in self.shifts]}

    def describe(self) -> str:
        if self.passes == 1:
            return "none (each face scored once)"
        parts = ["the crop"] + [f"the crop moved ({dx}, {dy}) px" for dx, dy in self.shifts]
        return ", ".join(parts) + (", each with its mirror image" if self.mirror else "") + f" ({self.passes} passes)"

    def expand(self, batch: np.ndarray) -> np.ndarray:
        """``[N, C, H, W]`` -> ``[passes * N, C, H, W]``, view-major (float32)."""
        if self.passes == 1:
            return batch
        views = [batch] + [_shifted(batch, dx, dy) for dx, dy in self.shifts]
        if self.mirror:
            views = [v for base in views for v in (base, base[..., ::-1])]
        return np.ascontiguousarray(np.concatenate(views, axis=0))

    def average(self, logits: np.ndarray, n: int) -> np.ndarray:
        """Mean over the views of ``[passes * N, K]`` logits -> ``[N, K]``."""
        if self.passes == 1:
            return logits
        return logits.reshape(self.passes, n, logits.shape[-1]).mean(axis=0, dtype=np.float64).astype(logits.dtype)


def _shifted(batch: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``batch`` moved right by ``dx`` and down by ``dy`` pixels, same size, borders repeated."""
    p = max(abs(dx), abs(dy))
    if p == 0:
        return batch
    h, w = batch.shape[2:]
    padded = np.pad(batch, ((0, 0), (0, 0), (p, p), (p, p)), mode="edge")
    return padded[:, :, p - dy : p - dy + h, p - dx : p - dx + w]


PRESETS = ("model", "none", "mirror")
ViewsLike = None | str | Views | Mapping[str, Any]


def parse_views(value: ViewsLike, model_views: Views) -> Views:
    """A :class:`Views` from what a caller passed: ``None`` or ``"model"`` (the model's own views),
    ``"none"``, ``"mirror"``, a mapping ``{"mirror": bool, "shifts": [[dx, dy], ...]}`` or a Views.

    Raises:
        InvalidInputError: anything else.
    """
    if value is None or (isinstance(value, str) and value == "model"):
        return model_views
    if isinstance(value, Views):
        return value
    if isinstance(value, str):
        if value == "none":
            return Views()
        if value == "mirror":
            return Views(mirror=True)
        raise InvalidInputError(f"views must be one of {PRESETS}, a mapping or a Views, got {value!r}")
    if isinstance(value, Mapping):
        unknown = set(value) - {"mirror", "shifts"}
        if unknown:
            raise InvalidInputError(f"views: unknown keys {sorted(unknown)}; use 'mirror' and 'shifts'")
        shifts = value.get("shifts", ())
        if not isinstance(shifts, (list, tuple)):
            raise InvalidInputError(f"views: shifts must be a list of [dx, dy], got {shifts!r:.60}")
        return Views(mirror=value.get("mirror", False), shifts=tuple(shifts))
    raise InvalidInputError(f"views must be one of {PRESETS}, a mapping or a Views, got {type(value).__name__}")
