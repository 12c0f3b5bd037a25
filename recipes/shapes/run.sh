#!/usr/bin/env bash
# The default bundle from scratch, on CPU, seed 0: corpus -> codecs -> token store -> translator
# -> bundle (checkpoints/shapes). Each step skips work already done (rerun to resume).
#   bash recipes/shapes/run.sh            # writes work/..., tokenizers/, checkpoints/shapes
set -euo pipefail
cd "$(dirname "$0")/../.."
TMT=${TMT:-.venv/bin/tmt}
PY=${PY:-.venv/bin/python}
CORPUS=${CORPUS:-work/shapes-20k}
STORE=${STORE:-work/store-shapes}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

# 1. the corpus (tmt-shapes, 20k examples)
[ -f "$CORPUS/manifest.jsonl" ] || $TMT data shapes --out "$CORPUS" --size 20000 --seed 0

# 2. the image judge (ground-truth train images only)
[ -f checkpoints/judges/image/model.safetensors ] || \
  $PY -m tmt.eval.image_judge_train --corpus "$CORPUS" --out checkpoints/judges/image --seed 0

# 3. codecs: speech units + vocoder, image codec, text WordPiece
[ -f tokenizers/speech/config.json ] || {
  $PY -m tmt.speech.fit_tokenizer --corpus "$CORPUS" --features mfcc --out work/speech/tokenizer --seed 0
  $PY -m tmt.speech.train_vocoder --corpus "$CORPUS" --tokenizer work/speech/tokenizer \
    --out work/speech/vocoder --codec-out tokenizers/speech --minutes 45
}
[ -f tokenizers/image/config.json ] || {
  # SEED's order (recipes/shapes/README.md, "Image codec"): stage 1 teaches the CNN encoder's
  # trunk the caption words; stage 2 freezes it and trains the local Q-Former queries, the
  # codebook and the pixel decoder (pixels + a perceptual loss through the frozen trunk), in
  # three runs of 2500 steps, each continuing the previous codec
  $PY -m tmt.image.semantic --corpus "$CORPUS" --out work/image-encoder \
    --work work/image-encoder-train --override '{"local_queries": true}' --steps 800 --seed 0
  stage2() {  # INIT OUT LR PERCEPTUAL (a finished run is skipped)
    [ -f "$2/config.json" ] || $PY -m tmt.image.train --corpus "$CORPUS" --init "$1" \
      --freeze-encoder --perceptual-weight "$4" --out "$2" --work "$2-train" \
      --steps 2500 --batch-size 32 --lr "$3" --threads 1 --seed 0
  }
  stage2 work/image-encoder work/image-codec-2a 1e-3 0.3
  stage2 work/image-codec-2a work/image-codec-2b 5e-4 0.3
  stage2 work/image-codec-2b work/image-codec-2c 5e-4 1.0
  # then the pixel decoder alone, on the frozen codes
  $PY -m tmt.image.refit_decoder --codec work/image-codec-2c --corpus "$CORPUS" \
    --out work/image-codec-2d --work work/image-codec-2d-train --steps 1500 --lr 3e-4 \
    --perceptual-weight 1.0 --threads 1 --seed 0
  cp -r work/image-codec-2d tokenizers/image
}
[ -f tokenizers/text/config.json ] || $TMT text train --corpus "$CORPUS" --out tokenizers/text

# 4. the token store (resumable)
$TMT tokenize shapes --root "$CORPUS" --out "$STORE"

# 5. the translator (resumes from work/runs/shapes-translator/last.pt)
$TMT train --config recipes/shapes/translator.yaml

# 6. the bundle
$TMT pack work/runs/shapes-translator/model --out checkpoints/shapes --max-text-len 32 --max-speech-len 200
