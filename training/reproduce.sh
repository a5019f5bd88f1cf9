#!/usr/bin/env bash
# Rebuild the bundled default model from FER+ on a CPU, end to end (about 2 hours on 2 cores):
#   bash training/reproduce.sh [../shared/data/ferplus]
# Needs the dev install (pip install torch==2.13.0 && pip install -e '.[dev]').
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/ferplus}
OUT=training/output
MODEL=src/cfcsp_sdk/pretrained/ferplus-cfc
python training/fer_template.py --data "$DATA" --out "$OUT/fer_template.json"     # alignment template
python training/train_ferplus.py --data "$DATA" --out "$OUT"                      # coarse, negative, flat
python training/package_model.py --weights "$OUT" --out "$MODEL"                  # model repository
python training/evaluate_ferplus.py --data "$DATA" --model "$MODEL" --out "$OUT/eval_ferplus.json" | tee "$OUT/eval_ferplus.txt"
python training/package_model.py --weights "$OUT" --out "$MODEL"                  # again: card with the figures
