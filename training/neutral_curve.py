"""The operating-point curve of a model's Neutral offset (``Recognizer(label_offsets={"Neutral": b})``):
FER+ Test on our protocol and the paper's, FER+ Test's expressive faces, and lfw-expr's crops, for each
offset ``b``, all through the SDK (``predict_faces`` semantics: ``run_cascade`` on the crops).

    python training/neutral_curve.py [--model FOLDER] [--offsets 0,-0.25,-0.5,-0.75,-1] [--out curve.json]

The definitions are evaluate_ferplus.py's (expressive faces: a non-neutral emotion got at least 4 of the
10 votes). A negative offset makes the model name an emotion on milder faces: the expressive faces' named
share rises and their Neutral share falls, while FER+ Test accuracy on the crowd's majority falls once
faces whose majority is Neutral are called otherwise. Writes --out (JSON) and the table beside it (.txt).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_ferplus import (  # noqa: E402
    FINAL_LABELS,
    VOTE_COLUMN_TO_FINAL,
    Truth,
    expressive_faces,
    expressive_figures,
    final_majority,
    load_split,
    paper_protocol,
    recognizer,
    summarise,
)


def curve_point(rec, test, lfw: tuple[np.ndarray, np.ndarray] | None) -> dict:
    truth = Truth(rec.labels)
    prob = rec.run_cascade(rec.preprocess(list(test.images), color="gray")).probabilities
    pred = prob.argmax(1)
    final = final_majority(test)
    rows = np.flatnonzero(final >= 0)
    ours = summarise(prob[rows], truth.map(final[rows]), truth.labels)
    prows, pcols = paper_protocol(test.votes)
    erows, emotion = expressive_faces(test.votes)
    point = {
        "ferplus_test": {k: ours[k] for k in ("accuracy", "macro_f1", "ece", "recall", "pred_share")},
        "paper_protocol_accuracy": round(float((pred[prows] == truth.map(VOTE_COLUMN_TO_FINAL[pcols])).mean()), 4),
        "expressive": expressive_figures(pred[erows], emotion, truth),
    }
    if lfw is not None:
        images, lfw_final = lfw
        true = truth.map(lfw_final)
        lprob = rec.run_cascade(rec.preprocess(list(images), color="gray")).probabilities
        lpred = lprob.argmax(1)
        point["lfw_crops"] = {
            "accuracy": round(float((lpred == true).mean()), 4),
            "non_neutral_called_neutral": round(float((lpred[true != truth.neutral] == truth.neutral).mean()), 4),
        }
    return point


def table(points: dict[float, dict]) -> list[str]:
    head = (
        "| Neutral offset | FER+ acc | macro-F1 | ECE | paper acc | expr. named | expr. Neutral | Sadness | Fear "
        "| lfw crops | lfw non-neutral -> Neutral |"
    )
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for b, pt in points.items():
        e, f = pt["expressive"], pt["ferplus_test"]
        by = e["by_emotion"]
        lfw = pt.get("lfw_crops")
        lines.append(
            f"| {b:+.2f} | {f['accuracy']:.4f} | {f['macro_f1']:.4f} | {f['ece']:.4f} | "
            f"{pt['paper_protocol_accuracy']:.4f} | {e['named']:.3f} | {e['called_neutral']:.3f} | "
            f"{by['Sadness']['named']:.3f} | {by['Fear']['named']:.3f} | "
            + (f"{lfw['accuracy']:.4f} | {lfw['non_neutral_called_neutral']:.3f} |" if lfw else "- | - |")
        )
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/ferplus")
    p.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    p.add_argument("--offsets", default="0,-0.25,-0.5,-0.75,-1,-1.5", help="Neutral offsets, comma-separated")
    p.add_argument("--lfw", default="../shared/data/lfw-expr/valid.npz", help="lfw-expr crops; skipped if missing")
    p.add_argument("--backend", default="onnx")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="training/output/neutral_curve.json")
    args = p.parse_args()
    cv2.setNumThreads(args.threads)
    offsets = [float(v) for v in args.offsets.split(",")]
    test = load_split(args.data, "test")
    lfw = None
    if Path(args.lfw).is_file():
        with np.load(args.lfw) as d:
            lfw = d["images"], np.array([FINAL_LABELS.index(str(s)) for s in d["labels"]])
    t0, load = time.time(), os.getloadavg()
    points = {}
    for b in offsets:
        rec = recognizer(args.model, args.threads, args.backend, label_offsets={"Neutral": b})
        points[b] = curve_point(rec, test, lfw)
    name = rec.config.name
    text = "\n".join(
        [
            f"model {args.model or 'bundled'} ({name}); backend {args.backend}, {args.threads} thread(s); load "
            f"average {' '.join(f'{v:.2f}' for v in load)} at the start; {time.time() - t0:.0f} s",
            "",
            *table(points),
        ]
    )
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": name, "points": {str(b): v for b, v in points.items()}}, indent=1))
    out.with_suffix(".txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
