"""HuggingFace BERT → translator: both encoder and decoder start from one BERT checkpoint.

What is mapped (the official TMT code initialises both sides from bert-base-uncased):
text embedding rows (and BERT's [PAD]/[CLS]/[SEP]/[UNK] onto our shared PAD/BOS/EOS/UNK),
positions, token type 0 (→ text), the embedding LayerNorm, and every layer's self-attention
and FFN. Cross-attention starts fresh unless the checkpoint has it (``add_cross_attention``),
and so do the speech/image rows, the modality tags and the speech/image type rows. BERT's MLM
head (``cls.predictions``), when present, initialises the output head.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from tmt.errors import TmtError
from tmt.modality import Modality
from tmt.translator.config import TranslatorConfig
from tmt.translator.model import Translator
from tmt.vocab import BOS, EOS, PAD, UNK, Vocabulary

#: bert-base-uncased's special-token ids.
BERT_SPECIALS = {"pad": 0, "unk": 100, "cls": 101, "sep": 102}

_ATTN = {"q_proj": "self.query", "k_proj": "self.key", "v_proj": "self.value"}


def read_bert_checkpoint(directory: str | Path) -> tuple[dict[str, object], dict[str, Tensor]]:
    """Read ``config.json`` and the weights (safetensors or ``pytorch_model.bin``) of a HF dir."""
    directory = Path(directory)
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise TmtError(f"not a HuggingFace BERT directory (no config.json): {directory}")
    config = json.loads(config_path.read_text())
    if config.get("model_type") not in (None, "bert"):
        raise TmtError(f"{directory} holds a {config.get('model_type')!r} model, not BERT")
    if (directory / "model.safetensors").is_file():
        from safetensors.torch import load_file

        state = load_file(directory / "model.safetensors")
    elif (directory / "pytorch_model.bin").is_file():
        state = torch.load(directory / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise TmtError(f"no model.safetensors or pytorch_model.bin in {directory}")
    # BertFor* checkpoints prefix the encoder with "bert."
    state = {k.removeprefix("bert."): v for k, v in state.items()}
    return config, state


def bert_special_ids(directory: str | Path) -> dict[str, int]:
    """[PAD]/[UNK]/[CLS]/[SEP] ids from the directory's ``vocab.txt`` (bert-base's if absent)."""
    vocab_file = Path(directory) / "vocab.txt"
    if not vocab_file.is_file():
        return dict(BERT_SPECIALS)
    index = {line.rstrip("\n"): i for i, line in enumerate(vocab_file.open(encoding="utf-8"))}
    try:
        return {name: index[f"[{name.upper()}]"] for name in BERT_SPECIALS}
    except KeyError as error:
        raise TmtError(f"{vocab_file} lacks the special token {error}") from None


def _num(config: Mapping[str, object], key: str, default: float | None = None) -> float:
    value = config.get(key, default)
    if not isinstance(value, int | float):
        raise TmtError(f"BERT config.json: {key!r} missing or not a number")
    return value


def config_from_bert(bert_config: Mapping[str, object]) -> TranslatorConfig:
    """A translator with BERT's dims on both sides (12+12 layers for bert-base)."""
    if bert_config.get("hidden_act", "gelu") != "gelu":
        raise TmtError(f"unsupported BERT activation {bert_config.get('hidden_act')!r}")
    layers = int(_num(bert_config, "num_hidden_layers"))
    return TranslatorConfig(
        model_dim=int(_num(bert_config, "hidden_size")),
        num_encoder_layers=layers,
        num_decoder_layers=layers,
        num_attn_heads=int(_num(bert_config, "num_attention_heads")),
        ffn_inner_dim=int(_num(bert_config, "intermediate_size")),
        max_seq_len=int(_num(bert_config, "max_position_embeddings", 512)),
        dropout_p=_num(bert_config, "hidden_dropout_prob", 0.1),
        attn_dropout_p=_num(bert_config, "attention_probs_dropout_prob", 0.1),
        layer_norm_eps=_num(bert_config, "layer_norm_eps", 1e-12),
    )


def convert_bert_state_dict(
    bert: Mapping[str, Tensor],
    vocab: Vocabulary,
    config: TranslatorConfig,
    *,
    specials: Mapping[str, int] = BERT_SPECIALS,
) -> dict[str, Tensor]:
    """Map a HF BERT state dict onto translator keys (a partial state dict).

    Only the rows/layers BERT has are returned; the caller loads them over a fresh model.
    """
    out: dict[str, Tensor] = {}
    words = bert["embeddings.word_embeddings.weight"]
    bad = {k: v for k, v in specials.items() if not 0 <= v < words.shape[0]}
    if bad:
        raise TmtError(f"special-token ids {bad} lie outside BERT's {words.shape[0]} rows")
    if words.shape[0] != vocab.text_size:
        raise TmtError(
            f"BERT has {words.shape[0]} word-pieces but the vocabulary's text range has "
            f"{vocab.text_size}: load the text tokenizer from the same BERT directory"
        )
    if words.shape[1] != config.model_dim:
        raise TmtError(f"BERT width {words.shape[1]} != model_dim {config.model_dim}")

    # Embedding rows are set in place on a copy of the caller's table (see load_bert_weights).
    out["@text_rows"] = words
    out["@special_rows"] = torch.stack(
        [words[specials["pad"]], words[specials["cls"]], words[specials["sep"]], words[specials["unk"]]]
    )  # onto PAD, BOS, EOS, UNK
    positions = bert["embeddings.position_embeddings.weight"]  # (P, M)
    types = bert["embeddings.token_type_embeddings.weight"]
    for side in ("encoder", "decoder"):
        fe = f"model.{side}_frontend"
        out[f"@{fe}.pos_encoder.weight"] = positions[: config.max_seq_len]
        out[f"@{fe}.type_embed.weight"] = types[:1]  # type 0 → text
        out[f"{fe}.layer_norm.weight"] = bert["embeddings.LayerNorm.weight"]
        out[f"{fe}.layer_norm.bias"] = bert["embeddings.LayerNorm.bias"]

    num_bert_layers = 1 + max(
        int(k.split(".")[2]) for k in bert if k.startswith("encoder.layer.")
    )
    for side, count in (("encoder", config.num_encoder_layers), ("decoder", config.num_decoder_layers)):
        for i in range(min(count, num_bert_layers)):
            src, dst = f"encoder.layer.{i}.", f"model.{side}.layers.{i}."
            _map_attention(bert, out, src + "attention.", dst + "self_attn")
            _map_linear(bert, out, src + "attention.output.LayerNorm", dst + "self_attn_layer_norm")
            _map_linear(bert, out, src + "intermediate.dense", dst + "ffn.inner_proj")
            _map_linear(bert, out, src + "output.dense", dst + "ffn.output_proj")
            _map_linear(bert, out, src + "output.LayerNorm", dst + "ffn_layer_norm")
            if side == "decoder" and f"{src}crossattention.self.query.weight" in bert:
                _map_attention(bert, out, src + "crossattention.", dst + "encoder_decoder_attn")
                _map_linear(
                    bert, out, src + "crossattention.output.LayerNorm",
                    dst + "encoder_decoder_attn_layer_norm",
                )
    if "cls.predictions.transform.dense.weight" in bert:
        _map_linear(bert, out, "cls.predictions.transform.dense", "model.final_proj.dense")
        _map_linear(bert, out, "cls.predictions.transform.LayerNorm", "model.final_proj.layer_norm")
        out["@text_bias"] = bert["cls.predictions.bias"]
    return out


def _map_linear(bert: Mapping[str, Tensor], out: dict[str, Tensor], src: str, dst: str) -> None:
    out[f"{dst}.weight"] = bert[f"{src}.weight"]
    out[f"{dst}.bias"] = bert[f"{src}.bias"]


def _map_attention(bert: Mapping[str, Tensor], out: dict[str, Tensor], src: str, dst: str) -> None:
    for ours, theirs in _ATTN.items():
        _map_linear(bert, out, src + theirs, f"{dst}.{ours}")
    _map_linear(bert, out, src + "output.dense", f"{dst}.output_proj")


@torch.no_grad()
def load_bert_weights(
    translator: Translator, directory: str | Path, *, specials: Mapping[str, int] | None = None
) -> Translator:
    """Initialise ``translator`` in place from a HF BERT directory; returns it."""
    _, bert = read_bert_checkpoint(directory)
    return _load_bert_state(translator, bert, specials or bert_special_ids(directory))


def _load_bert_state(
    translator: Translator, bert: Mapping[str, Tensor], specials: Mapping[str, int]
) -> Translator:
    mapped = convert_bert_state_dict(bert, translator.vocab, translator.config, specials=specials)
    params = dict(translator.named_parameters())
    text = translator.vocab.id_range(Modality.TEXT)
    embed = params["model.encoder_frontend.embed.weight"]  # shared by both sides and the head
    embed[text.start : text.stop] = mapped.pop("@text_rows")
    embed[[PAD, BOS, EOS, UNK]] = mapped.pop("@special_rows")
    if "@text_bias" in mapped:
        params["model.final_proj.bias"][text.start : text.stop] = mapped.pop("@text_bias")
    for key in list(mapped):
        if key.startswith("@"):  # partial rows: positions (fairseq2 row 0 is padding), type 0
            value = mapped.pop(key)
            name = key[1:]
            offset = 1 if name.endswith("pos_encoder.weight") else 0
            params[name][offset : offset + value.shape[0]] = value
    for key, value in mapped.items():
        if params[key].shape != value.shape:
            raise TmtError(f"BERT weight for {key} has shape {tuple(value.shape)}, "
                           f"expected {tuple(params[key].shape)}")
        params[key].copy_(value)
    return translator


def from_bert(
    directory: str | Path,
    *,
    speech_size: int,
    image_size: int,
    specials: Mapping[str, int] | None = None,
) -> Translator:
    """A translator with BERT's dims, both sides initialised from the BERT checkpoint."""
    bert_config, bert = read_bert_checkpoint(directory)
    config = config_from_bert(bert_config)
    vocab = Vocabulary(
        speech_size=speech_size,
        image_size=image_size,
        text_size=int(_num(bert_config, "vocab_size")),
    )
    with torch.no_grad():
        return _load_bert_state(
            Translator(config, vocab), bert, specials or bert_special_ids(directory)
        )
