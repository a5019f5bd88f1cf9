"""Train the default model's networks on FER+ (CPU, seeded).

    python training/train_ferplus.py --data ../shared/data/ferplus --out training/output

writes <out>/{coarse,negative,flat}.safetensors, <out>/train_log_<tasks>.jsonl and <out>/summary.json.
By default the networks learn from FER+ train and valid together and the last epoch is kept (the one-cycle
schedule ends at a near-zero learning rate); the negative network starts from the trained coarse network's
features. Run coarse+negative and flat as two processes with one thread each: on two cores that is faster
than one two-thread process. See training/README.md.
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
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cfcsp_sdk.models import build_network  # noqa: E402
from ferplus_data import load_split, targets  # noqa: E402

ARCH = "cfcsp-compact-cnn"
ARCH_ARGS = {"in_channels": 1, "widths": [24, 48, 96, 160], "dropout": 0.3}
MEAN, STD = 0.5, 0.25  # grey level in [0, 1]; written into config.json preprocessing


def augment(
    x: torch.Tensor, gen: torch.Generator, scale_range: tuple[float, float] = (0.87, 1.15), pose: bool = False
) -> torch.Tensor:
    """In-the-wild augmentations on a [B,1,H,W] batch in [0,1]: alignment jitter (rotation, scale in
    ``scale_range``, shift), horizontal flip, brightness/contrast, blur and a random occluding rectangle.
    With ``pose``, also what a 5-point similarity alignment leaves of a turned head: the face squeezed or
    stretched horizontally (x0.8-1.25 against its height) and sheared (+-0.12)."""
    b = x.shape[0]

    def u(lo: float, hi: float, n: int = b) -> torch.Tensor:
        return torch.rand(n, generator=gen) * (hi - lo) + lo

    angle = u(-15, 15) * math.pi / 180
    scale = u(*scale_range)
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    tx, ty = u(-0.08, 0.08), u(-0.08, 0.08)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    if pose:
        theta[:, 0, :2] *= u(0.8, 1.25).view(b, 1)
        theta[:, 0, 1] += u(-0.12, 0.12)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    contrast = u(0.6, 1.4).view(b, 1, 1, 1)
    brightness = u(-0.15, 0.15).view(b, 1, 1, 1)
    m = x.mean(dim=(2, 3), keepdim=True)
    x = ((x - m) * contrast + m + brightness).clamp(0, 1)

    blur = torch.rand(b, generator=gen) < 0.25
    if blur.any():
        sigma = float(u(0.6, 1.4, 1))
        k = torch.arange(-3, 4, dtype=torch.float32)
        g = torch.exp(-(k**2) / (2 * sigma**2))
        g = g / g.sum()
        xb = x[blur]
        xb = F.conv2d(F.pad(xb, (3, 3, 0, 0), mode="replicate"), g.view(1, 1, 1, 7))
        xb = F.conv2d(F.pad(xb, (0, 0, 3, 3), mode="replicate"), g.view(1, 1, 7, 1))
        x[blur] = xb

    occl = torch.rand(b, generator=gen) < 0.35
    h, w = x.shape[2:]
    for i in torch.nonzero(occl).flatten().tolist():
        rh, rw = int(u(0.2, 0.5, 1) * h), int(u(0.2, 0.5, 1) * w)
        y0 = int(torch.randint(0, h - rh + 1, (1,), generator=gen))
        x0 = int(torch.randint(0, w - rw + 1, (1,), generator=gen))
        x[i, :, y0 : y0 + rh, x0 : x0 + rw] = float(torch.rand(1, generator=gen))
    return x


def degrade(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Simulate the gap between FER+ crops and aligned detections from other sources, on uint8
    [B, 48, 48] faces: JPEG compression, another capture resolution (down- then upscaled), sharpening
    (large sharp faces downscaled to 48 px look crisper than FER's) and gamma. Each with its own chance,
    so most faces keep FER+'s look; measured by training/diagnose_domain.py (JPEG costs the most)."""
    out = images.copy()
    for i in range(len(out)):
        img = out[i]
        if rng.random() < 0.3:
            side = int(rng.integers(16, 40))
            small = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
            img = cv2.resize(small, (48, 48), interpolation=cv2.INTER_LINEAR if rng.random() < 0.5 else cv2.INTER_CUBIC)
        elif rng.random() < 0.2:
            blur = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.8, 1.5)))
            img = cv2.addWeighted(img, 1.0 + float(rng.uniform(0.5, 1.5)), blur, -float(rng.uniform(0.5, 1.5)), 0)
        if rng.random() < 0.3:
            lut = (255 * (np.arange(256) / 255.0) ** float(np.exp(rng.uniform(-0.5, 0.5)))).astype(np.uint8)
            img = lut[img]
        if rng.random() < 0.3:
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(10, 60))])
            img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
        out[i] = img
    return out


def teacher_distribution(coarse: np.ndarray, negative: np.ndarray, task: str) -> np.ndarray:
    """The teacher's distribution for ``task`` from its coarse and negative logits: softmax for coarse and
    negative, the soft rule's 7-way distribution (final label order) for flat / the auxiliary head."""

    def softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    pc, pn = softmax(coarse.astype(np.float64)), softmax(negative.astype(np.float64))
    if task == "coarse":
        return pc.astype(np.float32)
    if task == "negative":
        return pn.astype(np.float32)
    neg = pc[:, 3:4] * pn  # Anger, Disgust, Fear, Sadness
    final = np.stack([pc[:, 0], neg[:, 0], neg[:, 1], neg[:, 2], pc[:, 1], neg[:, 3], pc[:, 2]], 1)
    return final.astype(np.float32)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).float().div_(255).unsqueeze(1)


def evaluate(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), 256):
            x = (to_tensor(images[i : i + 256]) - MEAN) / STD
            pred = model(x.contiguous(memory_format=torch.channels_last)).argmax(1).numpy()
            correct += int((pred == labels[i : i + 256]).sum())
    return correct / len(images)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against vote distributions (rows of ``target`` sum to 1), batch mean."""
    return -(target * F.log_softmax(logits, 1)).sum(1).mean()


def train_task(task: str, epochs: int, args: argparse.Namespace, log) -> dict:
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    splits = args.train_splits.split(",")
    aux_weight = args.coarse_aux_weight if task == "coarse" else 0.0
    images, soft_parts, fine_parts = [], [], []
    teacher = np.load(args.teacher) if args.teacher else None
    w = args.teacher_weight if teacher is not None else 0.0
    for name in splits:
        split = load_split(args.data, name)
        rows, soft, _ = targets(split, task)
        images.append(split.images[rows])
        if teacher is not None:  # distillation: the votes mixed with the ensemble teacher's distribution
            tc, tn = teacher[f"coarse_{name}"][rows], teacher[f"negative_{name}"][rows]
            soft = (1 - w) * soft + w * teacher_distribution(tc, tn, task)
        soft_parts.append(soft)
        if aux_weight:
            fine_rows, fine_soft, _ = targets(split, "flat")
            if not np.array_equal(rows, fine_rows):
                raise SystemExit("coarse and 7-class targets must cover the same faces")
            if teacher is not None:
                fine_soft = (1 - w) * fine_soft + w * teacher_distribution(tc, tn, "flat")
            fine_parts.append(fine_soft)
    x_all, t_all = np.concatenate(images), torch.from_numpy(np.concatenate(soft_parts))
    t_fine = torch.from_numpy(np.concatenate(fine_parts)) if aux_weight else None
    if args.max_faces:  # smoke runs
        x_all, t_all = x_all[: args.max_faces], t_all[: args.max_faces]
        t_fine = t_fine[: args.max_faces] if t_fine is not None else None
    n_train = len(x_all)
    held_out = "valid" not in splits
    if held_out:
        valid = load_split(args.data, "valid")
        vrows, _, vmaj = targets(valid, task)
    k = t_all.shape[1]
    model = build_network(ARCH, num_classes=k, args=ARCH_ARGS)
    lr, init = args.lr, "random"
    if task == "negative" and args.negative_init == "coarse":
        # CFC fine-tunes both networks from one backbone; here the negative network starts from the
        # trained coarse network's features (head left fresh) and is fine-tuned at a lower rate.
        coarse = load_file(str(Path(args.out) / "coarse.safetensors"))
        result = model.load_state_dict({n: t for n, t in coarse.items() if not n.startswith("head.")}, strict=False)
        if result.unexpected_keys or any(not n.startswith("head.") for n in result.missing_keys):
            raise SystemExit(f"coarse.safetensors does not fit the negative network: {result}")
        lr, init = args.finetune_lr, "coarse"
    model = model.to(memory_format=torch.channels_last)
    params = list(model.parameters())
    aux_head = None
    if aux_weight:
        # Auxiliary supervision: a 7-way head on the coarse network's pooled features learns the
        # 7-class votes, so the features (which the negative network starts from) see the difference
        # between anger, disgust, fear and sadness too. Only the 4-way coarse head is kept.
        aux_head = torch.nn.Linear(model.head.in_features, t_fine.shape[1])
        params += list(aux_head.parameters())
    steps_per_epoch = math.ceil(n_train / args.batch)
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.2)
    best = {"val_acc": -1.0}
    for epoch in range(epochs):
        model.train()
        t0, total = time.time(), 0.0
        order = torch.from_numpy(rng.permutation(n_train))
        for s in range(steps_per_epoch):
            idx = order[s * args.batch : (s + 1) * args.batch]
            faces = x_all[idx.numpy()]
            if args.degrade:
                faces = degrade(faces, rng)
            x = augment(to_tensor(faces), gen, (0.8, 1.25) if args.degrade else (0.87, 1.15), args.pose)
            x = (x - MEAN) / STD
            x = x.contiguous(memory_format=torch.channels_last)
            if aux_head is None:
                loss = soft_cross_entropy(model(x), t_all[idx])
            else:
                feats = model.dropout(model.forward_features(x))
                loss = soft_cross_entropy(model.head(feats), t_all[idx])
                loss = loss + aux_weight * soft_cross_entropy(aux_head(feats), t_fine[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        rec = {"task": task, "epoch": epoch + 1, "loss": total / n_train, "seconds": round(time.time() - t0, 1)}
        if held_out:
            rec["val_acc"] = evaluate(model, valid.images[vrows], vmaj)
        log(rec)
        # with a held-out valid split keep the best epoch (unless --keep last), otherwise the last one
        if not held_out or args.keep == "last" or rec["val_acc"] > best["val_acc"]:
            best = {"val_acc": rec.get("val_acc"), "epoch": epoch + 1}
            state = {
                n: t.detach().contiguous().clone() for n, t in model.state_dict().items() if t.dtype.is_floating_point
            }
            save_file(
                state,
                str(Path(args.out) / f"{task}.safetensors"),
                metadata={"architecture": ARCH, "args": json.dumps(ARCH_ARGS), "num_classes": str(k)},
            )
    return {
        "task": task,
        "num_classes": k,
        "train_splits": splits,
        "train_faces": n_train,
        "epochs": epochs,
        "max_lr": lr,
        "init": init,
        "aux_fine_weight": aux_weight,
        "degrade": bool(args.degrade),
        "pose": bool(args.pose),
        "seed": args.seed,
        "teacher": [str(m) for m in teacher["members"]] if teacher is not None else None,
        "teacher_weight": w,
        "widths": ARCH_ARGS["widths"],
        **best,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/ferplus")
    p.add_argument("--out", default="training/output")
    p.add_argument("--tasks", default="coarse,negative,flat")
    # flat's epochs give it the cascade's budget in face passes: 21 x 31,746 + 14 x 7,682 ~ 24.4 x 31,746
    p.add_argument("--epochs", default="coarse=21,negative=14,flat=24")
    p.add_argument("--train-splits", default="train,valid")
    p.add_argument("--negative-init", choices=["coarse", "random"], default="coarse")
    p.add_argument("--finetune-lr", type=float, default=0.02)
    p.add_argument(
        "--coarse-aux-weight",
        type=float,
        default=1.0,
        help="weight of the coarse network's auxiliary 7-class loss (0: coarse targets only)",
    )
    p.add_argument(
        "--keep",
        choices=["best", "last"],
        default="best",
        help="with --train-splits train: keep the best validation epoch or, as the shipped model does, the last one",
    )
    p.add_argument(
        "--widths",
        default=",".join(map(str, ARCH_ARGS["widths"])),
        help="channels of the four stages (saved in each network's metadata)",
    )
    p.add_argument(
        "--degrade",
        action="store_true",
        help="also degrade faces (JPEG, capture resolution, sharpening, gamma) and widen the crop-scale "
        "jitter to 0.8-1.25 (not in the shipped recipe: see training/README.md)",
    )
    p.add_argument(
        "--pose",
        action="store_true",
        help="also squeeze/stretch and shear faces horizontally, as aligning a turned head does",
    )
    p.add_argument(
        "--teacher",
        default=None,
        help="teacher.npz from teacher_targets.py: learn the votes mixed with the teacher's distribution",
    )
    p.add_argument("--teacher-weight", type=float, default=0.5, help="the teacher's share of each target")
    p.add_argument("--max-faces", type=int, default=0, help="train on the first N faces only (smoke runs)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    ARCH_ARGS["widths"] = [int(w) for w in args.widths.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    epochs = dict(item.split("=") for item in args.epochs.split(","))
    log_file = open(out / f"train_log_{args.tasks.replace(',', '+')}.jsonl", "a")

    def log(rec: dict) -> None:
        line = json.dumps(rec)
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    log({"event": "start", "args": vars(args), "arch": ARCH, "arch_args": ARCH_ARGS, "torch": torch.__version__})
    for task in args.tasks.split(","):
        result = train_task(task, int(epochs[task]), args, log)
        log({"event": "done", **result})
        # two processes may share this file: merge under a fresh name, then swap it in
        path = out / "summary.json"
        summary = json.loads(path.read_text()) if path.exists() else {}
        summary[task] = result
        tmp = out / f"summary.json.{os.getpid()}"
        tmp.write_text(json.dumps(summary, indent=2))
        os.replace(tmp, path)


if __name__ == "__main__":
    main()
