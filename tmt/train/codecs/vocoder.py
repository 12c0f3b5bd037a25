"""The units→mel vocoder's training on the corpus's output voice.

    tmt codec train vocoder --corpus DIR --tokenizer work/speech/tokenizer \
        --out work/speech/vocoder --codec-out tmt/assets/codecs/speech --steps 1500

``out`` receives the best vocoder (on the valid split) during training; ``codec_out``
receives, at the end, the complete :class:`SpeechCodec` (tokenizer + that vocoder). A
checkpoint in ``work`` (every ``checkpoint_every`` steps, at the end, and after the current
step on SIGTERM or Ctrl-C) is what a rerun of the same command resumes from.

Targets: units + durations from the tokenizer, log-mel (hop 320: one frame per unit frame)
from the same audio. Loss: L1 on log-mel + MSE on log(1 + duration).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from tmt.errors import TmtError
from tmt.files import save_torch
from tmt.speech.audio import load_audio
from tmt.speech.mel import MelFrontEnd
from tmt.speech.tokenizer import SpeechTokenizer
from tmt.speech.unit_mel import UnitMelConfig, UnitMelModel, UnitMelVocoder
from tmt.train.codecs.speech_data import read_manifest
from tmt.train.run_state import (
    StepStop,
    load_checkpoint,
    random_state,
    run_options,
    set_random_state,
)

Example = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # units (U,), durations (U,), mel (F, M)


def prepare(tokenizer: SpeechTokenizer, paths: list[Path], front: MelFrontEnd) -> list[Example]:
    """Units, durations and aligned log-mel frames for each path."""
    out: list[Example] = []
    for start in range(0, len(paths), 16):
        waves = [load_audio(p) for p in paths[start : start + 16]]
        for wave, (units, durs) in zip(waves, tokenizer.encode_batch_with_durations(waves)):
            mel = front.log_mel(wave).T  # (F', M), F' = 1 + T // hop >= sum(durs)
            total = int(durs.sum())
            out.append((units, durs, mel[:total].clone()))
    return out


def collate(batch: list[Example], pad_unit: int) -> tuple[torch.Tensor, ...]:
    lengths = torch.tensor([len(u) for u, _, _ in batch])
    units = torch.full((len(batch), int(lengths.max())), pad_unit, dtype=torch.long)
    durs = torch.zeros(len(batch), int(lengths.max()), dtype=torch.long)
    frames = max(m.shape[0] for _, _, m in batch)
    mels = torch.zeros(len(batch), frames, batch[0][2].shape[1])
    for i, (u, d, m) in enumerate(batch):
        units[i, : len(u)] = u
        durs[i, : len(d)] = d
        mels[i, : m.shape[0]] = m
    return units, lengths, durs, mels


def loss_fn(model: UnitMelModel, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    device = next(model.parameters()).device
    units, lengths, durs, mels = (t.to(device) for t in batch)
    pred, fmask, log_dur = model(units, lengths, durs)
    mel_l1 = ((pred - mels).abs() * fmask).sum() / (fmask.sum() * mels.shape[-1])
    umask = (durs > 0).float()
    dur_mse = (((log_dur - torch.log1p(durs.float())) ** 2) * umask).sum() / umask.sum()
    return mel_l1, dur_mse


def train(
    train_set: list[Example],
    valid_set: list[Example],
    config: UnitMelConfig,
    *,
    steps: int | None = None,
    minutes: float | None = None,
    batch_size: int = 16,
    lr: float = 1e-3,
    out: Path | None = None,
    log_every: int = 100,
    seed: int = 0,
    init: UnitMelModel | None = None,
    device: str | torch.device = "cpu",
    checkpoint: Path | None = None,
    checkpoint_every: int = 100,
    run: dict[str, Any] | None = None,
) -> UnitMelModel:
    """Train for ``steps`` optimizer steps (reproducible), or until ``minutes`` of wall time
    pass if that comes first; the best model on ``valid_set`` is saved to ``out``.

    With ``checkpoint``, the training state is saved there every ``checkpoint_every`` steps, at
    the end, and after the current step on SIGTERM or Ctrl-C (then KeyboardInterrupt); a call
    with the same arguments resumes from it (``minutes`` counts the time of every call)."""
    if steps is None and minutes is None:
        raise ValueError("give steps or minutes (or both)")
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = (init if init is not None else UnitMelModel(config)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    # the epochs' orders: each one shuffles the previous one in place
    order, position = list(range(len(train_set))), len(train_set)
    step, best, elapsed = 0, float("inf"), 0.0
    state = None if checkpoint is None else load_checkpoint(checkpoint, run or {}, device)
    if state is not None and checkpoint is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, best, elapsed = state["step"], state["best"], state["elapsed"]
        order, position = state["order"], state["position"]
        set_random_state(rng, state["rng"])
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed from {checkpoint} at step {step}", flush=True)
    started = time.time() - elapsed
    deadline = started + minutes * 60 if minutes is not None else float("inf")
    last = steps if steps is not None else -1

    def save() -> None:
        if checkpoint is not None:
            save_torch({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                        "best": best, "elapsed": time.time() - started, "order": order,
                        "position": position, "rng": random_state(rng),
                        "torch_rng": torch.get_rng_state(), "run": run or {}}, checkpoint)

    bar = tqdm(total=steps, initial=step, desc="vocoder", unit="step", mininterval=5)
    with StepStop() as stop:
        while step != last and time.time() < deadline and not stop():
            if position >= len(order):
                rng.shuffle(order)
                position = 0
            batch = [train_set[i] for i in order[position : position + batch_size]]
            position += batch_size
            model.train()
            mel_l1, dur_mse = loss_fn(model, collate(batch, config.vocab_size))
            opt.zero_grad()
            (mel_l1 + dur_mse).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            bar.update()
            done = step == last or time.time() >= deadline
            if step % log_every == 0 or done:
                model.eval()
                with torch.no_grad():
                    v = [loss_fn(model, collate(valid_set[i : i + 32], config.vocab_size)) for i in range(0, len(valid_set), 32)]
                vm = sum(float(a) for a, _ in v) / len(v)
                vd = sum(float(b) for _, b in v) / len(v)
                bar.write(f"step {step} train mel {mel_l1.item():.3f} dur {dur_mse.item():.3f} | valid mel {vm:.3f} dur {vd:.3f}")
                if out is not None and vm + vd < best:
                    best = vm + vd
                    UnitMelVocoder(model).save(out)
            if step % checkpoint_every == 0 or done:
                save()
        if stop.stopped:
            bar.close()
            save()
            stop.interrupt(step, checkpoint)
    bar.close()
    return model


RESUMABLE = ("steps", "minutes", "work", "checkpoint_every", "cache", "codec_out", "device")
"""Options a rerun may change and still resume the checkpoint (it refuses other changes)."""


@dataclass(kw_only=True)
class VocoderOptions:
    """A units→mel vocoder run."""

    corpus: Path
    """tmt-shapes corpus directory (the output voice's utterances are used)."""
    tokenizer: Path
    """The speech tokenizer whose units the vocoder reads."""
    out: Path
    """Vocoder directory: the best vocoder on the valid split, written during training."""
    steps: int | None = None
    """Optimizer steps (the recipe's setting: reproducible with ``seed``)."""
    minutes: float | None = None
    """Wall-time budget, alone or as a cap on ``steps`` (not reproducible; resumed runs count
    the time of the earlier ones)."""
    work: Path = Path("work/vocoder-train")
    """The checkpoint (``checkpoint.pt``) a rerun of the same command resumes from."""
    checkpoint_every: int = 100
    """Steps between checkpoints (one is also written at the end and on SIGTERM or Ctrl-C)."""
    seed: int = 0
    max_utterances: int = 4000
    dim: int = 192
    batch_size: int = 16
    cache: Path | None = None
    """torch.save file of the prepared examples (reused if present)."""
    init: Path | None = None
    """Continue from a saved vocoder directory."""
    codec_out: Path | None = None
    """Also write tokenizer + best vocoder as one speech codec here."""
    device: str = "cpu"
    """Torch device the vocoder trains on (cpu, cuda, cuda:1, ...)."""


def train_vocoder(options: VocoderOptions) -> None:
    """Train as ``options`` say (see the module docstring for what is written where)."""
    if options.steps is None and options.minutes is None:
        raise TmtError("give --steps (reproducible) or --minutes")
    torch.set_num_threads(1)
    tok = SpeechTokenizer.load(options.tokenizer)
    front = MelFrontEnd()
    cache = Path(options.cache) if options.cache else None
    if cache is not None and cache.exists():
        train_set, valid_set = torch.load(cache, weights_only=True)
    else:
        items = [it for it in read_manifest(options.corpus, ("train", "valid")) if it.is_output_voice]
        tr = [it.path for it in items if it.split == "train"][: options.max_utterances]
        va = [it.path for it in items if it.split == "valid"][:200]
        t0 = time.time()
        train_set, valid_set = prepare(tok, tr, front), prepare(tok, va, front)
        print(f"prepared {len(train_set)} train / {len(valid_set)} valid in {time.time() - t0:.0f}s", flush=True)
        if cache is not None:
            save_torch((train_set, valid_set), cache)
    cfg = UnitMelConfig(vocab_size=tok.vocab_size, dim=options.dim)
    init = UnitMelVocoder.load(options.init).model if options.init else None
    train(train_set, valid_set, init.cfg if init else cfg, steps=options.steps,
          minutes=options.minutes, batch_size=options.batch_size, out=Path(options.out), init=init,
          seed=options.seed, device=options.device, checkpoint=Path(options.work) / "checkpoint.pt",
          checkpoint_every=options.checkpoint_every, run=run_options(options, RESUMABLE))
    if options.codec_out:
        from tmt.speech.codec import SpeechCodec

        SpeechCodec(tok, UnitMelVocoder.load(options.out)).save(options.codec_out)
        print(f"speech codec -> {options.codec_out}", flush=True)

