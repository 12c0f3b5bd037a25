from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from speech_fixtures import utterance

from tmt.errors import TmtError
from tmt.speech.audio import load_audio, save_audio


def test_any_rate_and_channels_become_16k_mono(tmp_path):
    wave = utterance(0, seconds=1.0)
    stereo = np.stack([wave, 0.5 * wave], axis=1)
    import soxr

    at_22k = soxr.resample(stereo, 16000, 22050)
    sf.write(tmp_path / "a.wav", at_22k, 22050)
    sf.write(tmp_path / "a.flac", at_22k, 22050)
    for name in ("a.wav", "a.flac"):
        out = load_audio(tmp_path / name)
        assert out.dtype == np.float32 and out.ndim == 1
        assert abs(len(out) - 16000) <= 2
        # mono mix of (w, w/2) is 0.75 w: the rate conversion keeps the signal
        assert np.corrcoef(out[:15000], 0.75 * wave[:15000])[0, 1] > 0.95
    assert np.allclose(load_audio((tmp_path / "a.wav").read_bytes()), load_audio(tmp_path / "a.wav"))


def test_save_then_load_roundtrip(tmp_path):
    wave = utterance(1, seconds=0.5)
    save_audio(tmp_path / "x.wav", wave)
    assert np.abs(load_audio(tmp_path / "x.wav") - wave).max() < 1e-3


def _bytes(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.wav", "not found"),
        (lambda p: _bytes(p / "empty.wav", b""), "empty"),
        (lambda p: _bytes(p / "text.wav", b"hello, not audio"), "cannot read audio"),
        (lambda p: sf.write(p / "silent.wav", np.zeros(16000), 16000) or p / "silent.wav", "silent"),
        (lambda p: sf.write(p / "short.wav", np.ones(10) * 0.5, 16000) or p / "short.wav", "too short"),
    ],
)
def test_bad_inputs_raise_one_line_tmterror(tmp_path, make, message):
    with pytest.raises(TmtError, match=message) as info:
        load_audio(make(tmp_path))
    assert "\n" not in str(info.value)


def test_nan_waveform_is_rejected():
    from tmt.speech.tokenizer import as_wave

    wave = utterance(2, seconds=0.3)
    wave[100] = np.nan
    with pytest.raises(TmtError, match="NaN"):
        as_wave(wave)
    with pytest.raises(TmtError, match="empty"):
        load_audio(b"")
