"""Pictures of results: annotated frames and videos (OpenCV), per-track timeline plots (matplotlib)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from cfcsp_sdk.errors import CfcspError, MediaError
from cfcsp_sdk.results import FaceRow, VideoResult

_PALETTE = [(66, 135, 245), (245, 66, 93), (66, 245, 141), (245, 200, 66), (194, 66, 245), (66, 230, 245),
            (245, 130, 66), (150, 150, 150)]


def track_color(track: int) -> tuple[int, int, int]:
    """A stable BGR colour per track id."""
    return _PALETTE[track % len(_PALETTE)]


def annotate_frame(image: np.ndarray, rows: Sequence[FaceRow], labels: Sequence[str], bars: bool = True) -> np.ndarray:
    """A copy of ``image`` (BGR) with each face's box, track id, label and probability bars drawn."""
    out = image.copy()
    h, w = out.shape[:2]
    scale = max(0.4, min(w, h) / 900)
    for row in rows:
        if not row.has_face or row.box is None:
            continue
        color = track_color(row.track)
        x1, y1, x2, y2 = (int(round(v)) for v in row.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, max(1, int(2 * scale)))
        text = f"#{row.track} {row.label or ''}"
        if row.probabilities and row.label:
            text += f" {row.probabilities[row.label]:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, 1)
        ty = max(th + base, y1 - 4)
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw + 4, ty + base // 2), color, -1)
        cv2.putText(out, text, (x1 + 2, ty - base // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
        if bars and row.probabilities:
            bar_w = int(90 * scale)
            line = int(14 * scale) + 2
            bx = x2 + 4 if x2 + 4 + bar_w + int(70 * scale) < w else max(0, x1 - bar_w - int(74 * scale))
            for i, k in enumerate(labels):
                by = y1 + i * line
                p = row.probabilities.get(k, 0.0)
                cv2.rectangle(out, (bx, by), (bx + bar_w, by + line - 3), (40, 40, 40), -1)
                cv2.rectangle(out, (bx, by), (bx + int(bar_w * p), by + line - 3), color, -1)
                cv2.putText(out, k[:9], (bx + bar_w + 3, by + line - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale,
                            (255, 255, 255), 1, cv2.LINE_AA)
    return out


def write_annotated_video(result: VideoResult, path: str | os.PathLike[str], fourcc: str = "mp4v") -> Path:
    """Decode ``result.source`` again and write every frame with its faces drawn to ``path``.

    Frames skipped by sampling show the rows of the latest sampled frame before them.
    """
    from cfcsp_sdk.io.video import VideoReader

    by_frame: dict[int, list[FaceRow]] = {}
    for r in result.rows:
        by_frame.setdefault(r.frame, []).append(r)
    reader = VideoReader(result.source)
    fps = reader.info.fps if reader.info.fps > 0 else 25.0
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (reader.info.width, reader.info.height))
    if not writer.isOpened():
        reader.close()
        raise MediaError(f"cannot write a video to {path} (codec {fourcc!r})", path)
    current: list[FaceRow] = []
    try:
        for frame in reader:
            current = by_frame.get(frame.index, current)
            writer.write(annotate_frame(frame.image, current, result.labels))
    finally:
        writer.release()
    return Path(path)


def plot_timeline(result: VideoResult, path: str | os.PathLike[str], tracks: Sequence[int] | None = None) -> Path:
    """A PNG with one panel per track: smoothed probability of every label over time."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise CfcspError("plot_timeline() needs matplotlib: pip install 'cfcsp-sdk[plot]'") from exc
    ids = list(tracks) if tracks is not None else result.track_ids
    n = max(1, len(ids))
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.4 * n + 0.6), sharex=True, squeeze=False)
    for ax, tid in zip(axes[:, 0], ids or [None]):
        if tid is None:
            ax.text(0.5, 0.5, "no face found", ha="center", va="center", transform=ax.transAxes)
            continue
        rows = result.track(tid)
        t = [r.time for r in rows]
        for k in result.labels:
            ax.plot(t, [r.probabilities[k] for r in rows], label=k, lw=1.4)  # type: ignore[index]
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"track {tid}")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(ncol=min(8, len(result.labels)), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.35))
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(f"{Path(result.source).name}: smoothed expression probabilities", y=0.995, fontsize=10)
    fig.tight_layout()
    fig.savefig(str(path), dpi=110)
    plt.close(fig)
    return Path(path)
