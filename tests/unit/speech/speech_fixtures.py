"""Synthetic speech-like audio for the speech tests (no TTS needed): voiced segments whose
pitch and formants change over time, with silences, so that k-means finds distinct units."""

from __future__ import annotations

import numpy as np

SR = 16000


def vowel(f0: float, formants: tuple[float, float], seconds: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    wave = np.zeros_like(t)
    for h in range(1, 30):
        f = h * f0
        if f > sr / 2 - 200:
            break
        gain = sum(np.exp(-(((f - fm) / 120.0) ** 2)) for fm in formants) + 0.02
        wave += gain * np.sin(2 * np.pi * f * t) / h
    env = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
    return (wave * env).astype(np.float32)


VOWELS = ((300.0, 2300.0), (700.0, 1200.0), (500.0, 1800.0), (350.0, 800.0))


def utterance(seed: int, seconds: float = 1.2, sr: int = SR) -> np.ndarray:
    """A fake utterance: 3-6 'syllables' of different vowels and pitches, 0.9 peak."""
    rng = np.random.default_rng(seed)
    parts = [np.zeros(int(0.05 * sr), np.float32)]
    while sum(len(p) for p in parts) < seconds * sr:
        formants = VOWELS[int(rng.integers(len(VOWELS)))]
        parts.append(vowel(float(rng.uniform(100, 220)), formants, float(rng.uniform(0.12, 0.3)), sr))
        parts.append(np.zeros(int(rng.uniform(0.02, 0.08) * sr), np.float32))
    wave = np.concatenate(parts)[: int(seconds * sr)]
    wave += 0.003 * rng.standard_normal(wave.shape).astype(np.float32)
    return (0.9 * wave / np.abs(wave).max()).astype(np.float32)
