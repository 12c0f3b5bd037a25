"""How much shorter unit BPE makes the speech sequences the translator reads and writes.

Learns merges (tmt.speech.unit_bpe.UnitBPE) on the unit sequences of a token store's train
split (a store written with a codec without BPE; every voice, or with ``--voices input`` only
the records in the corpus's random input voices) for each vocabulary size, and prints the mean
length of the valid split's sequences in pieces against units, with the time the merges took to
learn and to apply: every merge replayed over all valid sequences at once (``replay``), and one
sequence at a time, as the token store encodes an utterance, both ways (``replay`` and
``encode``, which runs only the merges that apply). With ``--corpus`` (the tmt-shapes corpus
the store was written from) it also prints how much shorter each voice's valid utterances get.
With ``--dropout P ...`` it cuts the valid sequences again with BPE-dropout (the trainer's
``speech_bpe_dropout``, seed 0) with the last vocabulary: how much longer, how many utterances
are cut otherwise than as learned, and the share of pieces the learned cut does not have.

    python benchmarks/unit_bpe.py --store work/store-shapes [--vocab-sizes 400 600 1000 1600]
        [--train-examples 8000] [--voices all|input] [--corpus work/shapes-20k]
        [--dropout 0.05 0.1 0.2]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np

from tmt.data.readers import SHAPES_INPUT_VOICES
from tmt.data.shapes import read_corpus
from tmt.data.store import TokenStore
from tmt.speech.unit_bpe import UnitBPE


def speech_sequences(store: TokenStore, limit: int, input_voices_only: bool = False
                     ) -> tuple[list[np.ndarray], list[str]]:
    """Up to ``limit`` random (seed 0) speech sequences and their record ids."""
    rng = np.random.default_rng(0)
    rows = rng.permutation(len(store))[:limit]
    examples = (store[int(i)] for i in rows)
    kept = [ex for ex in examples if ex.speech is not None
            and (not input_voices_only or ex.source == SHAPES_INPUT_VOICES)]
    return [ex.speech.numpy() for ex in kept], [ex.id for ex in kept]


def voices_of(corpus: str, ids: list[str]) -> list[str]:
    """The voice of each store record: id ``N`` is utterance 0 of example N, ``N.vK`` utterance K."""
    voices = {x.id: [u.voice for u in x.speech] for x in read_corpus(corpus, "valid")}
    out = []
    for record in ids:
        example, _, k = record.partition(".v")
        out.append(voices[example][int(k) if k else 0])
    return out


def dropout_table(bpe: UnitBPE, valid: list[np.ndarray], chances: list[float]) -> None:
    """Valid sequences cut with BPE-dropout at each chance, against the learned cut."""
    learned = [bpe.encode(s) for s in valid]
    mean = float(np.mean([len(p) for p in learned]))
    print(f"\nBPE-dropout, {bpe.vocab_size} pieces, {len(valid)} valid sequences (learned cut: mean "
          f"{mean:.1f} pieces)")
    print("| dropout | mean length | longer by | cut otherwise | pieces not in the learned cut | "
          "cutting, one at a time |\n| ---: | ---: | ---: | ---: | ---: | ---: |")
    for chance in chances:
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        cuts = [bpe.encode(s, chance, rng) for s in valid]
        seconds = time.perf_counter() - start
        other = np.mean([not np.array_equal(a.numpy(), b.numpy()) for a, b in zip(learned, cuts, strict=True)])
        new = sum((Counter(b.tolist()) - Counter(a.tolist())).total() for a, b in zip(learned, cuts, strict=True))
        total = sum(len(b) for b in cuts)
        length = total / len(cuts)
        print(f"| {chance:g} | {length:.1f} | {length / mean:.2f}x | {other:.1%} | {new / total:.1%} | "
              f"{seconds / len(cuts) * 1e3:.2f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="work/store-shapes")
    parser.add_argument("--vocab-sizes", type=int, nargs="+", default=[400, 600, 1000, 1600])
    parser.add_argument("--train-examples", type=int, default=8000,
                        help="train records (random, seed 0) whose sequences the merges are learned on")
    parser.add_argument("--voices", choices=("all", "input"), default="all",
                        help="learn on every record's speech, or on the input-voice records' only")
    parser.add_argument("--corpus", help="the store's tmt-shapes corpus: also print per voice")
    parser.add_argument("--dropout", type=float, nargs="*", default=[],
                        help="BPE-dropout chances to cut the valid sequences with (last vocabulary)")
    args = parser.parse_args()
    store = TokenStore(args.store)
    base = store.vocab_sizes["speech"]
    train, _ = speech_sequences(store.split("train"), args.train_examples, args.voices == "input")
    valid, ids = speech_sequences(store.split("valid"), len(store.split("valid")))
    voices = voices_of(args.corpus, ids) if args.corpus else []
    units = float(np.mean([len(s) for s in valid]))
    print(f"{args.store}: {len(train)} train sequences ({args.voices} voices), {len(valid)} valid; "
          f"{base} units; valid mean {units:.1f} units")
    print("| vocabulary | valid mean length | shorter by | learn | apply to valid: all at once | "
          "one at a time, replay | one at a time, encode |\n"
          "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    by_voice: dict[int, list[int]] = {}
    for size in args.vocab_sizes:
        start = time.perf_counter()
        bpe = UnitBPE.learn(train, base, size)
        learned = time.perf_counter() - start
        start = time.perf_counter()
        pieces = bpe.replay(valid)
        applied = time.perf_counter() - start
        start = time.perf_counter()
        for sequence in valid:
            bpe.replay([sequence])
        replayed = time.perf_counter() - start
        start = time.perf_counter()
        for sequence in valid:
            bpe.encode(sequence)
        one_by_one = time.perf_counter() - start
        by_voice[bpe.vocab_size] = [len(p) for p in pieces]
        mean = float(np.mean(by_voice[bpe.vocab_size]))
        print(f"| {bpe.vocab_size} | {mean:.1f} | {units / mean:.2f}x | {learned:.1f} s | {applied:.2f} s | "
              f"{replayed:.2f} s | {one_by_one:.2f} s |")
    if args.dropout:
        dropout_table(bpe, valid, args.dropout)
    if voices:
        sizes = list(by_voice)
        print("\nvalid utterances per voice: mean units, and how much shorter each vocabulary makes them")
        print("| voice | utterances | units | " + " | ".join(f"{s}" for s in sizes) + " |")
        print("| --- | ---: | ---: | " + " | ".join("---:" for _ in sizes) + " |")
        lengths = np.array([len(s) for s in valid])
        for voice in sorted(set(voices)):
            rows = np.array([v == voice for v in voices])
            mean_units = lengths[rows].mean()
            ratios = [mean_units / np.array(by_voice[s])[rows].mean() for s in sizes]
            print(f"| {voice} | {rows.sum()} | {mean_units:.1f} | "
                  + " | ".join(f"{r:.2f}x" for r in ratios) + " |")


if __name__ == "__main__":
    main()
