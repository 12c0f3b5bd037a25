"""Signal-level degradations: each does what its name says, reproducibly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from tmt.data.augment import (
    CONDITIONS,
    AugmentOptions,
    add_noise,
    babble,
    band_limit,
    change_speed,
    degrade,
    random_augment,
    room_impulse_response,
)
from tmt.errors import TmtError

SR = 16_000


def tone_mix(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    wave = sum(np.sin(2 * np.pi * f * t) for f in (150.0, 1000.0, 6000.0))
    return (0.3 * wave).astype(np.float32)


def band_power(wave: np.ndarray, low: float, high: float) -> float:
    freqs, psd = signal.welch(wave, SR, nperseg=1024)
    return float(psd[(freqs >= low) & (freqs <= high)].sum())


def test_white_noise_has_the_asked_snr() -> None:
    wave = tone_mix()
    rng = np.random.default_rng(0)
    noisy = add_noise(wave, 10.0, rng)
    # rescaled to the input's peak, so measure the ratio between signal and residual directly
    scale = float(np.dot(noisy, wave) / np.dot(wave, wave))
    residual = noisy - scale * wave
    snr = 10 * np.log10(np.sum((scale * wave) ** 2) / np.sum(residual**2))
    assert snr == pytest.approx(10.0, abs=0.5)
    assert np.abs(noisy).max() == pytest.approx(np.abs(wave).max(), rel=1e-5)


def test_telephone_band_removes_low_and_high_frequencies() -> None:
    wave = tone_mix()
    out = band_limit(wave)
    assert band_power(out, 900, 1100) / band_power(wave, 900, 1100) > 0.1
    assert band_power(out, 100, 200) / band_power(wave, 100, 200) < 0.01 * band_power(out, 900, 1100) / band_power(wave, 900, 1100)
    assert band_power(out, 5500, 6500) < 1e-3 * band_power(wave, 5500, 6500)


def test_room_decays_sixty_db_in_rt60() -> None:
    rir = room_impulse_response(0.4, np.random.default_rng(0))
    energy = rir[100:].astype(np.float64) ** 2
    early = energy[: int(0.05 * SR)].mean()
    at_rt60 = energy[int(0.38 * SR) : int(0.42 * SR)].mean()
    assert 10 * np.log10(early / at_rt60) == pytest.approx(60, abs=8)


def test_speed_changes_duration() -> None:
    wave = tone_mix(1.0)
    assert change_speed(wave, 1.1).size == pytest.approx(SR / 1.1, rel=0.01)
    assert change_speed(wave, 0.9).size == pytest.approx(SR / 0.9, rel=0.01)
    with pytest.raises(TmtError, match="speed factor"):
        change_speed(wave, 5.0)


def test_babble_mixes_the_pool_at_the_asked_length() -> None:
    pool = [tone_mix(0.3), tone_mix(0.7)]
    out = babble(pool, 12345, np.random.default_rng(0))
    assert out.shape == (12345,) and np.abs(out).max() > 0


def test_every_condition_is_reproducible_and_keeps_the_length_except_speed() -> None:
    wave = tone_mix(0.5)
    pool = [tone_mix(0.4)]
    for name in CONDITIONS:
        a = degrade(wave, name, np.random.default_rng(1), pool)
        b = degrade(wave, name, np.random.default_rng(1), pool)
        assert np.array_equal(a, b), name
        assert a.dtype == np.float32
        if not name.startswith("speed"):
            assert a.size == wave.size, name
    with pytest.raises(TmtError, match="unknown condition"):
        degrade(wave, "underwater", np.random.default_rng(0))


def test_random_chain_is_seeded() -> None:
    wave = tone_mix(0.5)
    opts = AugmentOptions(speed=1.0, reverb=1.0, band=1.0, noise=1.0)
    a = random_augment(wave, np.random.default_rng(3), opts, [tone_mix(0.2)])
    b = random_augment(wave, np.random.default_rng(3), opts, [tone_mix(0.2)])
    assert np.array_equal(a, b) and not np.array_equal(a[: wave.size], wave[: a.size])
