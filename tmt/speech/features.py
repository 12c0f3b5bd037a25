"""Dense frame features (50 frames/s at 16 kHz) that the k-means quantizer turns into units.

Two extractors share one small interface (:class:`FeatureExtractor`):

- :class:`HubertFeatures`: a ``transformers.HubertModel`` read at a configurable layer
  (paper: HuBERT-Base ls960, layer 6, loaded from a local HuggingFace directory).
- :class:`MfccFeatures`: 13 MFCCs + deltas + delta-deltas with per-utterance mean/variance
  normalization, on the same 20 ms / 25 ms frame grid as HuBERT.

Both map a waveform of ``n`` samples to ``1 + (n - 400) // 320`` frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from tmt.errors import TmtError

#: Samples per frame (20 ms) and receptive field of one frame (25 ms) at 16 kHz.
HOP = 320
WINDOW = 400


def num_frames(num_samples: int) -> int:
    """Frames produced for ``num_samples`` samples (HuBERT's conv stack and our MFCC agree)."""
    return max(0, 1 + (num_samples - WINDOW) // HOP)


class FeatureExtractor(Protocol):
    """Waveforms (16 kHz float) → frame features; ``forward_batch`` equals one-by-one calls."""

    dim: int
    kind: str

    def forward_batch(self, waves: list[torch.Tensor]) -> list[torch.Tensor]:
        """``waves[i]``: (T_i,) → features (num_frames(T_i), dim)."""
        ...

    def state_dict(self) -> dict[str, torch.Tensor]: ...

    def config(self) -> dict[str, Any]: ...


@dataclass(kw_only=True)
class MfccConfig:
    """MFCC features, 39-dim by default."""

    num_ceps: int = 13
    """Cepstral coefficients per frame (before deltas)."""
    num_mel_bins: int = 23
    """Mel filters the cepstra are computed from."""
    deltas: bool = True
    """Append first and second time derivatives (13 → 39 dims)."""
    cmvn: bool = True
    """Normalize each coefficient to zero mean / unit variance per utterance (removes much of
    the speaker and channel, which is what units should ignore)."""


class MfccFeatures:
    """Kaldi-compatible MFCCs (torchaudio) on the 20 ms HuBERT frame grid."""

    kind = "mfcc"

    def __init__(self, config: MfccConfig | None = None) -> None:
        self.cfg = config or MfccConfig()
        self.dim = self.cfg.num_ceps * (3 if self.cfg.deltas else 1)

    def __call__(self, wave: torch.Tensor) -> torch.Tensor:
        import torchaudio

        # kaldi.mfcc expects int16-scaled input for its energy floor to behave; (1, T) → (F, C)
        feats = torchaudio.compliance.kaldi.mfcc(
            wave.reshape(1, -1).float() * 32768.0,
            sample_frequency=16000.0,
            frame_length=WINDOW / 16.0,
            frame_shift=HOP / 16.0,
            num_ceps=self.cfg.num_ceps,
            num_mel_bins=self.cfg.num_mel_bins,
            dither=0.0,
            snip_edges=True,
        )
        if self.cfg.deltas:
            d1 = torchaudio.functional.compute_deltas(feats.T)  # (C, F)
            d2 = torchaudio.functional.compute_deltas(d1)
            feats = torch.cat([feats, d1.T, d2.T], dim=1)
        if self.cfg.cmvn:
            feats = (feats - feats.mean(0)) / (feats.std(0, unbiased=False) + 1e-5)
        return feats

    def forward_batch(self, waves: list[torch.Tensor]) -> list[torch.Tensor]:
        # MFCCs are cheap and per-utterance normalized: no padding, so batched == one-by-one.
        return [self(w) for w in waves]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self.cfg)}


class HubertFeatures:
    """Hidden states of layer ``layer`` of a HuggingFace ``HubertModel``.

    Layers above ``layer`` are dropped (they would be computed and thrown away). The conv
    front end runs per utterance: its GroupNorm (HuBERT-Base) normalizes over time, so a
    zero-padded batch would change the features; the transformer then runs batched with an
    attention mask, which keeps batched output equal to one-by-one output.
    """

    kind = "hubert"

    def __init__(self, model: Any, layer: int, normalize: bool = False) -> None:
        from transformers import HubertModel

        if not isinstance(model, HubertModel):
            raise TmtError(f"HubertFeatures needs a transformers.HubertModel, got {type(model)}")
        n_layers = len(model.encoder.layers)
        if not 1 <= layer <= n_layers:
            raise TmtError(f"HuBERT layer must be in 1..{n_layers}, got {layer}")
        model.encoder.layers = model.encoder.layers[:layer]
        model.config.num_hidden_layers = layer
        self.model = model.eval()
        self.layer = layer
        self.normalize = normalize
        self.dim = int(model.config.hidden_size)

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, layer: int = 6, normalize: bool = False
    ) -> HubertFeatures:
        """Load a local HuggingFace HuBERT directory (e.g. ``hubert-base-ls960``), layer 6."""
        from transformers import HubertModel

        path = Path(directory)
        if not (path / "config.json").exists():
            raise TmtError(f"not a HuggingFace model directory (no config.json): {path}")
        model = HubertModel.from_pretrained(str(path), local_files_only=True)
        return cls(model, layer=layer, normalize=normalize)

    @classmethod
    def from_config(cls, config: dict[str, Any], state: dict[str, torch.Tensor]) -> HubertFeatures:
        from transformers import HubertConfig, HubertModel

        hub_cfg = HubertConfig(**config["hubert"])
        model = HubertModel(hub_cfg)
        model.encoder.layers = model.encoder.layers[: config["layer"]]
        missing, unexpected = model.load_state_dict(
            {k: v.float() for k, v in state.items()}, strict=False
        )
        # masked_spec_embed is only used for training-time masking
        missing = [k for k in missing if k != "masked_spec_embed"]
        if missing or unexpected:
            raise TmtError(f"HuBERT weights do not match config (missing {missing[:3]})")
        return cls(model, layer=config["layer"], normalize=config.get("normalize", False))

    def at_precision(self, precision: str) -> HubertFeatures:
        """A copy whose linear layers and front-end convolutions (all but the first, whose
        single input channel makes it cheap) run at ``precision`` (see
        ``tmt.precision.WEIGHT_PRECISIONS``; ``int8``: about 2x faster on CPU, approximate).
        For inference only: its weights are not parameters any more (save the original)."""
        import copy

        from tmt.precision import Conv1dAt, LinearAt, check_weight_precision

        check_weight_precision(precision, self.device)
        model = copy.deepcopy(self.model)
        if precision != "fp32":
            for parent in [model.feature_projection, model.encoder]:
                for module in list(parent.modules()):
                    for name, child in list(module.named_children()):
                        if isinstance(child, torch.nn.Linear):
                            setattr(module, name, LinearAt(child, precision))
            for layer in model.feature_extractor.conv_layers[1:]:
                layer.conv = Conv1dAt(layer.conv, precision)
        return HubertFeatures(model, layer=self.layer, normalize=self.normalize)

    def to(self, device: torch.device | str) -> HubertFeatures:
        self.model.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def forward_batch(self, waves: list[torch.Tensor]) -> list[torch.Tensor]:
        model = self.model
        dev = self.device
        convs: list[torch.Tensor] = []
        for wave in waves:
            x = wave.to(dev).float().reshape(1, -1)
            if self.normalize:
                x = (x - x.mean()) / torch.sqrt(x.var() + 1e-7)
            convs.append(model.feature_extractor(x)[0].transpose(0, 1))  # (F_i, C)
        lengths = [c.shape[0] for c in convs]
        longest = max(lengths)
        padded = torch.stack([F.pad(c, (0, 0, 0, longest - c.shape[0])) for c in convs])
        mask = torch.arange(longest, device=dev)[None, :] < torch.tensor(lengths, device=dev)[:, None]
        hidden = model.feature_projection(padded)  # (B, F, D)
        out = model.encoder(
            hidden, attention_mask=mask, output_hidden_states=True, return_dict=True
        )
        states = out.hidden_states[self.layer]  # (B, F, D)
        return [states[i, : lengths[i]] for i in range(len(waves))]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.model.state_dict())

    def config(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "layer": self.layer,
            "normalize": self.normalize,
            "hubert": self.model.config.to_diff_dict(),
        }


def features_from_config(config: dict[str, Any], state: dict[str, torch.Tensor]) -> FeatureExtractor:
    """Rebuild an extractor saved by :meth:`FeatureExtractor.config` / ``state_dict``."""
    kind = config.get("kind")
    if kind == "mfcc":
        fields = {k: v for k, v in config.items() if k != "kind"}
        return MfccFeatures(MfccConfig(**fields))
    if kind == "hubert":
        return HubertFeatures.from_config(config, state)
    raise TmtError(f"unknown speech feature kind {kind!r} (expected 'mfcc' or 'hubert')")
