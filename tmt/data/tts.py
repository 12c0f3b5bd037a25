"""Pluggable text-to-speech for corpora without speech (CC3M/CC12M), with an on-disk cache.

The paper synthesized CC3M/CC12M speech with VITS. Here any object with a ``name`` and a
``synthesize(text) -> 16 kHz float32 wave`` method will do (:class:`TextToSpeech`); the
offline default is espeak-ng (or Debian's flite), through :mod:`tmt.data.shapes_tts`. A VITS
model plugs in by implementing the same two members.

Synthesized wavs are cached under a directory keyed by voice and text, so a resumed or
repeated ``tmt tokenize`` never synthesizes the same caption twice, and several machines
sharing the directory never clash (each file is written to a temporary name, then renamed).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
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


def tts_by_name(spec: str) -> TextToSpeech:
    """``"espeak:en-us"`` / ``"flite:slt"`` → an :class:`OfflineTTS`."""
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
        """The cache file of ``text`` in this voice: ``CACHE/VOICE/ab/abcdef....wav``."""
        key = hashlib.sha1(f"{self.tts.name}\n{text}".encode()).hexdigest()[:20]
        voice = re.sub(r"[^A-Za-z0-9._+-]", "_", self.tts.name)
        return self.cache_dir / voice / key[:2] / f"{key}.wav"

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
