"""Where tmt's shipped files live (inside the installed package) and where user bundles go.

The default bundle, its codecs, the image judges and the demo inputs ship as package data under
``tmt/assets`` (about 20 MB), so a wheel or a git install works with no download. Other bundles
are found by path or by name under :func:`tmt_home`.
"""

from __future__ import annotations

import os
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
MODELS = ASSETS / "models"
"""Built-in model bundles (``tmt/assets/models/<name>/bundle.json``)."""
CODECS = ASSETS / "codecs"
"""The default bundle's codecs: ``speech/``, ``image/``, ``text/``."""
JUDGES = ASSETS / "judges"
"""The tmt-shapes evaluation judges (measuring instruments, not part of a model)."""
EXAMPLES = ASSETS / "examples"
"""One input per modality for ``tmt demo``."""


def tmt_home() -> Path:
    """The user's bundle directory: ``$TMT_HOME``, else ``$XDG_CACHE_HOME/tmt``, else
    ``~/.cache/tmt``. ``tmt.load_model("NAME")`` looks for ``NAME/bundle.json`` here."""
    if os.environ.get("TMT_HOME"):
        return Path(os.environ["TMT_HOME"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "tmt"
