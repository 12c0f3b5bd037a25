"""The tmt-shapes world: attributes, sampling, captions, the caption grammar and its parser.

An *attribute record* describes one scene::

    {"objects": [{"size": "small", "colour": "red", "shape": "circle"}],
     "position": "on the left"}
    {"objects": [{...}, {...}], "relation": "above"}

The world is fixed (same attribute values, templates and held-out pairs for every seed)
so that results on corpora generated with different seeds stay comparable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

SHAPES = ("circle", "square", "triangle", "star", "heart", "diamond", "cross", "hexagon")
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "black", "pink")
SIZES = ("small", "large")
POSITIONS = ("on the left", "on the right", "at the top", "at the bottom", "in the middle")
RELATIONS = ("above", "below", "to the left of", "to the right of")
INVERSE_RELATION = {
    "above": "below",
    "below": "above",
    "to the left of": "to the right of",
    "to the right of": "to the left of",
}
CANONICAL_RELATIONS = ("above", "to the left of")
"""Two-object scenes are compared in this orientation (``B below A`` == ``A above B``)."""

HELD_OUT_PAIRS: frozenset[tuple[str, str]] = frozenset(
    (colour, SHAPES[(3 * i + 2) % len(SHAPES)]) for i, colour in enumerate(COLOURS)
)
"""(colour, shape) pairs never seen in train/valid/test: the ``compositional`` split's pairs.
One per colour and one per shape (3 is coprime with 8, so ``3i + 2 mod 8`` is a permutation):
red triangle, green diamond, blue circle, yellow star, purple cross, orange square,
black heart, pink hexagon."""

SPLITS = ("train", "valid", "test", "compositional")

# Caption templates. {obj}/{obj1}/{obj2} expand to "a {size} {colour} {shape}".
# The first template of each list is the canonical caption.
SINGLE_TEMPLATES = (
    "{obj} {position}",
    "there is {obj} {position}",
    "{position} there is {obj}",
    "a picture of {obj} {position}",
    "the image shows {obj} {position}",
)
PAIR_TEMPLATES = (
    "{obj1} {relation} {obj2}",
    "there is {obj1} {relation} {obj2}",
    "a picture of {obj1} {relation} {obj2}",
    "the image shows {obj1} {relation} {obj2}",
    # The same scene seen from the other object; parses to the swapped record.
    "{obj2} {inverse} {obj1}",
)

Record = dict[str, Any]


def _object_phrase(obj: dict[str, str]) -> str:
    return f"a {obj['size']} {obj['colour']} {obj['shape']}"


def captions(record: Record) -> list[str]:
    """All reference captions of a record, the canonical one first."""
    objs = record["objects"]
    if len(objs) == 1:
        obj = _object_phrase(objs[0])
        return [t.format(obj=obj, position=record["position"]) for t in SINGLE_TEMPLATES]
    relation = record["relation"]
    return [
        t.format(
            obj1=_object_phrase(objs[0]),
            obj2=_object_phrase(objs[1]),
            relation=relation,
            inverse=INVERSE_RELATION[relation],
        )
        for t in PAIR_TEMPLATES
    ]


def canonical_caption(record: Record) -> str:
    """``a {size} {colour} {shape} {position}`` or ``a … {relation} a …``."""
    return captions(record)[0]


# -- parsing -------------------------------------------------------------------------------

def _alt(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in words)


def _object_regex(key: str) -> str:
    return (
        f"a (?P<{key}_size>{_alt(SIZES)}) (?P<{key}_colour>{_alt(COLOURS)})"
        f" (?P<{key}_shape>{_alt(SHAPES)})"
    )


def _template_regex(template: str) -> re.Pattern[str]:
    slots = {
        "obj": _object_regex("obj"),
        "obj1": _object_regex("obj1"),
        "obj2": _object_regex("obj2"),
        "position": f"(?P<position>{_alt(POSITIONS)})",
        "relation": f"(?P<relation>{_alt(RELATIONS)})",
        "inverse": f"(?P<inverse>{_alt(RELATIONS)})",
    }
    # Templates hold only lower-case words, spaces and {slots}: no escaping needed.
    return re.compile(template.format(**slots))


_SINGLE_RES = [_template_regex(t) for t in SINGLE_TEMPLATES]
_PAIR_RES = [_template_regex(t) for t in PAIR_TEMPLATES]


def _normalize_text(text: str) -> str:
    text = re.sub(r"[^a-z ]+", " ", text.lower())
    return " ".join(text.split())


def parse_caption(text: str) -> Record | None:
    """Caption (any template, case and punctuation ignored) → attribute record, or None.

    This is the text judge: image→text and speech→text output is scored by comparing
    the parsed record with the reference record (:func:`compare_records`).
    """
    text = _normalize_text(text)
    for regex in _SINGLE_RES:
        if m := regex.fullmatch(text):
            obj = {k: m.group(f"obj_{k}") for k in ("size", "colour", "shape")}
            return {"objects": [obj], "position": m.group("position")}
    for regex in _PAIR_RES:
        if m := regex.fullmatch(text):
            o1 = {k: m.group(f"obj1_{k}") for k in ("size", "colour", "shape")}
            o2 = {k: m.group(f"obj2_{k}") for k in ("size", "colour", "shape")}
            if "inverse" in m.groupdict():
                return {"objects": [o1, o2], "relation": INVERSE_RELATION[m.group("inverse")]}
            return {"objects": [o1, o2], "relation": m.group("relation")}
    return None


# -- comparing records -------------------------------------------------------------------

ATTRIBUTES = ("count", "shape", "colour", "size", "position", "relation")
"""Attributes scored by :func:`compare_records` (object attributes are scored per object)."""


def canonical_record(record: Record) -> Record:
    """The same scene with a two-object relation turned to ``above`` / ``to the left of``."""
    objs = [dict(o) for o in record["objects"]]
    if len(objs) == 2 and record["relation"] not in CANONICAL_RELATIONS:
        return {"objects": objs[::-1], "relation": INVERSE_RELATION[record["relation"]]}
    out: Record = {"objects": objs}
    out.update({k: v for k, v in record.items() if k != "objects"})
    return out


def compare_records(pred: Record | None, ref: Record) -> dict[str, tuple[int, int]]:
    """Per attribute, ``(correct, total)`` of ``pred`` against the reference ``ref``.

    Both records are canonicalized first, so ``B below A`` matches ``A above B``.
    Object attributes are compared slot by slot (first object with first object);
    a missing or unparsable prediction counts every attribute of ``ref`` as wrong.
    """
    ref = canonical_record(ref)
    pred = canonical_record(pred) if pred is not None else None
    ref_objs = ref["objects"]
    pred_objs = pred["objects"] if pred is not None else []
    out: dict[str, tuple[int, int]] = {"count": (int(len(pred_objs) == len(ref_objs)), 1)}
    for key in ("shape", "colour", "size"):
        correct = sum(
            int(i < len(pred_objs) and pred_objs[i][key] == o[key]) for i, o in enumerate(ref_objs)
        )
        out[key] = (correct, len(ref_objs))
    for key in ("position", "relation"):
        if key in ref:
            out[key] = (int(pred is not None and pred.get(key) == ref[key]), 1)
    return out


def attribute_accuracy(preds: Sequence[Record | None], refs: Sequence[Record]) -> dict[str, float]:
    """Per-attribute accuracy over a set of scenes, plus ``exact`` (every attribute right)."""
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions for {len(refs)} references")
    correct = dict.fromkeys(ATTRIBUTES, 0)
    total = dict.fromkeys(ATTRIBUTES, 0)
    exact = 0
    for pred, ref in zip(preds, refs, strict=True):
        scores = compare_records(pred, ref)
        for key, (c, t) in scores.items():
            correct[key] += c
            total[key] += t
        exact += int(all(c == t for c, t in scores.values()))
    out = {key: correct[key] / total[key] for key in ATTRIBUTES if total[key]}
    out["exact"] = exact / max(1, len(refs))
    return out


def exact_by_object_count(
    preds: Sequence[Record | None], refs: Sequence[Record]
) -> dict[str, float]:
    """``exact`` (every attribute right) per number of objects in the reference scene, e.g.
    ``{"1": 0.99, "2": 0.70}``: two-object scenes add which attributes go with which object."""
    return exact_by_group(preds, refs, [str(len(ref["objects"])) for ref in refs])


def exact_by_group(
    preds: Sequence[Record | None], refs: Sequence[Record], groups: Sequence[str]
) -> dict[str, float]:
    """``exact`` (every attribute right) within each group of scenes (``groups[i]`` names the
    group of scene ``i``, e.g. the voice that spoke it), in sorted group order."""
    if not len(preds) == len(refs) == len(groups):
        raise ValueError(f"{len(preds)} predictions, {len(refs)} references, {len(groups)} groups")
    right: dict[str, list[int]] = {}
    for pred, ref, group in zip(preds, refs, groups, strict=True):
        scores = compare_records(pred, ref)
        right.setdefault(group, []).append(int(all(c == t for c, t in scores.values())))
    return {g: sum(v) / len(v) for g, v in sorted(right.items())}


ERROR_KINDS = ("unparsed", "count", "swapped", "repeated object", "relation", "attributes")
"""What :func:`error_kind` calls a wrong prediction (see there)."""


def error_kind(pred: Record | None, ref: Record) -> str | None:
    """``None`` when every attribute is right, else what went wrong, the first that applies:

    ``unparsed`` (no caption of the grammar), ``count`` (another number of objects),
    ``swapped`` (the two right objects, on the right axis, in each other's places: the
    left one called right, or the upper one lower), ``repeated object`` (one object named
    twice for two different ones), ``relation`` (the two right objects on the other axis),
    ``attributes`` (a size, colour, shape or one-object position wrong).
    """
    if all(c == t for c, t in compare_records(pred, ref).values()):
        return None
    if pred is None:
        return "unparsed"
    if len(pred["objects"]) != len(ref["objects"]):
        return "count"
    if len(ref["objects"]) == 2:
        p, r = canonical_record(pred), canonical_record(ref)
        p_objs, r_objs = p["objects"], r["objects"]
        if p_objs[0] == p_objs[1] and r_objs[0] != r_objs[1]:
            return "repeated object"
        if _object_set(p_objs) == _object_set(r_objs):  # the same two objects, in some order
            return "swapped" if p["relation"] == r["relation"] else "relation"
    return "attributes"


def _object_set(objs: list[dict[str, str]]) -> list[tuple[tuple[str, str], ...]]:
    """The objects as a sorted list of attribute tuples: order- and key-order-free."""
    return sorted(tuple(sorted(o.items())) for o in objs)


def error_kinds(preds: Sequence[Record | None], refs: Sequence[Record]) -> dict[str, int]:
    """How many predictions went wrong in each way of :func:`error_kind` (zeros kept)."""
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions for {len(refs)} references")
    counts = dict.fromkeys(ERROR_KINDS, 0)
    for pred, ref in zip(preds, refs, strict=True):
        if (kind := error_kind(pred, ref)) is not None:
            counts[kind] += 1
    return counts


# -- sampling ------------------------------------------------------------------------------

_ALL_PAIRS = [(c, s) for c in COLOURS for s in SHAPES]
_SEEN_PAIRS = [p for p in _ALL_PAIRS if p not in HELD_OUT_PAIRS]
_HELD_PAIRS = sorted(HELD_OUT_PAIRS)


def sample_record(rng: np.random.Generator, *, compositional: bool) -> Record:
    """Draw one scene. Non-compositional scenes use only seen (colour, shape) pairs;
    compositional scenes hold at least one held-out pair."""
    n_objects = 1 + int(rng.integers(2))
    pairs = [_SEEN_PAIRS[int(rng.integers(len(_SEEN_PAIRS)))] for _ in range(n_objects)]
    if compositional:
        slot = int(rng.integers(n_objects))
        pairs[slot] = _HELD_PAIRS[int(rng.integers(len(_HELD_PAIRS)))]
        if n_objects == 2:  # the other object may be any pair
            pairs[1 - slot] = _ALL_PAIRS[int(rng.integers(len(_ALL_PAIRS)))]
    objs = [
        {"size": SIZES[int(rng.integers(len(SIZES)))], "colour": c, "shape": s} for c, s in pairs
    ]
    if n_objects == 1:
        return {"objects": objs, "position": POSITIONS[int(rng.integers(len(POSITIONS)))]}
    return {"objects": objs, "relation": RELATIONS[int(rng.integers(len(RELATIONS)))]}


def is_compositional(record: Record) -> bool:
    """True when the scene holds a held-out (colour, shape) pair."""
    return any((o["colour"], o["shape"]) in HELD_OUT_PAIRS for o in record["objects"])


def split_sizes(size: int) -> dict[str, int]:
    """Examples per split: 5% each for valid, test and compositional (≥ 1 from 4 examples)."""
    held = 0 if size < 4 else max(1, round(0.05 * size))
    return {"train": size - 3 * held, "valid": held, "test": held, "compositional": held}


def assign_splits(size: int, seed: int) -> list[str]:
    """A deterministic, shuffled split label per example index."""
    labels = [name for name, n in split_sizes(size).items() for _ in range(n)]
    order = np.random.default_rng([seed, 0x5EED]).permutation(size)
    return [labels[int(i)] for i in order]


# -- grammar -------------------------------------------------------------------------------

def jsgf_grammar() -> str:
    """The JSGF grammar of every caption template (for the PocketSphinx speech judge)."""
    def rule(template: str) -> str:
        return (
            template.replace("{obj1}", "<object>")
            .replace("{obj2}", "<object>")
            .replace("{obj}", "<object>")
            .replace("{position}", "<position>")
            .replace("{relation}", "<relation>")
            .replace("{inverse}", "<relation>")
        )

    single = sorted({rule(t) for t in SINGLE_TEMPLATES})
    pair = sorted({rule(t) for t in PAIR_TEMPLATES})
    lines = [
        "#JSGF V1.0;",
        "grammar shapes;",
        "public <caption> = <single> | <pair>;",
        "<single> = " + " | ".join(f"( {r} )" for r in single) + ";",
        "<pair> = " + " | ".join(f"( {r} )" for r in pair) + ";",
        "<object> = a <size> <colour> <shape>;",
        "<size> = " + " | ".join(SIZES) + ";",
        "<colour> = " + " | ".join(COLOURS) + ";",
        "<shape> = " + " | ".join(SHAPES) + ";",
        "<position> = " + " | ".join(POSITIONS) + ";",
        "<relation> = " + " | ".join(RELATIONS) + ";",
    ]
    return "\n".join(lines) + "\n"
