"""Foreign speech checkpoints → tmt modules (key-name mapping only; no model code here).

- fairseq / speech-resynthesis CodeHiFiGAN: a ``config.json`` plus a ``torch.save`` file
  whose ``"generator"`` entry is the generator state dict with fairseq names
  (``dict.``, ``dur_predictor.conv1.0.``, ``conv_pre.``, ``ups.N.``, ``resblocks.N.convs1.M.``,
  ``conv_post.``; weight-normed convs as ``weight_g`` / ``weight_v``).
- HuBERT: HuggingFace directories load directly (``HubertFeatures.from_pretrained``);
  GSLM k-means through ``KMeansQuantizer.from_sklearn``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from tmt.errors import TmtError
from tmt.speech.hifigan import CodeHiFiGAN, CodeHiFiGANConfig, CodeHiFiGANVocoder

_PREFIXES = (
    ("dict.", "embed."),
    ("dur_predictor.conv1.0.", "duration.conv1."),
    ("dur_predictor.ln1.", "duration.norm1."),
    ("dur_predictor.conv2.0.", "duration.conv2."),
    ("dur_predictor.ln2.", "duration.norm2."),
    ("dur_predictor.proj.", "duration.proj."),
    ("conv_pre.", "pre."),
    ("ups.", "upsamples."),
    ("resblocks.", "blocks."),
    ("conv_post.", "post."),
)


def config_from_fairseq(cfg: dict[str, Any]) -> CodeHiFiGANConfig:
    """fairseq CodeHiFiGAN ``config.json`` → :class:`CodeHiFiGANConfig` (code-only vocoders)."""
    for unsupported in ("multispkr", "f0", "embedder_params", "multistyle"):
        if cfg.get(unsupported):
            raise TmtError(f"CodeHiFiGAN config uses {unsupported!r}, which tmt does not support")
    if str(cfg.get("resblock", "1")) != "1":
        raise TmtError(f"only HiFi-GAN resblock type 1 is supported, got {cfg.get('resblock')!r}")
    try:
        dur = cfg.get("dur_predictor_params") or {}
        return CodeHiFiGANConfig(
            num_embeddings=int(cfg["num_embeddings"]),
            embedding_dim=int(cfg["embedding_dim"]),
            model_in_dim=int(cfg.get("model_in_dim", 80)),
            upsample_rates=tuple(cfg["upsample_rates"]),
            upsample_kernel_sizes=tuple(cfg["upsample_kernel_sizes"]),
            upsample_initial_channel=int(cfg["upsample_initial_channel"]),
            resblock_kernel_sizes=tuple(cfg["resblock_kernel_sizes"]),
            resblock_dilation_sizes=tuple(tuple(d) for d in cfg["resblock_dilation_sizes"]),
            duration_predictor=bool(dur),
            var_pred_hidden_dim=int(dur.get("var_pred_hidden_dim", 128)),
            var_pred_kernel_size=int(dur.get("var_pred_kernel_size", 3)),
            var_pred_dropout=float(dur.get("var_pred_dropout", 0.5)),
            sampling_rate=int(cfg.get("sampling_rate", 16000)),
        )
    except KeyError as missing:
        raise TmtError(f"CodeHiFiGAN config.json lacks {missing}") from None


def convert_fairseq_code_hifigan(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a fairseq CodeHiFiGAN generator state dict to :class:`CodeHiFiGAN` names."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = key
        for old, ours in _PREFIXES:
            if key.startswith(old):
                new = ours + key[len(old) :]
                break
        else:
            raise TmtError(f"unexpected key in CodeHiFiGAN generator: {key}")
        # old torch weight_norm (weight_g, weight_v) → parametrizations (original0, original1)
        new = re.sub(r"\.weight_g$", ".parametrizations.weight.original0", new)
        new = re.sub(r"\.weight_v$", ".parametrizations.weight.original1", new)
        out[new] = value
    return out


def _fill_removed_weight_norm(state: dict[str, torch.Tensor], expected: set[str]) -> dict[str, torch.Tensor]:
    """Checkpoints saved after ``remove_weight_norm`` hold plain ``.weight``: split it into g, v."""
    for key in [k for k in state if k.endswith(".weight")]:
        base = key[: -len(".weight")]
        g_key, v_key = f"{base}.parametrizations.weight.original0", f"{base}.parametrizations.weight.original1"
        if g_key in expected and g_key not in state:
            w = state.pop(key)
            state[g_key] = w.norm(dim=tuple(range(1, w.dim())), keepdim=True)
            state[v_key] = w
    return state


def load_fairseq_code_hifigan(
    checkpoint: str | Path, config: str | Path, device: str | torch.device = "cpu"
) -> CodeHiFiGANVocoder:
    """Load a fairseq / speech-resynthesis unit vocoder (``g_XXXXXXXX`` + ``config.json``)."""
    ckpt, cfg_path = Path(checkpoint), Path(config)
    for p in (ckpt, cfg_path):
        if not p.exists():
            raise TmtError(f"CodeHiFiGAN file not found: {p}")
    cfg = config_from_fairseq(json.loads(cfg_path.read_text()))
    raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    if not isinstance(raw, dict) or "generator" not in raw:
        raise TmtError(f"{ckpt} is not a CodeHiFiGAN checkpoint (no 'generator' entry)")
    model = CodeHiFiGAN(cfg)
    expected = set(model.state_dict())
    state = _fill_removed_weight_norm(convert_fairseq_code_hifigan(raw["generator"]), expected)
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        raise TmtError(
            f"CodeHiFiGAN checkpoint does not match its config: missing {sorted(missing)[:3]}, "
            f"unexpected {sorted(unexpected)[:3]}"
        )
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return CodeHiFiGANVocoder(model.to(device))
