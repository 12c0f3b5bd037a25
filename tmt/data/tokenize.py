"""Tokenize a raw corpus into the token store with the modality codecs."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from tqdm import tqdm

from tmt.data.records import RawExample, TokenExample
from tmt.data.store import TokenStoreWriter
from tmt.data.tts import TextToSpeech
from tmt.errors import TmtError
from tmt.modality import MODALITIES, Codec, Modality
from tmt.progress import bar_off

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(kw_only=True)
class TokenizeSummary:
    """What :func:`tokenize_corpus` did."""

    examples: int = 0
    """Examples read from the corpus (written + skipped + failed)."""
    written: int = 0
    """Examples tokenized and added to the store."""
    skipped: int = 0
    """Examples whose id was already in the store (a resumed run)."""
    failed: int = 0
    """Examples not stored because a medium failed to encode (see ``failures``)."""
    tokens: dict[str, int] = field(default_factory=dict)
    """Tokens written per modality."""
    media: dict[str, int] = field(default_factory=dict)
    """Examples written with each modality."""
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    """(example id, modality, error message) of every failure."""

    def __str__(self) -> str:
        per = ", ".join(
            f"{m}: {self.media.get(m, 0)} ({self.tokens.get(m, 0)} tokens)" for m in self.tokens
        )
        return (
            f"{self.examples} examples: {self.written} written, {self.skipped} already stored, "
            f"{self.failed} failed; {per}"
        )


def _encode(codec: Codec, raw: Path | str, modality: Modality) -> torch.Tensor:
    with torch.inference_mode():
        ids = codec.encode(raw)
    ids = torch.as_tensor(ids)
    if ids.dim() != 1 or ids.is_floating_point():
        raise TmtError(
            f"{modality.value} codec returned {tuple(ids.shape)} {ids.dtype}, not 1-D ids"
        )
    if ids.numel() == 0:
        raise TmtError(f"{modality.value} codec returned no tokens")
    if int(ids.min()) < 0 or int(ids.max()) >= codec.vocab_size:
        raise TmtError(f"{modality.value} codec returned ids outside [0, {codec.vocab_size})")
    return ids.to(torch.long).cpu()


def _raw_size(raw: Path | str, modality: Modality) -> int:
    if modality is Modality.TEXT:
        return len(str(raw).encode("utf-8"))
    return Path(raw).stat().st_size


def tokenize_corpus(
    examples: Iterable[RawExample],
    codecs: dict[Modality, Codec],
    writer: TokenStoreWriter,
    progress: bool = True,
    prepare: Callable[[RawExample], RawExample] | None = None,
) -> TokenizeSummary:
    """Encode each example's media with ``codecs`` and add the ids to ``writer``.

    Media of a modality without a codec are left out. An example whose id the writer already
    holds is skipped (so a rerun resumes). ``prepare`` (e.g. speech synthesis for a corpus
    without speech) runs on each example not yet stored, before encoding. If it or any medium
    fails (a missing or corrupt file, a codec error), the failure is logged and counted and
    the whole example is left out, so a rerun retries it. The writer is flushed at the end
    (its last shard written), not closed.
    """
    codecs = {Modality.parse(m): c for m, c in codecs.items()}
    from tmt.speech.codec import SpeechCodec

    speech = codecs.get(Modality.SPEECH)
    # the reference voice's utterances skip the normalizer (see RawExample.reference_voice)
    reference = (speech.with_normalizer(None) if isinstance(speech, SpeechCodec)
                 and speech.normalizer is not None else speech)
    # Recorded in store.json; a store tokenized earlier with other codecs is refused here.
    writer.set_vocab_sizes({m: c.vocab_size for m, c in codecs.items()})
    summary = TokenizeSummary(
        tokens={m.value: 0 for m in MODALITIES if m in codecs},
        media={m.value: 0 for m in MODALITIES if m in codecs},
    )
    bar = tqdm(examples, desc="tokenize", unit="ex", disable=bar_off(not progress), dynamic_ncols=True)
    try:
        for raw in bar:
            summary.examples += 1
            if raw.id in writer:
                summary.skipped += 1
                continue
            tokens: dict[str, torch.Tensor] = {}
            raw_bytes: dict[str, int] = {}
            failure: tuple[str, str, str] | None = None
            if prepare is not None:
                try:
                    raw = prepare(raw)
                except Exception as error:  # e.g. the TTS failed on one caption
                    failure = (raw.id, "prepare", f"{type(error).__name__}: {error}".splitlines()[0])
            for m in MODALITIES if failure is None else ():
                medium = raw.media(m)
                if medium is None or m not in codecs:
                    continue
                try:
                    codec = reference if m is Modality.SPEECH and raw.reference_voice else codecs[m]
                    tokens[m.value] = _encode(codec, medium, m)  # type: ignore[arg-type]
                    raw_bytes[m.value] = _raw_size(medium, m)
                except Exception as error:  # one bad file must not stop a corpus
                    failure = (raw.id, m.value, f"{type(error).__name__}: {error}".splitlines()[0])
                    break
            if failure is None and not tokens:
                failure = (raw.id, "-", "no medium to tokenize (or no codec for its modalities)")
            if failure is not None:
                log.warning("skipping %s (%s): %s", *failure)
                summary.failed += 1
                summary.failures.append(failure)
                bar.set_postfix(failed=summary.failed, refresh=False)
                continue
            writer.add(
                TokenExample(
                    id=raw.id,
                    split=raw.split,
                    source=raw.source,
                    pseudo=raw.pseudo,
                    speech=tokens.get("speech"),
                    image=tokens.get("image"),
                    text=tokens.get("text"),
                    raw_bytes=raw_bytes,
                )
            )
            summary.written += 1
            for name, ids in tokens.items():
                summary.tokens[name] += int(ids.numel())
                summary.media[name] += 1
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: keep every finished example
        writer.flush()
        reason = str(stop) or "interrupted"
        raise KeyboardInterrupt(f"{reason}: {summary.written} new examples kept in the store; "
                                "rerun to resume") from None
    writer.flush()
    log.info("tokenize: %s", summary)
    return summary


def parse_shard(spec: str) -> tuple[int, int]:
    """``"1/4"`` -> ``(1, 4)``: part ``i`` (0-based) of ``n``."""
    try:
        i_text, n_text = spec.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise TmtError(f"bad shard {spec!r}: expected I/N, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise TmtError(f"bad shard {spec!r}: need 0 <= I < N")
    return i, n


def shard_of(items: Iterable[T], i: int, n: int) -> Iterator[T]:
    """The items of part ``i`` of ``n`` (0-based), chosen by a stable hash of each id.

    ``items`` are ids (str) or records with an ``id`` attribute. The split depends only on
    the ids (not on their order), so ``n`` processes given ``0/n`` ... ``n-1/n`` cover every
    item exactly once, and a rerun picks the same items.
    """
    if n < 1 or not 0 <= i < n:
        raise TmtError(f"bad shard {i}/{n}: need 0 <= i < n")
    for item in items:
        key: Any = item if isinstance(item, str) else item.id  # type: ignore[attr-defined]
        if zlib.crc32(str(key).encode("utf-8")) % n == i:
            yield item


def load_codecs(codecs_dir: str | Path | None = None, device: str = "cpu") -> dict[Modality, Codec]:
    """The codecs present in ``codecs_dir`` (subdirectories speech/ image/ text/)."""
    from tmt.bundle import load_codec
    from tmt.paths import CODECS

    root = Path(codecs_dir) if codecs_dir is not None else CODECS
    codecs = {m: load_codec(m, root / m.value, device) for m in MODALITIES if (root / m.value).is_dir()}
    if not codecs:
        raise TmtError(f"no codecs in {root} (expected speech/, image/ or text/ subdirectories)")
    return codecs


def tokenize_dataset(
    dataset: str,
    root: str | Path,
    out: str | Path,
    *,
    codecs_dir: str | Path | None = None,
    shard: str | None = None,
    shard_size: int = 1000,
    progress: bool = True,
    options: dict[str, Any] | None = None,
    tts: str | TextToSpeech | None = None,
    tts_cache: str | Path | None = None,
    speech_units: bool = False,
    device: str = "cpu",
) -> TokenizeSummary:
    """``tmt tokenize``: read a corpus, keep shard ``I/N`` of it, encode it into a store.

    ``options`` go to the corpus reader (e.g. ``{"spoken": DIR}`` for coco). Examples without
    speech get a wav synthesized from their caption by ``tts`` (a voice name such as
    ``espeak:en-us``, or a :class:`~tmt.data.tts.TextToSpeech`); corpora that have no speech
    (cc3m, cc12m) default to ``espeak:en-us``. Wavs are cached in ``tts_cache`` (default
    ``OUT-tts/``) so that a rerun does not synthesize them again. Failures are also written
    to ``OUT/failures-PREFIX.tsv`` (id, modality, error). ``speech_units``: speech is stored as
    units even if the speech codec has unit BPE (for a translator that cuts the pieces itself,
    ``speech_bpe`` in its training config).
    """
    from tmt.data.readers import SYNTHESIZED_SPEECH, read_dataset
    from tmt.data.tts import SpeechSynthesizer, tts_by_name
    from tmt.speech.codec import SpeechCodec

    examples: Iterable[RawExample] = read_dataset(dataset, root, **(options or {}))
    prefix = "shard"
    if shard is not None:
        i, n = parse_shard(shard)
        examples = shard_of(examples, i, n)
        prefix = f"part{i}of{n}"  # parallel writers into one store never share a shard name
    if tts is None and dataset in SYNTHESIZED_SPEECH:
        tts = "espeak:en-us"
    prepare = None
    if tts is not None:
        engine = tts_by_name(tts) if isinstance(tts, str) else tts
        cache = Path(tts_cache) if tts_cache else Path(f"{Path(out).resolve()}-tts")
        prepare = SpeechSynthesizer(engine, cache)
    codecs = load_codecs(codecs_dir, device)
    speech = codecs.get(Modality.SPEECH)
    if speech_units and isinstance(speech, SpeechCodec):
        codecs[Modality.SPEECH] = speech.with_bpe(None)
    with TokenStoreWriter(out, shard_size=shard_size, prefix=prefix) as writer:
        summary = tokenize_corpus(examples, codecs, writer, progress=progress, prepare=prepare)
    report = Path(out) / f"failures-{prefix}.tsv"
    if summary.failures:
        rows = ("\t".join(field.replace("\t", " ") for field in f) for f in summary.failures)
        report.write_text("".join(row + "\n" for row in rows), encoding="utf-8")
    elif report.exists():
        report.unlink()  # a rerun fixed (or skipped) every earlier failure
    return summary
