"""Soft targets from an ensemble teacher, for distilling it into a compact student (train_ferplus.py --teacher).

    python training/teacher_targets.py --members training/output /path/m1 /path/m2 --out teacher.npz

Each member folder holds coarse/negative.safetensors (train_ferplus.py's output). For every face of each
split in --splits the teacher's coarse and negative logits are the members' mean, each member scoring the
face and its mirror image (the shipped test-time view). Saves ``coarse_<split>`` and ``negative_<split>``,
float32 [N, 4], over all rows of the split; train_ferplus.py turns them into the coarse, negative and
7-way (soft rule) distributions its tasks learn.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cfcsp_sdk.backends.torch_backend import load_state_dict_strict  # noqa: E402
from cfcsp_sdk.models import build_network  # noqa: E402
from ferplus_data import load_split  # noqa: E402
from package_model import trained_arch_args  # noqa: E402
from train_ferplus import ARCH, MEAN, STD  # noqa: E402


def member_logits(path: Path, images: np.ndarray) -> np.ndarray:
    m = build_network(ARCH, 4, trained_arch_args(path))
    load_state_dict_strict(m, load_file(str(path)), str(path))
    m.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), 512):
            x = (torch.from_numpy(images[i : i + 512]).float().div(255).unsqueeze(1) - MEAN) / STD
            out.append(((m(x) + m(torch.flip(x, dims=[3]))) / 2).numpy())
    return np.concatenate(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", nargs="+", required=True)
    p.add_argument("--data", default="../shared/data/ferplus")
    p.add_argument("--splits", default="train-calibration,valid")
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    arrays = {}
    for split_name in args.splits.split(","):
        images = load_split(args.data, split_name).images
        for net in ("coarse", "negative"):
            logits = [member_logits(Path(f) / f"{net}.safetensors", images) for f in args.members]
            arrays[f"{net}_{split_name}"] = np.mean(logits, axis=0).astype(np.float32)
    np.savez(args.out, members=np.array([str(f) for f in args.members]), **arrays)
    print(f"wrote {args.out}:", {k: v.shape for k, v in arrays.items()})


if __name__ == "__main__":
    main()
