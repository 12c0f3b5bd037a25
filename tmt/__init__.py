"""tmt: tri-modal translation between speech, images and text as discrete-token languages.

>>> import tmt
>>> model = tmt.load_model()                    # the built-in tmt-shapes model
>>> result = model.translate("a small red circle on the left", "text", "image")
>>> result.save("circle.png")                   # result.output is a PIL image
>>> [r.output for r in model.translate(["speech.wav"], "speech", "text", beam_size=1)]

Heavy modules (torch, fairseq2) load on first use, so ``import tmt`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tmt.errors import TmtError
from tmt.modality import DIRECTIONS, MODALITIES, Modality

if TYPE_CHECKING:
    from tmt.bundle import Bundle, Translation
    from tmt.translator.generate import DecodingOptions

from tmt.version import __version__


def load_model(name_or_path: str = "shapes", *, device: str = "cpu",
               precision: str | None = None) -> Bundle:
    """Load a model bundle: a directory, or a name under ``$TMT_HOME`` (default
    ``~/.cache/tmt``) or among the built-in bundles. Every part (translator, codecs, speech
    features, vocoder) runs on ``device`` ("cpu", "cuda", "cuda:1", ...). ``precision``: the
    translator's decoding weights, ``fp32`` (default, exact), ``int8`` (CPU; about 3x faster
    beam search, approximate) or ``bf16`` (fast only with native bf16, e.g. recent GPUs)."""
    from tmt.bundle import Bundle

    return Bundle.load(name_or_path, device=device, precision=precision)


def translate(
    inputs: Any,
    source: str | Modality,
    target: str | Modality,
    *,
    model: str = "shapes",
    device: str = "cpu",
    options: DecodingOptions | dict[str, Any] | None = None,
    **overrides: Any,
) -> Any:
    """One-shot helper: ``load_model(model, device=device).translate(inputs, source, target,
    options, **overrides)``; one item gives one :class:`Translation`, a list gives a list."""
    return load_model(model, device=device).translate(inputs, source, target, options, **overrides)


def available_models() -> list[dict[str, Any]]:
    """Bundles known by name (``$TMT_HOME`` and built-in) with their parameter counts."""
    from tmt.bundle import available_models as _available

    return _available()


def __getattr__(name: str) -> Any:
    # DecodingOptions, Bundle and Translation import torch and fairseq2: load them when asked
    if name == "DecodingOptions":
        from tmt.translator.generate import DecodingOptions

        return DecodingOptions
    if name in ("Bundle", "Translation"):
        import tmt.bundle

        return getattr(tmt.bundle, name)
    raise AttributeError(f"module 'tmt' has no attribute {name!r}")


__all__ = [
    "DIRECTIONS",
    "MODALITIES",
    "Bundle",
    "DecodingOptions",
    "Modality",
    "TmtError",
    "Translation",
    "__version__",
    "available_models",
    "load_model",
    "translate",
]
