"""tmt: tri-modal translation between speech, images and text as discrete-token languages.

>>> import tmt
>>> model = tmt.load_model()                      # the bundled tmt-shapes model
>>> model.translate(["a small red circle on the left"], "text", "image")[0].output  # PIL image

Heavy modules (torch, fairseq2) load on first use, so ``import tmt`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tmt.errors import TmtError
from tmt.modality import DIRECTIONS, MODALITIES, Modality

if TYPE_CHECKING:
    from tmt.bundle import Bundle, Translation
    from tmt.translator.generate import DecodingOptions

__version__ = "0.1.0"


def load_model(name_or_path: str = "shapes", *, device: str = "cpu") -> Bundle:
    """Load a model bundle by name (under ``checkpoints/``) or path."""
    from tmt.bundle import Bundle

    return Bundle.load(name_or_path, device=device)


def translate(
    inputs: list[Any],
    source: str | Modality,
    target: str | Modality,
    *,
    model: str = "shapes",
    options: DecodingOptions | None = None,
) -> list[Translation]:
    """One-shot helper: ``load_model(model).translate(inputs, source, target, options)``."""
    return load_model(model).translate(inputs, source, target, options)


def available_models() -> list[dict[str, Any]]:
    """Installed bundles with their parameter counts."""
    from tmt.bundle import available_models as _available

    return _available()


__all__ = [
    "DIRECTIONS",
    "MODALITIES",
    "Modality",
    "TmtError",
    "__version__",
    "available_models",
    "load_model",
    "translate",
]
