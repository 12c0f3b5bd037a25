"""Pluggable text-to-speech for corpora without speech (CC3M/CC12M), with an on-disk cache.

The paper synthesized CC3M/CC12M speech with VITS. Here any object with a ``name`` and a
``synthesize(text) -> 16 kHz float32 wave`` method will do (:class:`TextToSpeech`); the
offline default is espeak-ng (or Debian's flite), through :mod:`tmt.data.shapes_tts`, and
:class:`VitsTTS` runs a HuggingFace VITS checkpoint from a local directory
(``tmt tokenize cc3m ... --tts vits:DIR``).

Synthesized wavs are cached under a directory keyed by voice and text, so a resumed or
repeated ``tmt tokenize`` never synthesizes the same caption twice, and several machines
sharing the directory never clash (each file is written to a temporary name, then renamed).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import zlib
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from tmt.data.records import RawExample
from tmt.errors import TmtError

SAMPLE_RATE = 16_000


@runtime_checkable
class TextToSpeech(Protocol):
    """What :class:`SpeechSynthesizer` needs from a TTS engine."""

    @property
    def name(self) -> str:
        """Identifies the voice (part of the cache key: another voice is another wav)."""
        ...

    def synthesize(self, text: str) -> np.ndarray:
        """``text`` spoken as float32 samples in [-1, 1], 16 kHz mono."""
        ...


@dataclasses.dataclass(frozen=True)
class OfflineTTS:
    """espeak-ng (bundled with ``espeakng-loader``) or Debian's flite, fully offline."""

    voice: str = "espeak:en-us"
    """``espeak:NAME`` or ``flite:NAME`` (see :mod:`tmt.data.shapes_tts`)."""
    rate: float = 1.0
    """Speaking rate relative to the voice's default."""

    def __post_init__(self) -> None:
        if self.voice.partition(":")[0] not in ("espeak", "flite"):
            raise TmtError(f"unknown voice {self.voice!r}: expected espeak:NAME or flite:NAME")

    @property
    def name(self) -> str:
        return self.voice if self.rate == 1.0 else f"{self.voice}@{self.rate:g}"

    def synthesize(self, text: str) -> np.ndarray:
        from tmt.data.shapes_tts import synthesize

        return synthesize(text, self.voice, rate=self.rate).wave


class VitsTTS:
    """A VITS model (the paper's CC3M/CC12M synthesizer) in HuggingFace format from a local
    directory: ``VitsModel`` + ``VitsTokenizer`` files (e.g. an MMS-TTS English checkpoint)."""

    def __init__(self, directory: str | Path, *, device: str = "cpu", seed: int = 0) -> None:
        from transformers import VitsModel, VitsTokenizer

        self.directory = Path(directory)
        if not (self.directory / "config.json").is_file():
            raise TmtError(f"no VITS model in {self.directory} (config.json missing)")
        self.tokenizer = VitsTokenizer.from_pretrained(self.directory, local_files_only=True)
        self.model = VitsModel.from_pretrained(self.directory, local_files_only=True).to(device)
        self.model.eval()
        self.device = device
        self.seed = seed

    @property
    def name(self) -> str:
        # The folder name plus a digest of its config: another model is another cache entry.
        digest = hashlib.sha1((self.directory / "config.json").read_bytes()).hexdigest()[:8]
        return f"vits:{self.directory.name}-{digest}"

    def synthesize(self, text: str) -> np.ndarray:
        import soxr
        import torch

        inputs = self.tokenizer(text, return_tensors="pt").to(self.device)
        if inputs["input_ids"].shape[-1] == 0:
            raise TmtError(f"VITS tokenizer kept no character of {text!r}")
        # VITS samples its durations and latent noise: a fixed seed per caption makes the
        # cached wav reproducible.
        torch.manual_seed(self.seed + zlib.crc32(text.encode("utf-8")))
        with torch.inference_mode():
            wave = self.model(**inputs).waveform[0].float().cpu().numpy()  # (T,)
        sr = int(self.model.config.sampling_rate)
        if sr != SAMPLE_RATE:
            wave = soxr.resample(wave, sr, SAMPLE_RATE, quality="HQ")
        peak = float(np.abs(wave).max()) if wave.size else 0.0
        return (wave * (0.9 / peak) if peak > 0 else wave).astype(np.float32)


def tts_by_name(spec: str) -> TextToSpeech:
    """``"espeak:en-us"`` / ``"flite:slt"`` → :class:`OfflineTTS`; ``"vits:DIR"`` →
    :class:`VitsTTS` from a local HuggingFace VITS directory."""
    engine, _, rest = spec.partition(":")
    if engine == "vits":
        return VitsTTS(rest)
    return OfflineTTS(voice=spec)


class SpeechSynthesizer:
    """Gives an example without speech a synthesized wav of its caption, cached on disk.

    Use it as the ``prepare`` step of :func:`~tmt.data.tokenize.tokenize_corpus`: it runs only
    on examples not yet in the store, after sharding, so each machine synthesizes its own part.
    """

    def __init__(self, tts: TextToSpeech, cache_dir: str | Path) -> None:
        self.tts = tts
        self.cache_dir = Path(cache_dir)
        self.synthesized = 0
        """Wavs synthesized by this object (cache misses)."""

    def path_for(self, text: str) -> Path:
        """The cache file of ``text`` in this voice: ``CACHE/VOICE/ab/cd/abcdef....wav`` (two
        directory levels: CC12M's 12M captions make ~200 files per directory)."""
        key = hashlib.sha1(f"{self.tts.name}\n{text}".encode()).hexdigest()[:20]
        voice = re.sub(r"[^A-Za-z0-9._+-]", "_", self.tts.name)
        return self.cache_dir / voice / key[:2] / key[2:4] / f"{key}.wav"

    def speech_for(self, text: str) -> Path:
        """The cached wav of ``text``, synthesizing it on a cache miss."""
        from tmt.data.shapes_tts import write_wav

        path = self.path_for(text)
        if path.is_file():
            return path
        wave = np.asarray(self.tts.synthesize(text), dtype=np.float32)
        if wave.ndim != 1 or wave.size == 0:
            raise TmtError(f"TTS {self.tts.name} returned no audio for {text!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        write_wav(tmp, wave, SAMPLE_RATE)
        os.replace(tmp, path)  # atomic: readers never see half a wav
        self.synthesized += 1
        return path

    def __call__(self, example: RawExample) -> RawExample:
        if example.speech is not None or not example.text:
            return example
        return dataclasses.replace(example, speech=self.speech_for(example.text))
