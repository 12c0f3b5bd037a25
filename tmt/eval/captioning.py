"""Captioning metrics as the COCO caption evaluation computes them (pycocoevalcap).

BLEU-1..4, METEOR, ROUGE-L, CIDEr and SPICE of one hypothesis per item against all of its
reference captions. METEOR, SPICE and the PTB tokenizer are Java programs shipped inside
pycocoevalcap; SPICE also needs the Stanford CoreNLP 3.6.0 jars, which pycocoevalcap would
download on first use. Nothing is downloaded here: a metric that cannot run on this machine is
reported as ``None`` with the reason under ``"unavailable"``, never as 0.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tmt.errors import TmtError

#: Metric names of :func:`caption_metrics`, in report order.
CAPTION_METRICS = ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider", "spice")

#: Tokens the COCO evaluation drops after PTB tokenization (pycocoevalcap's list).
_PUNCTUATION = {"''", "'", "``", "`", "-lrb-", "-rrb-", "-lcb-", "-rcb-", ".", "?", "!", ",", ":",
                "-", "--", "...", ";"}
_SPICE_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


def java_missing() -> str | None:
    """Why Java programs cannot run here, or None when a ``java`` executable is on PATH."""
    return None if shutil.which("java") else "no java executable on PATH (apt install default-jre-headless)"


def pycocoevalcap_missing() -> str | None:
    """Why the caption metrics cannot run, or None: pycocoevalcap is the ``eval`` extra."""
    import importlib.util

    if importlib.util.find_spec("pycocoevalcap") is None:
        return "pycocoevalcap is not installed (pip install 'tmt[eval]')"
    return None


def _package_dir() -> Path:
    import pycocoevalcap

    return Path(next(iter(pycocoevalcap.__path__)))


def spice_missing() -> str | None:
    """Why SPICE cannot run here, or None. It needs Java and the Stanford CoreNLP 3.6.0 jars in
    pycocoevalcap's ``spice/lib`` (pycocoevalcap's own download location)."""
    if (reason := java_missing()) is not None:
        return reason
    lib = _package_dir() / "spice" / "lib"
    absent = [name for name in _SPICE_JARS if not (lib / name).is_file()]
    if absent:
        return f"Stanford CoreNLP jars not found in {lib} ({', '.join(absent)})"
    return None


def simple_tokenize(caption: str) -> str:
    """Pure-Python stand-in for the PTB tokenizer: lower-case, split punctuation off words, drop
    the punctuation tokens the COCO evaluation drops. Unlike PTB it keeps contractions whole
    (``don't`` stays one token)."""
    tokens = re.findall(r"[\w']+|[^\w\s]", caption.lower().replace("\n", " "))
    return " ".join(t for t in tokens if t not in _PUNCTUATION and t.strip("'"))


def _ptb_tokenize(groups: dict[int, list[str]]) -> dict[int, list[str]]:
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    wrapped = {k: [{"caption": c} for c in captions] for k, captions in groups.items()}
    out: dict[int, list[str]] = PTBTokenizer().tokenize(wrapped)
    if sorted(out) != sorted(groups) or any(len(out[k]) != len(groups[k]) for k in groups):
        raise RuntimeError("PTB tokenizer output does not line up with its input")
    return out


@dataclass
class CaptionScores:
    """Corpus-level scores; ``scores[m]`` is None exactly when ``unavailable[m]`` says why."""

    scores: dict[str, float | None]
    unavailable: dict[str, str] = field(default_factory=dict)
    tokenizer: str = "ptb"

    def to_dict(self) -> dict[str, Any]:
        return {**self.scores, "unavailable": dict(self.unavailable), "tokenizer": self.tokenizer}


def caption_metrics(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    metrics: Sequence[str] = CAPTION_METRICS,
    tokenizer: str = "auto",
) -> CaptionScores:
    """Score one hypothesis per item against that item's references (any number, >= 1).

    ``tokenizer``: ``"ptb"`` (Stanford PTBTokenizer, Java; what the COCO evaluation uses),
    ``"simple"`` (pure Python, see :func:`simple_tokenize`) or ``"auto"`` (PTB when Java runs,
    otherwise simple; the report names the one used). ``metrics`` selects a subset of
    :data:`CAPTION_METRICS` (METEOR's JVM takes ~10 s to start)."""
    if len(hypotheses) != len(references):
        raise TmtError(f"{len(hypotheses)} hypotheses for {len(references)} reference sets")
    if not hypotheses:
        raise TmtError("no captions to score")
    if any(not refs for refs in references):
        raise TmtError("every item needs at least one reference caption")
    unknown = set(metrics) - set(CAPTION_METRICS)
    if unknown:
        raise TmtError(f"unknown caption metrics {sorted(unknown)} (known: {', '.join(CAPTION_METRICS)})")
    if tokenizer not in ("auto", "ptb", "simple"):
        raise TmtError(f"unknown caption tokenizer {tokenizer!r} (auto, ptb, simple)")
    if (reason := pycocoevalcap_missing()) is not None:
        raise TmtError(f"caption metrics: {reason}")

    gts_raw = {i: [str(r) for r in refs] for i, refs in enumerate(references)}
    res_raw = {i: [str(h)] for i, h in enumerate(hypotheses)}
    unavailable: dict[str, str] = {}
    used = "simple"
    gts = res = None
    if tokenizer != "simple":
        reason = java_missing()
        if reason is None:
            try:
                gts, res = _ptb_tokenize(gts_raw), _ptb_tokenize(res_raw)
                used = "ptb"
            except (OSError, RuntimeError) as error:
                reason = f"PTB tokenizer failed: {error}"
        if reason is not None:
            if tokenizer == "ptb":
                raise TmtError(f"PTB tokenizer unavailable: {reason}")
            unavailable["ptb_tokenizer"] = reason
    if gts is None or res is None:
        gts = {k: [simple_tokenize(c) for c in v] for k, v in gts_raw.items()}
        res = {k: [simple_tokenize(c) for c in v] for k, v in res_raw.items()}

    scores: dict[str, float | None] = {}
    wanted = set(metrics)
    if wanted & {"bleu1", "bleu2", "bleu3", "bleu4"}:
        from pycocoevalcap.bleu.bleu import Bleu

        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        for n in range(4):
            if f"bleu{n + 1}" in wanted:
                scores[f"bleu{n + 1}"] = float(bleu[n])
    if "meteor" in wanted:
        scores["meteor"] = _java_metric("meteor", gts, res, unavailable)
    if "rouge_l" in wanted:
        from pycocoevalcap.rouge.rouge import Rouge

        scores["rouge_l"] = float(Rouge().compute_score(gts, res)[0])
    if "cider" in wanted:
        from pycocoevalcap.cider.cider import Cider

        scores["cider"] = float(Cider().compute_score(gts, res)[0])
    if "spice" in wanted:
        scores["spice"] = _java_metric("spice", gts, res, unavailable)
    ordered = {m: scores[m] for m in CAPTION_METRICS if m in scores}
    return CaptionScores(ordered, unavailable, used)


def _java_metric(
    name: str, gts: dict[int, list[str]], res: dict[int, list[str]], unavailable: dict[str, str]
) -> float | None:
    """METEOR or SPICE through pycocoevalcap's Java wrappers; None (+ reason) if they cannot run."""
    reason = java_missing() if name == "meteor" else spice_missing()
    if reason is not None:
        unavailable[name] = reason
        return None
    try:
        if name == "meteor":
            from pycocoevalcap.meteor.meteor import Meteor

            meteor = Meteor()
            try:
                score, _ = meteor.compute_score(gts, res)
            finally:
                _stop_meteor(meteor)
        else:
            from pycocoevalcap.spice.spice import Spice

            score, _ = Spice().compute_score(gts, res)
    except (OSError, ValueError, RuntimeError, subprocess.SubprocessError) as error:
        unavailable[name] = f"{name} failed: {error}"
        return None
    return float(score)


def _stop_meteor(meteor: Any) -> None:
    """Stop METEOR's JVM now. pycocoevalcap's own ``__del__`` would block forever at garbage
    collection if ``compute_score`` raised while holding its lock (a JVM that died), and raises
    itself when closing a pipe to a dead JVM; leave it a fresh lock and closed pipes instead."""
    import threading

    proc = meteor.meteor_p
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        try:
            stream.close()
        except OSError:
            pass  # a broken pipe to a JVM that already exited; the file is closed anyway
    proc.kill()
    proc.wait()
    meteor.lock = threading.Lock()


__all__ = ["CAPTION_METRICS", "CaptionScores", "caption_metrics", "java_missing", "simple_tokenize",
           "spice_missing"]
