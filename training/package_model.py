"""Package the trained FER+ networks as the SDK's bundled model repository.

    python training/package_model.py --weights training/output/members/m2 training/output/members/m3 \
        --template training/output/fer_template.json --evaluation training/output/eval_ferplus.json \
        --calibration training/output/calibration.json --out src/cfcsp_sdk/pretrained/ferplus-cfc

Reads <weights>/{coarse,negative}.safetensors and <weights>/summary.json of each folder given (two or more:
an ensemble per network, architecture cfcsp-compact-cnn-ensemble, averaging the members' logits), the
alignment template and, when present, eval_ferplus.json (figures for the model card); writes config.json, both
networks as safetensors and ONNX, and README.md (the model card) through
cfcsp_sdk.export.write_model_repository. config.json's test-time views (applied by the SDK's cascade):
the mirror image of each crop (--no-flip-average: none) and, with --shift-views, shifted crops. Weights
are stored as float16 by default (--weights-dtype float32 for full precision).

A run of training/train_long.py (architecture and arguments from the safetensors metadata, or from run.json):

    python training/package_model.py --run training/runs/resnet-a --out <folder> [--calibration cal.json] \
        [--flat-out <flat folder>]

reads <run>/{coarse,negative,flat}.safetensors. With --checkpoint, a run still in progress is packaged
for a progress reading: the EMA weights of the network being trained come from <run>/checkpoint.safetensors
(``ema.net.*``; while the coarse network trains, its 7-class head ``ema.aux.*`` is the flat network). Until
the negative network exists, --out gets a coarse-only model (labels Neutral, Happiness, Surprise, Negative;
no cascade). --flat-out writes the flat 7-class network as a one-network model repository.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cfcsp_sdk import ModelConfig  # noqa: E402
from cfcsp_sdk.backends.torch_backend import load_state_dict_strict  # noqa: E402
from cfcsp_sdk.export import write_model_repository  # noqa: E402
from cfcsp_sdk.models import build_network  # noqa: E402
from ferplus_data import COARSE_LABELS, FINAL_LABELS, NEGATIVE_LABELS  # noqa: E402
from train_ferplus import ARCH, ARCH_ARGS, MEAN, STD  # noqa: E402

NAME = "cfcsp-ferplus-compact"


# no shifted test-time views by default: the ensemble's two members with their mirror images already make 4
# passes per face (the single model before it used the crop moved 1 px right and down too; training/README.md)
SHIFT_VIEWS: list[list[int]] = []


ENSEMBLE_ARCH = "cfcsp-compact-cnn-ensemble"
SPLIT_TEXT = {"train-calibration": "train (less a fixed slice of 2,000 faces kept for calibration)"}


def config_dict(
    template: dict,
    flip_average: bool = True,
    rule: str = "soft",
    shift_views: list[list[int]] | None = None,
    arch_args: dict | None = None,
    members: int = 1,
    arch: str = ARCH,
    name: str = NAME,
) -> dict:
    net_args = dict(arch_args or ARCH_ARGS)
    if members > 1:
        arch, net_args = ENSEMBLE_ARCH, {"members": members, **net_args}
    views = {"mirror": flip_average, "shifts": SHIFT_VIEWS if shift_views is None else shift_views}
    fin = FINAL_LABELS.index
    return {
        "format_version": 1,
        "name": name,
        "labels": FINAL_LABELS,
        "cascade": {
            "coarse": {
                "network": "coarse",
                "labels": COARSE_LABELS,
                "to_final": [fin("Neutral"), fin("Happiness"), fin("Surprise"), None],
            },
            "groups": [
                {
                    "coarse_index": 3,
                    "network": "negative",
                    "labels": NEGATIVE_LABELS,
                    "to_final": [fin(k) for k in NEGATIVE_LABELS],
                }
            ],
            "rule": rule,
            "fine_policy": "when_needed",
        },
        "preprocessing": {
            "input_size": [48, 48],
            "color": "gray",
            "interpolation": "area",
            "scale": 1 / 255,
            "mean": [MEAN],
            "std": [STD],
            "face_template": {"size": template["size"], "points": template["points"]},
        },
        "smoothing": {"window": 5, "mode": "centered"},
        "views": views,
        "networks": {
            "coarse": {"architecture": arch, "num_classes": 4, "args": net_args},
            "negative": {"architecture": arch, "num_classes": 4, "args": dict(net_args)},
        },
    }


def single_network_config(
    template: dict, labels: list[str], arch: str, arch_args: dict, name: str, views: dict
) -> dict:
    """A model of one network whose classes are the final labels (the flat 7-class network, or a coarse
    network alone while the negative one is not trained yet)."""
    cfg = config_dict(template, arch_args=arch_args, arch=arch, name=name)
    cfg["labels"] = list(labels)
    cfg["views"] = views
    cfg["cascade"] = {
        "coarse": {"network": "net", "labels": list(labels), "to_final": list(range(len(labels)))},
        "groups": [],
        "rule": "hard",
        "fine_policy": "when_needed",
    }
    cfg["networks"] = {"net": {"architecture": arch, "num_classes": len(labels), "args": dict(arch_args)}}
    return cfg


RULE_TEXT = {
    "hard": "hard rule: the coarse argmax; where it is Negative, the negative network's argmax",
    "soft": "soft rule: the argmax of the 7-way distribution p(k) = p_coarse(k) for Neutral, Happiness and "
    "Surprise, p_coarse(Negative) * p_negative(k) for the negative labels, so a face's label is always "
    'the label with the highest reported probability (the hard rule is available as `rule="hard"`)',
}


def views_text(flip_average: bool, shift_views: list[list[int]]) -> str:
    """The model card's sentence on the test-time views packaged into the networks."""
    views = ["the crop"] + [
        f"the crop moved {dx} px right and {dy} px down"
        if dx >= 0 and dy >= 0
        else f"the crop shifted by ({dx}, {dy}) px"
        for dx, dy in shift_views
    ]
    passes = len(views) * (2 if flip_average else 1)
    if passes == 1:
        return "At inference each network scores the aligned crop once (no test-time views)."
    if flip_average:
        listed = ", ".join(views) + (", and the mirror image of each" if len(views) > 1 else " and its mirror image")
    else:
        listed = ", ".join(views[:-1]) + " and " + views[-1]
    return (
        f"At inference each network averages the logits of {listed} (test-time views, config.json's "
        f"`views`, applied by the SDK's cascade with every backend; {passes} passes per face, so about "
        f'1/{passes} of a single pass\'s throughput; `Recognizer(views="none")` scores each face once).'
    )


def model_card(
    evaluation: dict | None,
    template: dict,
    summaries: list[dict] | dict,
    rule: str,
    views: str,
    calibration: str = "",
    params: int = 0,
    weights_dtype: str = "float32",
) -> str:
    figures = "Not evaluated yet: run `python training/evaluate_ferplus.py`."
    if evaluation:
        c = evaluation["cascade"]
        figures = "\n".join(
            [
                "Measured with `python training/evaluate_ferplus.py` on the FER+ **Test** split (majority label;",
                "faces whose majority is unknown or not-a-face dropped; contempt faces, which this model cannot",
                "name, left out of the 7-class figures and also reported counted as errors).",
                "",
                "| metric | value |",
                "| --- | --- |",
                f"| cascaded 7-class accuracy | {c['accuracy']:.4f} |",
                f"| cascaded 7-class macro-F1 | {c['macro_f1']:.4f} |",
                f"| accuracy with the {evaluation['contempt_faces']} contempt faces counted wrong | {c['accuracy_contempt_wrong']:.4f} |",
                f"| coarse network accuracy (4 classes) | {evaluation['coarse_accuracy']:.4f} |",
                f"| negative network accuracy on negative faces | {evaluation['negative_accuracy']:.4f} |",
            ]
            + (
                [
                    f"| the same networks with the {evaluation['cascade_other_rule']['rule']} rule | {evaluation['cascade_other_rule']['accuracy']:.4f} accuracy, {evaluation['cascade_other_rule']['macro_f1']:.4f} macro-F1 |"
                ]
                if evaluation.get("cascade_other_rule")
                else []
            )
            + (
                [
                    f"| the same cascade without test-time views (one pass per face) | {evaluation['cascade_no_flip']['accuracy']:.4f} accuracy, {evaluation['cascade_no_flip']['macro_f1']:.4f} macro-F1 |"
                ]
                if evaluation.get("cascade_no_flip")
                else []
            )
            + (
                [
                    f"| flat 7-class network for comparison (one compact CNN of the same shape, FER+ train + valid, 24 epochs, the cascade's test-time views) | {evaluation['flat']['accuracy']:.4f} accuracy, {evaluation['flat']['macro_f1']:.4f} macro-F1 |"
                ]
                if evaluation.get("flat")
                else []
            )
        )
    pts = template["points"]
    members = summaries if isinstance(summaries, list) else [summaries]
    coarse, negative = members[0]["coarse"], members[0]["negative"]
    aux = ""
    if coarse.get("aux_fine_weight"):
        aux = (
            ", with an auxiliary 7-class head on its pooled features (weight "
            f"{coarse['aux_fine_weight']:g}) that learns the 7-class votes during training and is then dropped"
        )
    extra = {
        "degrade": "JPEG compression, another capture resolution (down- and upscaled), sharpening, gamma "
        "and crop scale 0.8-1.25 (faces unlike FER+'s)",
        "pose": "horizontal squeeze/stretch x0.8-1.25 and shear (what aligning a turned head leaves)",
    }

    def recipe(s: dict) -> str:
        added = [text for key, text in extra.items() if s["coarse"].get(key)]
        seed = f"seed {s['coarse']['seed']}" if "seed" in s["coarse"] else "seed 0"
        return seed + ("; also " + "; ".join(added) if added else "; the base augmentations only")

    if len(members) == 1:
        shape = f"two compact CNNs (about {params / 1e6:.2f} M parameters each"
        recipes = f"Augmentation: {recipe(members[0])}."
    else:
        shape = (
            f"two networks, each the mean of the logits of {len(members)} compact CNNs trained apart (about "
            f"{params / 1e6:.2f} M parameters per network"
        )
        recipes = (
            "Ensemble members (same data and schedule, other seeds and augmentations): "
            + "; ".join(f"member {i + 1}: {recipe(m)}" for i, m in enumerate(members))
            + "."
        )
    return f"""---
license: other
library_name: cfcsp-sdk
tags: [facial-expression-recognition, cfc-sp, ferplus, onnx]
---
# {NAME}

The default model of **cfcsp-sdk**: the CFC cascade (coarse network + negative network) as
{shape}, stored as {weights_dtype}; inference computes in float32) trained on FER+ on a CPU.

**For research use only.** The networks were trained on FER2013 images, which were released for
research; the FER+ labels are MIT licensed.

## Labels
Final labels (Aff-Wild2's first seven; FER+ has no "Other"): {", ".join(FINAL_LABELS)}.

- coarse network: {", ".join(COARSE_LABELS)} (Negative = anger, disgust, fear, sadness)
- negative network: {", ".join(NEGATIVE_LABELS)}
- decision: {RULE_TEXT[rule]}
- **contempt**: FER+ has a contempt column but this model has no contempt output. Contempt votes are
  removed from the soft training targets and faces whose majority is contempt are not trained on; a
  contemptuous face gets one of the seven labels.

## Data and training
FER+ {" and ".join(SPLIT_TEXT.get(x, x) for x in coarse.get("train_splits", ["train", "valid"]))} ({coarse["train_faces"]:,} faces for the coarse network,
{negative["train_faces"]:,} negative faces for the negative network; unknown / not-a-face /
contempt-majority faces dropped); FER+ test is never seen in training. Soft targets from the 10
annotator votes. Coarse network: {coarse["epochs"]} epochs from random weights{aux}; negative network:
{negative["epochs"]} epochs starting from the trained coarse network's features (new head, learning
rate {negative["max_lr"]}). SGD with Nesterov momentum, one-cycle schedule, the last epoch kept.
Base augmentation for in-the-wild video frames: rotation, scale and shift jitter (alignment errors),
horizontal flips, brightness/contrast, blur, random occluding rectangles. {recipes} Seeded, CPU only;
`bash training/reproduce.sh` reproduces it.

{views}

{calibration}

## Preprocessing
Faces are aligned with a 5-point similarity warp onto a 48 x 48 template measured on FER+ faces
(median landmark positions found by {template.get("detector", "MTCNN").upper()} on upscaled FER+ training faces: eyes at
({pts[0][0]}, {pts[0][1]}) and ({pts[1][0]}, {pts[1][1]}), nose ({pts[2][0]}, {pts[2][1]}), mouth corners
({pts[3][0]}, {pts[3][1]}) and ({pts[4][0]}, {pts[4][1]})), converted to grey, scaled to 0..1,
normalised with mean {MEAN} and std {STD}.

## Smoothing
SP window 5 frames (w = 2), centred offline, causal when streaming.

## Evaluation
{figures}

## Intended use and limits
Research on facial expressions in images and video, and as a working default for trying the SDK.
FER+ faces are small, grey, mostly frontal web images; accuracy on in-the-wild video (Aff-Wild2) will
be lower. Not for decisions about people (hiring, policing, health, education).
"""


def trained_arch_args(path: Path) -> dict:
    """The architecture arguments a network was trained with (train_ferplus.py writes them into the
    safetensors metadata)."""
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    return json.loads(meta["args"]) if "args" in meta else dict(ARCH_ARGS)


def trained_architecture(path: Path) -> str:
    """The architecture id a network was saved with (train_long.py writes it; train_ferplus.py's are compact CNNs)."""
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    return meta.get("architecture", ARCH)


class RunWeights:
    """The networks of a train_long.py run: ``nets`` maps coarse / negative / flat to float32 state dicts
    (only those that exist); ``note`` says where each came from."""

    def __init__(self, run: Path, checkpoint: bool = False) -> None:
        self.run = run
        self.cfg = json.loads((run / "run.json").read_text())
        state_file = run / "state.json"
        self.state = json.loads(state_file.read_text()) if state_file.is_file() else {"task": "coarse", "epoch": 0}
        self.arch = "cfcsp-resnet"
        self.args = {
            "in_channels": 1,
            "widths": self.cfg["widths"],
            "blocks": self.cfg["blocks"],
            "dropout": self.cfg["dropout"],
        }
        self.nets: dict[str, dict[str, torch.Tensor]] = {}
        notes = []
        for name in ("coarse", "negative", "flat"):
            path = run / f"{name}.safetensors"
            if path.is_file():
                if trained_architecture(path) != self.arch or trained_arch_args(path) != self.args:
                    raise SystemExit(f"{path} was not trained with run.json's architecture")
                self.nets[name] = {
                    k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()
                }
                notes.append(f"{name}: finished ({self.cfg['epochs'][name if name != 'flat' else 'coarse']} epochs)")
        ckpt = run / "checkpoint.safetensors"
        task, epoch, step = self.state.get("task"), self.state.get("epoch", 0), self.state.get("step", 0)
        if checkpoint and not self.state.get("done") and task not in self.nets:
            if not ckpt.is_file():
                raise SystemExit(f"{ckpt} not found: the run has not saved a checkpoint yet")
            saved = load_file(str(ckpt))
            as_float = {k: v.float() if v.is_floating_point() else v for k, v in saved.items()}
            self.nets[task] = {k[8:]: v for k, v in as_float.items() if k.startswith("ema.net.")}
            if task == "coarse":
                flat = {k: v for k, v in self.nets[task].items() if not k.startswith("head.")}
                flat.update({f"head.{k[8:]}": v for k, v in as_float.items() if k.startswith("ema.aux.")})
                self.nets["flat"] = flat
            notes.append(
                f"{task}{' and flat' if task == 'coarse' else ''}: EMA weights of the checkpoint "
                f"(epoch {epoch} of {self.cfg['epochs'][task]} done, step {step} of the next)"
            )
        if "coarse" not in self.nets:
            hint = "" if checkpoint else " (--checkpoint reads a run in progress)"
            raise SystemExit(f"{run} has no coarse network yet{hint}")
        if "negative" not in self.nets:
            notes.append("negative: not trained yet, no cascade")
        self.note = "; ".join(notes)

    def module(self, name: str, num_classes: int) -> torch.nn.Module:
        m = build_network(self.arch, num_classes, self.args)
        load_state_dict_strict(m, self.nets[name], f"{self.run}/{name}")
        return m.eval()


def run_card(weights: RunWeights, config: dict, evaluation_note: str, calibration: str, weights_dtype: str) -> str:
    cfg = weights.cfg
    settings = ", ".join(f"{k} {json.dumps(cfg[k])}" for k in cfg if k != "data")
    params = sum(t.numel() for k, t in weights.nets["coarse"].items() if t.is_floating_point() and "running_" not in k)
    return f"""---
license: other
library_name: cfcsp-sdk
tags: [facial-expression-recognition, cfc-sp, ferplus, onnx]
---
# {config["name"]}

Networks of the train_long.py run `{weights.run.name}` (architecture `{weights.arch}`, {params / 1e6:.2f} M
parameters per network, stored as {weights_dtype}; inference computes in float32), trained on FER+ on the
run's splits. Labels: {", ".join(config["labels"])}.

**For research use only.** The networks were trained on FER2013 images, which were released for research;
the FER+ labels are MIT licensed.

Weights: {weights.note}. EMA weights (decay {cfg["ema_decay"]}) are what is packaged.

Run settings (run.json): {settings}.

Test-time views: {json.dumps(config["views"])}.

{calibration}

{evaluation_note}
"""


def apply_calibration(module: torch.nn.Module, temperature: float, offsets: list[float]) -> None:
    """Bake ``logits / temperature + offsets`` into the network's last layer (each member's, for an
    ensemble). Exact for the test-time views and the ensemble's mean too: both average logits, which
    are linear in this layer."""
    heads = [m.head for m in module.members] if hasattr(module, "members") else [module.head]
    with torch.no_grad():
        for head in heads:
            head.weight.div_(temperature)
            head.bias.div_(temperature).add_(torch.tensor(offsets, dtype=head.bias.dtype))


def calibration_text(cal: dict | None) -> str:
    if not cal:
        return "The reported probabilities are the networks' softmax outputs, not calibrated."
    c, n = cal["coarse"], cal["negative"]
    steps = cal.get("steps", {})
    before, after = steps.get("uncalibrated"), steps.get("temperature + offsets")
    figures = ""
    if before and after:
        figures = (
            f" On {cal['fitted_on']}: expected calibration error {before['ece']:.3f} -> {after['ece']:.3f}, "
            f"accuracy {before['accuracy']:.4f} -> {after['accuracy']:.4f}, macro-F1 "
            f"{before['macro_f1']:.4f} -> {after['macro_f1']:.4f}, Neutral predicted for "
            f"{before['neutral_share']:.3f} -> {after['neutral_share']:.3f} of faces "
            f"(true share {steps.get('true_neutral_share', float('nan')):.3f})."
        )
    method = cal.get("offset_method", "accuracy_macro_f1" if any(c["offsets"]) or any(n["offsets"]) else "none")
    how_b = {
        "accuracy_macro_f1": ", b for the best accuracy + macro-F1 of the 7-way labels with the Neutral share kept "
        "within 1 point of the true share",
        "none": " (no per-class offsets: b = 0)",
        "neutral_margin": f"; b is zero but for the coarse Neutral logit, set so that the share of faces labelled "
        f"Neutral there sits {cal.get('neutral_margin') or 0:g} under the true share (FER+'s annotators "
        "call faces Neutral more readily than posed or acted sets do; see training/README.md)",
        "expressive_neutral": "; b is zero but for the coarse Neutral logit, the offset nearest 0 under which at most "
        f"{cal.get('expressive_neutral') or 0:g} of the slice's expressive faces (a non-neutral emotion with at least "
        "4 of the 10 votes) are labelled Neutral (FER+'s crowd calls a mild expression Neutral; people who pose, act "
        "or report an emotion do not; see training/README.md)",
    }[method]
    return (
        "## Calibration\n"
        f"Fitted on {cal['fitted_on']}, which the networks were not trained on (`training/calibrate.py`), and "
        "built into each network's last layer: logits / T + b. "
        f"Coarse: T = {c['temperature']:g}, b = {c['offsets']} ({', '.join(COARSE_LABELS)}); "
        f"negative: T = {n['temperature']:g}, b = {n['offsets']} ({', '.join(NEGATIVE_LABELS)}). "
        "T is chosen for the lowest negative log-likelihood of the 7-way probabilities" + how_b + "." + figures
    )


def package_run(
    run: Path,
    out: Path,
    checkpoint: bool = False,
    template: dict | None = None,
    calibration: dict | None = None,
    flat_out: Path | None = None,
    flip_average: bool = True,
    shift_views: list[list[int]] | None = None,
    rule: str = "soft",
    weights_dtype: str = "float16",
) -> RunWeights:
    """Package a train_long.py run into ``out`` (a cascade, or a coarse-only model if the negative network
    is not trained yet) and, with ``flat_out``, its flat 7-class network; returns the run's weights."""
    weights = RunWeights(run, checkpoint)
    template = template or json.loads(Path("training/output/fer_template.json").read_text())
    name = f"cfcsp-ferplus-resnet-{run.name}" + ("-checkpoint" if checkpoint and not weights.state.get("done") else "")
    views = {"mirror": flip_average, "shifts": SHIFT_VIEWS if shift_views is None else shift_views}
    cal_text = calibration_text(calibration)
    if "negative" in weights.nets:
        cfg = config_dict(template, flip_average, rule, shift_views, weights.args, arch=weights.arch, name=name)
        modules = {n: weights.module(n, 4) for n in ("coarse", "negative")}
        if calibration:
            for n, m in modules.items():
                apply_calibration(m, calibration[n]["temperature"], calibration[n]["offsets"])
    else:
        if calibration:
            raise SystemExit("calibration needs both networks; the negative network is not trained yet")
        cfg = single_network_config(template, COARSE_LABELS, weights.arch, weights.args, name + "-coarse-only", views)
        modules = {"net": weights.module("coarse", 4)}
    card = run_card(
        weights,
        cfg,
        "Evaluation: `python training/evaluate_ferplus.py --model <this folder>`.",
        cal_text,
        weights_dtype,
    )
    write_model_repository(out, ModelConfig.from_dict(cfg), modules, card=card, weights_dtype=weights_dtype)
    if flat_out is not None and "flat" in weights.nets:
        flat_cfg = single_network_config(template, FINAL_LABELS, weights.arch, weights.args, name + "-flat", views)
        write_model_repository(
            flat_out,
            ModelConfig.from_dict(flat_cfg),
            {"net": weights.module("flat", 7)},
            card=run_card(weights, flat_cfg, "The flat 7-class comparison network (uncalibrated).", "", weights_dtype),
            weights_dtype=weights_dtype,
        )
    return weights


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--weights",
        nargs="+",
        default=["training/output"],
        help="folder(s) with coarse/negative.safetensors and summary.json; two or more make an ensemble",
    )
    p.add_argument("--run", default=None, help="a train_long.py run folder instead of --weights")
    p.add_argument(
        "--checkpoint",
        action="store_true",
        help="with --run: package a run in progress from its checkpoint's EMA weights",
    )
    p.add_argument("--flat-out", default=None, help="with --run: also write the flat 7-class network's model here")
    p.add_argument(
        "--template",
        default=None,
        help="fer_template.json (default: in the first weights folder; for --run: training/output/fer_template.json)",
    )
    p.add_argument("--evaluation", default=None, help="eval_ferplus.json for the card (default: in the first folder)")
    p.add_argument("--out", default="src/cfcsp_sdk/pretrained/ferplus-cfc")
    p.add_argument("--rule", choices=sorted(RULE_TEXT), default="soft", help="the cascade's default decision rule")
    p.add_argument(
        "--no-flip-average",
        dest="flip_average",
        action="store_false",
        help="package the networks without mirror averaging",
    )
    p.add_argument(
        "--no-shift-views",
        dest="shift_views",
        action="store_const",
        const=[],
        default=None,
        help="package the networks without the shifted test-time view",
    )
    p.add_argument(
        "--shift-views",
        dest="shift_views",
        type=json.loads,
        default=None,
        help=f'shifted test-time views as JSON, e.g. "[[1, 1]]" (default: {SHIFT_VIEWS})',
    )
    p.add_argument(
        "--weights-dtype",
        choices=["float16", "float32"],
        default="float16",
        help="storage of the weights in both formats (inference computes in float32)",
    )
    p.add_argument(
        "--calibration",
        default=None,
        help="calibration.json from training/calibrate.py, baked into the networks' last layers",
    )
    args = p.parse_args()
    if args.run:
        if args.out == p.get_default("out"):
            raise SystemExit("--run needs --out: a run is not packaged over the bundled model without asking")
        cal = json.loads(Path(args.calibration).read_text()) if args.calibration else None
        template = json.loads(Path(args.template).read_text()) if args.template else None
        weights = package_run(
            Path(args.run),
            Path(args.out),
            args.checkpoint,
            template,
            cal,
            Path(args.flat_out) if args.flat_out else None,
            args.flip_average,
            args.shift_views,
            args.rule,
            args.weights_dtype,
        )
        print(
            f"wrote {args.out}"
            + (f" and {args.flat_out}" if args.flat_out and "flat" in weights.nets else "")
            + f": {weights.note}"
        )
        return
    folders = [Path(f) for f in args.weights]
    w = folders[0]
    cal = json.loads(Path(args.calibration).read_text()) if args.calibration else None
    summaries = [json.loads((f / "summary.json").read_text()) for f in folders]
    template = json.loads(Path(args.template or w / "fer_template.json").read_text())
    eval_path = Path(args.evaluation or w / "eval_ferplus.json")
    evaluation = json.loads(eval_path.read_text()) if eval_path.is_file() else None
    arch_args = trained_arch_args(w / "coarse.safetensors")
    if any(trained_arch_args(f / f"{n}.safetensors") != arch_args for f in folders for n in ("coarse", "negative")):
        raise SystemExit("all networks must be trained with the same architecture")
    config = ModelConfig.from_dict(
        config_dict(template, args.flip_average, args.rule, args.shift_views, arch_args, members=len(folders))
    )
    modules = {}
    for name in ("coarse", "negative"):
        net = config.networks[name]
        m = build_network(net.architecture, 4, net.args)
        members = m.members if len(folders) > 1 else [m]
        for member, folder in zip(members, folders):
            load_state_dict_strict(member, load_file(str(folder / f"{name}.safetensors")), f"{folder}/{name}")
        if cal:
            apply_calibration(m, cal[name]["temperature"], cal[name]["offsets"])
        modules[name] = m.eval()
    params = sum(t.numel() for t in modules["coarse"].parameters())
    card = model_card(
        evaluation,
        template,
        summaries,
        args.rule,
        views_text(args.flip_average, [list(v) for v in config.views.shifts]),
        calibration_text(cal),
        params,
        args.weights_dtype,
    )
    write_model_repository(args.out, config, modules, card=card, weights_dtype=args.weights_dtype)
    print(f"wrote {args.out}:", sorted(f.name for f in Path(args.out).iterdir()))


if __name__ == "__main__":
    main()
