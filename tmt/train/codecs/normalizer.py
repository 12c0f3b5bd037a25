"""Trainer of the unit normalizer: CTC from any voice's audio to the output voice's units.

For every train example of a tmt-shapes corpus the teacher (the speech codec's k-means
tokenizer) turns the output-voice utterance into its deduplicated units; the normalizer learns
to emit those units from the example's utterances in *other* voices (and from the output voice
itself), each passed through a random chain of signal-level transformations
(:mod:`tmt.data.augment`: speed, synthetic rooms, band limits, white and babble noise), a
vocal-tract-length warp of its spectrum and SpecAugment masks. Only the corpus's training
voices are read (espeak-ng and flite kal16/kal); the unseen evaluation voices never are.

A checkpoint (``WORK/last.pt``: weights, optimizer, step, random states) is written every
``checkpoint_every`` steps and on SIGTERM/SIGINT between steps (then KeyboardInterrupt: ``tmt``
exits with code 130); a rerun resumes from it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tmt.data.augment import AugmentOptions, random_augment
from tmt.errors import TmtError
from tmt.eval.speech_judge import unit_error_rate
from tmt.files import save_torch
from tmt.speech.audio import load_audio
from tmt.speech.normalizer import NormalizerConfig, UnitNormalizer, num_parameters
from tmt.speech.tokenizer import SpeechTokenizer
from tmt.train.codecs.speech_data import SpeechItem, read_manifest
from tmt.train.run_state import StepStop
from tmt.train.schedule import warmup_cosine


@dataclass(kw_only=True)
class NormalizerOptions:
    """What :func:`train_normalizer` trains on and how."""

    corpus: str
    """A tmt-shapes corpus (its train split trains, its valid split measures)."""
    teacher: str
    """A speech tokenizer directory (config.json + model.safetensors): the units to learn."""
    out: str
    """Where the trained normalizer is written (config.json + model.safetensors)."""
    work: str
    """Scratch directory: the teacher's units, checkpoints, the log."""
    steps: int = 4000
    batch_size: int = 24
    lr: float = 2e-3
    warmup_steps: int = 300
    weight_decay: float = 0.01
    output_voice_share: float = 0.25
    """Chance that a training utterance is the output voice's own (augmented like the rest)."""
    augment: float = 0.8
    """Chance that an utterance goes through a random signal chain (see AugmentOptions)."""
    vtlp: float = 0.5
    """Chance of a vocal-tract-length warp, factor uniform in ``vtlp_range``."""
    vtlp_range: tuple[float, float] = (0.85, 1.18)
    """Lowest and highest warp factor (0.5 <= low <= high <= 2)."""
    spec_augment: bool = True
    test_warps: tuple[float, ...] = (1.0,)
    """The normalizer's test-time warps (``NormalizerConfig.warps``): used by validation and
    saved with the model; training is unaffected."""
    valid_every: int = 500
    valid_utterances: int = 200
    checkpoint_every: int = 100
    seed: int = 0
    threads: int = 1
    device: str = "cpu"
    architecture: str = "{}"
    """JSON overrides of :class:`NormalizerConfig` (e.g. '{"dim": 256, "layers": 4}')."""
    hubert_dir: str | None = None
    """Start the ``hubert`` backbone from this local HuggingFace HubertModel directory."""
    codec: str | None = None
    """A speech codec (the teacher's tokenizer and its vocoder) to add the normalizer to..."""
    codec_out: str | None = None
    """...written here as one speech codec at the end."""


@dataclass(frozen=True)
class _Example:
    path: Path
    units: torch.Tensor


def teacher_units(tokenizer: SpeechTokenizer, items: list[SpeechItem], cache: Path) -> dict[str, torch.Tensor]:
    """Example id → the teacher's units of its output-voice utterance (cached in ``cache``)."""
    if cache.exists():
        return dict(torch.load(cache, weights_only=True))
    from tqdm import tqdm

    out: dict[str, torch.Tensor] = {}
    chosen = [it for it in items if it.is_output_voice]
    for start in tqdm(range(0, len(chosen), 32), desc="teacher units", unit="batch"):
        part = chosen[start : start + 32]
        for it, units in zip(part, tokenizer.encode_batch([it.path for it in part]), strict=True):
            out[it.example_id] = units.clone()
    save_torch(out, cache)
    return out


def _pad(waves: list[np.ndarray], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([max(w.size, 400) for w in waves])
    batch = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : w.size] = torch.from_numpy(w)
    return batch.to(device), lengths.to(device)


def train_normalizer(o: NormalizerOptions) -> dict[str, Any]:
    """Train (or resume) a unit normalizer; returns its final validation report."""
    if (o.codec is None) != (o.codec_out is None):
        raise TmtError("--codec and --codec-out go together (the codec to extend, where to write it)")
    low, high = o.vtlp_range
    if not 0.5 <= low <= high <= 2.0:
        raise TmtError(f"--vtlp-range must be two factors with 0.5 <= low <= high <= 2, got {low} {high}")
    if not o.test_warps or not all(0.5 <= w <= 2.0 for w in o.test_warps):
        raise TmtError(f"--test-warps must be factors in [0.5, 2], got {' '.join(map(str, o.test_warps))}")
    if o.steps <= 0 or o.batch_size <= 0:
        raise TmtError(f"--steps and --batch-size must be positive, got {o.steps} and {o.batch_size}")
    torch.set_num_threads(o.threads)
    work, out = Path(o.work), Path(o.out)
    work.mkdir(parents=True, exist_ok=True)
    teacher = SpeechTokenizer.load(o.teacher)
    items = read_manifest(o.corpus, ("train", "valid"))
    units = teacher_units(teacher, items, work / "teacher-units.pt")
    def examples(split: str, output_voice: bool) -> list[_Example]:
        return [_Example(it.path, units[it.example_id]) for it in items
                if it.split == split and it.is_output_voice == output_voice and it.example_id in units]

    own, others = examples("train", True), examples("train", False)
    valid = examples("valid", False)[: o.valid_utterances]
    if not others or not own:
        raise TmtError(f"{o.corpus}: no train utterances in other voices than the output voice")

    overrides = json.loads(o.architecture)
    if o.hubert_dir is not None:
        from transformers import HubertModel

        pretrained = HubertModel.from_pretrained(o.hubert_dir)
        overrides = {"backbone": "hubert", "hubert": pretrained.config.to_dict(), **overrides}
    cfg = NormalizerConfig(num_units=teacher.vocab_size, **{"warps": list(o.test_warps), **overrides})
    torch.manual_seed(o.seed)
    model = UnitNormalizer(cfg)
    if o.hubert_dir is not None:
        model.backbone.model.load_state_dict(pretrained.state_dict())  # type: ignore[union-attr]
    model.to(o.device)
    opt = torch.optim.AdamW(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)

    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, partial(warmup_cosine, warmup=o.warmup_steps, total=o.steps, floor=0.05))
    rng = np.random.default_rng(o.seed)
    step = 0
    ckpt = work / "last.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step = int(state["step"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed from {ckpt} at step {step}", flush=True)
    report: dict[str, Any] = {}
    if step >= o.steps and (work / "log.jsonl").exists():  # finished: keep its last validation
        scored = [json.loads(x) for x in (work / "log.jsonl").read_text().splitlines() if "valid_uer" in x]
        report = scored[-1] if scored else {}

    def save() -> None:
        save_torch({"model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "step": step,
                    "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                    "options": json.loads(json.dumps(asdict(o), default=str))}, ckpt)

    pool_rng = np.random.default_rng([o.seed, 1])
    babble_pool = [load_audio(others[int(i)].path) for i in pool_rng.choice(len(others), min(200, len(others)), replace=False)]
    aug = AugmentOptions()
    ctc = torch.nn.CTCLoss(blank=model.blank, reduction="mean", zero_infinity=True)
    log = (work / "log.jsonl").open("a")
    print(f"normalizer: {num_parameters(model) / 1e6:.2f}M parameters, {len(others)} + {len(own)} "
          f"utterances, {o.steps} steps of {o.batch_size}", flush=True)
    started, losses = time.perf_counter(), []
    with StepStop() as stop, log:  # SIGTERM / Ctrl-C: checkpoint after the current step
        while step < o.steps and not stop():
            model.train()
            batch = [own[int(rng.integers(len(own)))] if rng.random() < o.output_voice_share
                     else others[int(rng.integers(len(others)))] for _ in range(o.batch_size)]
            waves = []
            for ex in batch:
                w = load_audio(ex.path)
                if rng.random() < o.augment:
                    w = random_augment(w, rng, aug, babble_pool)
                waves.append(w)
            audio, lengths = _pad(waves, o.device)
            warp = torch.from_numpy(np.where(rng.random(len(batch)) < o.vtlp,
                                             rng.uniform(*o.vtlp_range, len(batch)), 1.0)).float()
            logp, frames = model(audio, lengths, warp=warp.to(o.device), spec_mask=o.spec_augment)
            targets = torch.cat([ex.units for ex in batch]).to(o.device)
            target_lengths = torch.tensor([len(ex.units) for ex in batch], device=o.device)
            loss = ctc(logp.transpose(0, 1), targets, frames, target_lengths)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            step += 1
            losses.append(float(loss.detach()))
            if step % 20 == 0:
                rate = (time.perf_counter() - started) / len(losses)
                line = {"step": step, "loss": round(float(np.mean(losses[-20:])), 4),
                        "lr": sched.get_last_lr()[0], "s_per_step": round(rate, 3)}
                print(json.dumps(line), flush=True)
                log.write(json.dumps(line) + "\n")
                log.flush()
            if step % o.checkpoint_every == 0 or step == o.steps:
                save()
            if step % o.valid_every == 0 or step == o.steps:
                report = {"step": step, "valid_uer": validate(model, valid)}
                print(json.dumps(report), flush=True)
                log.write(json.dumps(report) + "\n")
                log.flush()
        if stop.stopped:
            save()
            stop.interrupt(step, ckpt)
    model.eval()
    model.save(out)
    if o.codec is not None and o.codec_out is not None:
        from tmt.speech.codec import SpeechCodec

        SpeechCodec.load(o.codec).with_normalizer(UnitNormalizer.load(out)).save(o.codec_out)
        print(f"speech codec with its normalizer -> {o.codec_out}", flush=True)
    (out / "train.json").write_text(json.dumps({"options": asdict(o), "report": report}, indent=2) + "\n")
    return report


def validate(model: UnitNormalizer, valid: list[_Example]) -> float:
    """Unit error rate of greedy decoding on the valid split's other-voice utterances."""
    model.eval()
    hyps = model.encode_batch([torch.from_numpy(load_audio(e.path)) for e in valid])
    return round(unit_error_rate(hyps, [e.units for e in valid]), 4)
