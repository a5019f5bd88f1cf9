"""Typed prediction results.

Every result has ``to_dict()`` and ``to_json(path=None)``; the tabular ones (:class:`FaceBatchResult`,
:class:`ImageResult`, :class:`VideoResult`) also ``columns``, ``to_records()`` (flat dicts, one per
row), ``to_csv(path=None)`` and ``to_dataframe()``. Typed row objects are attributes: ``predictions``,
``faces``, ``rows``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from cfcsp_sdk._deprecation import warn_deprecated
from cfcsp_sdk.errors import CfcspError, InvalidInputError


class JsonExport:
    """``to_json(path)`` for a result with ``to_dict()``: one implementation for every result type."""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_json(self, path: Any = None, **kwargs: Any) -> str:
        """Strict JSON of :meth:`to_dict` (non-finite floats as ``null``), written to ``path`` if given
        (whole or not at all); ``kwargs`` go to ``json.dumps`` (e.g. ``indent=2``). Returns the text."""
        return _write_text(dumps_json(self.to_dict(), **kwargs), path)


class TableExport(JsonExport):
    """``to_records()`` flat dicts, and the ``to_csv(path)`` / ``to_dataframe()`` views written from them.

    A subclass gives :attr:`columns` and :meth:`to_records`; the typed row objects stay on the result
    itself (``VideoResult.rows``, ``ImageResult.faces``, ``FaceBatchResult.predictions``).
    """

    @property
    def columns(self) -> list[str]:
        raise NotImplementedError

    def to_records(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def to_csv(self, path: Any = None) -> str:
        """CSV of :meth:`to_records` with a header of :attr:`columns` (a missing cell is empty), written
        to ``path`` if given (whole or not at all). Returns the text."""
        return rows_to_csv(self.to_records(), self.columns, path)

    def to_dataframe(self) -> Any:
        """A pandas DataFrame of :meth:`to_records` with :attr:`columns`.

        Raises:
            CfcspError: pandas is not installed.
        """
        return rows_to_dataframe(self.to_records(), self.columns)


@dataclass(init=False)
class FacePrediction(JsonExport):
    """The cascade's answer for one face.

    Attributes:
        label: the final label.
        label_index: its index in the model's label list.
        probabilities: a probability for every final label (sums to 1).
        coarse_probabilities: the coarse network's probabilities by coarse label (sums to 1).
        fine_probabilities: per group label (e.g. ``"Negative"``), the fine network's probabilities
            over that group's labels, or ``None`` where that fine network did not run on this face.
        unrefined: final labels whose fine network did not run on this face: each holds an even
            share of its group's coarse probability (so they are equal), not a probability of its
            own. Every output shows them as they are in :attr:`probabilities` (whose argmax is
            :attr:`label`); this list says which they are.

    ``coarse_scores`` and ``fine_scores`` (attributes and keyword arguments) are deprecated spellings
    of ``coarse_probabilities`` and ``fine_probabilities``. :meth:`to_dict` (and so JSON files) keeps
    the keys ``coarse_scores`` / ``fine_scores`` so files read as before.
    """

    label: str
    label_index: int
    probabilities: dict[str, float]
    coarse_probabilities: dict[str, float]
    fine_probabilities: dict[str, dict[str, float] | None] = field(default_factory=dict)
    unrefined: tuple[str, ...] = ()

    def __init__(
        self,
        label: str,
        label_index: int,
        probabilities: dict[str, float],
        coarse_probabilities: dict[str, float] | None = None,
        fine_probabilities: dict[str, dict[str, float] | None] | None = None,
        unrefined: tuple[str, ...] = (),
        *,
        coarse_scores: dict[str, float] | None = None,
        fine_scores: dict[str, dict[str, float] | None] | None = None,
    ) -> None:
        if coarse_scores is not None:
            warn_deprecated("FacePrediction(coarse_scores=...)", "coarse_probabilities=")
            if coarse_probabilities is not None:
                raise InvalidInputError("give coarse_probabilities only (coarse_scores is its deprecated name)")
            coarse_probabilities = coarse_scores
        if fine_scores is not None:
            warn_deprecated("FacePrediction(fine_scores=...)", "fine_probabilities=")
            if fine_probabilities is not None:
                raise InvalidInputError("give fine_probabilities only (fine_scores is its deprecated name)")
            fine_probabilities = fine_scores
        if coarse_probabilities is None:
            raise InvalidInputError("FacePrediction needs coarse_probabilities")
        self.label = label
        self.label_index = label_index
        self.probabilities = probabilities
        self.coarse_probabilities = coarse_probabilities
        self.fine_probabilities = {} if fine_probabilities is None else fine_probabilities
        self.unrefined = tuple(unrefined)

    @property
    def coarse_scores(self) -> dict[str, float]:
        """Deprecated: :attr:`coarse_probabilities`."""
        warn_deprecated("FacePrediction.coarse_scores", "FacePrediction.coarse_probabilities")
        return self.coarse_probabilities

    @property
    def fine_scores(self) -> dict[str, dict[str, float] | None]:
        """Deprecated: :attr:`fine_probabilities`."""
        warn_deprecated("FacePrediction.fine_scores", "FacePrediction.fine_probabilities")
        return self.fine_probabilities

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``label``, ``label_index``, ``probabilities``, ``coarse_scores`` (the coarse
        probabilities), ``fine_scores`` (the fine probabilities or ``None`` per group), ``unrefined``."""
        return json_safe(
            {
                "label": self.label,
                "label_index": self.label_index,
                "probabilities": dict(self.probabilities),
                # the file keys keep their 0.1 names: files written before and after the rename read the same
                "coarse_scores": dict(self.coarse_probabilities),
                "fine_scores": {k: (dict(v) if v is not None else None) for k, v in self.fine_probabilities.items()},
                "unrefined": list(self.unrefined),
            }
        )

    def table_probabilities(self) -> dict[str, float | None]:
        """``p_<label>`` cells of a CSV or DataFrame row: :attr:`probabilities`, one number per label
        (as in video tables and JSON)."""
        return {f"p_{k}": v for k, v in self.probabilities.items()}


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float (Python or numpy) replaced by ``None``, recursively
    through dicts, lists, tuples and arrays, so ``json.dumps(value, allow_nan=False)`` works: bare
    ``NaN`` tokens are not JSON and strict parsers (JavaScript's ``JSON.parse``, pandas) reject them."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def dumps_json(data: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``data`` (non-finite floats written as ``null``); ``kwargs`` go to ``json.dumps``."""
    return json.dumps(json_safe(data), allow_nan=False, **kwargs)


def _write_text(text: str, path: Any, newline: str | None = None) -> str:
    """Write ``text`` to ``path`` (if given) whole or not at all (a temporary file renamed into place);
    return the text."""
    if path is not None:
        from cfcsp_sdk.io.files import write_text_atomic

        write_text_atomic(path, text, newline=newline)
    return text


def predictions_to_rows(predictions: Sequence[FacePrediction]) -> list[dict[str, Any]]:
    """Flat rows (label, label_index and one ``p_<label>`` column per label) for CSV and pandas."""
    rows = []
    for i, p in enumerate(predictions):
        row: dict[str, Any] = {"face": i, "label": p.label, "label_index": p.label_index}
        row.update(p.table_probabilities())
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
    return _write_text(text, path, newline="")


def rows_to_dataframe(rows: list[dict[str, Any]], columns: Sequence[str]) -> Any:
    """A pandas DataFrame of ``rows`` (pandas is optional: ``pip install pandas``)."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise CfcspError("to_dataframe() needs pandas: pip install pandas") from exc
    return pd.DataFrame(rows, columns=list(columns))


_PREDICTION_ATTRIBUTES = frozenset(
    {
        "label",
        "label_index",
        "probabilities",
        "coarse_probabilities",
        "fine_probabilities",
        "unrefined",
        "coarse_scores",
        "fine_scores",
        "table_probabilities",
    }
)
_RENAMED = {"coarse_scores": "coarse_probabilities", "fine_scores": "fine_probabilities"}


@dataclass
class FaceBatchResult(TableExport):
    """Predictions for a batch of face crops, in input order (what :meth:`Recognizer.predict_faces`
    returns, for one crop too).

    Attributes:
        predictions: one :class:`FacePrediction` per crop.
        labels: the model's final labels (the ``p_<label>`` columns, in order).

    ``result[i]``, ``len(result)`` and iteration go through :attr:`predictions`. For one release, a
    result of one crop also answers :class:`FacePrediction`'s attributes (``result.label``, ...) with a
    ``DeprecationWarning``: ``predict_faces`` returned a bare FacePrediction for one crop before; use
    ``result[0].label`` or :meth:`Recognizer.predict_face`.
    """

    predictions: list[FacePrediction]
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.predictions)

    def __getitem__(self, i: int) -> FacePrediction:
        return self.predictions[i]

    def __iter__(self) -> Iterator[FacePrediction]:
        return iter(self.predictions)

    def __getattr__(self, name: str) -> Any:
        # only reached for names the batch lacks; "predictions" guards against recursion while unpickling
        if name in _PREDICTION_ATTRIBUTES and len(self.__dict__.get("predictions", ())) == 1:
            new = _RENAMED.get(name, name)
            warn_deprecated(
                f"FaceBatchResult.{name} (predict_faces of one crop)",
                f"result[0].{new}, or Recognizer.predict_face(crop).{new}",
            )
            return getattr(self.predictions[0], new)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def columns(self) -> list[str]:
        """``face``, ``label``, ``label_index``, then ``p_<label>`` per label."""
        return ["face", "label", "label_index"] + [f"p_{k}" for k in self.labels]

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per crop with the :attr:`columns` as keys."""
        return predictions_to_rows(self.predictions)

    def to_dict(self) -> dict[str, Any]:
        """``{"labels": [...], "predictions": [FacePrediction.to_dict(), ...]}``."""
        return json_safe({"labels": list(self.labels), "predictions": [p.to_dict() for p in self.predictions]})


AFFWILD2_LABELS = ("Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other")
"""Aff-Wild2 / ABAW expression label order (index 0..7), used by :meth:`VideoResult.to_abaw`."""


@dataclass
class DetectedFace(JsonExport):
    """A face found in an image, with its prediction.

    Attributes:
        box: ``(x1, y1, x2, y2)`` in pixels.
        detection_score: the detector's confidence.
        landmarks: ``5 x 2`` landmarks (image order) or ``None``.
        prediction: the cascade's answer for the aligned face.
    """

    box: tuple[float, float, float, float]
    detection_score: float
    landmarks: Any | None
    prediction: FacePrediction

    @property
    def label(self) -> str:
        """The final label (``prediction.label``)."""
        return self.prediction.label

    @property
    def probabilities(self) -> dict[str, float]:
        """A probability per final label (``prediction.probabilities``)."""
        return self.prediction.probabilities

    def to_dict(self) -> dict[str, Any]:
        """``box``, ``detection_score``, ``landmarks`` and the prediction's :meth:`FacePrediction.to_dict` keys."""
        return json_safe(
            {
                "box": [float(v) for v in self.box],
                "detection_score": float(self.detection_score),
                "landmarks": None if self.landmarks is None else [[float(x), float(y)] for x, y in self.landmarks],
                **self.prediction.to_dict(),
            }
        )


@dataclass
class ImageResult(TableExport):
    """Every face found in one image (possibly none).

    Attributes:
        faces: one :class:`DetectedFace` per face, in the detector's order (the typed rows).
        labels: the model's final labels.
        width, height: the image's size in pixels.
    """

    faces: list[DetectedFace]
    labels: tuple[str, ...]
    width: int
    height: int

    def __len__(self) -> int:
        return len(self.faces)

    def __iter__(self) -> Iterator[DetectedFace]:
        return iter(self.faces)

    def __getitem__(self, i: int) -> DetectedFace:
        return self.faces[i]

    @property
    def columns(self) -> list[str]:
        """``face``, ``x1``..``y2``, ``detection_score``, ``label``, then ``p_<label>`` per label."""
        return ["face", "x1", "y1", "x2", "y2", "detection_score", "label"] + [f"p_{k}" for k in self.labels]

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per face with the :attr:`columns` as keys (the CSV / DataFrame view)."""
        out = []
        for i, f in enumerate(self.faces):
            row: dict[str, Any] = {"face": i, "detection_score": f.detection_score, "label": f.prediction.label}
            row.update(dict(zip(("x1", "y1", "x2", "y2"), f.box)))
            row.update(f.prediction.table_probabilities())
            out.append(row)
        return out

    def rows(self) -> list[dict[str, Any]]:
        """Deprecated: :meth:`to_records` (``rows`` means typed row objects, as ``VideoResult.rows``)."""
        warn_deprecated("ImageResult.rows()", "ImageResult.to_records() (or .faces for the typed faces)")
        return self.to_records()

    def to_dict(self) -> dict[str, Any]:
        """``width``, ``height``, ``labels`` and ``faces`` (:meth:`DetectedFace.to_dict` each)."""
        return json_safe(
            {
                "width": self.width,
                "height": self.height,
                "labels": list(self.labels),
                "faces": [f.to_dict() for f in self.faces],
            }
        )


@dataclass
class FaceRow(JsonExport):
    """One face in one frame of a video, or (``track == -1``) a frame where no face was found.

    Attributes:
        frame: frame index in the video.
        time: presentation time in seconds (from the container).
        track: track id of the face (stable across frames), or -1 for a frame without a face.
        box, landmarks, detection_score: where the face is (``None`` without a face).
        label: the final label after smoothing (``None`` without a face).
        probabilities: smoothed probability per label; ``raw_probabilities``: before smoothing.
    """

    frame: int
    time: float
    track: int = -1
    box: tuple[float, float, float, float] | None = None
    landmarks: Any | None = None
    detection_score: float | None = None
    label: str | None = None
    probabilities: dict[str, float] | None = None
    raw_label: str | None = None
    raw_probabilities: dict[str, float] | None = None

    @property
    def has_face(self) -> bool:
        return self.track >= 0

    def to_dict(self) -> dict[str, Any]:
        """Every attribute plus ``has_face``; box and landmarks as lists."""
        return json_safe(
            {
                "frame": self.frame,
                "time": self.time,
                "track": self.track,
                "has_face": self.has_face,
                "box": None if self.box is None else [float(v) for v in self.box],
                "landmarks": None if self.landmarks is None else [[float(x), float(y)] for x, y in self.landmarks],
                "detection_score": self.detection_score,
                "label": self.label,
                "probabilities": self.probabilities,
                "raw_label": self.raw_label,
                "raw_probabilities": self.raw_probabilities,
            }
        )


@dataclass
class Segment:
    """A run of consecutive observations of one track with the same label."""

    label: str
    start_frame: int
    end_frame: int
    start_time: float
    end_time: float

    def to_dict(self) -> dict[str, Any]:
        return json_safe(dict(self.__dict__))


@dataclass
class TrackSummary:
    """Video-level view of one track (or of all faces, for the overall summary)."""

    track: int
    frames: int
    start_time: float
    end_time: float
    mean_probabilities: dict[str, float]
    dominant_label: str
    label_counts: dict[str, int]
    segments: list[Segment]

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["segments"] = [s.to_dict() for s in self.segments]
        return json_safe(d)


def check_abaw_labels(labels: Sequence[str]) -> None:
    """:class:`CfcspError` unless every label is one of Aff-Wild2's eight (what an ABAW file can hold)."""
    unknown = [k for k in labels if k not in AFFWILD2_LABELS]
    if unknown:
        raise CfcspError(f"labels {unknown} have no Aff-Wild2 index; the ABAW file cannot hold them")


def summarize(rows: Sequence[FaceRow], labels: Sequence[str], track: int) -> TrackSummary:
    """Mean smoothed probabilities, dominant label (highest mean), counts and label segments."""
    faces = [r for r in rows if r.has_face and r.probabilities is not None]
    if not faces:
        return TrackSummary(track, 0, float("nan"), float("nan"), {k: float("nan") for k in labels}, "", {}, [])
    probabilities = [cast("dict[str, float]", r.probabilities) for r in faces]  # rows with a face have them
    mean = {k: sum(p[k] for p in probabilities) / len(faces) for k in labels}
    counts: dict[str, int] = {}
    for r in faces:
        label = cast(str, r.label)  # a row with probabilities has its label
        counts[label] = counts.get(label, 0) + 1
    segments: list[Segment] = []
    if track >= 0:
        for r in faces:
            if segments and segments[-1].label == r.label:
                segments[-1].end_frame, segments[-1].end_time = r.frame, r.time
            else:
                segments.append(Segment(r.label, r.frame, r.frame, r.time, r.time))  # type: ignore[arg-type]
    return TrackSummary(
        track, len(faces), faces[0].time, faces[-1].time, mean, max(mean, key=mean.__getitem__), counts, segments
    )


@dataclass
class VideoResult(TableExport):
    """Results for a whole video: one row per frame and face, plus one row per frame without a face.

    Attributes:
        source: the video path or stream.
        labels: the model's final labels.
        rows: :class:`FaceRow` per (frame, face) in frame order; frames with no face have one row with
            ``track == -1``.
        fps, frame_count, width, height: what the container says (``frame_count`` may be an estimate).
        error: ``None``, or why decoding stopped early (the rows before that point are kept).
        frames_read: frames the decoder went through, decoded or skipped, up to the last one decoded
            (0 if unknown); the length of the ABAW label file.
        skipped_frames, skipped_times: indices and times (seconds) of undecodable frames passed over in
            a damaged stretch; they have no rows.
        smoothing: the SP settings used.
        timings: seconds spent per stage (decode, detect, align, model, smooth).
    """

    source: str
    labels: tuple[str, ...]
    rows: list[FaceRow]
    fps: float = 0.0
    frame_count: int = 0
    width: int = 0
    height: int = 0
    error: str | None = None
    smoothing: dict[str, Any] = field(default_factory=dict)
    frames_read: int = 0
    skipped_frames: list[int] = field(default_factory=list)
    skipped_times: list[float] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def track_ids(self) -> list[int]:
        return sorted({r.track for r in self.rows if r.has_face})

    @property
    def frames_processed(self) -> int:
        return len({r.frame for r in self.rows})

    def track(self, track_id: int) -> list[FaceRow]:
        return [r for r in self.rows if r.track == track_id]

    def tracks(self) -> dict[int, TrackSummary]:
        """Summary per track id."""
        by: dict[int, list[FaceRow]] = {}
        for r in self.rows:
            if r.has_face:
                by.setdefault(r.track, []).append(r)
        return {t: summarize(rs, self.labels, t) for t, rs in sorted(by.items())}

    def summary(self) -> dict[str, Any]:
        """Overall and per-track video-level results.

        ``dominant_labels`` maps each track to its dominant label (highest mean smoothed probability):
        the video-level verdict, one per person. ``overall`` pools every face of every track; its
        ``dominant_label`` is that of the only track, and ``None`` when there are several tracks (a
        pooled verdict would mix people: a happy and a sad face side by side could come out "Sadness").
        """
        overall = summarize(self.rows, self.labels, -1)
        tracks = self.tracks()
        pooled = {k: v for k, v in overall.to_dict().items() if k not in ("track", "segments")}
        if len(tracks) > 1:
            pooled["dominant_label"] = None
        return {
            "frames_processed": self.frames_processed,
            "frames_with_face": len({r.frame for r in self.rows if r.has_face}),
            "dominant_labels": {t: s.dominant_label for t, s in tracks.items()},
            "overall": pooled,
            "tracks": {t: s.to_dict() for t, s in tracks.items()},  # int keys, as tracks(); JSON makes them strings
        }

    def to_dict(self) -> dict[str, Any]:
        """The video's attributes, :meth:`summary` and ``rows`` (:meth:`FaceRow.to_dict` each)."""
        return json_safe(
            {
                "source": self.source,
                "labels": list(self.labels),
                "fps": self.fps,
                "frame_count": self.frame_count,
                "width": self.width,
                "height": self.height,
                "error": self.error,
                "smoothing": self.smoothing,
                "frames_read": self.frames_read,
                "skipped_frames": list(self.skipped_frames),
                "skipped_times": list(self.skipped_times),
                "summary": self.summary(),
                "rows": [r.to_dict() for r in self.rows],
            }
        )

    @property
    def columns(self) -> list[str]:
        """``frame``, ``time``, ``track``, ``has_face``, ``x1``..``y2``, ``detection_score``, ``label``,
        ``raw_label``, then ``p_<label>`` (smoothed) and ``raw_p_<label>`` per label."""
        return (
            ["frame", "time", "track", "has_face", "x1", "y1", "x2", "y2", "detection_score", "label", "raw_label"]
            + [f"p_{k}" for k in self.labels]
            + [f"raw_p_{k}" for k in self.labels]
        )

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per row of :attr:`rows` with the :attr:`columns` as keys (the CSV / DataFrame
        view): times rounded to 1 us, boxes to 0.01 px, probabilities to 6 places; cells a row lacks
        (no face) are absent."""
        out = []
        for r in self.rows:
            row: dict[str, Any] = {
                "frame": r.frame,
                "time": round(r.time, 6),
                "track": r.track,
                "has_face": int(r.has_face),
                "detection_score": r.detection_score,
                "label": r.label or "",
                "raw_label": r.raw_label or "",
            }
            if r.box is not None:
                row.update(dict(zip(("x1", "y1", "x2", "y2"), (round(v, 2) for v in r.box))))
            for prefix, probs in (("p_", r.probabilities), ("raw_p_", r.raw_probabilities)):
                if probs is not None:
                    row.update({f"{prefix}{k}": round(v, 6) for k, v in probs.items()})
            out.append(row)
        return out

    def table(self) -> list[dict[str, Any]]:
        """Deprecated: :meth:`to_records`."""
        warn_deprecated("VideoResult.table()", "VideoResult.to_records()")
        return self.to_records()

    def main_track(self) -> int | None:
        """The track seen in the most frames (ABAW videos follow one subject)."""
        counts: dict[int, int] = {}
        for r in self.rows:
            if r.has_face:
                counts[r.track] = counts.get(r.track, 0) + 1
        return max(counts, key=lambda t: (counts[t], -t)) if counts else None

    def to_abaw(self, path: Any = None, track: int | None = None, fill: str = "nearest") -> str:
        """The ABAW expression-challenge prediction file for one track (default: :meth:`main_track`).

        Line 1 is the Aff-Wild2 label header; then one line per frame the decoder went through
        (:attr:`frames_read`, not the container's estimate) with the label's Aff-Wild2 index. Frames
        without a prediction for the track (skipped by sampling or as undecodable, or no face) get the
        nearest predicted frame's label with ``fill="nearest"``, or -1 with ``fill="none"``. Labels
        the model does not have are never written; labels outside Aff-Wild2's eight raise an error.
        """
        if fill not in ("nearest", "none"):
            raise CfcspError(f"fill must be 'nearest' or 'none', got {fill!r}")
        check_abaw_labels(self.labels)
        track = self.main_track() if track is None else track
        last = 1 + max((r.frame for r in self.rows), default=-1)
        n = max(self.frames_read, last) if self.frames_read else max(self.frame_count, last)
        pred = {r.frame: AFFWILD2_LABELS.index(r.label) for r in self.rows if r.track == track and r.label}
        values = []
        known = sorted(pred)
        import bisect

        for f in range(n):
            if f in pred:
                values.append(pred[f])
            elif fill == "nearest" and known:
                j = bisect.bisect_left(known, f)
                cands = [known[k] for k in (j - 1, j) if 0 <= k < len(known)]
                values.append(pred[min(cands, key=lambda c: (abs(c - f), c))])
            else:
                values.append(-1)
        text = ",".join(AFFWILD2_LABELS) + "\n" + "".join(f"{v}\n" for v in values)
        return _write_text(text, path)
