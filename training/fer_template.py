"""Measure where FER+ faces have their five landmarks, to build the alignment template that makes
the SDK's aligned crops framed like FER's 48 x 48 faces.

    python training/fer_template.py --data ../shared/data/ferplus --out training/output/fer_template.json

Each face is upscaled 4x, padded by replicating its border (detectors need context around a face),
and run through the detector (MTCNN, the SDK's default; YuNet with --detector yunet); the
per-landmark median over confident detections, in 48 x 48 coordinates, is the template. Also reports how far individual faces sit from it (the framing jitter the training
augmentation has to cover).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cfcsp_sdk.faces.detection import get_detector  # noqa: E402
from ferplus_data import load_split  # noqa: E402

UP, PAD = 4, 96


def landmarks_48(detector, face: np.ndarray) -> np.ndarray | None:
    big = cv2.resize(face, (48 * UP, 48 * UP), interpolation=cv2.INTER_CUBIC)
    big = cv2.copyMakeBorder(big, PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE)
    dets = detector.detect(cv2.cvtColor(big, cv2.COLOR_GRAY2BGR))
    if not dets or dets[0].score < 0.8:
        return None
    return (dets[0].landmarks - PAD) / UP


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="../shared/data/ferplus")
    p.add_argument("--detector", default="mtcnn", choices=["mtcnn", "yunet"])
    p.add_argument("--yunet", default="../shared/models/yunet/yunet_n_dynamic.onnx")
    p.add_argument("--split", default="train")
    p.add_argument("--n", type=int, default=1500)
    p.add_argument("--out", default="training/output/fer_template.json")
    args = p.parse_args()
    det = get_detector(
        args.detector,
        **({"model": args.yunet, "score_threshold": 0.5, "min_face": 0} if args.detector == "yunet" else {}),
    )
    split = load_split(args.data, args.split)
    keep = np.flatnonzero(split.valid_faces())[: args.n]
    pts = [lm for i in keep if (lm := landmarks_48(det, split.images[i])) is not None]
    arr = np.stack(pts)
    template = np.median(arr, axis=0)
    spread = np.linalg.norm(arr - template, axis=2).mean(axis=1)
    out = {
        "size": [48, 48],
        "detector": args.detector,
        "points": np.round(template, 2).tolist(),
        "faces_measured": len(pts),
        "faces_tried": int(len(keep)),
        "mean_landmark_offset_px": {"median": float(np.median(spread)), "p90": float(np.percentile(spread, 90))},
        "interocular_px": {"median": float(np.median(np.linalg.norm(arr[:, 0] - arr[:, 1], axis=1)))},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
