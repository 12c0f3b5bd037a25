"""How back-translated (pseudo) examples say which of their media are generated.

A back-translated example keeps its real media and adds generated ones; its store record has
``pseudo=True`` and a ``source`` of the form ``"<corpus>:pseudo-<m>[+<m>]"``, e.g.
``imagenet:pseudo-speech+text`` (real image, generated caption and speech) or
``commonvoice:pseudo-image`` (real speech and text, generated image). Training reads the
generated modalities back from the source, so that pseudo media serve as translation *sources*
only (the back-translation practice: synthetic input, real output), unless configured otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable

from tmt.errors import TmtError
from tmt.modality import MODALITIES, Modality

PSEUDO_TAG = ":pseudo-"


def pseudo_source(base: str, generated: Iterable[Modality | str]) -> str:
    """``("imagenet", [text, speech])`` → ``"imagenet:pseudo-speech+text"`` (MODALITIES order)."""
    wanted = {Modality.parse(m) for m in generated}
    names = [m.value for m in MODALITIES if m in wanted]
    if not names:
        raise ValueError("a pseudo source needs at least one generated modality")
    return f"{base}{PSEUDO_TAG}{'+'.join(names)}"


def generated_modalities(source: str) -> tuple[Modality, ...]:
    """The generated modalities named by a pseudo ``source`` (empty for real data)."""
    _, tag, names = source.rpartition(PSEUDO_TAG)
    if not tag:
        return ()
    try:
        return tuple(Modality.parse(name) for name in names.split("+"))
    except TmtError:  # an unrelated source name that happens to contain the tag
        return ()
