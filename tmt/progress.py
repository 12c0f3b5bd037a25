"""Whether a progress bar shows: ``tmt --quiet`` and ``TQDM_DISABLE=1`` turn every bar off."""

from __future__ import annotations

import os


def bar_off(off: bool = False) -> bool:
    """The ``disable=`` of a tqdm bar: True when the caller turns it off or the environment
    does (``TQDM_DISABLE`` set to anything but empty, 0 or false). tqdm reads the variable
    itself only as a default, which an explicit ``disable=`` overrides."""
    return off or os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false")
