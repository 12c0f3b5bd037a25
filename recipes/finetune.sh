# Sourced by recipes/{coco,flickr8k}/run.sh: fine-tune the pre-trained model on one corpus, then
# pack a bundle. `finetune NAME [--smoke | --set KEY=VALUE ...]`.
finetune() {
  local name=$1
  shift
  if [ "${1:-}" = "--smoke" ]; then
    source recipes/smoke.sh
    # the smoke pre-training first (it writes the fixtures and this corpus's store too)
    [ -f "$SMOKE_DIR/runs/pretrain/model/config.json" ] || bash recipes/pretrain/run.sh --smoke
    [ -f "$SMOKE_DIR/stores/$name/store.json" ] || smoke_tokenize "$name"
    $TMT train --config "recipes/$name/finetune.yaml" "${SMOKE_SET[@]}" \
      --set out_dir="$SMOKE_DIR/runs/$name" --set "stores=[$SMOKE_DIR/stores/$name]" \
      --set init_from="$SMOKE_DIR/runs/pretrain/model"
    smoke_check "$SMOKE_DIR/runs/$name" "$name"
    return
  fi
  local data=${DATA:-data} codecs=${CODECS:-work/codecs} stores=${STORES:-work/stores}
  $TMT tokenize "$name" --root "$data/$name" --out "$stores/$name" --codecs "$codecs"
  $TMT train --config "recipes/$name/finetune.yaml" "$@"
  # under TMT_HOME the bundle loads by name: tmt translate --model NAME ...
  local home=${TMT_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/tmt}
  $TMT pack "work/runs/$name/model" --codecs "$codecs" --out "$home/$name"
}
