"""The training loop: six-direction summed loss, AdamW, warm-up + cosine, exact resume, DDP.

Exact resume: the data order of step ``k`` is a pure function of ``(seed, k, rank)``, and a
checkpoint holds the model, optimizer, scheduler and RNG states. A run killed after a
checkpoint and resumed therefore ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from tmt import precision
from tmt.data.pseudo import generated_modalities
from tmt.errors import TmtError
from tmt.files import save_torch
from tmt.modality import DIRECTIONS, MODALITIES, Modality
from tmt.progress import bar_off
from tmt.speech.unit_bpe import UnitBPE
from tmt.train.config import TrainConfig
from tmt.train.distributed import Dist, local_device
from tmt.train.run_state import StopRequest, rng_state, seed_everything, set_rng_state
from tmt.train.sampling import batch_indices, mixed_batch_indices
from tmt.train.start import build_translator, lr_lambda, make_optimizer
from tmt.train.unit_noise import corrupt_units
from tmt.translator.model import Example, SharedSourceBatch, available_directions

log = logging.getLogger(__name__)

CHECKPOINT = "last.pt"
Direction = tuple[Modality, Modality]


class HasTokens(Protocol):
    def tokens(self, modality: Modality | str) -> Tensor | None: ...


def as_example(item: HasTokens | Mapping[Modality, Tensor]) -> Example:
    """A store record (``TokenExample``) or a plain mapping → ``{modality: local ids}``."""
    if isinstance(item, Mapping):
        return item
    out = {}
    for m in MODALITIES:
        ids = item.tokens(m)
        if ids is not None:
            out[m] = torch.as_tensor(ids, dtype=torch.long)
    return out


def group_by_direction(
    pairs: Sequence[tuple[Example, Direction]],
) -> list[list[tuple[Example, Direction]]]:
    """The pairs split by direction, in ``DIRECTIONS`` order (empty groups dropped)."""
    groups: dict[Direction, list[tuple[Example, Direction]]] = {d: [] for d in DIRECTIONS}
    for pair in pairs:
        groups[pair[1]].append(pair)
    return [g for g in groups.values() if g]


@dataclass
class TrainResult:
    step: int
    train_loss: float
    valid_loss: dict[str, float]
    seconds: float
    tokens_per_second: float


class Trainer:
    """Runs :class:`TrainConfig` over in-memory or memory-mapped examples.

    ``train_data`` / ``valid_data``: sequences of store records or ``{modality: ids}`` maps.
    """

    def __init__(
        self,
        config: TrainConfig,
        train_data: Sequence[Any],
        valid_data: Sequence[Any] = (),
        *,
        vocab_sizes: Mapping[str, int] | None = None,
        dist: Dist | None = None,
    ) -> None:
        if len(train_data) == 0:
            raise TmtError("no training examples")
        self.config = config
        self.train_data = train_data
        self.valid_data = valid_data
        self.dist = dist or Dist.single()
        self.directions = config.parsed_directions()
        self.direction_weights = config.direction_map("direction_weights")
        self.source_directions = {
            source: [d for d in config.parsed_directions(names) if d in self.directions]
            for source, names in config.source_directions.items()
        }
        self.pools: tuple[np.ndarray, np.ndarray] | None = None
        """(real, pseudo) example indices when ``pseudo_ratio`` is set."""
        if config.pseudo_ratio is not None:
            flags = _pseudo_flags(train_data)
            self.pools = (np.flatnonzero(~flags), np.flatnonzero(flags))
        self.out_dir = Path(config.out_dir)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        sizes = vocab_sizes or config.vocab
        if not sizes:
            raise TmtError("vocabulary sizes unknown: set 'vocab' in the config or use a store")
        self.unit_vocab = int(sizes.get(Modality.SPEECH.value, 0))
        """Speech units' vocabulary size (before ``speech_bpe``): what unit noise draws from."""
        if config.speech_unit_noise and not self.unit_vocab:
            raise TmtError("speech_unit_noise needs a speech vocabulary")
        self.speech_bpe = _speech_bpe(config, sizes)
        """``config.speech_bpe`` over the data's speech units (the translator's speech ids are
        its pieces), or None."""
        if self.speech_bpe is not None:
            sizes = {**sizes, Modality.SPEECH.value: self.speech_bpe.vocab_size}
        self._pieces: dict[tuple[int, int], Tensor] = {}
        """(id of the data, example index) → its speech's learned pieces, cut once."""
        # Same initial weights on every rank: seed before building the model.
        seed_everything(config.seed)
        self.device = local_device(config.device, self.dist)
        loss_weights = config.direction_map("loss_weights")
        self.loss_weights = torch.tensor([float(loss_weights.get(d, 1.0)) for d in DIRECTIONS],
                                         device=self.device)
        """Per direction (DIRECTIONS order), the multiplier of its mean token loss."""
        self.bf16 = precision.use_bf16(config.autocast, self.device)
        """Whether the training forward runs under bfloat16 autocast (``config.autocast``)."""
        if config.autocast == "auto" and self.dist.is_main:
            print(f"autocast auto: {'bfloat16' if self.bf16 else 'float32 (no native bf16)'}",
                  file=sys.stderr)
        self.translator = build_translator(config, sizes).to(self.device)
        self.model = self.dist.wrap(self.translator)
        self.optimizer = make_optimizer(self.translator, config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(config))
        self.step = 0
        # Dropout differs per rank (as in any DDP run); it is seeded so a run is reproducible.
        seed_everything(config.seed * 1000 + 1 + self.dist.rank)

    # -- checkpoints ----------------------------------------------------------------------

    def checkpoint_path(self) -> Path:
        return self.out_dir / CHECKPOINT

    def save_checkpoint(self) -> None:
        """Atomically write the full training state (rank 0 only)."""
        if not self.dist.is_main:
            return
        state = {
            "step": self.step,
            "model": self.translator.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_state(),
            "config": self.config.to_dict(),
        }
        save_torch(state, self.checkpoint_path())

    def maybe_resume(self) -> bool:
        path = self.checkpoint_path()
        if not path.is_file():
            return False
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as error:  # a truncated/corrupt file
            raise TmtError(f"cannot read checkpoint {path}: {error}") from None
        try:
            self.translator.load_state_dict(state["model"])
        except RuntimeError as error:
            first = str(error).splitlines()[0]
            raise TmtError(f"checkpoint {path} does not match the configured model: {first}") from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        set_rng_state(state["rng"])
        if self.dist.rank != 0:  # rank 0 saved its own dropout RNG; others re-derive theirs
            seed_everything(self.config.seed * 1000 + 1 + self.dist.rank + self.step)
        log.info("resumed from %s at step %d", path, self.step)
        return True

    # -- loop -----------------------------------------------------------------------------

    def train_step(self) -> tuple[float, int]:
        """One optimizer step on the loss summed over the six directions.

        The batch's (example, direction) pairs are padded one direction at a time: mixing a
        10-token caption with a 100-unit utterance in one tensor would mostly compute padding.
        Gradients accumulate over the per-direction backward passes (under DDP only the last
        one all-reduces), so the update is that of the summed loss. ``share_encoder`` and
        ``sources_per_pass`` reshape the passes, not the loss (see :meth:`passes`).
        """
        config = self.config
        if self.pools is None:
            indices = batch_indices(len(self.train_data), config.batch_size, self.step, config.seed,
                                    rank=self.dist.rank, world_size=self.dist.world_size)
        else:
            assert config.pseudo_ratio is not None
            indices = mixed_batch_indices(self.pools, config.pseudo_ratio, config.batch_size,
                                          self.step, config.seed, rank=self.dist.rank,
                                          world_size=self.dist.world_size)
        batches = [b.to(self.device) for b in self.passes(self.pairs(self.train_data, indices, self.step))]
        # each direction's loss is the mean over its target tokens in the whole batch (every
        # rank's share: DDP averages the ranks' gradients, so each rank's loss is scaled by the
        # world size), times its loss weight
        counts = torch.zeros(len(DIRECTIONS), device=self.device)
        for batch in batches:
            for group in batch.groups:
                counts.index_add_(0, group.direction, (group.target != 0).sum(-1).float())
        counts = self.dist.sum(counts).clamp(min=1) / self.dist.world_size
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        total, tokens = 0.0, 0
        for k, batch in enumerate(batches):
            last = k == len(batches) - 1
            sync = nullcontext() if last or self.dist.world_size == 1 else self.model.no_sync()  # type: ignore[operator]
            with sync:
                with self.autocast():
                    sums, _ = self.model(batch, config.label_smoothing)
                loss = (sums * self.loss_weights / counts).sum()
                loss.backward()
            total += float(loss.detach())
            tokens += sum(sum(g.target_lens) for g in batch.groups) + sum(batch.source_lens)
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.translator.parameters(), config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return total, tokens

    def passes(self, pairs: Sequence[tuple[Example, Direction]]) -> list[SharedSourceBatch]:
        """A step's (example, direction) pairs as forward passes: one per direction, or per
        source modality with ``share_encoder`` (an example's pairs with one source then read
        one encoder row); with ``sources_per_pass``, split further into passes of at most that
        many sources of similar lengths."""
        config = self.config
        rows: dict[tuple[Any, ...], tuple[Example, Modality, list[Modality]]] = {}
        for n, (example, (src, tgt)) in enumerate(pairs):
            # the same example object holds the same source: one row serves all its targets
            key = (id(example), src) if config.share_encoder else (n,)
            rows.setdefault(key, (example, src, []))[2].append(tgt)
        parts: dict[tuple[Modality, ...], list[tuple[Example, Modality, list[Modality]]]] = {}
        for row in rows.values():
            parts.setdefault((row[1],) if config.share_encoder else (row[1], row[2][0]), []).append(row)
        out: list[SharedSourceBatch] = []
        for part_key in sorted(parts, key=_part_order):
            part = parts[part_key]
            chunks = [part]
            if 0 < config.sources_per_pass < len(part):
                part = sorted(part, key=lambda row: len(row[0][row[1]]))
                count = -(-len(part) // config.sources_per_pass)
                size = -(-len(part) // count)
                chunks = [part[i : i + size] for i in range(0, len(part), size)]
            out.extend(self.translator.shared_source_batch(chunk) for chunk in chunks)
        return out

    def autocast(self) -> Any:
        """The training forward's autocast context (``config.autocast``)."""
        return precision.bf16_autocast(self.bf16, self.device)

    def pairs(
        self, data: Sequence[Any], indices: Sequence[int], step: int | None
    ) -> list[tuple[Example, Direction]]:
        """(example, direction) pairs of a batch: each example's available directions, limited
        by its source's ``source_directions`` and, for a training ``step``, sampled down to
        ``directions_per_example`` (deterministically from seed, step and index; weighted by
        ``direction_weights`` when set)."""
        out: list[tuple[Example, Direction]] = []
        for i in indices:
            item = data[i]
            example = as_example(item)
            allowed = self.allowed_directions(item)
            directions = available_directions(example, allowed)
            k = self.config.directions_per_example
            if step is not None and 0 < k < len(directions):
                rng = np.random.default_rng([self.config.seed, step, i])
                p = None
                if self.direction_weights:
                    w = np.array([self.direction_weights.get(d, 1.0) for d in directions])
                    p = w / w.sum()
                chosen = rng.choice(len(directions), k, replace=False, p=p)
                directions = [directions[j] for j in sorted(chosen)]
            speech_source = example
            reshaped = self.speech_bpe is not None or self.config.speech_unit_noise
            if reshaped and Modality.SPEECH in example:
                example, speech_source = self.speech_pieces(data, i, example, step)
            out.extend((speech_source if d[0] is Modality.SPEECH else example, d) for d in directions)
        return out

    def speech_pieces(
        self, data: Sequence[Any], i: int, example: Example, step: int | None
    ) -> tuple[Example, Example]:
        """An example with its speech as a target reads it, and as its pairs with a speech
        source read it. For a training ``step``, the source's units are corrupted with
        ``speech_unit_noise`` (seeded by seed, step, index). With ``speech_bpe`` both are cut
        into pieces: the target as learned, the source afresh with merges skipped when
        ``speech_bpe_dropout`` is set (seeded likewise)."""
        units = example[Modality.SPEECH]
        source_units = units
        noise = self.config.speech_unit_noise
        if step is not None and noise:
            rng = np.random.default_rng([self.config.seed, step, i, 2])
            source_units = corrupt_units(units, float(rng.uniform(0.0, noise)), self.unit_vocab, rng)
        if self.speech_bpe is None:
            return example, {**example, Modality.SPEECH: source_units}
        key = (id(data), i)
        if key not in self._pieces:
            self._pieces[key] = self.speech_bpe.encode(units)
        plain = {**example, Modality.SPEECH: self._pieces[key]}
        dropout = self.config.speech_bpe_dropout
        if step is None or (not dropout and source_units is units):
            return plain, plain
        rng = np.random.default_rng([self.config.seed, step, i, 1])
        return plain, {**example, Modality.SPEECH: self.speech_bpe.encode(source_units, dropout, rng)}

    def allowed_directions(self, item: Any) -> list[Direction]:
        """The configured directions an example may train: its source's ``source_directions``
        if listed; for a pseudo example (unless ``pseudo_as_target``), those whose target
        is a real medium; otherwise all."""
        source = getattr(item, "source", "")
        if source in self.source_directions:
            return self.source_directions[source]
        if getattr(item, "pseudo", False) and not self.config.pseudo_as_target:
            generated = generated_modalities(source)
            return [d for d in self.directions if d[1] not in generated]
        return self.directions

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean per-direction loss (label smoothing off) on the validation examples: the mean of
        the per-batch losses, the batches shared out among the ranks (the same figures as one
        process with the same ``batch_size``)."""
        n = min(len(self.valid_data), self.config.valid_examples)
        if n == 0:
            return {}
        self.translator.eval()
        sums = torch.zeros(len(DIRECTIONS))
        counts = torch.zeros(len(DIRECTIONS))
        size = self.config.batch_size
        for start in range(self.dist.rank * size, n, self.dist.world_size * size):
            indices = range(start, min(n, start + size))
            for group in group_by_direction(self.pairs(self.valid_data, indices, None)):
                batch = self.translator.batch_from_pairs(group)
                assert batch is not None
                _, per_direction = self.translator(batch.to(self.device), 0.0)
                present = ~torch.isnan(per_direction.cpu())
                sums[present] += per_direction.cpu()[present]
                counts[present] += 1
        self.dist.sum(sums)
        self.dist.sum(counts)
        return {
            f"{s.value}-{t.value}": float(sums[i] / counts[i])
            for i, (s, t) in enumerate(DIRECTIONS)
            if counts[i] > 0
        }

    def report(self, valid: dict[str, float], train_loss: float, bar: tqdm) -> None:
        """Validation figures to stderr and to ``OUT_DIR/metrics.jsonl``."""
        text = " ".join(f"{k}={v:.3f}" for k, v in valid.items())
        bar.write(f"step {self.step} valid {text}", file=sys.stderr)
        record = {"step": self.step, "train_loss": train_loss, "valid": valid,
                  "lr": self.scheduler.get_last_lr()[0]}
        with (self.out_dir / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")

    def fit(self, on_step: Callable[[int], None] | None = None) -> TrainResult:
        """Train to ``max_steps`` (resuming if a checkpoint exists); save the final model.

        ``on_step(step)`` is called after every step (tests use it to interrupt a run).
        A Ctrl-C writes a checkpoint before stopping, so nothing is lost.
        """
        config = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.dist.is_main:
            (self.out_dir / "config.yaml").write_text(json.dumps(config.to_dict(), indent=2))
        self.maybe_resume()
        started = time.perf_counter()
        tokens_seen = 0
        running = float("nan")
        valid: dict[str, float] = {}
        bar = tqdm(
            total=config.max_steps, initial=self.step, desc="train", unit="step",
            disable=bar_off(not self.dist.is_main), dynamic_ncols=True,
        )
        # SIGTERM and Ctrl-C both stop between steps: the checkpoint holds the RNG state of a
        # step boundary, so a resumed run equals an uninterrupted one even with dropout on
        stop = StopRequest((signal.SIGTERM, signal.SIGINT))
        try:
            while self.step < config.max_steps and not stop.requested:
                loss, tokens = self.train_step()
                tokens_seen += tokens
                running = loss if math.isnan(running) else 0.95 * running + 0.05 * loss
                bar.update(1)
                if self.step % config.log_every == 0 or self.step == config.max_steps:
                    bar.set_postfix(loss=f"{running:.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
                if self.step % config.valid_every == 0 or self.step == config.max_steps:
                    valid = self.validate()
                    if valid and self.dist.is_main:
                        self.report(valid, running, bar)
                if self.step % config.checkpoint_every == 0:
                    self.save_checkpoint()
                if on_step is not None:
                    on_step(self.step)
        except KeyboardInterrupt:
            self.save_checkpoint()
            bar.close()
            raise
        finally:
            stop.restore()
        bar.close()
        if stop.requested:  # SIGTERM: checkpoint the finished steps and stop
            self.save_checkpoint()
            raise KeyboardInterrupt(f"stopped by signal at step {self.step}; rerun to resume")
        self.save_checkpoint()
        if self.dist.is_main:
            self.translator.save(self.out_dir / "model")
        seconds = time.perf_counter() - started
        return TrainResult(
            step=self.step,
            train_loss=running,
            valid_loss=valid,
            seconds=seconds,
            tokens_per_second=tokens_seen / max(seconds, 1e-9),
        )


def _speech_bpe(config: TrainConfig, sizes: Mapping[str, int]) -> UnitBPE | None:
    """``config.speech_bpe``, checked against the data's speech vocabulary (its units)."""
    if not config.speech_bpe:
        return None
    bpe = UnitBPE.load(config.speech_bpe)
    units = sizes.get(Modality.SPEECH.value)
    if units != bpe.base_size:
        raise TmtError(f"speech_bpe {config.speech_bpe} merges {bpe.base_size} units, but the "
                       f"training data's speech has {units} (a store of pieces, or other units?)")
    return bpe


def _part_order(key: tuple[Modality, ...]) -> tuple[int, ...]:
    """Passes in ``DIRECTIONS`` order (by source modality, then target)."""
    return tuple(MODALITIES.index(m) for m in key)


def _pseudo_flags(data: Sequence[Any]) -> np.ndarray:
    """Per example: back-translated or not (a token store answers without reading tokens)."""
    flags = getattr(data, "pseudo_flags", None)
    if callable(flags):
        return np.asarray(flags(), dtype=bool)
    return np.array([bool(getattr(x, "pseudo", False)) for x in data], dtype=bool)
