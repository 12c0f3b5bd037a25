"""SpeechCodec: the speech modality's Codec (audio ⇄ deduplicated units, or pieces of them).

``encode``: :class:`SpeechTokenizer` (features → k-means → dedup), or, if the codec has one, a
:class:`UnitNormalizer` (any voice → the units the k-means gives for the output voice); then,
if the codec has one, :class:`UnitBPE` (runs of units merged into pieces). ``decode``: pieces expanded back to units,
then a unit vocoder (the CPU default units→mel + Griffin-Lim, or CodeHiFiGAN). Saved as one
directory::

    config.json        {"format": "tmt-speech-codec", "vocoder": "unit_mel" | "code_hifigan",
                        "vocab_size": N, "bpe": true | false, "normalizer": true | false}
    tokenizer/         config.json + model.safetensors
    normalizer/        config.json + model.safetensors (only with "normalizer": true)
    vocoder/           config.json + model.safetensors
    bpe.json           the merges (only with "bpe": true)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from tmt.errors import TmtError
from tmt.files import format_header, read_config
from tmt.modality import Modality
from tmt.speech.hifigan import CodeHiFiGANVocoder
from tmt.speech.normalizer import UnitNormalizer
from tmt.speech.tokenizer import DEFAULT_DIR, AudioInput, SpeechTokenizer, as_wave
from tmt.speech.unit_bpe import UnitBPE
from tmt.speech.unit_mel import UnitMelVocoder

CONFIG_FORMAT = "tmt-speech-codec"


class UnitVocoder(Protocol):
    """Deduplicated units → 16 kHz float32 waveform."""

    @property
    def vocab_size(self) -> int: ...

    @property
    def sample_rate(self) -> int: ...

    def decode(self, units: torch.Tensor, durations: torch.Tensor | None = None) -> np.ndarray: ...

    def save(self, directory: str | Path, half: bool = ...) -> None: ...


_VOCODERS: dict[str, type[UnitMelVocoder] | type[CodeHiFiGANVocoder]] = {"unit_mel": UnitMelVocoder, "code_hifigan": CodeHiFiGANVocoder}


def _vocoder_name(vocoder: UnitVocoder) -> str:
    for name, cls in _VOCODERS.items():
        if isinstance(vocoder, cls):
            return name
    raise TmtError(f"unknown vocoder type {type(vocoder).__name__}")


class SpeechCodec:
    """Audio ⇄ ids in [0, vocab_size): units, or pieces of them with ``bpe``.
    ``SpeechCodec.load()`` gives the shipped default."""

    modality = Modality.SPEECH

    def __init__(self, tokenizer: SpeechTokenizer, vocoder: UnitVocoder, bpe: UnitBPE | None = None,
                 normalizer: UnitNormalizer | None = None) -> None:
        if tokenizer.vocab_size != vocoder.vocab_size:
            raise TmtError(f"tokenizer has {tokenizer.vocab_size} units, vocoder {vocoder.vocab_size}")
        if bpe is not None and bpe.base_size != tokenizer.vocab_size:
            raise TmtError(f"unit BPE is over {bpe.base_size} units, the tokenizer has {tokenizer.vocab_size}")
        if normalizer is not None and normalizer.config.num_units != tokenizer.vocab_size:
            raise TmtError(f"the normalizer emits {normalizer.config.num_units} units, the tokenizer has "
                           f"{tokenizer.vocab_size}")
        self.tokenizer = tokenizer
        self.vocoder = vocoder
        self.bpe = bpe
        self.normalizer = normalizer

    def with_bpe(self, bpe: UnitBPE | None) -> SpeechCodec:
        return SpeechCodec(self.tokenizer, self.vocoder, bpe, self.normalizer)

    def with_normalizer(self, normalizer: UnitNormalizer | None) -> SpeechCodec:
        return SpeechCodec(self.tokenizer, self.vocoder, self.bpe, normalizer)

    @property
    def vocab_size(self) -> int:
        return self.bpe.vocab_size if self.bpe is not None else self.tokenizer.vocab_size

    @property
    def sample_rate(self) -> int:
        return self.tokenizer.sample_rate

    @property
    def native_size(self) -> int:
        """The sample rate (Hz) of the audio the codec reads and writes."""
        return self.sample_rate

    def encode(self, raw: AudioInput) -> torch.Tensor:
        """Audio (path, bytes, or 16 kHz float array) → 1-D LongTensor of deduplicated units
        (of pieces, with BPE)."""
        return self.encode_batch([raw])[0]

    def encode_batch(self, raws: Sequence[AudioInput]) -> list[torch.Tensor]:
        if self.normalizer is not None:
            units = self.normalizer.encode_batch([torch.from_numpy(as_wave(r)) for r in raws])
        else:
            units = self.tokenizer.encode_batch(raws)
        return units if self.bpe is None else self.bpe.encode_many(units)

    def decode(self, ids: torch.Tensor) -> np.ndarray:
        """Unit (piece) ids → 16 kHz mono float32 waveform (durations predicted by the vocoder)."""
        return self.vocoder.decode(ids if self.bpe is None else self.bpe.decode(ids))

    def save(self, directory: str | Path) -> None:
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(out / "tokenizer")
        self.vocoder.save(out / "vocoder", half=True)
        if self.bpe is not None:
            self.bpe.save(out / "bpe.json")
        else:
            (out / "bpe.json").unlink(missing_ok=True)
        if self.normalizer is not None:
            self.normalizer.save(out / "normalizer")
        cfg = {**format_header(CONFIG_FORMAT), "vocoder": _vocoder_name(self.vocoder), "vocab_size": self.vocab_size,
               "bpe": self.bpe is not None, "normalizer": self.normalizer is not None}
        (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")

    @classmethod
    def load(
        cls, directory: str | Path | None = None, device: str | torch.device = "cpu"
    ) -> SpeechCodec:
        """Load a codec directory written by :meth:`save` (default: ``tmt/assets/codecs/speech``); the
        tokenizer's features, the normalizer and the vocoder (with its Griffin-Lim) run on
        ``device``."""
        path = Path(directory) if directory is not None else DEFAULT_DIR
        cfg_path = path / "config.json"
        if not cfg_path.exists():
            raise TmtError(f"not a speech codec directory (no config.json): {path}")
        cfg = read_config(cfg_path, CONFIG_FORMAT, required=True)
        vocoder_cls = _VOCODERS.get(cfg.get("vocoder", ""))
        if vocoder_cls is None:
            raise TmtError(f"unknown vocoder {cfg.get('vocoder')!r} in {cfg_path}")
        bpe = UnitBPE.load(path / "bpe.json") if cfg.get("bpe") else None
        vocoder = (CodeHiFiGANVocoder.load(path / "vocoder", device) if vocoder_cls is CodeHiFiGANVocoder
                   else UnitMelVocoder.load(path / "vocoder", device))
        normalizer = UnitNormalizer.load(path / "normalizer", device) if cfg.get("normalizer") else None
        codec = cls(SpeechTokenizer.load(path / "tokenizer", device), vocoder, bpe, normalizer)
        if "vocab_size" in cfg and cfg["vocab_size"] != codec.vocab_size:
            raise TmtError(f"{cfg_path} says {cfg['vocab_size']} ids, the codec has {codec.vocab_size}")
        return codec
