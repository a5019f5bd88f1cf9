#!/usr/bin/env bash
# Rebuild the bundled default model from FER+ on a CPU, end to end (about 3.5 hours on 2 cores; each
# training run below takes 35-60 min on one core):
#   bash training/reproduce.sh [../shared/data/ferplus]
# Needs the dev install (pip install torch==2.13.0 && pip install -e '.[dev]').
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/ferplus}
OUT=training/output
MEMBERS=$OUT/members
MODEL=src/cfcsp_sdk/pretrained/ferplus-cfc
RAW=$(mktemp -d)
trap 'rm -rf "$RAW"' EXIT
python training/fer_template.py --data "$DATA" --out "$OUT/fer_template.json"     # alignment template

# 1. The earlier single model (FER+ train + valid; part of the distillation teacher) and the flat comparison
#    network, one process and one thread each: on two cores that is ~1.5x faster than one two-thread process
python training/train_ferplus.py --data "$DATA" --out "$OUT" --tasks coarse,negative --threads 1 &
CASCADE=$!
python training/train_ferplus.py --data "$DATA" --out "$OUT" --tasks flat --threads 1 &
FLAT=$!
wait "$CASCADE"
wait "$FLAT"

# 2. Ensemble candidates on FER+ train less a fixed 2,000-face calibration slice, plus valid, two at a time
member() {
  local name=$1
  shift
  mkdir -p "$MEMBERS/$name"
  python training/train_ferplus.py --data "$DATA" --out "$MEMBERS/$name" --tasks coarse,negative \
    --train-splits train-calibration,valid --threads 1 "$@" > "$MEMBERS/$name/stdout.txt"
}
# side by side; each pid waited for by name, so that a failed member stops the script (a bare `wait` would not)
member m1 --degrade --seed 1 & P1=$!
member m2 --seed 2 & P2=$!
wait "$P1"; wait "$P2"
member m3 --degrade --pose --seed 3 & P1=$!
member m4 --pose --seed 4 & P2=$!
wait "$P1"; wait "$P2"
# students of the five networks above (votes mixed half and half with the teacher's distributions; the teacher's
# first single model has seen the calibration slice, so the students' slice figures are not held out)
python training/teacher_targets.py --data "$DATA" --members "$OUT" "$MEMBERS"/m{1,2,3,4} --out "$MEMBERS/teacher.npz"
member m5 --teacher "$MEMBERS/teacher.npz" --degrade --pose --seed 5 & P1=$!
member m6 --teacher "$MEMBERS/teacher.npz" --seed 6 & P2=$!
wait "$P1"; wait "$P2"
python training/compare_members.py --data "$DATA" --members "$MEMBERS"/m{1,2,3,4,5,6} | tee "$MEMBERS/compare.txt"

# 3. The shipped pair (chosen on the calibration slice and lfw-expr, see training/README.md): package it,
#    fit its calibration on the slice, package it again with the calibration, evaluate, write the card
SHIPPED="$MEMBERS/m2 $MEMBERS/m3"
package() {
  python training/package_model.py --weights $SHIPPED --template "$OUT/fer_template.json" \
    --evaluation "$OUT/eval_ferplus.json" --weights-dtype float16 --no-shift-views "$@"
}
package --out "$RAW"
python training/calibrate.py --data "$DATA" --model "$RAW" --split calibration --neutral-margin 0.02 \
  --out "$OUT/calibration.json" | tee "$OUT/calibration.txt"
package --calibration "$OUT/calibration.json" --out "$MODEL"
python training/evaluate_ferplus.py --data "$DATA" --model "$MODEL" --out "$OUT/eval_ferplus.json" | tee "$OUT/eval_ferplus.txt"
package --calibration "$OUT/calibration.json" --out "$MODEL"                     # again: card with the figures
python training/diagnose_domain.py --ferplus "$DATA" --model "$MODEL" --out "$OUT/diagnose_domain.json" > "$OUT/diagnose_domain.txt"
