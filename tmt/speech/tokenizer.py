"""SpeechTokenizer: audio → deduplicated discrete units (K=200 by default).

``features`` (HuBERT layer or MFCC) → k-means ids at 50 frames/s → consecutive duplicates
merged; the run lengths (durations, in 20 ms frames) are kept for the vocoder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tmt.errors import TmtError
from tmt.files import format_header, load_safetensors, read_config
from tmt.paths import CODECS
from tmt.speech.audio import SAMPLE_RATE, load_audio, prepare_wave
from tmt.speech.features import HOP, WINDOW, FeatureExtractor, HubertFeatures, features_from_config
from tmt.speech.quantizer import KMeansQuantizer

AudioInput = str | Path | bytes | np.ndarray | torch.Tensor

#: The built-in speech codec (``tmt/assets/codecs/speech`` in the package).
DEFAULT_DIR = CODECS / "speech"
"""Default shipped speech codec; its tokenizer is in the ``tokenizer/`` subdirectory."""

CONFIG_FORMAT = "tmt-speech-tokenizer"


def as_wave(raw: AudioInput) -> np.ndarray:
    """Any accepted input → validated 16 kHz mono float32 (arrays are taken as 16 kHz)."""
    if isinstance(raw, (str, Path, bytes)):
        return load_audio(raw)
    if isinstance(raw, torch.Tensor):
        raw = raw.detach().cpu().numpy()
    if isinstance(raw, np.ndarray):
        return prepare_wave(raw, SAMPLE_RATE, what="waveform array")
    raise TmtError(f"speech input must be a path, bytes or a 16 kHz waveform, not {type(raw).__name__}")


def deduplicate(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(F,) frame units → (units, durations): consecutive duplicates merged, run lengths kept."""
    units, counts = torch.unique_consecutive(frames, return_counts=True)
    return units.long(), counts.long()


class SpeechTokenizer:
    """Audio → unit ids. Inject the parts; :meth:`load` / :meth:`by_name` are sugar.

    ``chunk_seconds`` bounds memory on long inputs: audio is cut into chunks whose frames
    tile the frame grid exactly (chunks overlap by the 80 samples a frame reaches past its
    hop), features are computed per chunk and concatenated.
    """

    def __init__(
        self,
        features: FeatureExtractor,
        quantizer: KMeansQuantizer,
        *,
        chunk_seconds: float = 30.0,
        batch_size: int = 8,
    ) -> None:
        if quantizer.dim != features.dim:
            raise TmtError(f"k-means dim {quantizer.dim} != feature dim {features.dim}")
        self.features = features
        self.quantizer = quantizer
        self.chunk_frames = max(1, int(chunk_seconds * SAMPLE_RATE) // HOP)
        self.batch_size = batch_size

    @property
    def vocab_size(self) -> int:
        return self.quantizer.k

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    # -- frames ----------------------------------------------------------------------------
    def _chunks(self, wave: np.ndarray) -> list[torch.Tensor]:
        step = self.chunk_frames * HOP
        span = step + (WINDOW - HOP)
        t = torch.from_numpy(wave)
        pieces = [t[s : s + span] for s in range(0, max(1, len(wave) - (WINDOW - HOP)), step)]
        return [p for p in pieces if p.numel() >= WINDOW]

    def frame_features(self, waves: list[np.ndarray]) -> list[torch.Tensor]:
        """Validated waves → per-wave (F, D) features, computed in batches of chunks."""
        owners: list[int] = []
        chunks: list[torch.Tensor] = []
        for i, wave in enumerate(waves):
            for c in self._chunks(wave):
                owners.append(i)
                chunks.append(c)
        feats: list[torch.Tensor] = []
        with torch.inference_mode():
            # sort by length so that a batch holds similar lengths (less padding)
            order = sorted(range(len(chunks)), key=lambda j: chunks[j].numel())
            out: dict[int, torch.Tensor] = {}
            for b in range(0, len(order), self.batch_size):
                idx = order[b : b + self.batch_size]
                for j, f in zip(idx, self.features.forward_batch([chunks[j] for j in idx])):
                    out[j] = f.float().cpu()
            feats = [out[j] for j in range(len(chunks))]
        per_wave: list[list[torch.Tensor]] = [[] for _ in waves]
        for i, f in zip(owners, feats):
            per_wave[i].append(f)
        return [torch.cat(p) for p in per_wave]

    def frame_units(self, raw: AudioInput) -> torch.Tensor:
        """Units at 50 frames/s, before deduplication."""
        return self.quantizer.assign(self.frame_features([as_wave(raw)])[0])

    # -- public ----------------------------------------------------------------------------
    def encode_with_durations(self, raw: AudioInput) -> tuple[torch.Tensor, torch.Tensor]:
        """(units, durations): deduplicated ids in [0, K) and their lengths in 20 ms frames."""
        return deduplicate(self.frame_units(raw))

    def encode(self, raw: AudioInput) -> torch.Tensor:
        """Audio (path, bytes or 16 kHz array) → 1-D LongTensor of deduplicated unit ids."""
        return self.encode_with_durations(raw)[0]

    def encode_batch_with_durations(
        self, raws: Sequence[AudioInput]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        waves = [as_wave(r) for r in raws]
        return [deduplicate(self.quantizer.assign(f)) for f in self.frame_features(waves)]

    def encode_batch(self, raws: Sequence[AudioInput]) -> list[torch.Tensor]:
        """Batched :meth:`encode`; equal to encoding one by one."""
        return [u for u, _ in self.encode_batch_with_durations(raws)]

    # -- persistence -----------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {
            **format_header(CONFIG_FORMAT),
            "sample_rate": SAMPLE_RATE,
            "vocab_size": self.vocab_size,
            "deduplicate": True,
            "chunk_seconds": self.chunk_frames * HOP / SAMPLE_RATE,
            "features": self.features.config(),
        }

    def save(self, directory: str | Path, half: bool = True) -> None:
        """Write ``config.json`` + ``model.safetensors`` (feature weights fp16 when ``half``)."""
        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        dtype = torch.float16 if half else torch.float32
        tensors = {f"features.{k}": v.detach().to(dtype).contiguous() for k, v in self.features.state_dict().items()}
        tensors["quantizer.centroids"] = self.quantizer.state_dict()["centroids"]
        save_file(tensors, str(out / "model.safetensors"))
        (out / "config.json").write_text(json.dumps(self.config(), indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> SpeechTokenizer:
        """Rebuild a tokenizer written by :meth:`save` (weights back to fp32)."""

        path = Path(directory)
        cfg_path = path / "config.json"
        if not cfg_path.exists() or not (path / "model.safetensors").exists():
            raise TmtError(f"not a speech tokenizer directory (config.json + model.safetensors): {path}")
        cfg = read_config(cfg_path, CONFIG_FORMAT, required=True)
        tensors = load_safetensors(path / "model.safetensors")
        state = {k[len("features.") :]: v for k, v in tensors.items() if k.startswith("features.")}
        features = features_from_config(cfg["features"], state)
        if isinstance(features, HubertFeatures):
            features.to(device)
        return cls(
            features,
            KMeansQuantizer(tensors["quantizer.centroids"]),
            chunk_seconds=float(cfg.get("chunk_seconds", 30.0)),
        )

    @classmethod
    def by_name(cls, name: str = "default", *, trust_pickle: bool = False,
                **paths: str | Path) -> SpeechTokenizer:
        """``"default"``: the shipped tokenizer; ``"hubert_base_ls960_l6"``: the paper setting,
        from ``hubert_dir=`` (local HF HuBERT-Base) and ``km_path=`` (the k-means as
        ``.safetensors``, or a GSLM ``km.bin`` pickle with ``trust_pickle=True``)."""
        if name == "default":
            return cls.load(paths.get("directory", DEFAULT_DIR / "tokenizer"))
        if name == "hubert_base_ls960_l6":
            if "hubert_dir" not in paths or "km_path" not in paths:
                raise TmtError("hubert_base_ls960_l6 needs hubert_dir=... and km_path=...")
            features = HubertFeatures.from_pretrained(paths["hubert_dir"], layer=6)
            return cls(features, KMeansQuantizer.from_sklearn(paths["km_path"], trust_pickle=trust_pickle))
        raise TmtError(f"unknown speech tokenizer {name!r} (expected 'default' or 'hubert_base_ls960_l6')")
