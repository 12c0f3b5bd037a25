"""Atomic file writing: a file is replaced whole or not at all.

Checkpoints, caches and manifests are read by later runs (or by other processes sharing a
directory); a write interrupted half-way must never leave a file that passes for a good one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, write: Callable[[str], object]) -> None:
    """Call ``write(tmp)`` on a fresh temporary file beside ``path``, then rename it into place.

    The temporary name is unique to this call, so processes writing the same path at once each
    finish their own file and the last rename wins."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_torch(obj: Any, path: str | Path) -> None:
    """``torch.save`` through :func:`atomic_write`."""
    import torch

    atomic_write(path, lambda tmp: torch.save(obj, tmp))


FORMAT_VERSION = 1
"""The version of the on-disk layout of tmt's artefacts; a loader refuses a newer one."""


def format_header(kind: str) -> dict[str, Any]:
    """The first two keys of every artefact's ``config.json`` / ``bundle.json``: what it is
    (``"tmt-image-codec"``, ...) and the layout version it was written in."""
    return {"format": kind, "format_version": FORMAT_VERSION}


def check_format(path: str | Path, config: Any, kind: str, *, required: bool = False) -> dict[str, Any]:
    """``config`` without its header, after checking it: the kind must be ``kind`` (files of
    tmt 0.1 that have none pass unless ``required``) and the version one this tmt reads."""
    from tmt.errors import TmtError

    if not isinstance(config, dict):
        raise TmtError(f"{path}: expected a JSON object, got {type(config).__name__}")
    config = dict(config)
    found = config.pop("format", None)
    version = config.pop("format_version", 1)
    if found != kind and (found is not None or required):
        raise TmtError(f"{path} is not a {kind} file (its format is {found!r})")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TmtError(f"{path}: bad format_version {version!r}")
    if version > FORMAT_VERSION:
        raise TmtError(f"{path} was written in format version {version}, newer than this tmt "
                       f"reads ({FORMAT_VERSION}): upgrade tmt")
    return config


def read_json(path: str | Path) -> Any:
    """A JSON file's content; a missing, unreadable or malformed file is one TmtError."""
    import json

    from tmt.errors import TmtError

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TmtError(f"{path} not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise TmtError(f"cannot read {path}: {error}") from None
    except json.JSONDecodeError as error:
        raise TmtError(f"{path} is not valid JSON ({error})") from None


def load_safetensors(path: str | Path) -> dict[str, Any]:
    """The tensors of a ``.safetensors`` file; a missing, truncated or corrupt file is one
    TmtError naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from tmt.errors import TmtError

    path = Path(path)
    if not path.is_file():
        raise TmtError(f"weights file not found: {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TmtError(f"{path} is not a readable safetensors file ({reason})") from None


def read_config(path: str | Path, kind: str, *, required: bool = False) -> dict[str, Any]:
    """An artefact's ``config.json`` (or ``bundle.json``) read and checked in one go:
    :func:`read_json`, then :func:`check_format` against ``kind``; the header is dropped."""
    return check_format(path, read_json(path), kind, required=required)
