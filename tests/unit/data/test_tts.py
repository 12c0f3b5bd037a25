"""Pluggable TTS for corpora without speech: espeak-ng, a tiny random VITS, the wav cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tmt.data.records import RawExample
from tmt.data.shapes_tts import read_wav
from tmt.data.tts import OfflineTTS, SpeechSynthesizer, TextToSpeech, VitsTTS, tts_by_name
from tmt.errors import TmtError


def save_tiny_vits(directory: Path, sampling_rate: int = 22050) -> Path:
    """A random VITS (HuggingFace format) with a character vocabulary, as MMS-TTS ships."""
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, "<unk>": 1, **{c: i + 2 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz '")}}
    (directory / "vocab.json").write_text(json.dumps(vocab))
    VitsTokenizer(str(directory / "vocab.json"), language="eng", phonemize=False).save_pretrained(directory)
    config = VitsConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        ffn_dim=32, flow_size=16, spectrogram_bins=33, upsample_initial_channel=16,
        resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
        duration_predictor_filter_channels=16, duration_predictor_num_flows=1,
        prior_encoder_num_flows=1, prior_encoder_num_wavenet_layers=1,
        posterior_encoder_num_wavenet_layers=1, depth_separable_num_layers=1,
        sampling_rate=sampling_rate)
    torch.manual_seed(0)
    VitsModel(config).save_pretrained(directory)
    return directory


def test_vits_from_a_local_directory(tmp_path: Path) -> None:
    tts = tts_by_name(f"vits:{save_tiny_vits(tmp_path / 'vits')}")
    assert isinstance(tts, VitsTTS) and isinstance(tts, TextToSpeech)
    wave = tts.synthesize("a red dog on the grass")
    assert wave.dtype == np.float32 and wave.ndim == 1 and wave.size > 1000
    assert abs(float(np.abs(wave).max()) - 0.9) < 1e-4
    assert np.array_equal(wave, tts.synthesize("a red dog on the grass"))  # reproducible
    assert tts.name.startswith("vits:vits-")
    with pytest.raises(TmtError, match="no VITS model"):
        VitsTTS(tmp_path / "missing")


def test_synthesizer_caches_one_wav_per_voice_and_caption(tmp_path: Path) -> None:
    tts = OfflineTTS("espeak:en-us")
    synth = SpeechSynthesizer(tts, tmp_path / "cache")
    example = RawExample(id="x", text="a small red circle", image=tmp_path / "x.jpg")
    filled = synth(example)
    assert filled.speech is not None and filled.image == example.image
    wave, sr = read_wav(filled.speech)
    assert sr == 16_000 and wave.size > 0.3 * sr  # about a second of espeak speech
    assert synth(example).speech == filled.speech and synth.synthesized == 1  # cache hit
    other = SpeechSynthesizer(OfflineTTS("flite:slt"), tmp_path / "cache")
    assert other.path_for(example.text) != filled.speech  # another voice, another file
    has_speech = RawExample(id="y", text="x", speech=tmp_path / "real.wav")
    assert synth(has_speech) is has_speech  # real speech is never replaced
    with pytest.raises(TmtError, match="unknown voice"):
        tts_by_name("festival:kal")
