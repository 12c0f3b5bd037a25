"""Reading and writing audio: any file libsndfile reads → 16 kHz mono float32.

Every problem a user can cause (missing file, not audio, empty, NaN, silence) is a
:class:`TmtError` with one line naming the file, never a traceback from soundfile.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from tmt.errors import TmtError

#: Rate of every unit model and vocoder in tmt (HuBERT frames are 320 samples = 20 ms).
SAMPLE_RATE = 16000

#: Peak amplitude below which an input counts as silence (-80 dBFS).
SILENCE_PEAK = 1e-4


def _describe(source: str | Path | bytes) -> str:
    return f"{len(source)} bytes of audio" if isinstance(source, bytes) else str(source)


#: Sample rates read (Hz): below 4 kHz no speech band survives; above 384 kHz no audio file is.
MIN_RATE, MAX_RATE = 4000, 384_000


def load_audio(source: str | Path | bytes, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Read ``source`` (a path or the bytes of a file) as mono float32 at ``target_sr``.

    Channels are averaged; the rate is converted with soxr. Raises :class:`TmtError` for a
    missing, unreadable, empty, non-finite or silent input.
    """
    what = _describe(source)
    if isinstance(source, bytes):
        if not source:
            raise TmtError("empty audio input (0 bytes)")
        handle: io.BytesIO | str = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.exists():
            raise TmtError(f"audio file not found: {path}")
        if path.is_dir():
            raise TmtError(f"expected an audio file, got a directory: {path}")
        if path.stat().st_size == 0:
            raise TmtError(f"audio file is empty: {path}")
        handle = str(path)
    try:
        data, sr = sf.read(handle, dtype="float32", always_2d=True)  # (T, C)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TmtError(f"cannot read audio from {what}: {reason}") from None
    return prepare_wave(data.mean(axis=1), sr, target_sr=target_sr, what=what)


def prepare_wave(
    wave: np.ndarray, sr: int, target_sr: int = SAMPLE_RATE, what: str = "waveform"
) -> np.ndarray:
    """Validate a 1-D (or (T, C)) waveform and resample it to ``target_sr`` mono float32."""
    wave = np.asarray(wave)
    if wave.ndim == 2:
        # (T, C) as soundfile returns it; a (C, T) array with few rows is transposed first.
        wave = wave.T if wave.shape[0] <= 8 < wave.shape[1] else wave
        wave = wave.mean(axis=1)
    if wave.ndim != 1:
        raise TmtError(f"{what}: expected a 1-D waveform, got shape {tuple(wave.shape)}")
    if wave.size == 0:
        raise TmtError(f"{what}: audio is empty (0 samples)")
    if not np.issubdtype(wave.dtype, np.floating):
        if np.issubdtype(wave.dtype, np.integer):
            wave = wave.astype(np.float32) / float(np.iinfo(wave.dtype).max)
        else:
            raise TmtError(f"{what}: unsupported sample type {wave.dtype}")
    wave = wave.astype(np.float32, copy=False)
    if not np.isfinite(wave).all():
        raise TmtError(f"{what}: audio contains NaN or infinite samples")
    if float(np.abs(wave).max()) < SILENCE_PEAK:
        raise TmtError(f"{what}: audio is silent (peak below -80 dBFS)")
    if not MIN_RATE <= sr <= MAX_RATE:
        raise TmtError(f"{what}: sample rate {sr} Hz is not a speech recording's "
                       f"({MIN_RATE}-{MAX_RATE} Hz)")
    if sr != target_sr:
        wave = soxr.resample(wave, sr, target_sr).astype(np.float32, copy=False)
    if wave.size < 400 * target_sr // SAMPLE_RATE:
        raise TmtError(f"{what}: audio is too short ({wave.size} samples; need >= 25 ms)")
    return wave


def save_audio(path: str | Path, wave: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """Write a mono waveform as 16-bit PCM (format from the suffix, e.g. ``.wav``/``.flac``)."""
    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        subtype = "PCM_16" if Path(path).suffix.lower() in (".wav", ".flac") else None
        sf.write(str(path), np.clip(wave, -1.0, 1.0), sr, subtype=subtype)
    except (sf.LibsndfileError, ValueError, TypeError) as error:
        raise TmtError(f"cannot write audio to {path}: {error}") from None
