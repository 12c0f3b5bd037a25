#!/usr/bin/env bash
# Back-translation on tmt-shapes, CPU, fixed seeds: paired-only model -> back-translate unpaired
# images and speech-text pairs -> retrain on paired + pseudo -> six-task eval of both.
# Each step skips work already done (rerun to resume). Needs work/shapes-20k and
# work/store-shapes (bash recipes/shapes/run.sh, steps 1-4).
#   bash recipes/shapes/backtranslation/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
TMT=${TMT:-.venv/bin/tmt}
PY=${PY:-.venv/bin/python}
CORPUS=${CORPUS:-work/shapes-20k}
OUT=${OUT:-work/bt-shapes}
R=recipes/shapes/backtranslation
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
LIMIT=${LIMIT:-300}

# 0. a frozen copy of the codecs, so that the bundles decode with the codecs the store used
[ -d "$OUT/codecs/image" ] || { mkdir -p "$OUT/codecs"; cp -r tmt/assets/codecs/speech tmt/assets/codecs/image tmt/assets/codecs/text "$OUT/codecs/"; }

# 1. disjoint train subsets (seed 0): 2 000 paired, 4 000 images, 4 000 speech-text pairs
[ -f "$OUT/ids-paired.txt" ] || $PY $R/make_splits.py --store work/store-shapes --out "$OUT"

# 2. the intermediate model on the paired items only (also the "paired only" baseline)
$TMT train --config $R/paired.yaml
[ -f "$OUT/bundle-paired/bundle.json" ] || $TMT pack "$OUT/runs/paired/model" --out "$OUT/bundle-paired" \
  --codecs "$OUT/codecs" --max-text-len 32 --max-speech-len 200

# 3. back-translation (greedy): images -> pseudo text + speech; text -> pseudo images
$TMT backtranslate shapes --root "$CORPUS" --model "$OUT/bundle-paired" --out "$OUT/store-pseudo-images" \
  --ids "$OUT/ids-images.txt" --drop text,speech --strategy greedy --seed 0
$TMT backtranslate shapes --root "$CORPUS" --model "$OUT/bundle-paired" --out "$OUT/store-pseudo-speech-text" \
  --ids "$OUT/ids-speech-text.txt" --drop image --strategy greedy --seed 0

$PY $R/pseudo_quality.py --out "$OUT" --corpus "$CORPUS" --images 500

# 4. retrain from scratch on paired + pseudo, same steps
$TMT train --config $R/pseudo.yaml
[ -f "$OUT/bundle-pseudo/bundle.json" ] || $TMT pack "$OUT/runs/pseudo/model" --out "$OUT/bundle-pseudo" \
  --codecs "$OUT/codecs" --max-text-len 32 --max-speech-len 200

# 4b. ablation: retrain with the back-translated images only (no pseudo images)
$TMT train --config $R/pseudo-images.yaml
[ -f "$OUT/bundle-pseudo-images/bundle.json" ] || $TMT pack "$OUT/runs/pseudo-images/model" \
  --out "$OUT/bundle-pseudo-images" --codecs "$OUT/codecs" --max-text-len 32 --max-speech-len 200

# 5. six-task evaluation on the test split, and the table
for run in paired pseudo pseudo-images; do
  [ -f "$OUT/eval-$run.json" ] || $TMT eval --corpus "$CORPUS" --split test --limit "$LIMIT" \
    --model "$OUT/bundle-$run" --strategy greedy --out "$OUT/eval-$run.json"
done
$PY $R/table.py "paired only=$OUT/eval-paired.json" "paired + pseudo=$OUT/eval-pseudo.json" \
  "paired + pseudo text/speech only=$OUT/eval-pseudo-images.json"
