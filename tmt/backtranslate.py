"""Back-translation: generate the missing modalities of unpaired data with a trained model.

Each example keeps its real media and gains the generated ones, as TOKENS (no audio or pixels
are synthesized: training reads tokens), in a token store marked ``pseudo``::

    images only (ImageNet)        image  ->  text, speech          source "imagenet:pseudo-speech+text"
    speech + text (Common Voice)  text   ->  image (or speech)     source "commonvoice:pseudo-image"

Only real media are translated (a pseudo caption is never the input of pseudo speech). Which
real modality generates a missing one follows :data:`DEFAULT_SOURCES` (override with
``sources``). The run is resumable and idempotent: examples are processed in fixed chunks of
the reader's order, and a store shard is committed only at a chunk boundary, so a rerun skips
exactly the finished chunks and regenerates the rest with the same batches (and, for sampling,
the same per-chunk seeds): the finished store does not depend on interruptions.
"""

from __future__ import annotations

import logging
import signal
import zlib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from tmt.bundle import Bundle
from tmt.data.pseudo import pseudo_source
from tmt.data.records import RawExample, TokenExample
from tmt.data.store import TokenStoreWriter
from tmt.errors import TmtError
from tmt.modality import MODALITIES, Modality
from tmt.progress import bar_off
from tmt.train.run_state import StopRequest
from tmt.translator.generate import DecodingOptions, generate

log = logging.getLogger(__name__)

#: Per generated modality, the real modalities to translate it from, in order of preference.
#: Images come from text (the cleaner signal; Common Voice's sentences are the read prompts).
DEFAULT_SOURCES: dict[Modality, tuple[Modality, ...]] = {
    Modality.IMAGE: (Modality.TEXT, Modality.SPEECH),
    Modality.TEXT: (Modality.IMAGE, Modality.SPEECH),
    Modality.SPEECH: (Modality.IMAGE, Modality.TEXT),
}


@dataclass(kw_only=True)
class BacktranslateSummary:
    """What a back-translation run did."""

    examples: int = 0
    """Examples read (written + skipped + failed)."""
    written: int = 0
    skipped: int = 0
    """Examples already in the store (a resumed run)."""
    failed: int = 0
    generated: dict[str, int] = field(default_factory=dict)
    """Generated media per ``source-target`` direction."""
    failures: list[tuple[str, str]] = field(default_factory=list)
    """(example id, reason) of every failure; a rerun retries them."""

    def __str__(self) -> str:
        made = ", ".join(f"{d}: {n}" for d, n in self.generated.items()) or "nothing"
        return (f"{self.examples} examples: {self.written} written, {self.skipped} already "
                f"stored, {self.failed} failed; generated {made}")


def plan_directions(
    real: Collection[Modality], sources: Mapping[Modality, Sequence[Modality]] = DEFAULT_SOURCES
) -> dict[Modality, Modality]:
    """Missing modality -> the real modality it is translated from (absent if none fits)."""
    out = {}
    for target in MODALITIES:
        if target in real:
            continue
        for source in sources.get(target, ()):
            if source in real:
                out[target] = source
                break
    return out


def drop_media(examples: Iterable[RawExample], drop: Collection[Modality | str]) -> Iterator[RawExample]:
    """The examples without the ``drop`` modalities: simulates unpaired data from a paired
    corpus (``drop=[text, speech]`` leaves images only)."""
    names = {Modality.parse(m) for m in drop}
    for example in examples:
        yield replace(
            example,
            speech=None if Modality.SPEECH in names else example.speech,
            image=None if Modality.IMAGE in names else example.image,
            text=None if Modality.TEXT in names else example.text,
        )


def keep_ids(examples: Iterable[RawExample], ids: Collection[str]) -> Iterator[RawExample]:
    return (e for e in examples if e.id in ids)


def _encode(bundle: Bundle, modality: Modality, raw: Any) -> torch.Tensor:
    with torch.inference_mode():
        ids = torch.as_tensor(bundle.encode(modality, raw)).to(torch.long).cpu()
    if ids.dim() != 1 or ids.numel() == 0:
        raise TmtError(f"{modality.value} codec returned no 1-D ids")
    return ids


def backtranslate_examples(
    examples: Iterable[RawExample],
    bundle: Bundle,
    writer: TokenStoreWriter,
    *,
    options: DecodingOptions | None = None,
    sources: Mapping[Modality, Sequence[Modality]] = DEFAULT_SOURCES,
    batch_size: int = 32,
    shard_size: int = 1024,
    progress: bool = True,
) -> BacktranslateSummary:
    """Add each example's real tokens plus generated tokens of its missing modalities to
    ``writer`` (``pseudo=True``, source ``<source>:pseudo-<generated>``).

    Examples already in ``writer`` are skipped. A medium that fails to encode, or a generation
    that comes out empty, leaves the example out (logged and counted; a rerun retries it).
    ``writer`` must not flush by itself (give it a shard size above ``shard_size``): shards are
    committed here, at chunk boundaries, every ``shard_size`` examples or more. SIGTERM or
    Ctrl-C stops the run after the current chunk: every finished example is written, then
    KeyboardInterrupt says how many (a rerun adds exactly the rest).
    """
    options = options or bundle.default_options
    writer.set_vocab_sizes({m: bundle.translator.vocab.size_of(m) for m in MODALITIES})
    summary = BacktranslateSummary()
    bar = tqdm(desc="backtranslate", unit="ex", disable=bar_off(not progress), dynamic_ncols=True)
    pending = 0
    stream = iter(examples)
    # SIGTERM and Ctrl-C stop between chunks (a chunk is never left half in the store, which
    # would make a rerun translate the rest of it in another batch); the finished ones are kept
    stop = StopRequest((signal.SIGTERM, signal.SIGINT))
    try:
        while not stop.requested and (chunk := list(islice(stream, batch_size))):
            chunk_options = options
            if options.seed is not None:  # a per-chunk seed: sampling does not depend on resumes
                chunk_options = replace(options, seed=zlib.crc32(f"{options.seed}:{chunk[0].id}".encode()))
            summary.examples += len(chunk)
            todo = [e for e in chunk if e.id not in writer]
            summary.skipped += len(chunk) - len(todo)
            for example in _translate_chunk(todo, bundle, chunk_options, sources, summary):
                writer.add(example)
                summary.written += 1
                pending += 1
            bar.update(len(chunk))
            bar.set_postfix(written=summary.written, failed=summary.failed, refresh=False)
            if pending >= shard_size:
                writer.flush()
                pending = 0
    finally:
        stop.restore()
    writer.flush()
    bar.close()
    if stop.requested:
        raise KeyboardInterrupt(f"stopped by signal: {summary.written} new examples kept in the "
                                "store; rerun to resume")
    log.info("backtranslate: %s", summary)
    return summary


def _translate_chunk(
    chunk: list[RawExample],
    bundle: Bundle,
    options: DecodingOptions,
    sources: Mapping[Modality, Sequence[Modality]],
    summary: BacktranslateSummary,
) -> list[TokenExample]:
    # 1. encode the real media
    real: dict[str, dict[Modality, torch.Tensor]] = {}
    raw_bytes: dict[str, dict[str, int]] = {}
    for example in chunk:
        tokens, sizes = {}, {}
        try:
            for m in MODALITIES:
                medium = example.media(m)
                if medium is None:
                    continue
                tokens[m] = _encode(bundle, m, medium)
                sizes[m.value] = (len(str(medium).encode()) if m is Modality.TEXT
                                  else Path(medium).stat().st_size)
        except Exception as error:  # one bad file must not stop a corpus
            _fail(summary, example.id, f"{m.value}: {type(error).__name__}: {error}")
            continue
        if not plan_directions(tokens, sources):
            _fail(summary, example.id, "nothing to back-translate (no missing modality that "
                  "its real media can generate)" if tokens else "no medium")
            continue
        real[example.id], raw_bytes[example.id] = tokens, sizes

    # 2. translate, one batch per direction (all sources of a batch share a modality)
    made: dict[str, dict[Modality, torch.Tensor]] = {i: {} for i in real}
    by_direction: dict[tuple[Modality, Modality], list[str]] = {}
    for example_id, tokens in real.items():
        for target, source in plan_directions(tokens, sources).items():
            by_direction.setdefault((source, target), []).append(example_id)
    for (source, target), ids in by_direction.items():
        outputs = generate(bundle.translator, [(source, real[i][source]) for i in ids], target,
                           options, batch_size=len(ids))
        for example_id, out in zip(ids, outputs):
            made[example_id][target] = out.to(torch.long)

    # 3. the pseudo records
    records = []
    for example in chunk:
        if example.id not in real:
            continue
        generated = made[example.id]
        empty = [m.value for m, ids in generated.items() if ids.numel() == 0]
        if empty:
            _fail(summary, example.id, f"generated an empty {', '.join(empty)}")
            continue
        for target in generated:
            name = f"{plan_directions(real[example.id], sources)[target].value}-{target.value}"
            summary.generated[name] = summary.generated.get(name, 0) + 1
        tokens = {**real[example.id], **generated}
        records.append(TokenExample(
            id=example.id, split=example.split, pseudo=True,
            source=pseudo_source(example.source or "unknown", generated),
            speech=tokens.get(Modality.SPEECH), image=tokens.get(Modality.IMAGE),
            text=tokens.get(Modality.TEXT), raw_bytes=raw_bytes[example.id],
        ))
    return records


def _fail(summary: BacktranslateSummary, example_id: str, reason: str) -> None:
    log.warning("skipping %s: %s", example_id, reason)
    summary.failed += 1
    summary.failures.append((example_id, reason.splitlines()[0]))


def backtranslate_dataset(
    dataset: str,
    root: str | Path,
    model: str | Path,
    out: str | Path,
    *,
    shard: str | None = None,
    drop: Collection[Modality | str] = (),
    ids_file: str | Path | None = None,
    image_from: Modality | str | None = None,
    options: DecodingOptions | None = None,
    batch_size: int = 32,
    shard_size: int = 1024,
    device: str = "cpu",
    progress: bool = True,
) -> BacktranslateSummary:
    """``tmt backtranslate DATASET``: read a corpus (optionally only the ids listed in
    ``ids_file``, without the ``drop`` modalities), keep shard ``I/N``, back-translate it with
    bundle ``model`` into the token store ``out``. ``image_from``: generate images from
    ``text`` (default) or ``speech``."""
    from tmt.data.readers import read_dataset
    from tmt.data.tokenize import parse_shard, shard_of

    examples: Iterable[RawExample] = read_dataset(dataset, root)
    if ids_file is not None:
        try:
            wanted = set(Path(ids_file).read_text(encoding="utf-8").split())
        except OSError as error:
            raise TmtError(f"cannot read the id list {ids_file}: {error.strerror}") from None
        examples = keep_ids(examples, wanted)
    if drop:
        examples = drop_media(examples, drop)
    prefix = "shard"
    if shard is not None:
        i, n = parse_shard(shard)
        examples = shard_of(examples, i, n)
        prefix = f"part{i}of{n}"  # parallel writers into one store never share a shard name
    sources = dict(DEFAULT_SOURCES)
    if image_from is not None:
        first = Modality.parse(image_from)
        if first is Modality.IMAGE:
            raise TmtError("images cannot be generated from images")
        sources[Modality.IMAGE] = (first, *(m for m in DEFAULT_SOURCES[Modality.IMAGE] if m is not first))
    bundle = Bundle.load(model, device=device)
    # The writer never flushes by itself: shards are cut at chunk boundaries (see above).
    with TokenStoreWriter(out, shard_size=2**62, prefix=prefix) as writer:
        return backtranslate_examples(
            examples, bundle, writer, options=options, sources=sources,
            batch_size=batch_size, shard_size=shard_size, progress=progress,
        )
