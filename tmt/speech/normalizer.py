"""UnitNormalizer: any voice's audio → the deduplicated units the output voice would have produced.

A speech normalizer in the sense of Lee et al. (2022, "Textless speech-to-speech translation on
real data"): an acoustic encoder with a CTC head is trained to emit, for an utterance in any voice
and room, the unit sequence that the k-means tokenizer gives for the *same content* spoken by
the one reference voice (the corpus's output voice). No text is involved, only parallel
utterances; the units keep their meaning (the vocoder speaks them), but who spoke and where no
longer changes them.

Two backbones share the head (``backbone`` in :class:`NormalizerConfig`):

- ``conv-transformer`` (the CPU default): log-mel (80 bins, 10 ms) with per-utterance mean and
  variance normalization → two 1-D convolutions (down to 40 ms frames by default) → a
  convolutional position embedding → pre-norm Transformer layers;
- ``hubert``: a ``transformers.HubertModel`` (the paper's HuBERT-Base, loaded from a local
  directory, then fine-tuned with CTC as Lee et al. do), read at its last layer (20 ms).

The head emits ``upsample`` CTC frames per encoder frame, 100 per second by default (a fast
voice can say more units per second than the reference voice; CTC needs a frame per unit).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tmt.errors import TmtError
from tmt.files import check_format, format_header, load_safetensors

CONFIG_FORMAT = "tmt-unit-normalizer"
SAMPLE_RATE = 16_000
BACKBONES = ("conv-transformer", "hubert")


@dataclass(kw_only=True)
class NormalizerConfig:
    """Architecture of a :class:`UnitNormalizer`."""

    num_units: int = 200
    """Units of the teacher tokenizer (the CTC blank is one more id, ``num_units``)."""
    backbone: str = "conv-transformer"
    """``conv-transformer`` (log-mel, trained from scratch) or ``hubert``."""
    n_mels: int = 80
    """Log-mel bins of the conv-transformer's input (25 ms window, 10 ms hop)."""
    dim: int = 192
    """Width of the conv-transformer."""
    layers: int = 3
    heads: int = 4
    ffn_dim: int = 768
    dropout: float = 0.1
    subsample: int = 4
    """The conv-transformer's two convolutions take the 10 ms mel frames to ``subsample`` x
    10 ms (2 or 4: 40 ms frames halve the Transformer's work)."""
    upsample: int = 4
    """CTC frames per encoder frame (4 x 40 ms frames: one CTC frame per 10 ms)."""
    hubert: dict[str, Any] = field(default_factory=dict)
    """The ``HubertConfig`` (as a dict) of the hubert backbone; empty for conv-transformer."""
    warps: list[float] = field(default_factory=lambda: [1.0])
    """Test-time vocal-tract-length normalization (conv-transformer only): an utterance is read
    under each of these spectral warp factors and the reading whose CTC frames are most
    confident (mean over frames of the best log-probability) is kept, as classic VTLN picks a
    speaker's warp by likelihood. ``[1.0]`` reads the audio as it is."""

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise TmtError(f"unknown normalizer backbone {self.backbone!r} (known: {', '.join(BACKBONES)})")
        if self.dim % self.heads:
            raise TmtError(f"normalizer dim {self.dim} is not a multiple of heads {self.heads}")
        if self.subsample not in (2, 4):
            raise TmtError(f"normalizer subsample must be 2 or 4, got {self.subsample}")
        if not self.warps or not all(0.5 <= w <= 2.0 for w in self.warps):
            raise TmtError(f"normalizer warps must be factors in [0.5, 2], got {self.warps}")
        if self.backbone == "hubert" and self.warps != [1.0]:
            raise TmtError("test-time warps act on the log-mel spectrum: the hubert backbone has none")
        if self.backbone == "hubert" and not self.hubert:
            raise TmtError("a hubert normalizer needs its HubertConfig (NormalizerConfig.hubert)")


class LogMel(nn.Module):
    """16 kHz waveforms → normalized log-mel (B, n_mels, T) at 100 frames/s, with optional
    vocal-tract-length perturbation (a frequency warp of the power spectrum) for training."""

    def __init__(self, n_mels: int) -> None:
        super().__init__()
        import torchaudio

        fb = torchaudio.functional.melscale_fbanks(201, 20.0, 7600.0, n_mels, SAMPLE_RATE, norm="slaney",
                                                   mel_scale="slaney")
        self.fbank: torch.Tensor
        self.window: torch.Tensor
        self.register_buffer("fbank", fb, persistent=False)  # (201, n_mels)
        self.register_buffer("window", torch.hann_window(400), persistent=False)

    def frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        return num_samples // 160 + 1

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor,
                warp: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``waves`` (B, N) zero-padded, ``lengths`` (B,) samples, ``warp`` (B,) VTLP factors
        or None → (features (B, n_mels, T), frames (B,))."""
        # zero padding (not stft's reflection) so that an utterance's frames do not depend on
        # what follows it in a padded batch: frame k covers samples k*160-200 .. k*160+200
        padded = F.pad(waves.float(), (200, 200))
        spec = torch.stft(padded, 400, 160, window=self.window, center=False, return_complex=True)
        power = spec.abs().square()  # (B, 201, T)
        if warp is not None:
            power = _warp_frequencies(power, warp)
        mel = torch.log(torch.matmul(power.transpose(1, 2), self.fbank) + 1e-6).transpose(1, 2)
        frames = self.frames(lengths)
        mask = torch.arange(mel.shape[-1], device=mel.device)[None, :] < frames[:, None]  # (B, T)
        # per-utterance mean/variance over its own frames: gain and a fixed channel colour vanish
        count = frames.clamp(min=1)[:, None].to(mel.dtype)
        mean = (mel * mask[:, None]).sum(-1) / count
        var = ((mel - mean[..., None]).square() * mask[:, None]).sum(-1) / count
        mel = (mel - mean[..., None]) / (var[..., None] + 1e-5).sqrt()
        return mel * mask[:, None], frames


def _warp_frequencies(power: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Vocal-tract-length perturbation: bin f takes the power at f / alpha below 0.8 of the
    band, and a straight line to Nyquist above it (Jaitly & Hinton 2013). (B, F, T)."""
    bins = power.shape[1]
    f = torch.arange(bins, device=power.device, dtype=power.dtype)[None, :]  # (1, F)
    a = alpha.to(power.dtype)[:, None]  # (B, 1)
    knee = 0.8 * (bins - 1) * torch.minimum(a, torch.ones_like(a)) / a
    top = bins - 1
    low = f / a
    high = top - (top - f) * (top - knee / a) / (top - knee)
    src = torch.where(f <= knee, low, high).clamp(0, top)  # (B, F) fractional source bins
    lo = src.floor().long()
    hi = (lo + 1).clamp(max=top)
    w = (src - lo.to(src.dtype))[..., None]
    take = lambda idx: torch.gather(power, 1, idx[..., None].expand(-1, -1, power.shape[-1]))  # noqa: E731
    return take(lo) * (1 - w) + take(hi) * w


class ConvTransformer(nn.Module):
    """Log-mel → (B, T / subsample, dim)."""

    def __init__(self, cfg: NormalizerConfig) -> None:
        super().__init__()
        self.features = LogMel(cfg.n_mels)
        self.conv1 = nn.Conv1d(cfg.n_mels, cfg.dim, 5, stride=cfg.subsample // 2, padding=2)
        self.conv2 = nn.Conv1d(cfg.dim, cfg.dim, 5, stride=2, padding=2)
        self.position = nn.Conv1d(cfg.dim, cfg.dim, 31, padding=15, groups=16)
        layer = nn.TransformerEncoderLayer(cfg.dim, cfg.heads, cfg.ffn_dim, cfg.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim)
        self.out_dim = cfg.dim
        self.subsample = cfg.subsample

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor,
                warp: torch.Tensor | None = None, spec_mask: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        mel, frames = self.features(waves, lengths, warp)  # (B, M, T)
        if spec_mask:
            mel = _spec_augment(mel)
        # every layer's output is zeroed past each utterance's end, so that a padded batch
        # computes what one-by-one calls do
        def masked(x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
            return x * (torch.arange(x.shape[-1], device=x.device)[None, :] < n[:, None])[:, None]

        n1 = frames if self.subsample == 2 else (frames + 1) // 2
        x = masked(F.gelu(self.conv1(mel)), n1)
        out_frames = (n1 + 1) // 2
        x = masked(F.gelu(self.conv2(x)), out_frames)  # (B, D, T2 = ceil(T / subsample))
        x = x + masked(F.gelu(self.position(x)), out_frames)
        x = x.transpose(1, 2)  # (B, T2, D)
        pad = torch.arange(x.shape[1], device=x.device)[None, :] >= out_frames[:, None]
        return self.norm(self.encoder(x, src_key_padding_mask=pad)), out_frames


def _spec_augment(mel: torch.Tensor, freq_masks: int = 2, freq_width: int = 12,
                  time_masks: int = 4, time_width: int = 8) -> torch.Tensor:
    """SpecAugment (Park et al. 2019): zero random bands of bins and spans of frames."""
    b, m, t = mel.shape
    keep = torch.ones_like(mel, dtype=torch.bool)
    for _ in range(freq_masks):
        w = torch.randint(0, freq_width + 1, (b, 1, 1), device=mel.device)
        s = (torch.rand(b, 1, 1, device=mel.device) * (m - w)).long()
        idx = torch.arange(m, device=mel.device)[None, :, None]
        keep &= ~((idx >= s) & (idx < s + w))
    for _ in range(time_masks):
        w = torch.randint(0, time_width + 1, (b, 1, 1), device=mel.device)
        s = (torch.rand(b, 1, 1, device=mel.device) * (t - w).clamp(min=1)).long()
        idx = torch.arange(t, device=mel.device)[None, None, :]
        keep &= ~((idx >= s) & (idx < s + w))
    return mel * keep


class HubertBackbone(nn.Module):
    """A ``transformers.HubertModel`` read at its last hidden layer (20 ms)."""

    def __init__(self, cfg: NormalizerConfig) -> None:
        super().__init__()
        from transformers import HubertConfig, HubertModel

        self.model = HubertModel(HubertConfig(**cfg.hubert))
        self.out_dim = int(self.model.config.hidden_size)

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor,
                warp: torch.Tensor | None = None, spec_mask: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        # (VTLP and SpecAugment act on spectra; HuBERT's own time masking covers the latter)
        mask = torch.arange(waves.shape[1], device=waves.device)[None, :] < lengths[:, None]
        waves = waves.float()
        if getattr(self.model.config, "feat_extract_norm", "group") == "layer":
            mean = (waves * mask).sum(1, keepdim=True) / lengths[:, None].clamp(min=1)
            var = ((waves - mean).square() * mask).sum(1, keepdim=True) / lengths[:, None].clamp(min=1)
            waves = (waves - mean) / (var + 1e-7).sqrt() * mask
        out = self.model(waves, attention_mask=mask.long()).last_hidden_state
        frames = torch.as_tensor(self.model._get_feat_extract_output_lengths(lengths)).long()  # type: ignore[arg-type]
        return out, frames.clamp(max=out.shape[1])


class UnitNormalizer(nn.Module):
    """Audio of any voice → the reference voice's deduplicated units (CTC, greedy decoding)."""

    def __init__(self, config: NormalizerConfig) -> None:
        super().__init__()
        self.config = config
        backbone: nn.Module = (ConvTransformer(config) if config.backbone == "conv-transformer"
                               else HubertBackbone(config))
        self.backbone = backbone
        width: int = backbone.out_dim  # type: ignore[assignment]
        self.head = nn.Linear(width, config.upsample * (config.num_units + 1))

    @property
    def blank(self) -> int:
        return self.config.num_units

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor, *, warp: torch.Tensor | None = None,
                spec_mask: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N) padded 16 kHz audio, (B,) lengths → CTC log-probs (B, T', K+1) and (B,) T'."""
        x, frames = self.backbone(waves, lengths, warp=warp, spec_mask=spec_mask)  # (B, T, D)
        b, t, _ = x.shape
        logits = self.head(x).reshape(b, t * self.config.upsample, self.config.num_units + 1)
        return logits.float().log_softmax(-1), frames * self.config.upsample

    @torch.inference_mode()
    def encode_batch(self, waves: list[torch.Tensor], batch_seconds: float = 120.0) -> list[torch.Tensor]:
        """16 kHz waveforms → deduplicated unit ids (1-D LongTensors on the CPU), in order.
        Utterances are batched by length, at most ``batch_seconds`` of padded audio a batch
        (counting every warp of ``config.warps`` as a copy)."""
        warps = torch.tensor(self.config.warps, device=self.device)
        copies = len(warps)
        order = sorted(range(len(waves)), key=lambda i: waves[i].numel())
        out: list[torch.Tensor] = [torch.zeros(0, dtype=torch.long)] * len(waves)
        start = 0
        while start < len(order):
            longest = max(waves[order[start]].numel(), 1)
            count = max(1, int(batch_seconds * SAMPLE_RATE // (longest * copies)))
            chunk = order[start : start + count]
            longest = max(waves[i].numel() for i in reversed(chunk))
            batch = torch.zeros(len(chunk), max(longest, 400), device=self.device)
            lengths = torch.tensor([waves[i].numel() for i in chunk], device=self.device)
            for row, i in enumerate(chunk):
                batch[row, : waves[i].numel()] = waves[i].to(self.device)
            if copies == 1 and self.config.warps[0] == 1.0:
                logp, frames = self(batch, lengths)
            else:  # every warp of every utterance in one batch: (copies * R, ...), warp-major
                logp, frames = self(batch.repeat(copies, 1), lengths.repeat(copies),
                                    warp=warps.repeat_interleave(len(chunk)))
                logp, frames = self._most_confident(logp, frames, copies)
            for row, i in enumerate(chunk):
                out[i] = greedy_units(logp[row, : int(frames[row])], self.blank)
            start += len(chunk)
        return out

    @staticmethod
    def _most_confident(logp: torch.Tensor, frames: torch.Tensor, copies: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(copies * R, T, K+1) readings → each utterance's most confident one, (R, T, K+1)."""
        rows = logp.shape[0] // copies
        valid = torch.arange(logp.shape[1], device=logp.device)[None, :] < frames[:, None]  # (C*R, T)
        confidence = (logp.max(-1).values * valid).sum(-1) / frames.clamp(min=1)  # (C*R,)
        best = confidence.view(copies, rows).argmax(0)  # (R,) the warp kept for each utterance
        pick = best * rows + torch.arange(rows, device=logp.device)
        return logp[pick], frames[pick]

    # -- files -----------------------------------------------------------------------------
    def save(self, directory: str | Path, half: bool = True) -> None:
        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: (v.half() if half and v.is_floating_point() else v).contiguous().cpu()
                 for k, v in self.state_dict().items()}
        save_file(state, str(out / "model.safetensors"))
        cfg = {**format_header(CONFIG_FORMAT), **asdict(self.config)}
        (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> UnitNormalizer:

        path = Path(directory)
        cfg_path = path / "config.json"
        try:
            cfg = json.loads(cfg_path.read_text())
        except (OSError, ValueError) as error:
            raise TmtError(f"cannot read the normalizer config {cfg_path}: {error}") from None
        cfg = check_format(cfg_path, cfg, CONFIG_FORMAT, required=True)
        try:
            model = cls(NormalizerConfig(**cfg))
            state = load_safetensors(path / "model.safetensors")
            model.load_state_dict({k: v.float() for k, v in state.items()})
        except (TypeError, ValueError, RuntimeError, OSError) as error:
            raise TmtError(f"cannot load the unit normalizer in {path}: {error}") from None
        return model.to(device).eval()


def greedy_units(log_probs: torch.Tensor, blank: int) -> torch.Tensor:
    """CTC greedy decoding of (T, K+1) log-probs: best id per frame, repeats merged, blanks
    dropped, then repeats merged again (units are deduplicated by definition)."""
    best = log_probs.argmax(-1)
    best = torch.unique_consecutive(best)
    best = best[best != blank]
    return torch.unique_consecutive(best).long().cpu()


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

