"""Compare trained members and every pair of them as the shipped ensemble would run (mirror view, soft rule,
temperatures fitted on the calibration slice): the figures behind the choice of the shipped pair.

    python training/compare_members.py --members training/output/members/m{1,2,3,4,5,6} > members.txt

For each member and pair: accuracy / macro-F1 on the calibration slice (held out from every member's training)
and FER+ Test, Neutral share minus the true share, ECE, and lfw-expr accuracy (validation only). The shipped pair
is the one with the highest mean of slice accuracy and lfw-expr accuracy (training/README.md).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibrate import final_probabilities, fit_temperatures, scores  # noqa: E402
from cfcsp_sdk import Recognizer  # noqa: E402
from ferplus_data import FINAL_LABELS, final_majority, load_split  # noqa: E402
from teacher_targets import member_logits  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", nargs="+", required=True)
    p.add_argument("--data", default="../shared/data/ferplus")
    p.add_argument("--lfw", default="../shared/data/lfw-expr/valid.npz")
    args = p.parse_args()
    rec = Recognizer()  # only its cascade spec (label mapping) is used
    sets = {}
    for name in ("calibration", "test"):
        split = load_split(args.data, name)
        y = final_majority(split)
        sets[name] = (split.images[y >= 0], y[y >= 0])
    with np.load(args.lfw) as d:
        import cv2

        faces = np.stack([cv2.resize(im, (48, 48), interpolation=cv2.INTER_AREA) for im in d["images"]])
        sets["lfw"] = (faces, np.array([FINAL_LABELS.index(str(s)) for s in d["labels"]]))
    logits = {
        m: {
            s: {net: member_logits(Path(m) / f"{net}.safetensors", x) for net in ("coarse", "negative")}
            for s, (x, _) in sets.items()
        }
        for m in args.members
    }
    zero = (np.zeros(4), np.zeros(4))
    rows = []
    for r in (1, 2):
        for combo in itertools.combinations(args.members, r):
            z = {
                s: {
                    net: np.mean([logits[m][s][net] for m in combo], 0).astype(np.float64)
                    for net in ("coarse", "negative")
                }
                for s in sets
            }
            y_cal = sets["calibration"][1]
            t = fit_temperatures(z["calibration"]["coarse"], z["calibration"]["negative"], y_cal, rec, zero)
            res = {
                s: scores(final_probabilities(z[s]["coarse"], z[s]["negative"], rec, t, zero), sets[s][1]) for s in sets
            }
            true_n = {s: float((sets[s][1] == 0).mean()) for s in sets}
            name = " + ".join(Path(m).name for m in combo)
            rows.append((name, (res["calibration"]["accuracy"] + res["lfw"]["accuracy"]) / 2))
            print(
                f"{name:10s} T=({t[0]:.2f}, {t[1]:.2f}) | "
                + " | ".join(
                    f"{s} {res[s]['accuracy']:.4f} / {res[s]['macro_f1']:.3f} N{res[s]['neutral_share'] - true_n[s]:+.3f} "
                    f"ECE {res[s]['ece']:.3f}"
                    for s in sets
                ),
                flush=True,
            )
    best = max((r for r in rows if "+" in r[0]), key=lambda r: r[1])
    print(f"\nhighest mean of slice and lfw-expr accuracy among pairs: {best[0]} ({best[1]:.4f})")


if __name__ == "__main__":
    main()
