"""A loaded model: vocabulary + the three codecs + the translator.

On disk a bundle is a directory::

    bundle.json        {"name": ..., "codecs": {"speech": DIR, "image": DIR, "text": DIR}}
    translator/        config.json + vocab.json + model.safetensors

Codec directories are relative to the bundle (the default bundle points into the repo's
``tokenizers/``). Codecs load lazily: a speech→image request never loads the text codec,
the image encoder or the vocoder's weights it does not need.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tmt.errors import TmtError
from tmt.modality import MODALITIES, Codec, Modality
from tmt.translator.generate import DecodingOptions, generate
from tmt.translator.model import Translator, check_modalities

BUNDLE_FILE = "bundle.json"
REPO_ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = REPO_ROOT / "checkpoints"
DEFAULT_MODEL = "shapes"


CODECS = {
    Modality.SPEECH: ("tmt.speech.codec", "SpeechCodec"),
    Modality.IMAGE: ("tmt.image.codec", "ImageCodec"),
    Modality.TEXT: ("tmt.text.tokenizer", "TextTokenizer"),
}
"""The codec class of each modality, as (module, name): imported when first needed, so that a
text-only request never imports the image codec's diffusers."""


def load_codec(modality: Modality, directory: str | Path, device: str | torch.device = "cpu") -> Codec:
    """Load one codec directory through the :class:`Codec` protocol, its modules on ``device``."""
    import importlib

    directory = Path(directory)
    if not directory.is_dir():
        raise TmtError(f"{modality.value} codec directory not found: {directory}")
    module, name = CODECS[modality]
    codec_class: type[Codec] = getattr(importlib.import_module(module), name)
    return codec_class.load(directory, device)


@dataclass
class Translation:
    """One translated item: the target ids and the decoded output."""

    source: Modality
    target: Modality
    ids: torch.Tensor
    output: Any
    """``str`` for text, a 16 kHz float32 ``np.ndarray`` for speech, a ``PIL.Image`` for images."""


class Bundle:
    """What :func:`tmt.load_model` returns: ``translate()`` is encode → translate → decode."""

    def __init__(
        self,
        translator: Translator,
        codec_dirs: dict[Modality, Path],
        *,
        name: str = "",
        device: str | torch.device = "cpu",
    ) -> None:
        self.translator = translator
        self.codec_dirs = codec_dirs
        self.name = name
        self.device = torch.device(device)
        self._codecs: dict[Modality, Codec] = {}
        self.default_options = DecodingOptions()
        """Decoding defaults of this model (bundle.json ``decoding``), e.g. its length caps."""

    @classmethod
    def load(cls, name_or_path: str | Path = DEFAULT_MODEL, *, device: str = "cpu") -> Bundle:
        path = resolve_model(name_or_path)
        meta = read_bundle_meta(path)
        translator = Translator.load(path / "translator", device=device).eval()
        dirs = {Modality.parse(m): (path / d).resolve() for m, d in meta.get("codecs", {}).items()}
        bundle = cls(translator, dirs, name=str(meta.get("name", path.name)), device=device)
        try:
            bundle.default_options = DecodingOptions(**meta.get("decoding", {}))
        except TypeError as error:
            raise TmtError(f"invalid 'decoding' in {path / BUNDLE_FILE}: {error}") from None
        return bundle

    def codec(self, modality: Modality) -> Codec:
        if modality not in self._codecs:
            if modality not in self.codec_dirs:
                raise TmtError(f"model {self.name!r} has no {modality.value} codec")
            codec = load_codec(modality, self.codec_dirs[modality], self.device)
            expected = self.translator.vocab.size_of(modality)
            if codec.vocab_size != expected:
                raise TmtError(
                    f"{modality.value} codec at {self.codec_dirs[modality]} has {codec.vocab_size} "
                    f"ids but the translator's vocabulary expects {expected}"
                )
            self._codecs[modality] = codec
        return self._codecs[modality]

    def encode(self, modality: Modality, raw: Any) -> torch.Tensor:
        return self.codec(modality).encode(raw)

    def decode(self, modality: Modality, ids: torch.Tensor) -> Any:
        return self.codec(modality).decode(ids)

    @torch.inference_mode()
    def translate(
        self,
        inputs: Sequence[Any],
        source: Modality | str,
        target: Modality | str,
        options: DecodingOptions | None = None,
    ) -> list[Translation]:
        """Translate a batch of raw inputs (wav paths/arrays, image paths/PIL images, strings)."""
        source, target = Modality.parse(source), Modality.parse(target)
        check_modalities(source, target)
        if not inputs:
            return []
        encoded = [(source, self.encode(source, raw)) for raw in inputs]
        target_ids = generate(self.translator, encoded, target, options or self.default_options)
        return [
            Translation(source, target, ids, self.decode(target, ids)) for ids in target_ids
        ]

    def num_parameters(self) -> int:
        return self.translator.num_parameters()


def resolve_model(name_or_path: str | Path) -> Path:
    """A bundle directory, or the name of one under the repo's ``checkpoints/``."""
    path = Path(name_or_path)
    if (path / BUNDLE_FILE).is_file():
        return path
    named = CHECKPOINTS / str(name_or_path)
    if (named / BUNDLE_FILE).is_file():
        return named
    known = ", ".join(sorted(p.parent.name for p in CHECKPOINTS.glob(f"*/{BUNDLE_FILE}"))) or "none"
    raise TmtError(f"no model bundle at {name_or_path!r} (installed bundles: {known})")


def read_bundle_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads((path / BUNDLE_FILE).read_text())
    except json.JSONDecodeError as error:
        raise TmtError(f"invalid {path / BUNDLE_FILE}: {error}") from None
    if not isinstance(meta, dict):
        raise TmtError(f"invalid {path / BUNDLE_FILE}: expected an object")
    return meta


def write_bundle(
    directory: str | Path,
    translator: Translator,
    codec_dirs: Mapping[Modality, str | Path],
    *,
    name: str,
    fp16: bool = True,
    decoding: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Save ``translator`` and point at the codec directories (stored relative to the bundle)."""
    import os

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    translator.save(directory / "translator", fp16=fp16)
    rel = {
        m.value: os.path.relpath(Path(d).resolve(), directory.resolve())
        for m, d in codec_dirs.items()
    }
    meta = {"name": name, "codecs": rel, "decoding": decoding or {}, **(extra or {})}
    (directory / BUNDLE_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return directory


def pack_bundle(
    translator_dir: str | Path,
    out: str | Path,
    *,
    codecs_root: str | Path | None = None,
    name: str | None = None,
    decoding: dict[str, Any] | None = None,
) -> Bundle:
    """Write a bundle of a trained translator and the codec directories under ``codecs_root``
    (default: the repo's ``tokenizers/``), checked: the decoding settings are valid, and each
    codec's vocabulary matches the translator's. Returns the bundle, loaded back."""
    translator = Translator.load(translator_dir)
    root = Path(codecs_root) if codecs_root else REPO_ROOT / "tokenizers"
    dirs = {m: root / m.value for m in MODALITIES if (root / m.value).is_dir()}
    DecodingOptions(**(decoding or {}))  # refuses a bad value before anything is written
    path = write_bundle(out, translator, dirs, name=name or Path(out).name, decoding=decoding)
    bundle = Bundle.load(path)
    for m in dirs:
        bundle.codec(m)  # checks each codec's vocabulary against the translator's
    return bundle


def available_models() -> list[dict[str, Any]]:
    """Installed bundles under ``checkpoints/`` with their parameter counts."""
    out = []
    for meta_path in sorted(CHECKPOINTS.glob(f"*/{BUNDLE_FILE}")):
        path = meta_path.parent
        meta = read_bundle_meta(path)
        config = json.loads((path / "translator" / "config.json").read_text())
        vocab = json.loads((path / "translator" / "vocab.json").read_text())
        out.append(
            {
                "name": path.name,
                "path": str(path),
                "codecs": sorted(meta.get("codecs", {})),
                "config": config,
                "vocab_size": vocab.get("size"),
                "parameters": _count_parameters(path / "translator" / "model.safetensors"),
            }
        )
    return out


def _count_parameters(weights: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as f:
        return sum(math.prod(f.get_slice(key).get_shape()) for key in f.keys())


__all__ = ["Bundle", "Translation", "available_models", "load_codec", "pack_bundle", "write_bundle"]
