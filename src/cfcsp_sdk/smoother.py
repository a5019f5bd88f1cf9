"""SP, smooth predicting: ``p_t = softmax(f_t + mean(f_{t-w}, ..., f_{t+w}))`` over one face's scores.

``f_t`` are a network's raw scores (logits) for frame ``t`` of one face track. The current frame's
scores are the unique term, the window mean the universal term; there are no trainable parameters.

Behaviour, fixed and documented:

* ``window`` counts observations of the track (an odd number for ``"centered"``; default 5, w = 2).
* ``"centered"`` (offline) averages ``t - w .. t + w``; ``"causal"`` (streaming) averages the
  ``window`` most recent observations ``t - window + 1 .. t`` and never looks ahead.
* At the edges of a sequence the window is cut to the observations that exist and the mean is over
  those (the first frame of a centred sequence averages ``t .. t + w``).
* A row of NaN marks an observation without scores (no face in that frame, or a fine network that did
  not run). Such rows are left out of every window mean and come back as NaN rows.
* Each track has its own state in streaming mode; tracks never mix.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Literal

import numpy as np

from cfcsp_sdk.errors import InvalidInputError, require_positive_int


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax (NaN rows stay NaN)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return (e / np.sum(e, axis=axis, keepdims=True)).astype(np.float32)


class Smoother:
    """Smooth predicting over time, offline (:meth:`smooth`) or streaming per track (:meth:`update`).

    Args:
        window: number of observations in the window (>= 1; odd for ``"centered"``). 1 turns SP into
            ``softmax(2 f_t)``, i.e. no temporal information.
        mode: ``"centered"`` (offline, the paper's) or ``"causal"`` (streaming, past frames only).
    """

    def __init__(self, window: int = 5, mode: Literal["centered", "causal"] = "centered") -> None:
        window = require_positive_int("window", window)
        if mode not in ("centered", "causal"):
            raise InvalidInputError(f"mode must be 'centered' or 'causal', got {mode!r}")
        if mode == "centered" and window % 2 == 0:
            raise InvalidInputError(f"a centered window must be odd (2w + 1 frames), got {window}")
        self.window = int(window)
        self.mode = mode
        self._history: dict[Hashable, deque[np.ndarray]] = {}

    def __repr__(self) -> str:
        return f"Smoother(window={self.window}, mode={self.mode!r})"

    @property
    def delay(self) -> int:
        """How many later observations a centred result waits for (0 in causal mode)."""
        return self.window // 2 if self.mode == "centered" else 0

    def window_mean(self, scores: np.ndarray) -> np.ndarray:
        """The universal term: mean of each row's window over the available (non-NaN) rows."""
        f = _check_scores(scores)
        t = len(f)
        valid = ~np.isnan(f).any(axis=1)
        filled = np.where(valid[:, None], f, 0.0).astype(np.float64)
        csum = np.concatenate([np.zeros((1, f.shape[1])), np.cumsum(filled, axis=0)])
        ccount = np.concatenate([[0], np.cumsum(valid)])
        idx = np.arange(t)
        if self.mode == "centered":
            lo, hi = np.maximum(idx - self.window // 2, 0), np.minimum(idx + self.window // 2 + 1, t)
        else:
            lo, hi = np.maximum(idx - self.window + 1, 0), idx + 1
        total = csum[hi] - csum[lo]
        count = (ccount[hi] - ccount[lo])[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    def smooth(self, scores: np.ndarray) -> np.ndarray:
        """Offline SP over one track's scores ``[T, K]`` (NaN rows: missing). Returns ``[T, K]`` probabilities."""
        f = _check_scores(scores)
        if len(f) == 0:
            return np.zeros_like(f, dtype=np.float32)
        return softmax(f.astype(np.float64) + self.window_mean(f))

    def update(self, track_id: Hashable, scores: np.ndarray) -> np.ndarray:
        """Streaming (causal) SP for one new observation ``[K]`` of ``track_id``; returns ``[K]`` probabilities.

        A NaN row is remembered as missing and returns NaN. Only valid in ``"causal"`` mode: a centred
        window needs future frames (use :meth:`smooth`, or buffer :attr:`delay` frames).
        """
        if self.mode != "causal":
            raise InvalidInputError("update() streams, so it needs mode='causal'")
        f = np.asarray(scores, dtype=np.float64)
        if f.ndim != 1 or f.size == 0:
            raise InvalidInputError(f"update() takes one score vector [K], got shape {f.shape}")
        hist = self._history.setdefault(track_id, deque(maxlen=self.window))
        if hist and hist[0].shape != f.shape:
            raise InvalidInputError(f"track {track_id!r} had {hist[0].shape[0]} scores, now {f.shape[0]}")
        hist.append(f)
        if np.isnan(f).any():
            return np.full(f.shape, np.nan, np.float32)
        valid = [h for h in hist if not np.isnan(h).any()]
        return softmax(f + np.mean(valid, axis=0))

    def reset(self, track_id: Hashable | None = None) -> None:
        """Forget one track's history (``track_id``) or every track's (``None``)."""
        if track_id is None:
            self._history.clear()
        else:
            self._history.pop(track_id, None)

    @property
    def tracks(self) -> list[Hashable]:
        """Track ids with streaming state."""
        return list(self._history)


def _check_scores(scores: np.ndarray) -> np.ndarray:
    f = np.asarray(scores)
    if f.ndim != 2 or f.shape[1] == 0 or not np.issubdtype(f.dtype, np.number):
        raise InvalidInputError(f"scores must be a numeric [T, K] array, got {f.dtype} {f.shape}")
    if np.isinf(f).any():
        raise InvalidInputError("scores must be finite (NaN rows mark missing observations)")
    return f.astype(np.float64)
