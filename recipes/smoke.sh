# Sourced by recipes/{pretrain,coco,flickr8k}/run.sh --smoke: the same commands as the real
# recipe, on tiny fixtures in the real corpus formats (tmt/data/fixtures.py), with tiny random
# codecs and training overrides that shrink the paper config to a few CPU steps.
SMOKE_DIR=${SMOKE_DIR:-work/smoke}
FIXTURES=$SMOKE_DIR/fixtures
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

smoke_fixtures() {  # COCO+SpokenCOCO, Flickr8k+Audio, CC3M folders and codecs/ (kept if present)
  [ -d "$FIXTURES/codecs/text" ] || $PY -m tmt.data.fixtures --out "$FIXTURES"
}

smoke_tokenize() {  # DATASET: tokenize one fixture corpus (a rerun skips finished examples)
  $TMT tokenize "$1" --root "$FIXTURES/$1" --out "$SMOKE_DIR/stores/$1" \
    --codecs "$FIXTURES/codecs" --shard-size 8
}

# The paper configs, shrunk: a 1+1-layer d=32 translator, 3 steps of 4 examples, on the CPU.
SMOKE_SET=(--set preset=tiny --set init_from_bert=null --set device=cpu --set num_threads=1
  --set model.model_dim=32 --set model.num_encoder_layers=1 --set model.num_decoder_layers=1
  --set model.num_attn_heads=2 --set model.ffn_inner_dim=64 --set max_steps=3
  --set batch_size=4 --set warmup_steps=1 --set log_every=1 --set valid_every=3
  --set valid_examples=8 --set checkpoint_every=3)

smoke_check() {  # RUN_DIR NAME: bundle the trained translator, translate all six directions
  local bundle=$SMOKE_DIR/bundles/$2
  $TMT pack "$1/model" --codecs "$FIXTURES/codecs" --out "$bundle" --max-text-len 8 \
    --max-speech-len 16
  $PY - "$bundle" "$FIXTURES" <<'PY'
import dataclasses
import sys
from pathlib import Path

from tmt.bundle import Bundle
from tmt.modality import DIRECTIONS, Modality

bundle, fixtures = Bundle.load(sys.argv[1]), Path(sys.argv[2])
options = dataclasses.replace(bundle.default_options, beam_size=5)  # beam 5 as at test time
inputs = {Modality.SPEECH: next((fixtures / "flickr8k" / "flickr_audio" / "wavs").glob("*.wav")),
          Modality.IMAGE: next((fixtures / "coco" / "val2014").glob("*.jpg")),
          Modality.TEXT: "a red dog on the grass"}
for source, target in DIRECTIONS:
    (out,) = bundle.translate([inputs[source]], source, target, options)
    print(f"smoke {source.value}->{target.value}: {len(out.ids)} tokens")
PY
}
