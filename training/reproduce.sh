#!/usr/bin/env bash
# Rebuild the bundled default model from FER+ on a CPU, end to end (under 2 hours on 2 cores):
#   bash training/reproduce.sh [../shared/data/ferplus]
# Needs the dev install (pip install torch==2.13.0 && pip install -e '.[dev]').
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/ferplus}
OUT=training/output
MODEL=src/cfcsp_sdk/pretrained/ferplus-cfc
python training/fer_template.py --data "$DATA" --out "$OUT/fer_template.json"     # alignment template
# coarse then negative (which starts from coarse) in one process, the flat comparison network in
# another, one thread each: on two cores that is ~1.5x faster than one two-thread process
python training/train_ferplus.py --data "$DATA" --out "$OUT" --tasks coarse,negative --threads 1 &
CASCADE=$!
python training/train_ferplus.py --data "$DATA" --out "$OUT" --tasks flat --threads 1 &
FLAT=$!
wait "$CASCADE"
wait "$FLAT"
python training/package_model.py --weights "$OUT" --out "$MODEL"                  # model repository
python training/evaluate_ferplus.py --data "$DATA" --model "$MODEL" --out "$OUT/eval_ferplus.json" | tee "$OUT/eval_ferplus.txt"
python training/package_model.py --weights "$OUT" --out "$MODEL"                  # again: card with the figures
