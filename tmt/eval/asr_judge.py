"""ASR judges that transcribe generated speech, and the WER that scores it.

The TMT paper transcribes text→speech and image→speech output with
``facebook/wav2vec2-large-960h-lv60-self`` (greedy CTC) and scores the transcript by WER. Here
the judge is either any ``Wav2Vec2ForCTC`` + ``Wav2Vec2Processor`` saved in a local directory,
or PocketSphinx's general English model (offline, ships with the package; weaker).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from tmt.errors import TmtError
from tmt.eval.local_models import load_pretrained
from tmt.eval.speech_judge import mono16k

SAMPLE_RATE = 16_000
"""Both judges read 16 kHz mono."""

_MIN_SECONDS = 1.0
"""The official scoring pads shorter waves with silence to 1 s before wav2vec2."""


class AsrJudge(Protocol):
    name: str

    def transcribe(self, wave: np.ndarray, sample_rate: int) -> str: ...


def normalize_transcript(text: str) -> str:
    """Lower-case, drop bracketed annotations and punctuation except apostrophes, collapse
    spaces (the normalization of the official TMT scoring scripts)."""
    text = re.sub(r"[\(\[].*?[\)\]]", "", text)
    text = re.sub(r"[^\w\s']|_", " ", text)
    return re.sub(r"\s+", " ", text).strip().lower()


class Wav2Vec2Judge:
    """Greedy CTC transcription with a local ``Wav2Vec2ForCTC`` directory."""

    def __init__(self, model: Any, processor: Any, *, device: str | torch.device = "cpu",
                 name: str = "wav2vec2") -> None:
        self.model = model.to(device).eval()
        self.processor = processor
        self.device = torch.device(device)
        self.name = name

    @classmethod
    def load(cls, directory: str | Path, *, device: str | torch.device = "cpu") -> Wav2Vec2Judge:
        from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor

        directory = Path(directory)
        model, processor = load_pretrained(
            directory, "wav2vec2 model", Wav2Vec2ForCTC, Wav2Vec2Processor
        )
        return cls(model, processor, device=device, name=f"wav2vec2:{directory}")

    @torch.inference_mode()
    def transcribe(self, wave: np.ndarray, sample_rate: int) -> str:
        samples = mono16k(wave, sample_rate, who="ASR judge")
        short = int(_MIN_SECONDS * SAMPLE_RATE) - len(samples)
        if short > 0:
            samples = np.concatenate([samples, np.zeros(short, np.float32)])
        inputs = self.processor(samples, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        mask = inputs.get("attention_mask")  # lv60 checkpoints return one; base ones do not
        logits = self.model(inputs["input_values"].to(self.device),
                            attention_mask=None if mask is None else mask.to(self.device)).logits
        # logits: (1, frames, vocab); greedy CTC as the paper's scoring does
        ids = logits.argmax(dim=-1)
        return str(self.processor.batch_decode(ids)[0])


class PocketSphinxJudge:
    """PocketSphinx with its bundled general English acoustic and language model (no grammar)."""

    name = "pocketsphinx"

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self._decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")

    def transcribe(self, wave: np.ndarray, sample_rate: int) -> str:
        samples = mono16k(wave, sample_rate, who="ASR judge")
        pad = np.zeros(SAMPLE_RATE // 4, np.float32)  # voice activity / CMN warm up on silence
        pcm = (np.clip(np.concatenate([pad, samples, pad]), -1, 1) * 32767).astype("<i2").tobytes()
        self._decoder.start_utt()
        self._decoder.process_raw(pcm, full_utt=True)
        self._decoder.end_utt()
        hyp = self._decoder.hyp()
        return hyp.hypstr if hyp is not None else ""


def load_asr_judge(spec: str | Path, *, device: str | torch.device = "cpu") -> AsrJudge:
    """``"pocketsphinx"`` or a local wav2vec2 CTC directory."""
    if str(spec) == "pocketsphinx":
        return PocketSphinxJudge()
    return Wav2Vec2Judge.load(spec, device=device)


def wer_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """WER after :func:`normalize_transcript`: corpus-level (total edits / total reference words,
    jiwer) and the mean of per-utterance WERs (what the official speech→text score averages)."""
    import jiwer

    if len(hypotheses) != len(references):
        raise TmtError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    refs = [normalize_transcript(r) for r in references]
    hyps = [normalize_transcript(h) for h in hypotheses]
    kept = [(h, r) for h, r in zip(hyps, refs, strict=True) if r]
    if not kept:
        raise TmtError("WER: every reference is empty")
    # An empty hypothesis is all deletions; jiwer wants non-empty strings, so score those apart.
    edits = words = 0
    per_utt = []
    for h, r in kept:
        n = len(r.split())
        if h:
            out = jiwer.process_words(r, h)
            e = out.substitutions + out.deletions + out.insertions
        else:
            e = n
        edits, words = edits + e, words + n
        per_utt.append(e / n)
    return {"wer": float(edits / words), "wer_utterance_mean": float(np.mean(per_utt))}


__all__ = ["AsrJudge", "PocketSphinxJudge", "Wav2Vec2Judge", "load_asr_judge", "normalize_transcript",
           "wer_scores"]
