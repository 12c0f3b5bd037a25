"""The speech judge: PocketSphinx constrained by the caption grammar (JSGF).

It scores text→speech and image→speech output by transcribing it, as the TMT paper does
with a wav2vec2 ASR model. Decoding with the corpus grammar makes the judge read exactly
the caption language, so a transcript is always a well-formed caption (or empty).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from tmt.errors import TmtError

JUDGE_SAMPLE_RATE = 16_000
"""PocketSphinx's default English model expects 16 kHz audio."""

_PAD_SECONDS = 0.25
"""Silence added on both sides: the decoder's voice-activity and CMN warm up on it."""


def mono16k(wave: np.ndarray, sample_rate: int, who: str = "speech judge") -> np.ndarray:
    """A judge's input: mono float32 at 16 kHz (int16 scaled to [-1, 1]). Unlike
    ``tmt.speech.audio.prepare_wave`` it accepts silent or very short output: judges score it."""
    samples = np.asarray(wave)
    if samples.ndim != 1:
        raise TmtError(f"{who}: expected mono audio, got shape {samples.shape}")
    if samples.dtype == np.int16:
        samples = samples.astype(np.float32) / 32768.0
    samples = samples.astype(np.float32)
    if sample_rate != JUDGE_SAMPLE_RATE:
        samples = soxr.resample(samples, sample_rate, JUDGE_SAMPLE_RATE)
    return np.asarray(samples, dtype=np.float32)

class SpeechJudge:
    """Transcribe speech with PocketSphinx restricted to a JSGF grammar."""

    def __init__(self, grammar_path: str | Path) -> None:
        grammar_path = Path(grammar_path)
        if not grammar_path.is_file():
            raise TmtError(f"speech judge: no grammar file {grammar_path}")
        from pocketsphinx import Decoder

        self.grammar_path = grammar_path
        try:
            self._decoder = Decoder(jsgf=str(grammar_path), loglevel="FATAL")
        except (ValueError, RuntimeError) as error:
            raise TmtError(f"speech judge: cannot load grammar {grammar_path}: {error}") from None

    def transcribe(self, wave: np.ndarray, sample_rate: int) -> str:
        """Best grammar path for a mono waveform (float in [-1, 1] or int16); "" if none."""
        samples = mono16k(wave, sample_rate)
        pad = np.zeros(int(_PAD_SECONDS * JUDGE_SAMPLE_RATE), np.float32)
        samples = np.concatenate([pad, samples, pad])
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        self._decoder.start_utt()
        self._decoder.process_raw(pcm, full_utt=True)
        self._decoder.end_utt()
        hyp = self._decoder.hyp()
        return hyp.hypstr if hyp is not None else ""

    def transcribe_many(self, waves: Sequence[np.ndarray], sample_rate: int) -> list[str]:
        """Transcribe several waveforms sharing one sample rate."""
        return [self.transcribe(w, sample_rate) for w in waves]


def word_error_rate(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus-level WER (total edits / total reference words), via jiwer."""
    import jiwer

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    if not references:
        return 0.0
    # jiwer refuses empty hypotheses strings in some versions: they count as all deletions.
    return float(jiwer.wer(list(references), [h if h else "<empty>" for h in hypotheses]))


def unit_error_rate(hypotheses: Sequence[Iterable[Any]], references: Sequence[Iterable[Any]]) -> float:
    """Edit distance between unit sequences (e.g. 1-D LongTensors) over the references' total
    length: a voice-invariant encoder reads the same units from every voice."""

    def words(units: Iterable[Any]) -> str:
        return " ".join(f"u{int(x)}" for x in units)

    return word_error_rate([words(h) for h in hypotheses], [words(r) for r in references])
