"""Compare the cascade's decision rules (hard and soft) for one model on one FER+ split.

    python training/compare_rules.py --model <model folder> --split valid [--views none,mirror,model]

Use it on a model trained with ``--train-splits train`` to choose the default rule on FER+ valid
without looking at FER+ test. Protocol as in evaluate_ferplus.py (majority label, unknown /
not-a-face / contempt faces left out). ``--views`` compares test-time views too (each a preset of
``Recognizer(views=...)`` or a JSON mapping such as '{"mirror": true, "shifts": [[1, 1]]}'; separate
several with ';').
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cfcsp_sdk import Recognizer  # noqa: E402
from evaluate_ferplus import labels_under_rule, metrics  # noqa: E402
from ferplus_data import load_split, targets  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--data", default="../shared/data/ferplus")
    p.add_argument("--split", default="valid")
    p.add_argument("--backend", default="onnx")
    p.add_argument("--views", default="model", help="';'-separated views to compare (default: the model's)")
    args = p.parse_args()
    split = load_split(args.data, args.split)
    rows, _, maj = targets(split, "flat")
    faces = list(split.images[rows])
    print(f"FER+ {args.split}: {len(rows)} faces")
    for views in args.views.split(";"):
        rec = Recognizer(
            args.model,
            backend=args.backend,
            views=json.loads(views) if views.strip().startswith("{") else views.strip(),
        )
        out = rec.run_cascade(rec.preprocess(faces))
        for rule in ("hard", "soft"):
            m = metrics(labels_under_rule(rec, out, rule), maj, 7)
            print(
                f"  views {rec.cascade.views.describe()}, {rule} rule: accuracy {m['accuracy']:.4f}, "
                f"macro-F1 {m['macro_f1']:.4f}"
            )


if __name__ == "__main__":
    main()
