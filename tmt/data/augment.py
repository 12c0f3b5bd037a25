"""Signal-level transformations of 16 kHz speech: noise, babble, rooms, telephone band, speed.

Two uses share these functions:

- **named conditions** (:data:`CONDITIONS`, :func:`degrade`) make the fixed degraded copies of
  the unseen-voice evaluation set (``white20``, ``reverb0.4``, ``telephone``, ``speed1.1``, ...);
- **random chains** (:func:`random_augment`) widen the voices and rooms the speech side trains
  on (the normalizer's trainer draws one per utterance and step).

Every function takes a ``numpy.random.Generator`` where it draws, so a seed reproduces it, and
returns float32 audio scaled back to the input's peak (a degradation should not change the
loudness a model sees; loudness is not what is being tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import soxr
from scipy import signal

from tmt.errors import TmtError

SAMPLE_RATE = 16_000


def _rescale(out: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``out`` scaled to the peak of ``like`` (float32, clipped to [-1, 1])."""
    peak_out = float(np.abs(out).max()) if out.size else 0.0
    peak_in = float(np.abs(like).max()) if like.size else 0.0
    if peak_out > 0:
        out = out * (peak_in / peak_out)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator,
              noise: np.ndarray | None = None) -> np.ndarray:
    """``wave`` + ``noise`` (white Gaussian when None) at ``snr_db`` dB signal-to-noise ratio.
    A noise shorter than the wave is tiled; a longer one is cut at a random offset."""
    if noise is None:
        noise = rng.standard_normal(wave.size)
    elif noise.size < wave.size:
        noise = np.tile(noise, -(-wave.size // max(noise.size, 1)))[: wave.size]
    else:
        start = int(rng.integers(noise.size - wave.size + 1))
        noise = noise[start : start + wave.size]
    p_sig, p_noise = _power(wave), _power(noise)
    if p_sig == 0 or p_noise == 0:
        return wave.astype(np.float32)
    scale = np.sqrt(p_sig / (p_noise * 10.0 ** (snr_db / 10.0)))
    return _rescale(wave + scale * noise, wave)


def babble(pool: Sequence[np.ndarray], length: int, rng: np.random.Generator,
           talkers: int = 4) -> np.ndarray:
    """Babble noise of ``length`` samples: ``talkers`` utterances of ``pool`` at equal power,
    each at a random offset (looped), summed."""
    if not pool:
        raise TmtError("babble needs at least one utterance to mix")
    out = np.zeros(length, np.float64)
    for k in rng.choice(len(pool), size=talkers, replace=len(pool) < talkers):
        utt = np.asarray(pool[int(k)], np.float64)
        if utt.size == 0:
            continue
        looped = np.tile(utt, -(-(length + utt.size) // utt.size))
        start = int(rng.integers(utt.size))
        piece = looped[start : start + length]
        out += piece / np.sqrt(max(_power(piece), 1e-12))
    return out.astype(np.float32)


def room_impulse_response(rt60: float, rng: np.random.Generator, *,
                          sample_rate: int = SAMPLE_RATE, direct_ms: float = 2.0) -> np.ndarray:
    """A synthetic room: a direct path, then exponentially decaying Gaussian reverberation whose
    energy falls 60 dB in ``rt60`` seconds (Polack's statistical model of a diffuse field)."""
    if not 0.05 <= rt60 <= 3.0:
        raise TmtError(f"RT60 must be within 0.05-3 s, got {rt60}")
    n = int(rt60 * 1.2 * sample_rate)
    t = np.arange(n) / sample_rate
    decay = np.exp(-6.9078 * t / rt60)  # amplitude: ln(10^3) = 6.9078, i.e. -60 dB in energy
    rir = rng.standard_normal(n) * decay
    onset = int(direct_ms * 1e-3 * sample_rate)
    rir[:onset] = 0.0
    rir[onset] = np.abs(rir[onset:]).max() * 2.0  # the direct sound dominates the first arrival
    return (rir / np.sqrt(np.sum(rir**2))).astype(np.float32)


def reverberate(wave: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """``wave`` in a synthetic room of the given RT60 (same length: the tail is cut)."""
    rir = room_impulse_response(rt60, rng)
    return _rescale(signal.fftconvolve(wave, rir)[: wave.size], wave)


def band_limit(wave: np.ndarray, low: float = 300.0, high: float = 3400.0) -> np.ndarray:
    """Band-pass ``low``-``high`` Hz (6th-order Butterworth; 300-3400 Hz is the telephone band)."""
    sos = signal.butter(6, [low, high], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return _rescale(signal.sosfilt(sos, wave), wave)


def change_speed(wave: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (tempo, pitch and formants together, as Kaldi's speed
    perturbation): resampled to ``rate / factor`` samples per second and read at 16 kHz."""
    if not 0.5 <= factor <= 2.0:
        raise TmtError(f"speed factor must be within 0.5-2, got {factor}")
    out = soxr.resample(wave.astype(np.float32), SAMPLE_RATE, SAMPLE_RATE / factor, quality="HQ")
    return _rescale(out, wave)


@dataclass(frozen=True, kw_only=True)
class Condition:
    """One named recording condition of the evaluation set."""

    name: str
    kind: str
    """``clean``, ``white``, ``babble``, ``reverb``, ``telephone`` or ``speed``."""
    value: float = 0.0
    """SNR in dB (noise), RT60 in seconds (reverb), or the speed factor."""


CONDITIONS: dict[str, Condition] = {c.name: c for c in (
    Condition(name="clean", kind="clean"),
    Condition(name="white20", kind="white", value=20.0),
    Condition(name="white10", kind="white", value=10.0),
    Condition(name="babble20", kind="babble", value=20.0),
    Condition(name="babble10", kind="babble", value=10.0),
    Condition(name="reverb0.3", kind="reverb", value=0.3),
    Condition(name="reverb0.4", kind="reverb", value=0.4),
    Condition(name="reverb0.6", kind="reverb", value=0.6),
    Condition(name="telephone", kind="telephone"),
    Condition(name="speed0.9", kind="speed", value=0.9),
    Condition(name="speed1.1", kind="speed", value=1.1),
)}
"""The evaluation's conditions: white and babble noise at 20 and 10 dB SNR, synthetic rooms of
RT60 0.3/0.4/0.6 s, the 300-3400 Hz telephone band, speed x0.9 and x1.1."""


def degrade(wave: np.ndarray, condition: str, rng: np.random.Generator,
            babble_pool: Sequence[np.ndarray] = ()) -> np.ndarray:
    """``wave`` under the named :data:`CONDITIONS` entry (babble mixes ``babble_pool``)."""
    c = CONDITIONS.get(condition)
    if c is None:
        raise TmtError(f"unknown condition {condition!r} (known: {', '.join(CONDITIONS)})")
    if c.kind == "clean":
        return wave.astype(np.float32)
    if c.kind == "white":
        return add_noise(wave, c.value, rng)
    if c.kind == "babble":
        return add_noise(wave, c.value, rng, babble(babble_pool, wave.size, rng))
    if c.kind == "reverb":
        return reverberate(wave, c.value, rng)
    if c.kind == "telephone":
        return band_limit(wave)
    return change_speed(wave, c.value)


@dataclass(frozen=True, kw_only=True)
class AugmentOptions:
    """How often and how strongly :func:`random_augment` transforms a training utterance."""

    speed: float = 0.5
    """Chance of a speed change, factor uniform in ``speed_range``."""
    speed_range: tuple[float, float] = (0.85, 1.15)
    reverb: float = 0.3
    """Chance of a synthetic room, RT60 uniform in ``rt60_range`` seconds."""
    rt60_range: tuple[float, float] = (0.15, 0.8)
    band: float = 0.25
    """Chance of a random band-pass (low 80-400 Hz, high 2800-7000 Hz)."""
    noise: float = 0.5
    """Chance of added noise (white or babble, even odds), SNR uniform in ``snr_range`` dB."""
    snr_range: tuple[float, float] = (5.0, 30.0)


def random_augment(wave: np.ndarray, rng: np.random.Generator, options: AugmentOptions,
                   babble_pool: Sequence[np.ndarray] = ()) -> np.ndarray:
    """One random chain of the transformations above, in the order a signal meets them:
    the talker's speed, the room, the channel's band, then noise at the microphone."""
    o = options
    out = wave.astype(np.float32)
    if rng.random() < o.speed:
        out = change_speed(out, float(rng.uniform(*o.speed_range)))
    if rng.random() < o.reverb:
        out = reverberate(out, float(rng.uniform(*o.rt60_range)), rng)
    if rng.random() < o.band:
        out = band_limit(out, float(rng.uniform(80, 400)), float(rng.uniform(2800, 7000)))
    if rng.random() < o.noise:
        snr = float(rng.uniform(*o.snr_range))
        use_babble = babble_pool and rng.random() < 0.5
        noise = babble(babble_pool, out.size, rng) if use_babble else None
        out = add_noise(out, snr, rng, noise)
    return out
