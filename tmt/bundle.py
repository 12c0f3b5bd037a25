"""A loaded model: vocabulary + the three codecs + the translator.

On disk a bundle is a directory::

    bundle.json        {"name": ..., "codecs": {"speech": DIR, "image": DIR, "text": DIR}}
    translator/        config.json + vocab.json + model.safetensors

Codec directories are relative to the bundle (the built-in bundle points into the package's
``tmt/assets/codecs/``). A bundle is found by path, by name under ``$TMT_HOME`` (default
``~/.cache/tmt``, :func:`tmt.paths.tmt_home`), or by name among the built-in ones
(``tmt/assets/models/``). Codecs load lazily: a speech→image request never loads the text codec,
the image encoder or the vocoder's weights it does not need.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tmt.errors import TmtError
from tmt.files import format_header, read_config
from tmt.modality import MODALITIES, Codec, Modality
from tmt.paths import CODECS as SHIPPED_CODECS
from tmt.paths import MODELS, tmt_home
from tmt.precision import check_weight_precision
from tmt.translator.generate import DecodingOptions, fast_decoder, generate_scored
from tmt.translator.model import Translator, check_modalities

BUNDLE_FILE = "bundle.json"
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


SUFFIXES = {Modality.TEXT: (".txt",), Modality.SPEECH: (".wav", ".flac"), Modality.IMAGE: (".png", ".jpg", ".jpeg")}
"""File types :func:`save_output` writes, per target modality."""


def check_suffix(target: Modality, path: Path) -> None:
    """Refuse a file name whose suffix is not one :func:`save_output` writes for ``target``."""
    suffixes = SUFFIXES[target]
    if path.suffix.lower() not in suffixes:
        raise TmtError(f"cannot save {target.value} as {path.name!r}: use {' or '.join(suffixes)}")


def save_output(target: Modality, output: Any, path: str | Path) -> Path:
    """Write one decoded output: ``.txt`` for text, ``.wav``/``.flac`` for speech (16 kHz,
    16-bit), ``.png``/``.jpg`` for an image. Creates missing parent folders; returns the path."""
    path = Path(path)
    check_suffix(target, path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if target is Modality.SPEECH:
            from tmt.speech.audio import save_audio

            save_audio(path, output)
        elif target is Modality.IMAGE:
            output.save(path)
        else:
            path.write_text(f"{output}\n")
    except OSError as error:
        raise TmtError(f"cannot write {path}: {error.strerror or error}") from None
    return path


@dataclass
class Translation:
    """One translated item: the target ids, the decoded output and the hypothesis score."""

    source: Modality
    target: Modality
    ids: torch.Tensor
    output: Any
    """``str`` for text, a 16 kHz float32 ``np.ndarray`` for speech, a ``PIL.Image`` for images."""
    score: float = math.nan
    """The hypothesis score (higher is better): beam search's length-normalised log-probability,
    or the reranking score when the bundle reranks (see ``DecodingOptions.rerank``)."""

    def save(self, path: str | Path) -> Path:
        """Write the output (:func:`save_output`: ``.txt``, ``.wav``/``.flac``, ``.png``/``.jpg``
        by modality); creates missing parent folders; returns the path."""
        return save_output(self.target, self.output, path)


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
        self.path: Path | None = None
        """The bundle directory it was loaded from (None when built in memory)."""

    def card(self) -> str:
        """The model card's first paragraph (``README.md`` of the bundle), as plain text; ""
        without one."""
        readme = self.path / "README.md" if self.path is not None else None
        if readme is None or not readme.is_file():
            return ""
        paragraphs = readme.read_text(encoding="utf-8").split("\n\n")
        text = next((p for p in paragraphs if p.strip() and not p.lstrip().startswith("#")), "")
        text = re.sub(r"^\*\*[^*]{1,40}\.\*\*\s*", "", text.strip())  # a "**What it is.**" label
        return " ".join(text.replace("**", "").replace("`", "").split())

    @classmethod
    def load(cls, name_or_path: str | Path = DEFAULT_MODEL, *, device: str = "cpu",
             precision: str | None = None) -> Bundle:
        """Load a bundle directory (or name); ``precision`` (``fp32``, ``int8``, ``bf16``; default:
        the bundle's own, else fp32) sets the decoder's weights for beam search and greedy
        decoding, converted here once (see ``DecodingOptions.precision``)."""
        if precision is not None:
            check_weight_precision(precision, device)
        path = resolve_model(name_or_path)
        meta = read_bundle_meta(path)
        translator = Translator.load(path / "translator", device=device).eval()
        dirs = {Modality.parse(m): (path / d).resolve() for m, d in meta.get("codecs", {}).items()}
        bundle = cls(translator, dirs, name=str(meta.get("name", path.name)), device=device)
        bundle.path = path
        try:
            bundle.default_options = DecodingOptions(**meta.get("decoding", {}))
        except TypeError as error:
            raise TmtError(f"invalid 'decoding' in {path / BUNDLE_FILE}: {error}") from None
        if precision is not None:
            bundle.default_options = dataclasses.replace(bundle.default_options, precision=precision)
        fast_decoder(translator, bundle.default_options.precision)  # int8 / bf16: convert now
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
        """Raw input (wav path/array, image path/PIL image, string) → codec-local ids."""
        return self.codec(modality).encode(raw)

    def decode(self, modality: Modality, ids: torch.Tensor) -> Any:
        """Codec-local ids → text, a 16 kHz waveform or a PIL image."""
        return self.codec(modality).decode(ids)

    def _check_words(self, text: Any) -> None:
        """Refuse text of which the model knows no word; name the unknown words of the rest."""
        unknown_words = getattr(self.codec(Modality.TEXT), "unknown_words", None)
        if unknown_words is None or not isinstance(text, str):
            return
        unknown = unknown_words(text)
        from tmt.text.normalize import normalize_text

        if unknown and len(unknown) >= len(normalize_text(text).split()):
            raise TmtError(f"the model knows none of the words of {text[:60]!r}: it would "
                           "translate only [UNK]s")
        if unknown:
            import logging

            logging.getLogger("tmt").warning(
                "tmt: warning: unknown words read as [UNK]: %s", ", ".join(dict.fromkeys(unknown)))

    def options(self, options: DecodingOptions | Mapping[str, Any] | None = None,
                **overrides: Any) -> DecodingOptions:
        """This bundle's decoding defaults with the caller's settings on top.

        ``options`` is a mapping of :class:`DecodingOptions` fields, or a ``DecodingOptions``
        whose fields that differ from the class defaults count as set; ``overrides`` are fields
        by keyword. Settings not given keep the bundle's (its length caps, reranking)."""
        changes: dict[str, Any] = {}
        if isinstance(options, DecodingOptions):
            plain = DecodingOptions()
            changes = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
                       if getattr(options, f.name) != getattr(plain, f.name)}
        elif options is not None:
            changes = dict(options)
        changes.update(overrides)
        known = {f.name for f in dataclasses.fields(DecodingOptions)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TmtError(f"unknown decoding option(s) {', '.join(unknown)}; known: "
                           f"{', '.join(sorted(known))}")
        return dataclasses.replace(self.default_options, **changes)

    @torch.inference_mode()
    def translate(
        self,
        inputs: Any,
        source: Modality | str,
        target: Modality | str,
        options: DecodingOptions | Mapping[str, Any] | None = None,
        *,
        batch_size: int = 16,
        **overrides: Any,
    ) -> Any:
        """Translate raw inputs (wav paths/arrays, image paths/PIL images, strings).

        ``inputs`` is one item (returns one :class:`Translation`) or a list or tuple of items
        (returns a list). ``options`` and keyword ``overrides`` (e.g. ``beam_size=1``) are merged
        over the bundle's defaults (:meth:`options`). Inputs are decoded ``batch_size`` at a time.

        >>> model.translate("a small red circle on the left", "text", "image").save("c.png")
        """
        source, target = Modality.parse(source), Modality.parse(target)
        check_modalities(source, target)
        single = not isinstance(inputs, (list, tuple))
        items = [inputs] if single else list(inputs)
        decoding = self.options(options, **overrides)
        if not items:
            return []
        encoded = [self.prepare(source, raw) for raw in items]
        results = self.translate_ids(source, encoded, target, decoding, batch_size=batch_size)
        return results[0] if single else results

    def prepare(self, source: Modality | str, raw: Any) -> torch.Tensor:
        """One raw input → the codec-local ids the translator reads (:meth:`translate`'s first
        step; text of which the model knows no word is refused here)."""
        source = Modality.parse(source)
        if source is Modality.TEXT:
            self._check_words(raw)
        return self.encode(source, raw)

    @torch.inference_mode()
    def translate_ids(
        self, source: Modality, encoded: Sequence[torch.Tensor], target: Modality,
        options: DecodingOptions, *, batch_size: int = 16,
    ) -> list[Translation]:
        """Inputs already :meth:`prepare`d → their translations, decoded ``batch_size`` at a
        time with ``options`` as given (not merged: see :meth:`options`)."""
        scored = generate_scored(self.translator, [(source, ids) for ids in encoded], target,
                                 options, batch_size=batch_size)
        return [Translation(source, target, ids, self.decode(target, ids), score)
                for ids, score in scored]

    def num_parameters(self) -> int:
        return self.translator.num_parameters()


def model_roots() -> list[tuple[str, Path]]:
    """Where bundles are looked up by name, first match wins: the user's ``$TMT_HOME``, then the
    bundles built into the package."""
    return [("user", tmt_home()), ("built-in", MODELS)]


def resolve_model(name_or_path: str | Path) -> Path:
    """A bundle directory, or the name of one under ``$TMT_HOME`` or among the built-in ones."""
    path = Path(name_or_path).expanduser()
    if (path / BUNDLE_FILE).is_file():
        return path
    if path.exists():
        raise TmtError(f"{path} is not a model bundle (it has no {BUNDLE_FILE})")
    for _, root in model_roots():
        named = root / str(name_or_path)
        if (named / BUNDLE_FILE).is_file():
            return named
    known = ", ".join(sorted({m["name"] for m in available_models(count=False)})) or "none"
    raise TmtError(f"no model bundle at {name_or_path!r} (known by name: {known}; user bundles "
                   f"go in {tmt_home()}, or set TMT_HOME)")


def read_bundle_meta(path: Path) -> dict[str, Any]:
    return read_config(path / BUNDLE_FILE, "tmt-bundle")


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
    meta = {**format_header("tmt-bundle"), "name": name, "codecs": rel, "decoding": decoding or {}, **(extra or {})}
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
    (default: the built-in codecs, ``tmt/assets/codecs/``), checked: the decoding settings are valid, and each
    codec's vocabulary matches the translator's. Returns the bundle, loaded back."""
    translator = Translator.load(translator_dir)
    root = Path(codecs_root) if codecs_root else SHIPPED_CODECS
    dirs = {m: root / m.value for m in MODALITIES if (root / m.value).is_dir()}
    DecodingOptions(**(decoding or {}))  # refuses a bad value before anything is written
    path = write_bundle(out, translator, dirs, name=name or Path(out).name, decoding=decoding)
    bundle = Bundle.load(path)
    for m in dirs:
        bundle.codec(m)  # checks each codec's vocabulary against the translator's
    return bundle


def available_models(*, count: bool = True) -> list[dict[str, Any]]:
    """Bundles known by name, user ones (``$TMT_HOME``) first, then the built-in ones, each with
    its ``source`` ("user" / "built-in"), path, codecs, vocabulary size and (``count``)
    parameter count. A user bundle hides a built-in one of the same name."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for source, root in model_roots():
        for meta_path in sorted(root.glob(f"*/{BUNDLE_FILE}")):
            path = meta_path.parent
            entry: dict[str, Any] = {"name": path.name, "source": source, "path": str(path),
                                     "shadowed": path.name in seen}
            seen.add(path.name)
            if count:
                try:
                    meta = read_bundle_meta(path)
                    translator = path / "translator"
                    entry.update(
                        codecs=sorted(meta.get("codecs", {})),
                        config=json.loads((translator / "config.json").read_text()),
                        vocab_size=json.loads((translator / "vocab.json").read_text()).get("size"),
                        parameters=_count_parameters(translator / "model.safetensors"),
                    )
                except (OSError, ValueError, TmtError) as error:
                    entry["error"] = str(error).splitlines()[0]
            out.append(entry)
    return out


def _count_parameters(weights: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as f:
        return sum(math.prod(f.get_slice(key).get_shape()) for key in f.keys())


__all__ = [
    "Bundle", "Translation", "available_models", "load_codec", "model_roots", "pack_bundle",
    "resolve_model", "write_bundle",
]
