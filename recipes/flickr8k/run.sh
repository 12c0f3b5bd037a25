#!/usr/bin/env bash
# Fine-tuning the pre-trained model (recipes/pretrain) on Flickr8k (Karpathy split) with the Flickr8k Audio Caption Corpus,
# then a bundle for `tmt translate` / `tmt eval` (beam 5).
#   bash recipes/flickr8k/run.sh [--set KEY=VALUE ...]   # 1 GPU; DATA=, CODECS=, STORES= (README)
#   bash recipes/flickr8k/run.sh --smoke                 # end to end on tiny fixtures, on CPU
set -euo pipefail
cd "$(dirname "$0")/../.."
TMT=${TMT:-.venv/bin/tmt}
PY=${PY:-.venv/bin/python}

if [ "${1:-}" = "--smoke" ]; then
  source recipes/smoke.sh
  # the smoke pre-training first (it writes the fixtures and the flickr8k store too)
  [ -f "$SMOKE_DIR/runs/pretrain/model/config.json" ] || bash recipes/pretrain/run.sh --smoke
  [ -f "$SMOKE_DIR/stores/flickr8k/store.json" ] || smoke_tokenize flickr8k
  $TMT train --config recipes/flickr8k/finetune.yaml "${SMOKE_SET[@]}" \
    --set out_dir="$SMOKE_DIR/runs/flickr8k" --set "stores=[$SMOKE_DIR/stores/flickr8k]" \
    --set init_from="$SMOKE_DIR/runs/pretrain/model"
  smoke_check "$SMOKE_DIR/runs/flickr8k" flickr8k
  exit 0
fi

DATA=${DATA:-data}
CODECS=${CODECS:-work/codecs}
STORES=${STORES:-work/stores}

$TMT tokenize flickr8k --root "$DATA/flickr8k" --out "$STORES/flickr8k" --codecs "$CODECS"
$TMT train --config recipes/flickr8k/finetune.yaml "$@"
$TMT pack work/runs/flickr8k/model --codecs "$CODECS" --out checkpoints/flickr8k
