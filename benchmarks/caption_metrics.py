"""Time the captioning metrics on a COCO-test-sized set (5000 items x 5 references).

    python benchmarks/caption_metrics.py [--items 5000] [--refs 5]

Captions are random sentences over a small vocabulary (the timing, not the values, is the
point). Prints seconds per stage: PTB tokenizer (Java), BLEU+ROUGE-L+CIDEr, METEOR (Java).
"""

from __future__ import annotations

import argparse
import random
import time

from tmt.eval.captioning import caption_metrics, java_missing

WORDS = ("a man woman dog cat riding sitting on the in of with red blue green horse bus street "
         "table plate pizza train water field grass two people standing next to").split()


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(7, 14))).capitalize() + "."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--refs", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(0)
    hyps = [sentence(rng) for _ in range(args.items)]
    refs = [[sentence(rng) for _ in range(args.refs)] for _ in range(args.items)]
    print(f"{args.items} items x {args.refs} references; java: {java_missing() or 'present'}")
    runs = [("ptb tokenizer + BLEU/ROUGE-L/CIDEr", "ptb", ("bleu4", "rouge_l", "cider")),
            ("simple tokenizer + BLEU/ROUGE-L/CIDEr", "simple", ("bleu4", "rouge_l", "cider")),
            ("simple tokenizer + METEOR", "simple", ("meteor",))]
    for label, tokenizer, metrics in runs:
        start = time.perf_counter()
        out = caption_metrics(hyps, refs, metrics=metrics, tokenizer=tokenizer)
        values = {k: round(v, 4) for k, v in out.scores.items() if v is not None}
        print(f"{label:40s} {time.perf_counter() - start:7.1f} s  {values} {out.unavailable or ''}")


if __name__ == "__main__":
    main()
