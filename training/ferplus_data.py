"""FER+ label schema used by the SDK's default model, shared by training and evaluation.

FER+ columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, not_a_face.
The model's final labels are Aff-Wild2's first seven (no "Other": FER+ has none). Contempt has no
final label: its votes are removed from every soft target and faces whose majority vote is contempt
are left out of training; evaluation reports accuracy with them left out and with them counted wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FINAL_LABELS = ["Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise"]
COARSE_LABELS = ["Neutral", "Happiness", "Surprise", "Negative"]
NEGATIVE_LABELS = ["Anger", "Disgust", "Fear", "Sadness"]

# FER+ vote column -> index in each label list (-1: not part of that list)
_COL_TO_FINAL = np.array([0, 4, 6, 5, 1, 2, 3, -1, -1, -1])
_COL_TO_COARSE = np.array([0, 1, 2, 3, 3, 3, 3, -1, -1, -1])
_COL_TO_NEGATIVE = np.array([-1, -1, -1, 3, 0, 1, 2, -1, -1, -1])
CONTEMPT, UNKNOWN, NOT_A_FACE = 7, 8, 9


@dataclass
class Split:
    images: np.ndarray  # uint8 [N, 48, 48]
    votes: np.ndarray  # int16 [N, 10]

    @property
    def majority(self) -> np.ndarray:
        return self.votes.argmax(axis=1)

    def valid_faces(self) -> np.ndarray:
        """Mask of faces kept by the usual protocol: majority is neither unknown nor not-a-face."""
        return ~np.isin(self.majority, [UNKNOWN, NOT_A_FACE])


# A fixed slice of FER+ train held out from training to fit calibration on faces no network has seen
# (the shipped networks learn from valid too, so valid cannot serve). Same faces on every machine.
CALIBRATION_FACES, CALIBRATION_SEED = 2000, 20261129


def calibration_rows(n_train: int) -> np.ndarray:
    return np.sort(np.random.default_rng(CALIBRATION_SEED).permutation(n_train)[:CALIBRATION_FACES])


def load_split(data_dir: str | Path, name: str) -> Split:
    """An official split (train, valid, test) or ``calibration`` (a fixed slice of train) or
    ``train-calibration`` (train without that slice)."""
    base = "train" if name in ("calibration", "train-calibration") else name
    with np.load(Path(data_dir) / f"{base}.npz") as d:
        split = Split(images=d["images"], votes=d["votes"].astype(np.float32))
    if base != name:
        rows = calibration_rows(len(split.images))
        if name == "train-calibration":
            rows = np.setdiff1d(np.arange(len(split.images)), rows)
        split = Split(images=split.images[rows], votes=split.votes[rows])
    return split


def _soft(votes: np.ndarray, col_map: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(votes), k), np.float32)
    for col, idx in enumerate(col_map):
        if idx >= 0:
            out[:, idx] += votes[:, col]
    s = out.sum(axis=1, keepdims=True)
    return out / np.maximum(s, 1e-6)


def targets(split: Split, task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, soft targets, majority label) of ``split`` for ``task`` in coarse / negative / flat."""
    maj = split.majority
    keep = split.valid_faces() & (maj != CONTEMPT)
    if task == "coarse":
        col_map, k = _COL_TO_COARSE, 4
    elif task == "negative":
        col_map, k = _COL_TO_NEGATIVE, 4
        keep &= _COL_TO_NEGATIVE[maj] >= 0
    elif task == "flat":
        col_map, k = _COL_TO_FINAL, 7
    else:
        raise ValueError(task)
    rows = np.flatnonzero(keep)
    soft = _soft(split.votes[rows], col_map, k)
    return rows, soft, col_map[maj[rows]]


def final_majority(split: Split) -> np.ndarray:
    """Majority label of every face as a final-label index; -1 for contempt / unknown / not-a-face."""
    return _COL_TO_FINAL[split.majority]
