"""Seconds per translator training step for each way of laying out a step's forward passes.

The layouts compute the same loss (tests/unit/test_train.py checks the gradients); they differ
in padding and in how many times a source is encoded:

- per direction: one pass per direction (each padded to its longest pair);
- sources_per_pass N: each direction split into passes of at most N pairs of similar lengths;
- share_encoder: one pass per source modality; an example's directions with that source read
  one encoding of it (speech->text and speech->image of an utterance);
- both, and both under bfloat16 autocast.

The other rows change what is computed, for their cost only: the dropout masks drawn by
``bernoulli_`` (``torch.nn.Dropout``, which the translator's uniform masks replace), and no
attention-weight dropout, in float32 and under bf16 autocast (the ninth round's settings,
recipes/shapes/README.md). The rows that do not say otherwise keep attention dropout 0.1.

Each layout gets its own trainer from the same seed; the layouts take turns step by step, so a
change of machine load hits them alike.

    python benchmarks/train_step.py [--config recipes/shapes/translator.yaml] [--steps 12]
        [--layouts NAME ...]   # some rows only (names as printed; the first is the baseline)
        [--stores DIR ...]     # each layout on each token store (e.g. speech in units and in
                               # unit-BPE pieces), rows taking turns as before
        [--profile N]          # then N more steps of the first row under torch.profiler: the
                               # operators that take the most time (self CPU, summed over the N)
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from tmt.train.config import TrainConfig
from tmt.train.loop import Trainer
from tmt.train.run import load_train_data
from tmt.translator.factory import UniformMaskDropout, replace_dropouts
from tmt.translator.model import TargetGroup, Translator

ROOT = Path(__file__).resolve().parents[1]

BERNOULLI = "bernoulli masks"
"""Layout key (not a config key): put back torch.nn.Dropout in place of the uniform masks."""
FULL_HEAD = "full-vocabulary head"
"""Layout key (not a config key): the training head projects onto every id of the vocabulary
and masks the other modalities' logits (as before ``Translator._group_loss_sums`` projected onto
the target modality's ids only; the same loss, tests/unit/test_translator.py)."""
LAYOUTS: dict[str, dict[str, Any]] = {
    "per direction": {"share_encoder": False, "sources_per_pass": 0},
    "sources_per_pass 16": {"share_encoder": False, "sources_per_pass": 16},
    "share_encoder": {"share_encoder": True, "sources_per_pass": 0},
    "share_encoder + 16": {"share_encoder": True, "sources_per_pass": 16},
    "share_encoder + 16, bf16": {"share_encoder": True, "sources_per_pass": 16, "autocast": "bf16"},
    "share_encoder + 16, bf16, full-vocabulary head": {
        "share_encoder": True, "sources_per_pass": 16, "autocast": "bf16", FULL_HEAD: True},
    "share_encoder + 16, bernoulli masks": {"share_encoder": True, "sources_per_pass": 16,
                                            BERNOULLI: True},
    "share_encoder + 16, no attention dropout": {"share_encoder": True, "sources_per_pass": 16,
                                                 "model": {"attn_dropout_p": 0.0}},
    "share_encoder + 16, no attention dropout, bf16": {
        "share_encoder": True, "sources_per_pass": 16, "autocast": "bf16",
        "model": {"attn_dropout_p": 0.0}},
    "share_encoder + 16, no attention dropout, bf16, bernoulli masks": {
        "share_encoder": True, "sources_per_pass": 16, "autocast": "bf16",
        "model": {"attn_dropout_p": 0.0}, BERNOULLI: True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "recipes/shapes/translator.yaml"))
    parser.add_argument("--steps", type=int, default=12, help="timed steps per layout")
    parser.add_argument("--start", type=int, default=100, help="first step (data order) timed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="examples per step (default: the config's; the recipe's two "
                        "1-thread processes take 24 each)")
    parser.add_argument("--layouts", nargs="+", choices=list(LAYOUTS), default=list(LAYOUTS),
                        metavar="NAME", help="rows to time, the first being the baseline "
                        "(default: all; the bf16 rows are slow where bf16 is emulated)")
    parser.add_argument("--stores", nargs="+", metavar="DIR",
                        help="token stores to time each layout on (default: the config's)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="after timing, profile N steps of the first row and print its "
                        "costliest operators")
    args = parser.parse_args()
    stores: list[str | None] = list(args.stores) if args.stores else [None]

    trainers = {}
    for store in stores:
        data = None
        for layout_name in args.layouts:
            layout = LAYOUTS[layout_name]
            settings = {k: v for k, v in layout.items() if k not in (BERNOULLI, FULL_HEAD)}
            overrides = {"out_dir": "/nonexistent", "num_threads": args.threads, **settings,
                         **({"batch_size": args.batch_size} if args.batch_size else {}),
                         "model": {"attn_dropout_p": 0.1, **settings.get("model", {})}}
            if store is not None:
                overrides["stores"] = [store]
            config = TrainConfig.load(args.config, overrides)
            if data is None:
                data = load_train_data(config)
            train, valid, sizes = data
            trainer = Trainer(config, train, valid, vocab_sizes=sizes)
            if layout.get(BERNOULLI):
                replace_dropouts(trainer.translator, UniformMaskDropout, torch.nn.Dropout)
            if layout.get(FULL_HEAD):
                use_full_head(trainer.translator)
            trainer.step = args.start
            trainer.train_step()  # warm-up, not timed
            trainers[layout_name if store is None else f"{layout_name} [{store}]"] = trainer
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(args.steps):
        for name, trainer in trainers.items():
            start = time.perf_counter()
            trainer.train_step()
            times[name].append(time.perf_counter() - start)
    config = next(iter(trainers.values())).config
    print(f"{args.config}: batch {config.batch_size}, {config.directions_per_example} directions per "
          f"example, {args.steps} steps each from step {args.start}, {torch.get_num_threads()} threads")
    base_name = next(iter(trainers))
    base = statistics.median(times[base_name])
    print(f"| layout | s/step (median) | vs {base_name} |\n| --- | ---: | ---: |")
    for name, ts in times.items():
        median = statistics.median(ts)
        print(f"| {name} | {median:.3f} | {base / median:.2f}x |")
    if args.profile:
        profile(trainers[base_name], base_name, args.profile)


def use_full_head(translator: Translator) -> None:
    """Train ``translator`` with full-vocabulary logits, the other modalities' ids masked."""
    def group_loss_sums(decoded: torch.Tensor, group: TargetGroup, label_smoothing: float) -> Any:
        logits = translator.model.final_proj(decoded)  # (n, T, V)
        return translator._loss_sums(logits, group.target, group.direction, label_smoothing)

    translator._group_loss_sums = group_loss_sums  # type: ignore[method-assign]


def profile(trainer: Trainer, name: str, steps: int, rows: int = 20) -> None:
    """Operators of ``steps`` steps of ``trainer``, costliest first (self CPU time)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainer.train_step()
    print(f"\n{name}: {steps} profiled steps, operators by self CPU time")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


if __name__ == "__main__":
    main()
