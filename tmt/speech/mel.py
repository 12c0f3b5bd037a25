"""Log-mel analysis and Griffin-Lim synthesis at 50 frames/s (hop 320 at 16 kHz).

One mel frame per unit frame: the units→mel vocoder predicts these frames and Griffin-Lim
turns them back into a waveform (STACK.md measured this path as judge-readable).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch


@dataclass(kw_only=True)
class MelConfig:
    """Mel analysis shared by training targets and synthesis."""

    sample_rate: int = 16000
    n_fft: int = 1024
    """FFT size (and window length)."""
    hop: int = 320
    """Samples per frame: 20 ms, the unit frame rate."""
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = 8000.0
    griffin_lim_iters: int = 32
    """Griffin-Lim iterations at synthesis."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MelFrontEnd:
    """wave (T,) ↔ log-mel (n_mels, F); analysis frames are centred (F = 1 + T // hop)."""

    def __init__(self, config: MelConfig | None = None, device: str | torch.device = "cpu") -> None:
        import torchaudio

        self.cfg = cfg = config or MelConfig()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg.sample_rate,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop,
            n_mels=cfg.n_mels,
            f_min=cfg.f_min,
            f_max=cfg.f_max,
            power=2.0,
        )
        self.inverse_mel = torchaudio.transforms.InverseMelScale(
            n_stft=cfg.n_fft // 2 + 1,
            n_mels=cfg.n_mels,
            sample_rate=cfg.sample_rate,
            f_min=cfg.f_min,
            f_max=cfg.f_max,
        )
        self.griffin_lim = torchaudio.transforms.GriffinLim(
            n_fft=cfg.n_fft, hop_length=cfg.hop, n_iter=cfg.griffin_lim_iters, power=2.0
        )
        self.device = torch.device(device)
        for module in (self.mel, self.inverse_mel, self.griffin_lim):
            module.to(self.device)

    def log_mel(self, wave: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(T,) float wave → (n_mels, 1 + T // hop) natural-log power mel."""
        x = torch.as_tensor(np.asarray(wave, dtype=np.float32), device=self.device)
        return torch.log(self.mel(x).clamp_min(1e-5))

    def synthesize(self, log_mel: torch.Tensor) -> np.ndarray:
        """(n_mels, F) log-mel → (F * hop,) float32 wave by Griffin-Lim (deterministic init)."""
        frames = log_mel.shape[-1]
        # Griffin-Lim's centred STFT reflect-pads n_fft/2 samples on each side, which needs a
        # few frames: pad very short inputs (e.g. one unit) with silence, trim afterwards.
        min_frames = self.cfg.n_fft // self.cfg.hop + 2
        if frames < min_frames:
            log_mel = torch.nn.functional.pad(log_mel, (0, min_frames - frames), value=-11.5)
        power = torch.exp(log_mel.to(self.device).float()).clamp_min(0.0)
        spec = self.inverse_mel(power).clamp_min(0.0)  # (n_fft/2+1, F) power spectrum
        # rand_init=False makes decode deterministic (same units → same audio).
        self.griffin_lim.rand_init = False
        wave = self.griffin_lim(spec)  # centred frames: (F - 1) * hop samples
        wave = torch.nn.functional.pad(wave, (0, log_mel.shape[-1] * self.cfg.hop - wave.shape[-1]))
        wave = wave[: frames * self.cfg.hop]
        peak = wave.abs().max().clamp_min(1e-4)
        return (wave * (0.9 / peak)).cpu().numpy().astype(np.float32)
