"""Why does a model answer Neutral so often on faces unlike FER+? Measure each suspected cause.

    python training/diagnose_domain.py [--model src/cfcsp_sdk/pretrained/ferplus-cfc] [--out FILE.json]

Prints, for the model's cascade (soft rule, its packaged test-time views):
- FER+ Test: accuracy, macro-F1, per-class recall, predicted vs true class shares, expected calibration
  error (15 equal-width bins of the top probability);
- FER+ Test faces changed to look like other sources (upscaled and sharpened, JPEG-compressed, darker
  or brighter, framed tighter or looser): the same figures, so the effect of each change on the Neutral
  share is seen on faces whose labels are known;
- lfw-expr (sharper, larger news photos; validation only, never trained on): the crops as they are, and
  blurred to FER+'s resolution, through ``predict_faces``; and through ``predict_image`` (detection and
  alignment).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cfcsp_sdk import Recognizer  # noqa: E402
from ferplus_data import FINAL_LABELS, final_majority, load_split  # noqa: E402


def ece(prob: np.ndarray, true: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top probability (equal-width bins)."""
    conf, pred = prob.max(1), prob.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    err = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            err += m.mean() * abs(float((pred[m] == true[m]).mean()) - float(conf[m].mean()))
    return float(err)


def summarise(prob: np.ndarray, true: np.ndarray) -> dict:
    k = len(FINAL_LABELS)
    pred = prob.argmax(1)
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (true, pred), 1)
    tp = np.diag(cm).astype(float)
    rec = tp / np.maximum(cm.sum(1), 1)
    prec = tp / np.maximum(cm.sum(0), 1)
    f1 = np.where(prec + rec > 0, 2 * prec * rec / np.maximum(prec + rec, 1e-12), 0.0)
    present = cm.sum(1) > 0
    return {
        "n": int(len(true)),
        "accuracy": round(float((pred == true).mean()), 4),
        "macro_f1_present": round(float(f1[present].mean()), 4),
        "recall": {lab: round(float(r), 3) for lab, r, p in zip(FINAL_LABELS, rec, present) if p},
        "pred_share": {lab: round(float((pred == i).mean()), 3) for i, lab in enumerate(FINAL_LABELS)},
        "true_share": {lab: round(float((true == i).mean()), 3) for i, lab in enumerate(FINAL_LABELS)},
        "ece": round(ece(prob, true), 4),
        "mean_top_probability": round(float(prob.max(1).mean()), 4),
    }


def probabilities(rec: Recognizer, crops: np.ndarray) -> np.ndarray:
    return rec.run_cascade(rec.preprocess(list(crops), color="gray")).probabilities


def sharpen_up(img: np.ndarray) -> np.ndarray:
    """48 px face as a sharp large face would look after our area downscale: upscale, unsharp mask."""
    big = cv2.resize(img, (192, 192), interpolation=cv2.INTER_CUBIC)
    blur = cv2.GaussianBlur(big, (0, 0), 3)
    sharp = cv2.addWeighted(big, 2.0, blur, -1.0, 0)
    return cv2.resize(sharp, (48, 48), interpolation=cv2.INTER_AREA)


def jpeg(img: np.ndarray, q: int = 20) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def gamma(img: np.ndarray, g: float) -> np.ndarray:
    return (255 * (img / 255.0) ** g).astype(np.uint8)


def reframe(img: np.ndarray, scale: float) -> np.ndarray:
    """scale < 1: face smaller in the frame (looser framing, border repeated); > 1: tighter."""
    m = cv2.getRotationMatrix2D((23.5, 23.5), 0, scale)
    return cv2.warpAffine(img, m, (48, 48), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def squeeze(img: np.ndarray, factor: float) -> np.ndarray:
    """The face narrowed to ``factor`` of its width around the centre (border repeated): roughly what a
    5-point similarity alignment leaves of a head turned sideways (the eyes come closer together)."""
    h, w = img.shape
    m = np.float32([[1 / factor, 0, (1 - 1 / factor) * w / 2], [0, 1, 0]])
    return cv2.warpAffine(
        img, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )


def blur_to_fer(img: np.ndarray) -> np.ndarray:
    """A large sharp crop brought to FER+'s look: down to 48 px and softened as FER's upscaled faces are."""
    small = cv2.resize(img, (32, 32), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (48, 48), interpolation=cv2.INTER_LINEAR)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None)
    p.add_argument("--ferplus", default="../shared/data/ferplus")
    p.add_argument("--lfw", default="../shared/data/lfw-expr/valid.npz")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    rec = Recognizer(args.model) if args.model else Recognizer()
    report: dict = {}

    test = load_split(args.ferplus, "test")
    true = final_majority(test)
    keep = true >= 0
    images, true = test.images[keep], true[keep]
    changes = {
        "as is": lambda im: im,
        "upscaled + sharpened": sharpen_up,
        "JPEG q20": jpeg,
        "darker (gamma 1.6)": lambda im: gamma(im, 1.6),
        "brighter (gamma 0.6)": lambda im: gamma(im, 0.6),
        "looser framing (x0.8)": lambda im: reframe(im, 0.8),
        "tighter framing (x1.2)": lambda im: reframe(im, 1.2),
        "narrowed (x0.8 width, a turned head)": lambda im: squeeze(im, 0.8),
    }
    for name, fn in changes.items():
        crops = np.stack([fn(im) for im in images])
        report[f"ferplus test, {name}"] = summarise(probabilities(rec, crops), true)

    with np.load(args.lfw) as d:
        lfw_images, lfw_names = d["images"], [str(s) for s in d["labels"]]
    lfw_true = np.array([FINAL_LABELS.index(s) for s in lfw_names])
    report["lfw-expr crops, as is"] = summarise(probabilities(rec, lfw_images), lfw_true)
    report["lfw-expr crops, blurred to FER+ resolution"] = summarise(
        probabilities(rec, np.stack([blur_to_fer(im) for im in lfw_images])), lfw_true
    )
    found, probs = [], []
    for i, im in enumerate(lfw_images):
        faces = rec.predict_image(cv2.cvtColor(im, cv2.COLOR_GRAY2BGR)).faces
        if faces:
            best = max(faces, key=lambda f: f.box[2] * f.box[3] if len(f.box) == 4 else f.score)
            probs.append([best.prediction.probabilities[lab] for lab in FINAL_LABELS])
            found.append(i)
    rep = summarise(np.array(probs), lfw_true[found])
    rep["faces_found"] = f"{len(found)} of {len(lfw_images)}"
    report["lfw-expr, predict_image (detect + align)"] = rep

    for name, r in report.items():
        print(
            f"\n== {name}: n={r['n']} acc={r['accuracy']} macroF1={r['macro_f1_present']} ece={r['ece']} "
            f"mean top p={r['mean_top_probability']}" + (f" found={r['faces_found']}" if "faces_found" in r else "")
        )
        print("   recall     " + " ".join(f"{k[:5]}={v}" for k, v in r["recall"].items()))
        print("   predicted  " + " ".join(f"{k[:5]}={v}" for k, v in r["pred_share"].items()))
        print("   true       " + " ".join(f"{k[:5]}={v}" for k, v in r["true_share"].items()))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
