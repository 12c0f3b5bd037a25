#!/usr/bin/env bash
# Paper question (b) on tmt-shapes: one model trained on all six directions against six
# single-direction models, each trained for the same number of steps with the same recipe
# (recipes/shapes/translator.yaml at a reduced scale: STEPS steps of BATCH examples, seed 0).
# Each model is scored on its own direction(s) with `tmt eval`, test split, first LIMIT items.
#   bash recipes/shapes/unified-vs-single/run.sh     # reruns resume; $OUT gets one JSON per run
# Settings (environment): STEPS, BATCH, LIMIT, THREADS, RUNS (scratch runs), OUT (reports).
set -euo pipefail
cd "$(dirname "$0")/../../.."
TMT=${TMT:-.venv/bin/tmt}
STEPS=${STEPS:-400}
BATCH=${BATCH:-24}
LIMIT=${LIMIT:-200}
THREADS=${THREADS:-1}
RUNS=${RUNS:-work/runs/unified-vs-single}
OUT=${OUT:-recipes/shapes/unified-vs-single/results}
mkdir -p "$OUT"
export OMP_NUM_THREADS=$THREADS

ALL="speech-text text-speech image-text text-image speech-image image-speech"
for name in all $ALL; do
  if [ "$name" = all ]; then dirs="[${ALL// /, }]"; eval_dirs=$ALL; else dirs="[$name]"; eval_dirs=$name; fi
  run=$RUNS/$name
  [ -f "$OUT/$name.json" ] && continue
  $TMT train --config recipes/shapes/translator.yaml --set out_dir="$run" --set max_steps="$STEPS" \
    --set batch_size="$BATCH" --set "directions=$dirs" --set num_threads="$THREADS" \
    --set valid_every="$STEPS" --set checkpoint_every=100
  $TMT pack "$run/model" --out "$run/bundle" --max-text-len 32 --max-speech-len 200
  $TMT eval --model "$run/bundle" --corpus work/shapes-20k --split test --limit "$LIMIT" \
    --directions $eval_dirs --out "$OUT/$name.json.tmp" > /dev/null
  mv "$OUT/$name.json.tmp" "$OUT/$name.json"
done

# one report holding each single-direction model's own direction, then the table
.venv/bin/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
merged = {"split": "test", "directions": {}}
for name in ("speech-text", "text-speech", "image-text", "text-image", "speech-image", "image-speech"):
    report = json.loads((out / f"{name}.json").read_text())["test"]
    merged["directions"][name] = report["directions"][name]
(out / "single-merged.json").write_text(json.dumps({"test": merged}, indent=2) + "\n")
PY
.venv/bin/python recipes/shapes/backtranslation/table.py unified="$OUT/all.json" \
  single-direction="$OUT/single-merged.json" | tee "$OUT/table.md"
