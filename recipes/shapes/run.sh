#!/usr/bin/env bash
# The default bundle from scratch, on CPU, seed 0: corpus -> codecs -> token store -> translator
# -> bundle (tmt/assets/models/shapes). Each step skips work already done (rerun to resume).
#   bash recipes/shapes/run.sh                  # the model's steps, in order (STEPS below)
#   bash recipes/shapes/run.sh image-codec      # named steps only (STEPS or EXTRA_STEPS)
# The image judge (step "judge") is a measuring instrument for `tmt eval`, not part of the
# model; it ships in tmt/assets/judges/image and is retrained only when named.
# Settings (environment): CORPUS, STORE, OMP_NUM_THREADS (default 2), TORCHRUN, IMAGE_WORK (the image
# codec's scratch, default work), IMAGE_OUT (where the finished image codec goes, default
# tmt/assets/codecs/image), IMAGE_THREADS (the image codec's torch threads, default 2), IMAGE_PROCS
# (default 1; N > 1: stage 2 as N 1-thread data-parallel processes, e.g. one per core),
# SPEECH_OUT (where the finished speech codec goes, default tmt/assets/codecs/speech), CODECS (the folder
# with speech/ image/ text/ that the store and the bundle use, default tmt/assets/codecs).
# Step "decoders" trains the image codec's pixel decoder (refit), the speech vocoder and the speech
# unit normalizer side by side on 1 thread each, then puts the speech codec together (teacher
# k-means + vocoder + normalizer) in SPEECH_OUT.
set -euo pipefail
cd "$(dirname "$0")/../.."
TMT=${TMT:-.venv/bin/tmt}
PY=${PY:-.venv/bin/python}
TORCHRUN=${TORCHRUN:-.venv/bin/torchrun}
CORPUS=${CORPUS:-work/shapes-20k}
STORE=${STORE:-work/store-shapes}
IMAGE_WORK=${IMAGE_WORK:-work}
IMAGE_OUT=${IMAGE_OUT:-tmt/assets/codecs/image}
IMAGE_THREADS=${IMAGE_THREADS:-2}
IMAGE_PROCS=${IMAGE_PROCS:-1}
SPEECH_OUT=${SPEECH_OUT:-tmt/assets/codecs/speech}
CODECS=${CODECS:-tmt/assets/codecs}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
STEPS=(corpus speech-tokenizer image-codec decoders text-tokenizer store translator bundle)
EXTRA_STEPS=(judge)

wait_all() {  # PID... : wait for every one; fail if any failed
  local failed=0
  for pid in "$@"; do wait "$pid" || failed=1; done
  return $failed
}

corpus() {  # tmt-shapes, 20k examples
  [ -f "$CORPUS/manifest.jsonl" ] || $TMT data shapes --out "$CORPUS" --size 20000 --seed 0
}

judge() {  # the image judge (ground-truth train images only)
  [ -f tmt/assets/judges/image/model.safetensors ] || \
    $TMT codec train judge --corpus "$CORPUS" --out tmt/assets/judges/image --seed 0
}

speech-tokenizer() {  # k-means speech units of the output voice: the vocoder's units, the normalizer's teacher
  [ -f "$SPEECH_OUT/config.json" ] && return
  [ -f work/speech/tokenizer/config.json ] || $TMT codec train speech-units --corpus "$CORPUS" \
    --features mfcc --out work/speech/tokenizer --output-voice-only --seed 0
}

image-codec() {
  # SEED's order (recipes/shapes/README.md, "Image codec"): stage 1 teaches the CNN encoder's
  # trunk the caption words; stage 2 freezes it and trains the local Q-Former queries, the
  # codebook and the pixel decoder (pixels + a perceptual loss through the frozen trunk), in
  # three runs of 2500 steps, each continuing the previous codec. The forward passes run under
  # bfloat16 autocast where the CPU computes bf16 natively (--bf16 auto: AMX or AVX-512 bf16;
  # without them bf16 is emulated, 3-12x slower: benchmarks/precision.py), else in float32; the
  # codes are chosen in float32 either way. Each step's forward and loss run compiled by
  # torch.compile where a C++ compiler is found (--compile auto: the same step, 1.07-1.13x faster
  # on 2 threads and 1.27-1.32x on 1, benchmarks/image_train_step.py). A finished run is skipped.
  [ -f "$IMAGE_OUT/config.json" ] && return
  local w=$IMAGE_WORK t=$IMAGE_THREADS
  [ -f "$w/image-encoder/config.json" ] || $TMT codec train image-semantic --corpus "$CORPUS" \
    --out "$w/image-encoder" --work "$w/image-encoder-train" \
    --image-cache "$w/image-cache" --override '{"local_queries": true}' --steps 800 \
    --threads "$t" --bf16 auto --seed 0
  # stage 2 as one IMAGE_THREADS process, or as IMAGE_PROCS 1-thread data-parallel processes, each
  # stepping on its share of the 32 images (on 2 cores: 1.19x in a 300-step comparison,
  # benchmarks/image_train_processes.py, but 2500-step runs took 9.9 and 9.8 min against 10.7 and
  # 9.6: docs/history.md and the git history of recipes/shapes/README.md ("Sixteenth round"))
  local launch=($PY -m) threads=$t  # (PY may hold options: split as before)
  if [ "$IMAGE_PROCS" -gt 1 ]; then
    launch=(env OMP_NUM_THREADS=1 $TORCHRUN --standalone --nproc-per-node "$IMAGE_PROCS" -m)
    threads=1
  fi
  stage2() {  # INIT OUT LR PERCEPTUAL
    [ -f "$2/config.json" ] || "${launch[@]}" tmt codec train image --corpus "$CORPUS" --init "$1" \
      --freeze-encoder --perceptual-weight "$4" --out "$2" --work "$2-train" \
      --image-cache "$w/image-cache" --steps 2500 --batch-size 32 --lr "$3" \
      --threads "$threads" --bf16 auto --compile auto --seed 0
  }
  stage2 "$w/image-encoder" "$w/image-codec-2a" 1e-3 0.3
  stage2 "$w/image-codec-2a" "$w/image-codec-2b" 5e-4 0.3
  stage2 "$w/image-codec-2b" "$w/image-codec-2c" 5e-4 1.0
}

decoders() {  # the image codec's pixel decoder (refit), the speech vocoder and normalizer, side by side
  local w=$IMAGE_WORK pids=()
  if [ ! -f "$IMAGE_OUT/config.json" ]; then
    # the pixel decoder alone, on the frozen codes of image-codec-2c
    ( [ -f "$w/image-codec-2d/config.json" ] || OMP_NUM_THREADS=1 $TMT codec train image-refit \
        --codec "$w/image-codec-2c" --corpus "$CORPUS" --out "$w/image-codec-2d" \
        --work "$w/image-codec-2d-train" --image-cache "$w/image-cache" --steps 3000 --lr 3e-4 \
        --perceptual-weight 1.0 --threads 1 --bf16 auto --compile auto --seed 0
      mkdir -p "$(dirname "$IMAGE_OUT")" && cp -r "$w/image-codec-2d" "$IMAGE_OUT" ) &
    pids+=($!)
  fi
  local normalizer=($TMT codec train normalizer --corpus "$CORPUS" --teacher work/speech/tokenizer
    --out work/speech/normalizer --work work/speech/normalizer-train --steps 2400 --warmup-steps 200
    --valid-every 400 --vtlp 0.8 --vtlp-range 0.78 1.25 --test-warps 0.8 0.9 1.0 1.1 1.2 --threads 1
    --seed 0)
  if [ ! -f "$SPEECH_OUT/config.json" ]; then
    [ -f work/speech/codec/config.json ] || OMP_NUM_THREADS=1 $TMT codec train vocoder \
      --corpus "$CORPUS" --tokenizer work/speech/tokenizer --out work/speech/vocoder \
      --codec-out work/speech/codec --steps 1500 --max-utterances 8000 --seed 0 &
    pids+=($!)
    # any voice -> the output voice's units (CTC; recipes/shapes/README.md, "Speech for unseen voices")
    OMP_NUM_THREADS=1 "${normalizer[@]}" &
    pids+=($!)
  fi
  wait_all "${pids[@]}"
  # the finished normalizer (a rerun at its last step trains nothing) joins the vocoder's codec
  [ -f "$SPEECH_OUT/config.json" ] || "${normalizer[@]}" --codec work/speech/codec \
    --codec-out "$SPEECH_OUT"
}

text-tokenizer() {
  [ -f tmt/assets/codecs/text/config.json ] || $TMT text train --corpus "$CORPUS" --out tmt/assets/codecs/text
}

store() {  # the token store (resumable), in two halves side by side on 1 thread each
  local pids=()
  for part in 0/2 1/2; do
    OMP_NUM_THREADS=1 $TMT tokenize shapes --root "$CORPUS" --out "$STORE" --codecs "$CODECS" \
      --shard "$part" &
    pids+=($!)
  done
  wait_all "${pids[@]}"
}

translator() {  # resumes from work/runs/shapes-translator/last.pt
  # two 1-thread data-parallel processes of 24 examples each: the config's step of 48 examples
  # (the same examples and loss: tests/integration/test_distributed.py), 1.15-1.2x faster than
  # one 2-thread process on 2 cores (benchmarks/README.md, "Two 1-thread jobs ...")
  OMP_NUM_THREADS=1 $TORCHRUN --standalone --nproc-per-node 2 -m tmt train \
    --config recipes/shapes/translator.yaml --set num_threads=1 --set batch_size=24
}

bundle() {
  $TMT pack work/runs/shapes-translator/model --out tmt/assets/models/shapes --codecs "$CODECS" --max-text-len 32 --max-speech-len 200 \
    --rerank 1.0
}

if [ $# -eq 0 ]; then set -- "${STEPS[@]}"; fi
for step in "$@"; do
  if [[ " ${STEPS[*]} ${EXTRA_STEPS[*]} " != *" $step "* ]]; then
    echo "run.sh: unknown step '$step' (steps: ${STEPS[*]} ${EXTRA_STEPS[*]})" >&2
    exit 2
  fi
done
for step in "$@"; do
  echo "== $step  $(date -u +%H:%M:%S)"
  "$step"
done
echo "== done  $(date -u +%H:%M:%S)"
