#!/usr/bin/env bash
# Pre-training on the union of COCO + SpokenCOCO, Flickr8k + Flickr8k Audio, CC3M and CC12M
# (speech synthesized): tokenize each corpus (resumable), then train (resumes from last.pt).
#   bash recipes/pretrain/run.sh [--set KEY=VALUE ...]   # 1 GPU; DATA=, CODECS=, STORES= (README)
#   bash recipes/pretrain/run.sh --smoke                 # end to end on tiny fixtures, on CPU
set -euo pipefail
cd "$(dirname "$0")/../.."
TMT=${TMT:-.venv/bin/tmt}
PY=${PY:-.venv/bin/python}

if [ "${1:-}" = "--smoke" ]; then
  source recipes/smoke.sh
  smoke_fixtures
  for corpus in coco flickr8k cc3m; do smoke_tokenize "$corpus"; done
  S=$SMOKE_DIR/stores
  $TMT train --config recipes/pretrain/pretrain.yaml "${SMOKE_SET[@]}" \
    --set out_dir="$SMOKE_DIR/runs/pretrain" --set "stores=[$S/coco, $S/flickr8k, $S/cc3m]"
  smoke_check "$SMOKE_DIR/runs/pretrain" pretrain
  exit 0
fi

DATA=${DATA:-data}            # DATA/coco, DATA/flickr8k, DATA/cc3m, DATA/cc12m (README.md)
CODECS=${CODECS:-work/codecs} # speech/ image/ text/ codec folders (paper setting: README.md)
STORES=${STORES:-work/stores} # must match `stores:` in pretrain.yaml

$TMT tokenize coco --root "$DATA/coco" --out "$STORES/coco" --codecs "$CODECS"
$TMT tokenize flickr8k --root "$DATA/flickr8k" --out "$STORES/flickr8k" --codecs "$CODECS"
$TMT tokenize cc3m --root "$DATA/cc3m" --out "$STORES/cc3m" --codecs "$CODECS"
$TMT tokenize cc12m --root "$DATA/cc12m" --out "$STORES/cc12m" --codecs "$CODECS"
$TMT train --config recipes/pretrain/pretrain.yaml "$@"
