#!/usr/bin/env bash
# Fine-tuning the pre-trained model (recipes/pretrain) on COCO (Karpathy split) with SpokenCOCO,
# then a bundle for `tmt translate` / `tmt eval` (beam 5).
#   bash recipes/coco/run.sh [--set KEY=VALUE ...]   # 1 GPU; DATA=, CODECS=, STORES= (README)
#   bash recipes/coco/run.sh --smoke                 # end to end on tiny fixtures, on CPU
set -euo pipefail
cd "$(dirname "$0")/../.."
TMT=${TMT:-.venv/bin/tmt}
PY=${PY:-.venv/bin/python}

if [ "${1:-}" = "--smoke" ]; then
  source recipes/smoke.sh
  # the smoke pre-training first (it writes the fixtures and the coco store too)
  [ -f "$SMOKE_DIR/runs/pretrain/model/config.json" ] || bash recipes/pretrain/run.sh --smoke
  [ -f "$SMOKE_DIR/stores/coco/store.json" ] || smoke_tokenize coco
  $TMT train --config recipes/coco/finetune.yaml "${SMOKE_SET[@]}" \
    --set out_dir="$SMOKE_DIR/runs/coco" --set "stores=[$SMOKE_DIR/stores/coco]" \
    --set init_from="$SMOKE_DIR/runs/pretrain/model"
  smoke_check "$SMOKE_DIR/runs/coco" coco
  exit 0
fi

DATA=${DATA:-data}
CODECS=${CODECS:-work/codecs}
STORES=${STORES:-work/stores}

$TMT tokenize coco --root "$DATA/coco" --out "$STORES/coco" --codecs "$CODECS"
$TMT train --config recipes/coco/finetune.yaml "$@"
$TMT pack work/runs/coco/model --codecs "$CODECS" --out checkpoints/coco
