"""Long, resumable training of the cascade's networks on a residual backbone (issue 24).

Start a run (its settings are written to <run>/run.json and never change afterwards):

    python training/train_long.py --run training/runs/resnet-a --data ../shared/data/ferplus

Resume it, on CPU or on a GPU machine (the same command; settings come from run.json):

    python training/train_long.py --run training/runs/resnet-a

The run trains, in order, ``coarse`` (Neutral / Happiness / Surprise / Negative, with an auxiliary 7-class
head whose weights become the flat comparison network) and ``negative`` (Anger / Disgust / Fear / Sadness,
started from the coarse network's EMA features). Every ``--checkpoint-minutes`` (default 10) and at the end of
every epoch it replaces <run>/checkpoint.safetensors (weights float32, their exponential moving average and
the SGD momentum float16) and <run>/state.json (task, epoch, step): a stopped run resumes at the step it
reached, and because every random draw is seeded from (seed, task, epoch, step) it resumes on the same
faces and augmentations it would have seen. Each finished network's EMA weights are written to
<run>/<task>.safetensors (float32) and, for coarse, the 7-class head to <run>/flat.safetensors.
After every epoch the EMA network is scored on FER+'s fixed calibration slice (never trained on) and the
line appended to <run>/log.jsonl.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cfcsp_sdk.models import build_network  # noqa: E402
from ferplus_data import load_split, targets  # noqa: E402
from train_ferplus import MEAN, STD, augment, degrade, soft_cross_entropy, to_tensor  # noqa: E402

ARCH = "cfcsp-resnet"
TASKS = ("coarse", "negative")
# settings fixed at the start of a run (run.json); the rest (threads, device, checkpoint interval) may change
RUN_KEYS = (
    "data",
    "widths",
    "blocks",
    "dropout",
    "epochs",
    "batch",
    "lr",
    "finetune_lr",
    "weight_decay",
    "warmup_epochs",
    "ema_decay",
    "mixup",
    "mixup_alpha",
    "degrade",
    "pose",
    "neutral_weight",
    "negative_tau",
    "coarse_aux_weight",
    "train_splits",
    "seed",
    "max_faces",
)


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # safetensors writes owner-only files whatever the umask
    os.replace(tmp, path)


def step_seed(seed: int, task: str, epoch: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, TASKS.index(task), epoch, step]).generate_state(1)[0])


def load_task_data(cfg: dict, task: str) -> tuple[np.ndarray, torch.Tensor, torch.Tensor | None]:
    """Faces, soft targets and (coarse only) the 7-class soft targets of the run's training splits."""
    images, soft_parts, fine_parts = [], [], []
    for name in cfg["train_splits"].split(","):
        split = load_split(cfg["data"], name)
        votes = split.votes.copy()
        if cfg["neutral_weight"] != 1.0:
            # Neutral votes count less: FER+'s crowd calls a mild expression Neutral (issue 24)
            votes[:, 0] *= cfg["neutral_weight"]
        split = type(split)(images=split.images, votes=votes)
        rows, soft, _ = targets(split, task)
        images.append(split.images[rows])
        soft_parts.append(soft)
        if task == "coarse":
            fine_rows, fine, _ = targets(split, "flat")
            if not np.array_equal(rows, fine_rows):
                raise SystemExit("coarse and 7-class targets must cover the same faces")
            fine_parts.append(fine)
    x = np.concatenate(images)
    t = torch.from_numpy(np.concatenate(soft_parts))
    tf = torch.from_numpy(np.concatenate(fine_parts)) if fine_parts else None
    if cfg["max_faces"]:
        x, t = x[: cfg["max_faces"]], t[: cfg["max_faces"]]
        tf = tf[: cfg["max_faces"]] if tf is not None else None
    return x, t, tf


def lr_at(cfg: dict, task: str, progress: float) -> float:
    """Linear warm-up, then cosine decay to zero; ``progress`` in epochs."""
    peak = cfg["lr"] if task == "coarse" else cfg["finetune_lr"]
    total, warm = cfg["epochs"][task], min(cfg["warmup_epochs"], cfg["epochs"][task] / 2)
    if progress < warm:
        return peak * (progress + 1e-3) / warm
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warm) / max(1e-9, total - warm))))


class Trainer:
    def __init__(self, run: Path, cfg: dict, device: torch.device, checkpoint_minutes: float, log) -> None:
        self.run, self.cfg, self.device, self.log = run, cfg, device, log
        self.checkpoint_seconds = checkpoint_minutes * 60
        self.deadline = math.inf
        self.arch_args = {"in_channels": 1, "widths": cfg["widths"], "blocks": cfg["blocks"], "dropout": cfg["dropout"]}

    def network(self, num_classes: int) -> torch.nn.Module:
        return build_network(ARCH, num_classes=num_classes, args=self.arch_args)

    def calibration_eval(self, model: torch.nn.Module, task: str, aux: torch.nn.Module | None) -> dict:
        split = load_split(self.cfg["data"], "calibration")
        rows, _, maj = targets(split, task)
        model.eval()
        preds, fine_preds = [], []
        with torch.no_grad():
            for i in range(0, len(rows), 256):
                x = ((to_tensor(split.images[rows[i : i + 256]]) - MEAN) / STD).to(self.device)
                feats = model.forward_features(x)
                preds.append(model.head(feats).argmax(1).cpu().numpy())
                if aux is not None:
                    fine_preds.append(aux(feats).argmax(1).cpu().numpy())
        out = {f"slice_{task}_acc": round(float((np.concatenate(preds) == maj).mean()), 4)}
        if aux is not None:
            frows, _, fmaj = targets(split, "flat")
            out["slice_flat_acc"] = round(float((np.concatenate(fine_preds) == fmaj).mean()), 4)
        return out

    def train(self, task: str, state: dict) -> None:
        cfg = self.cfg
        x_all, t_all, t_fine = load_task_data(cfg, task)
        n = len(x_all)
        k = t_all.shape[1]
        steps_per_epoch = math.ceil(n / cfg["batch"])
        epochs = cfg["epochs"][task]

        torch.manual_seed(step_seed(cfg["seed"], task, 10**6, 0))
        model = self.network(k)
        aux = torch.nn.Linear(model.head.in_features, 7) if task == "coarse" else None
        if task == "negative" and state["step"] == 0 and state["epoch"] == 0:
            coarse = load_file(str(self.run / "coarse.safetensors"))
            result = model.load_state_dict(
                {n_: t for n_, t in coarse.items() if not n_.startswith("head.")}, strict=False
            )
            if result.unexpected_keys or any(not m.startswith("head.") for m in result.missing_keys):
                raise SystemExit(f"coarse.safetensors does not fit the negative network: {result}")
        modules = torch.nn.ModuleDict({"net": model, **({"aux": aux} if aux is not None else {})})
        modules.to(self.device)
        if self.device.type == "cpu":
            modules.to(memory_format=torch.channels_last)
        ema = {k_: v.detach().clone().float() for k_, v in modules.state_dict().items()}
        decay_params = [p for n_, p in modules.named_parameters() if p.ndim > 1]
        other_params = [p for n_, p in modules.named_parameters() if p.ndim <= 1]
        opt = torch.optim.SGD(
            [
                {"params": decay_params, "weight_decay": cfg["weight_decay"]},
                {"params": other_params, "weight_decay": 0.0},
            ],
            lr=cfg["lr"],
            momentum=0.9,
            nesterov=True,
        )
        if state["step"] or state["epoch"]:
            self._restore(modules, ema, opt)

        prior = None
        if task == "negative" and cfg["negative_tau"]:
            # logit-adjusted loss (Menon et al., ICLR 2021): the network learns balanced logits for the
            # rare Disgust and Fear faces; tau * log prior is added during training only
            prior = (cfg["negative_tau"] * torch.log(t_all.mean(0).clamp_min(1e-4))).to(self.device)

        last_save = time.time()
        while state["epoch"] < epochs:
            epoch = state["epoch"]
            order = np.random.default_rng([cfg["seed"], TASKS.index(task), epoch]).permutation(n)
            modules.train()
            t0, total, seen = time.time(), 0.0, 0
            for step in range(state["step"], steps_per_epoch):
                seed = step_seed(cfg["seed"], task, epoch, step)
                torch.manual_seed(seed)
                gen = torch.Generator().manual_seed(seed)
                rng = np.random.default_rng(seed)
                idx = order[step * cfg["batch"] : (step + 1) * cfg["batch"]]
                faces = x_all[idx]
                if cfg["degrade"]:
                    faces = degrade(faces, rng)
                x = augment(to_tensor(faces), gen, (0.8, 1.25) if cfg["degrade"] else (0.87, 1.15), cfg["pose"])
                x = (x - MEAN) / STD
                t = t_all[idx]
                tf = t_fine[idx] if t_fine is not None else None
                if cfg["mixup"] and rng.random() < cfg["mixup"]:
                    lam = float(rng.beta(cfg["mixup_alpha"], cfg["mixup_alpha"]))
                    perm = torch.from_numpy(rng.permutation(len(idx)))
                    x = lam * x + (1 - lam) * x[perm]
                    t = lam * t + (1 - lam) * t[perm]
                    tf = lam * tf + (1 - lam) * tf[perm] if tf is not None else None
                x, t = x.to(self.device), t.to(self.device)
                if self.device.type == "cpu":
                    x = x.contiguous(memory_format=torch.channels_last)
                for g in opt.param_groups:
                    g["lr"] = lr_at(cfg, task, epoch + step / steps_per_epoch)
                feats = model.dropout(model.forward_features(x))
                logits = model.head(feats)
                if prior is not None:
                    logits = logits + prior
                loss = soft_cross_entropy(logits, t)
                if aux is not None:
                    loss = loss + cfg["coarse_aux_weight"] * soft_cross_entropy(aux(feats), tf.to(self.device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    d = min(
                        cfg["ema_decay"], (1 + epoch * steps_per_epoch + step) / (10 + epoch * steps_per_epoch + step)
                    )
                    for name_, v in modules.state_dict().items():
                        if v.dtype.is_floating_point:
                            ema[name_].mul_(d).add_(v.detach().float(), alpha=1 - d)
                        else:
                            ema[name_].copy_(v)
                total += loss.item() * len(idx)
                seen += len(idx)
                state["step"] = step + 1
                if time.time() > self.deadline and state["step"] < steps_per_epoch:
                    self._checkpoint(modules, ema, opt, state)
                    self.log({"event": "stopped", "state": dict(state)})
                    raise SystemExit(0)
                if time.time() - last_save > self.checkpoint_seconds and state["step"] < steps_per_epoch:
                    self._checkpoint(modules, ema, opt, state)
                    last_save = time.time()
            state["epoch"], state["step"] = epoch + 1, 0
            ema_model = self._ema_model(k, ema, aux is not None)
            rec = {
                "task": task,
                "epoch": epoch + 1,
                "of": epochs,
                "loss": round(total / max(1, seen), 4),
                "lr": round(lr_at(cfg, task, epoch + 1), 5),
                "seconds": round(time.time() - t0, 1),
                **self.calibration_eval(ema_model[0], task, ema_model[1]),
            }
            self.log(rec)
            self._checkpoint(modules, ema, opt, state)
            last_save = time.time()
        self._finish(task, k, ema)

    def _ema_model(self, k: int, ema: dict, with_aux: bool) -> tuple[torch.nn.Module, torch.nn.Module | None]:
        model = self.network(k).to(self.device)
        model.load_state_dict({n[4:]: v for n, v in ema.items() if n.startswith("net.")})
        aux = None
        if with_aux:
            aux = torch.nn.Linear(model.head.in_features, 7).to(self.device)
            aux.load_state_dict({n[4:]: v for n, v in ema.items() if n.startswith("aux.")})
        return model, aux

    def _checkpoint(self, modules: torch.nn.Module, ema: dict, opt: torch.optim.Optimizer, state: dict) -> None:
        tensors: dict[str, torch.Tensor] = {}
        for n, v in modules.state_dict().items():
            tensors[f"model.{n}"] = v
            tensors[f"ema.{n}"] = ema[n].half() if ema[n].dtype.is_floating_point and ema[n].numel() >= 16 else ema[n]
        params = dict(modules.named_parameters())
        for n, p in params.items():
            buf = opt.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                tensors[f"momentum.{n}"] = buf.half()
        atomic_save(tensors, self.run / "checkpoint.safetensors")
        atomic_write_text(self.run / "state.json", json.dumps(state, indent=2))

    def _restore(self, modules: torch.nn.Module, ema: dict, opt: torch.optim.Optimizer) -> None:
        saved = load_file(str(self.run / "checkpoint.safetensors"))
        modules.load_state_dict({n[6:]: v for n, v in saved.items() if n.startswith("model.")})
        for n in ema:
            ema[n] = (
                saved[f"ema.{n}"].to(self.device).float()
                if ema[n].dtype.is_floating_point
                else saved[f"ema.{n}"].to(self.device)
            )
        for n, p in modules.named_parameters():
            if f"momentum.{n}" in saved:
                opt.state[p]["momentum_buffer"] = saved[f"momentum.{n}"].to(self.device).float()

    def _finish(self, task: str, k: int, ema: dict) -> None:
        meta = {"architecture": ARCH, "args": json.dumps(self.arch_args), "num_classes": str(k)}
        net = {n[4:]: v.float() if v.dtype.is_floating_point else v for n, v in ema.items() if n.startswith("net.")}
        atomic_save(net, self.run / f"{task}.safetensors", meta)
        if task == "coarse":
            flat = {n: v for n, v in net.items() if not n.startswith("head.")}
            flat.update({f"head.{n[4:]}": v.float() for n, v in ema.items() if n.startswith("aux.")})
            atomic_save(flat, self.run / "flat.safetensors", {**meta, "num_classes": "7"})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="the run's folder (created on first start)")
    p.add_argument("--data", default="../shared/data/ferplus")
    p.add_argument("--widths", default="24,48,96,192")
    p.add_argument("--blocks", default="2,2,2,2")
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--epochs", default="coarse=60,negative=40")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--finetune-lr", type=float, default=0.02)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--warmup-epochs", type=float, default=2.0)
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--mixup", type=float, default=0.5, help="share of batches mixed (0: none)")
    p.add_argument("--mixup-alpha", type=float, default=0.4)
    p.add_argument("--no-degrade", dest="degrade", action="store_false")
    p.add_argument("--no-pose", dest="pose", action="store_false")
    p.add_argument("--neutral-weight", type=float, default=1.0, help="weight of Neutral votes in the targets")
    p.add_argument("--negative-tau", type=float, default=0.5, help="logit adjustment of the negative network's loss")
    p.add_argument("--coarse-aux-weight", type=float, default=1.0)
    p.add_argument("--train-splits", default="train-calibration,valid")
    p.add_argument("--seed", type=int, default=24)
    p.add_argument("--max-faces", type=int, default=0, help="train on the first N faces only (smoke runs)")
    # may change between resumes
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    p.add_argument("--checkpoint-minutes", type=float, default=10.0)
    p.add_argument(
        "--stop-after-minutes", type=float, default=0.0, help="checkpoint and stop after this long (0: never)"
    )
    args = p.parse_args()

    run = Path(args.run)
    run.mkdir(parents=True, exist_ok=True)
    run_file = run / "run.json"
    if run_file.exists():
        cfg = json.loads(run_file.read_text())
    else:
        cfg = {k: getattr(args, k) for k in RUN_KEYS}
        cfg["widths"] = [int(w) for w in args.widths.split(",")]
        cfg["blocks"] = [int(b) for b in args.blocks.split(",")]
        cfg["epochs"] = {t: int(e) for t, e in (item.split("=") for item in args.epochs.split(","))}
        cfg["data"] = str(Path(args.data))
        atomic_write_text(run_file, json.dumps(cfg, indent=2))
    if args.data != p.get_default("data") or not Path(cfg["data"]).exists():
        cfg["data"] = args.data  # the data may live elsewhere on another machine; the settings stay
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    state_file = run / "state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {"task": TASKS[0], "epoch": 0, "step": 0}
    log_file = open(run / "log.jsonl", "a")

    def log(rec: dict) -> None:
        line = json.dumps(rec)
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    log(
        {
            "event": "resume" if state["epoch"] or state["step"] or state["task"] != TASKS[0] else "start",
            "state": state,
            "device": str(device),
            "threads": args.threads,
            "torch": torch.__version__,
        }
    )
    trainer = Trainer(run, cfg, device, args.checkpoint_minutes, log)
    if args.stop_after_minutes:
        trainer.deadline = time.time() + args.stop_after_minutes * 60
    for task in TASKS[TASKS.index(state["task"]) :]:
        if state.get("done"):
            break
        state["task"] = task
        trainer.train(task, state)
        log({"event": "done", "task": task})
        nxt = TASKS.index(task) + 1
        if nxt < len(TASKS):
            state.update(task=TASKS[nxt], epoch=0, step=0)
        else:
            state["done"] = True
        atomic_write_text(state_file, json.dumps(state, indent=2))
        if (run / "checkpoint.safetensors").exists():
            (run / "checkpoint.safetensors").unlink()


if __name__ == "__main__":
    main()
