"""CodeHiFiGAN: the unit HiFi-GAN vocoder of speech-resynthesis / fairseq (generator side).

Unit embedding → (optional) duration predictor that expands deduplicated units →
HiFi-GAN generator: conv_pre, transposed-conv upsampling 5·4·4·2·2 (= 320 samples per unit
frame at 16 kHz) each followed by multi-receptive-field residual blocks, conv_post, tanh.

Real fairseq checkpoints enter through :func:`tmt.speech.interop.load_fairseq_code_hifigan`;
this module only knows its own parameter names. Training parts (discriminators, losses) live
in :mod:`tmt.train.codecs.hifigan`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import weight_norm

from tmt.errors import TmtError
from tmt.files import format_header, load_safetensors, read_config
from tmt.speech.unit_mel import check_units

CONFIG_FORMAT = "tmt-code-hifigan"

LRELU_SLOPE = 0.1


@dataclass(kw_only=True)
class CodeHiFiGANConfig:
    """Generator architecture (field names follow the fairseq ``config.json``)."""

    num_embeddings: int = 200
    """Number of units K."""
    embedding_dim: int = 128
    model_in_dim: int = 128
    """Channels entering conv_pre (= embedding_dim for a code-only vocoder)."""
    upsample_rates: tuple[int, ...] = (5, 4, 4, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (11, 8, 8, 4, 4)
    upsample_initial_channel: int = 512
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    duration_predictor: bool = True
    """Predict log(1 + duration) per deduplicated unit (``dur_predictor_params`` in fairseq)."""
    var_pred_hidden_dim: int = 128
    var_pred_kernel_size: int = 3
    var_pred_dropout: float = 0.5
    sampling_rate: int = 16000

    @property
    def hop(self) -> int:
        return int(np.prod(self.upsample_rates))

    @classmethod
    def paper(cls) -> CodeHiFiGANConfig:
        """The speech-resynthesis / fairseq unit vocoder (hubert_base K=200 variant)."""
        return cls()

    @classmethod
    def tiny(cls, num_embeddings: int = 20) -> CodeHiFiGANConfig:
        return cls(
            num_embeddings=num_embeddings, embedding_dim=16, model_in_dim=16,
            upsample_initial_channel=32, resblock_kernel_sizes=(3,),
            resblock_dilation_sizes=((1, 3, 5),), var_pred_hidden_dim=16,
        )


def _pad(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class ResBlock(nn.Module):
    """HiFi-GAN residual block type 1: pairs of (dilated conv, conv), each residual."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel, dilation=d, padding=_pad(kernel, d)))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel, padding=_pad(kernel))) for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class DurationPredictor(nn.Module):
    """(B, U, C) unit embeddings → (B, U) log(1 + duration); FastSpeech2's VariancePredictor."""

    def __init__(self, dim: int, hidden: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(dim, hidden, kernel, padding=(kernel - 1) // 2)
        self.norm1 = nn.LayerNorm(hidden)
        self.conv2 = nn.Conv1d(hidden, hidden, kernel, padding=1)
        self.norm2 = nn.LayerNorm(hidden)
        self.proj = nn.Linear(hidden, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.norm1(F.relu(self.conv1(x.transpose(1, 2))).transpose(1, 2)))
        x = self.dropout(self.norm2(F.relu(self.conv2(x.transpose(1, 2))).transpose(1, 2)))
        return self.proj(x).squeeze(-1)


class CodeHiFiGAN(nn.Module):
    """units (B, F) at frame rate → waveform (B, 1, F * hop)."""

    def __init__(self, config: CodeHiFiGANConfig) -> None:
        super().__init__()
        self.cfg = c = config
        self.embed = nn.Embedding(c.num_embeddings, c.embedding_dim)
        self.duration = (
            DurationPredictor(c.embedding_dim, c.var_pred_hidden_dim, c.var_pred_kernel_size, c.var_pred_dropout)
            if c.duration_predictor
            else None
        )
        ch = c.upsample_initial_channel
        self.pre = weight_norm(nn.Conv1d(c.model_in_dim, ch, 7, padding=3))
        self.upsamples = nn.ModuleList(
            weight_norm(nn.ConvTranspose1d(ch // 2**i, ch // 2 ** (i + 1), k, u, padding=(k - u) // 2))
            for i, (u, k) in enumerate(zip(c.upsample_rates, c.upsample_kernel_sizes))
        )
        self.blocks = nn.ModuleList(
            ResBlock(ch // 2 ** (i + 1), k, tuple(d))
            for i in range(len(c.upsample_rates))
            for k, d in zip(c.resblock_kernel_sizes, c.resblock_dilation_sizes)
        )
        self.post = weight_norm(nn.Conv1d(ch // 2 ** len(c.upsample_rates), 1, 7, padding=3))
        self.num_kernels = len(c.resblock_kernel_sizes)
        for name, param in self.named_parameters():
            # HiFi-GAN init: N(0, 0.01) on the generator convs after conv_pre (weight_norm's v)
            if name.endswith("parametrizations.weight.original1") and not name.startswith("pre."):
                param.data.normal_(0.0, 0.01)

    def generate(self, frame_units: torch.Tensor) -> torch.Tensor:
        """(B, F) units, one per 20 ms frame → (B, 1, F * hop) waveform in [-1, 1]."""
        x = self.embed(frame_units).transpose(1, 2)  # (B, C, F)
        x = self.pre(x)
        for i, up in enumerate(self.upsamples):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.blocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            x = sum(block(x) for block in blocks) / self.num_kernels  # type: ignore[assignment]
        # fairseq uses the default 0.01 slope at this last activation
        return torch.tanh(self.post(F.leaky_relu(x)))

    def predict_durations(self, units: torch.Tensor) -> torch.Tensor:
        """(B, U) deduplicated units → (B, U) integer frame counts ≥ 1."""
        if self.duration is None:
            return torch.ones_like(units)
        log_dur = self.duration(self.embed(units))
        return torch.clamp(torch.round(torch.exp(log_dur) - 1), min=1).long()


class CodeHiFiGANVocoder:
    """Inference wrapper: ``decode(units) -> np.ndarray`` at 16 kHz."""

    def __init__(self, model: CodeHiFiGAN) -> None:
        self.model = model.eval()

    @property
    def vocab_size(self) -> int:
        return self.model.cfg.num_embeddings

    @property
    def sample_rate(self) -> int:
        return self.model.cfg.sampling_rate

    def decode(self, units: torch.Tensor, durations: torch.Tensor | None = None) -> np.ndarray:
        """Deduplicated units (+ optional durations, else predicted) → float32 waveform."""
        u = check_units(units, self.vocab_size)
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            u = u.to(device)
            if durations is None:
                durations = self.model.predict_durations(u[None])[0]
            frames = torch.repeat_interleave(u, durations.to(device).long())
            wave = self.model.generate(frames[None])[0, 0]
        return wave.cpu().numpy().astype(np.float32)

    def save(self, directory: str | Path, half: bool = False) -> None:
        """``config.json`` (our dataclass) + ``model.safetensors`` (our key names)."""
        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        cfg = {**format_header(CONFIG_FORMAT), **asdict(self.model.cfg)}
        (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        dtype = torch.float16 if half else torch.float32
        state = {k: v.to(dtype).contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(out / "model.safetensors"))

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> CodeHiFiGANVocoder:

        path = Path(directory)
        if not (path / "config.json").exists():
            raise TmtError(f"not a vocoder directory (no config.json): {path}")
        raw = read_config(path / "config.json", CONFIG_FORMAT, required=True)
        for key in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes"):
            raw[key] = tuple(raw[key])
        raw["resblock_dilation_sizes"] = tuple(tuple(d) for d in raw["resblock_dilation_sizes"])
        model = CodeHiFiGAN(CodeHiFiGANConfig(**raw))
        model.load_state_dict({k: v.float() for k, v in load_safetensors(path / "model.safetensors").items()})
        return cls(model.to(device))
