"""Typed prediction results with ``to_dict`` / ``to_json`` / ``to_csv`` / ``to_dataframe``."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

from cfcsp_sdk.errors import CfcspError


@dataclass
class FacePrediction:
    """The cascade's answer for one face.

    Attributes:
        label: the final label.
        label_index: its index in the model's label list.
        probabilities: a probability for every final label (sums to 1).
        coarse_scores: the coarse network's probabilities by coarse label.
        fine_scores: per group label (e.g. ``"Negative"``), the fine network's probabilities, or
            ``None`` where that fine network did not run on this face.
    """

    label: str
    label_index: int
    probabilities: dict[str, float]
    coarse_scores: dict[str, float]
    fine_scores: dict[str, Optional[dict[str, float]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "label_index": self.label_index,
            "probabilities": dict(self.probabilities),
            "coarse_scores": dict(self.coarse_scores),
            "fine_scores": {k: (dict(v) if v is not None else None) for k, v in self.fine_scores.items()},
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)


def predictions_to_rows(predictions: Sequence[FacePrediction]) -> list[dict[str, Any]]:
    """Flat rows (label, label_index and one ``p_<label>`` column per label) for CSV and pandas."""
    rows = []
    for i, p in enumerate(predictions):
        row: dict[str, Any] = {"face": i, "label": p.label, "label_index": p.label_index}
        row.update({f"p_{k}": v for k, v in p.probabilities.items()})
        rows.append(row)
    return rows


def rows_to_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str], path: Any = None) -> str:
    """Write ``rows`` as CSV to ``path`` (if given) and return the text."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    text = buf.getvalue()
    if path is not None:
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return text


def rows_to_dataframe(rows: list[dict[str, Any]], columns: Sequence[str]) -> Any:
    """A pandas DataFrame of ``rows`` (pandas is optional: ``pip install pandas``)."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise CfcspError("to_dataframe() needs pandas: pip install pandas") from exc
    return pd.DataFrame(rows, columns=list(columns))


@dataclass
class FaceBatchResult:
    """Predictions for a batch of face crops, in input order."""

    predictions: list[FacePrediction]
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.predictions)

    def __getitem__(self, i: int) -> FacePrediction:
        return self.predictions[i]

    def __iter__(self):
        return iter(self.predictions)

    @property
    def columns(self) -> list[str]:
        return ["face", "label", "label_index"] + [f"p_{k}" for k in self.labels]

    def to_dict(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "predictions": [p.to_dict() for p in self.predictions]}

    def to_json(self, path: Any = None, **kwargs: Any) -> str:
        text = json.dumps(self.to_dict(), **kwargs)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    def to_csv(self, path: Any = None) -> str:
        return rows_to_csv(predictions_to_rows(self.predictions), self.columns, path)

    def to_dataframe(self) -> Any:
        return rows_to_dataframe(predictions_to_rows(self.predictions), self.columns)
