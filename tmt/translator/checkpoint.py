"""Self-describing translator checkpoints: ``config.json`` + ``vocab.json`` + ``model.safetensors``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from tmt.errors import TmtError
from tmt.files import atomic_write, check_format, format_header, load_safetensors
from tmt.translator.config import TranslatorConfig
from tmt.vocab import Vocabulary

if TYPE_CHECKING:  # the model imports this module to save and load itself
    from torch import nn

    from tmt.translator.model import Translator

CONFIG = "config.json"
KIND = "tmt-translator"
VOCAB = "vocab.json"
WEIGHTS = "model.safetensors"
# Tied copies of the shared embedding; stored once, under the encoder's name.
_ALIASES = ("model.decoder_frontend.embed.weight", "model.final_proj.embed.weight")
_SHARED = "model.encoder_frontend.embed.weight"


def translator_state(translator: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with the tied embedding stored once."""
    state = translator.state_dict()
    for key in _ALIASES:
        state.pop(key, None)
    return state


def save_translator(translator: Translator, directory: str | Path, *, fp16: bool = False) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = translator_state(translator)
    dtype = torch.float16 if fp16 else torch.float32
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in state.items()}
    atomic_write(directory / WEIGHTS, lambda tmp: save_file(state, tmp))
    atomic_write(
        directory / CONFIG,
        lambda tmp: Path(tmp).write_text(json.dumps({**format_header(KIND), **translator.config.to_dict()}, indent=2) + "\n"),
    )
    atomic_write(directory / VOCAB, lambda tmp: translator.vocab.save(tmp))


def read_checkpoint(
    directory: str | Path,
) -> tuple[TranslatorConfig, Vocabulary, dict[str, torch.Tensor]]:
    """The config, vocabulary and weights of a checkpoint directory (checked to be there)."""
    directory = Path(directory)
    for name in (CONFIG, VOCAB, WEIGHTS):
        if not (directory / name).is_file():
            raise TmtError(f"not a translator checkpoint: {directory / name} is missing")
    try:
        raw = json.loads((directory / CONFIG).read_text())
        config = TranslatorConfig.from_dict(check_format(directory / CONFIG, raw, KIND))
    except (json.JSONDecodeError, TypeError) as error:
        raise TmtError(f"invalid translator config {directory / CONFIG}: {error}") from None
    vocab = Vocabulary.load(directory / VOCAB)
    try:
        state = load_safetensors(directory / WEIGHTS)
    except (SafetensorError, OSError) as error:
        raise TmtError(f"cannot read {directory / WEIGHTS}: {error}") from None
    return config, vocab, state


def load_state(translator: Translator, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Load weights, turning shape or key mismatches into one clear error."""
    embed = state.get(_SHARED)
    if embed is not None and embed.shape[0] != translator.vocab.size:
        raise TmtError(
            f"checkpoint {source} has {embed.shape[0]} vocabulary rows but the vocabulary has "
            f"{translator.vocab.size}: the checkpoint does not match this vocabulary"
        )
    expected = translator_state(translator)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise TmtError(
            f"checkpoint {source} does not match the model: {len(missing)} missing keys "
            f"(e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})"
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise TmtError(
                f"checkpoint {source} does not match the model: {key} has shape "
                f"{tuple(value.shape)}, expected {tuple(expected[key].shape)}"
            )
    converted = {k: v.to(expected[k].dtype) for k, v in state.items()}
    translator.load_state_dict(converted, strict=False)
