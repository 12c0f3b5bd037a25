"""The CPU default vocoder: deduplicated units → durations → log-mel → Griffin-Lim.

A small FastSpeech-like conv model: unit embeddings and a conv encoder over the *unit*
sequence, a duration predictor (log(1 + frames), as in CodeHiFiGAN), length regulation to
50 frames/s, a dilated conv decoder over *frames* and a linear mel head. Trained with L1 on
log-mel plus MSE on log-durations (``tmt.speech.train_vocoder``); it learns in minutes on a
CPU where a GAN vocoder would need days.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tmt.errors import TmtError
from tmt.files import check_format, format_header, load_safetensors
from tmt.speech.mel import MelConfig, MelFrontEnd

CONFIG_FORMAT = "tmt-unit-mel-vocoder"


@dataclass(kw_only=True)
class UnitMelConfig:
    """Architecture of :class:`UnitMelModel`."""

    vocab_size: int = 200
    """Number of units K."""
    dim: int = 192
    """Channels of every conv layer."""
    encoder_layers: int = 3
    """Conv blocks over the unit sequence (context for durations and for each unit)."""
    decoder_dilations: tuple[int, ...] = (1, 2, 4, 1, 2, 4)
    """One conv block per entry over frames; dilations widen the context cheaply."""
    kernel_size: int = 5
    dropout: float = 0.1
    max_run: int = 32
    """Position-in-run embedding size (frames since the unit started, clipped)."""
    mel: MelConfig = field(default_factory=MelConfig)

    @classmethod
    def tiny(cls) -> UnitMelConfig:
        return cls(vocab_size=20, dim=32, encoder_layers=1, decoder_dilations=(1, 2))


class ConvBlock(nn.Module):
    """Residual conv + LayerNorm over (B, T, C); padding positions are zeroed by the caller."""

    def __init__(self, dim: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, kernel_size, padding=dilation * (kernel_size - 1) // 2, dilation=dilation)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = self.conv((x * mask).transpose(1, 2)).transpose(1, 2)  # (B, T, C)
        return self.norm(x + self.dropout(F.gelu(y))) * mask


def length_regulate(x: torch.Tensor, durations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Repeat unit vectors by their durations.

    x: (B, U, C), durations: (B, U) ≥ 0 → frames (B, F, C), frame mask (B, F, 1),
    position of each frame within its unit (B, F).
    """
    batch, _, dim = x.shape
    total = durations.sum(1)
    longest = int(total.max().item()) if batch else 0
    out = x.new_zeros(batch, longest, dim)
    pos = torch.zeros(batch, longest, dtype=torch.long, device=x.device)
    for b in range(batch):
        d = durations[b]
        frames = torch.repeat_interleave(x[b], d, dim=0)
        out[b, : frames.shape[0]] = frames
        starts = torch.repeat_interleave(torch.cumsum(d, 0) - d, d)
        pos[b, : frames.shape[0]] = torch.arange(frames.shape[0], device=x.device) - starts
    mask = (torch.arange(longest, device=x.device)[None, :] < total[:, None]).unsqueeze(-1).float()
    return out, mask, pos


class UnitMelModel(nn.Module):
    """units (B, U) [+ durations] → log-mel (B, F, n_mels) and log-duration predictions."""

    def __init__(self, config: UnitMelConfig) -> None:
        super().__init__()
        self.cfg = c = config
        self.embed = nn.Embedding(c.vocab_size + 1, c.dim, padding_idx=c.vocab_size)
        self.encoder = nn.ModuleList(
            ConvBlock(c.dim, c.kernel_size, 1, c.dropout) for _ in range(c.encoder_layers)
        )
        self.duration = nn.Sequential(
            nn.Conv1d(c.dim, c.dim, 3, padding=1), nn.ReLU(), nn.Conv1d(c.dim, 1, 1)
        )
        self.run_pos = nn.Embedding(c.max_run, c.dim)
        self.decoder = nn.ModuleList(
            ConvBlock(c.dim, c.kernel_size, d, c.dropout) for d in c.decoder_dilations
        )
        self.to_mel = nn.Linear(c.dim, c.mel.n_mels)

    def encode_units(self, units: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """→ unit states (B, U, C), unit mask (B, U, 1), predicted log(1 + duration) (B, U)."""
        mask = (torch.arange(units.shape[1], device=units.device)[None] < lengths[:, None]).unsqueeze(-1).float()
        x = self.embed(units) * mask
        for block in self.encoder:
            x = block(x, mask)
        log_dur = self.duration(x.transpose(1, 2)).squeeze(1) * mask.squeeze(-1)
        return x, mask, log_dur

    def decode_frames(self, states: torch.Tensor, durations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit states + integer durations → log-mel (B, F, n_mels) and frame mask (B, F, 1)."""
        frames, mask, pos = length_regulate(states, durations)
        x = (frames + self.run_pos(pos.clamp_max(self.cfg.max_run - 1))) * mask
        for block in self.decoder:
            x = block(x, mask)
        return self.to_mel(x) * mask, mask

    def forward(
        self, units: torch.Tensor, lengths: torch.Tensor, durations: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher-forced durations (training) → (log-mel, frame mask, predicted log-durations)."""
        states, _, log_dur = self.encode_units(units, lengths)
        mel, mask = self.decode_frames(states, durations)
        return mel, mask, log_dur


class UnitMelVocoder:
    """Inference wrapper: ``decode(units) -> np.ndarray`` (16 kHz float32)."""

    def __init__(self, model: UnitMelModel, device: str | torch.device | None = None) -> None:
        """The model and the Griffin-Lim front end run on ``device`` (default: the model's)."""
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.front = MelFrontEnd(model.cfg.mel, self.device)

    @property
    def vocab_size(self) -> int:
        return self.model.cfg.vocab_size

    @property
    def sample_rate(self) -> int:
        return self.model.cfg.mel.sample_rate

    def predict_durations(self, units: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            u = units.reshape(1, -1).to(self.device)
            _, _, log_dur = self.model.encode_units(u, torch.tensor([u.shape[1]], device=self.device))
            return torch.clamp(torch.round(torch.exp(log_dur[0]) - 1), min=1).long().cpu()

    def log_mel(self, units: torch.Tensor, durations: torch.Tensor | None = None) -> torch.Tensor:
        """(U,) units [+ (U,) durations] → (n_mels, F) log-mel."""
        units = check_units(units, self.vocab_size)
        with torch.inference_mode():
            u = units.reshape(1, -1).to(self.device)
            states, _, log_dur = self.model.encode_units(u, torch.tensor([u.shape[1]], device=self.device))
            if durations is None:
                durations = torch.clamp(torch.round(torch.exp(log_dur[0]) - 1), min=1).long()
            mel, _ = self.model.decode_frames(states, durations.reshape(1, -1).long().to(self.device))
        return mel[0].T

    def decode(self, units: torch.Tensor, durations: torch.Tensor | None = None) -> np.ndarray:
        """Unit ids (deduplicated) → waveform; durations are predicted unless given."""
        return self.front.synthesize(self.log_mel(units, durations))

    def save(self, directory: str | Path, half: bool = True) -> None:
        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        cfg = asdict(self.model.cfg)
        (out / "config.json").write_text(json.dumps({**format_header(CONFIG_FORMAT), **cfg}, indent=2) + "\n")
        dtype = torch.float16 if half else torch.float32
        save_file({k: v.to("cpu", dtype).contiguous() for k, v in self.model.state_dict().items()}, str(out / "model.safetensors"))

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> UnitMelVocoder:

        path = Path(directory)
        try:
            raw = json.loads((path / "config.json").read_text())
        except FileNotFoundError:
            raise TmtError(f"not a vocoder directory (no config.json): {path}") from None
        raw = check_format(path / "config.json", raw, CONFIG_FORMAT, required=True)
        raw["mel"] = MelConfig(**raw["mel"])
        raw["decoder_dilations"] = tuple(raw["decoder_dilations"])
        model = UnitMelModel(UnitMelConfig(**raw))
        state = load_safetensors(path / "model.safetensors")
        model.load_state_dict({k: v.float() for k, v in state.items()})
        return cls(model, device)


def check_units(units: torch.Tensor | np.ndarray | list[int], vocab_size: int) -> torch.Tensor:
    """Validate a unit sequence: 1-D, non-empty, ids in [0, vocab_size)."""
    u = torch.as_tensor(units).long().reshape(-1)
    if u.numel() == 0:
        raise TmtError("cannot synthesize speech from an empty unit sequence")
    if int(u.min()) < 0 or int(u.max()) >= vocab_size:
        raise TmtError(f"unit ids must be in [0, {vocab_size}), got [{int(u.min())}, {int(u.max())}]")
    return u
