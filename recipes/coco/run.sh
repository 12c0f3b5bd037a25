#!/usr/bin/env bash
# Fine-tuning the pre-trained model (recipes/pretrain) on COCO (Karpathy split) with SpokenCOCO,
# then a bundle for `tmt translate` / `tmt eval` (beam 5).
#   bash recipes/coco/run.sh [--set KEY=VALUE ...]   # 1 GPU; DATA=, CODECS=, STORES= (README)
#   bash recipes/coco/run.sh --smoke                 # end to end on tiny fixtures, on CPU
set -euo pipefail
cd "$(dirname "$0")/../.."
TMT=${TMT:-.venv/bin/tmt}
PY=${PY:-.venv/bin/python}

source recipes/finetune.sh
finetune coco "$@"
