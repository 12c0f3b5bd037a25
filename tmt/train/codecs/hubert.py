"""HuBERT pretraining: a small HuBERT learns corpus audio (HuBERT iteration 1, on CPU).

    tmt codec train hubert --corpus DIR --targets work/tok_mfcc --out work/hubert --minutes 30

Masked prediction (HuBERT, Hsu et al. 2021): frames of the conv features are replaced by a
learned mask embedding over random spans (p=0.08 starts, span 10, ~50% of frames) and the
transformer must predict, at masked frames, the k-means cluster of the MFCC frame
(iteration-1 targets; ``targets`` is a fitted MFCC :class:`SpeechTokenizer`). The model is
a ``transformers.HubertModel`` saved with ``save_pretrained``: it loads back through
``HubertFeatures.from_pretrained`` like any HuggingFace HuBERT. A checkpoint in ``work``
(every ``checkpoint_every`` steps, when the time is up, and after the current step on SIGTERM
or Ctrl-C) is what a rerun of the same command resumes from.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from tmt.files import save_torch
from tmt.speech.audio import load_audio
from tmt.speech.features import num_frames
from tmt.speech.tokenizer import SpeechTokenizer
from tmt.train.codecs.speech_data import read_manifest
from tmt.train.run_state import (
    StepStop,
    load_checkpoint,
    random_state,
    run_options,
    set_random_state,
)


def small_config(num_layers: int = 4):  # type: ignore[no-untyped-def]
    """A small HuBERT (~3.5M parameters): 64-channel conv front end (its backward pass over raw
    samples dominates CPU time), 4-layer 256-d transformer."""
    from transformers import HubertConfig

    return HubertConfig(
        hidden_size=256, num_hidden_layers=num_layers, num_attention_heads=4, intermediate_size=1024,
        conv_dim=(64,) * 7, feat_extract_norm="group", conv_bias=False,
        num_conv_pos_embeddings=64, num_conv_pos_embedding_groups=8,
        hidden_dropout=0.1, activation_dropout=0.0, attention_dropout=0.1, feat_proj_dropout=0.0,
        layerdrop=0.0, mask_time_prob=0.08, mask_time_length=10,
    )


def span_mask(batch: int, frames: int, lengths: list[int], prob: float = 0.08, span: int = 10,
              gen: torch.Generator | None = None) -> torch.Tensor:
    """(B, F) bool: each valid frame starts a masked span of ``span`` frames with ``prob``."""
    starts = torch.rand(batch, frames, generator=gen) < prob
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    for offset in range(span):
        mask[:, offset:] |= starts[:, : frames - offset]
    valid = torch.arange(frames)[None, :] < torch.tensor(lengths)[:, None]
    return mask & valid


@dataclass(kw_only=True)
class HubertOptions:
    """A HuBERT pretraining run (on a wall-time budget)."""

    corpus: Path
    """tmt-shapes corpus directory."""
    targets: Path
    """A fitted MFCC speech tokenizer: its units are the iteration-1 labels."""
    out: Path
    """HuBERT directory to write (``save_pretrained``; at every checkpoint too)."""
    minutes: float = 30.0
    """Wall-time budget (resumed runs count the time of the earlier ones)."""
    work: Path = Path("work/hubert-train")
    """The checkpoint (``checkpoint.pt``) a rerun of the same command resumes from."""
    checkpoint_every: int = 500
    """Steps between checkpoints (one is also written at the end and on SIGTERM or Ctrl-C)."""
    layers: int = 4
    batch_size: int = 8
    crop_seconds: float = 2.0
    max_utterances: int = 6000
    lr: float = 5e-4
    seed: int = 0
    max_steps: int | None = None
    """Stop after this many steps even if time is left (a quick check of the trainer)."""
    device: str = "cpu"
    """Torch device the model trains on (cpu, cuda, cuda:1, ...)."""


RESUMABLE = ("minutes", "max_steps", "work", "checkpoint_every", "device")
"""Options a rerun may change and still resume the checkpoint (it refuses other changes)."""


def pretrain_hubert(options: HubertOptions) -> None:
    """Pretrain as ``options`` say; the model is saved to ``options.out``."""

    torch.set_num_threads(1)
    torch.manual_seed(options.seed)
    from transformers import HubertModel

    labeler = SpeechTokenizer.load(options.targets)
    items = read_manifest(options.corpus, ("train",))
    rng = random.Random(options.seed)
    rng.shuffle(items)
    items = items[: options.max_utterances]
    # 1. audio + iteration-1 targets (MFCC k-means, one label per 20 ms frame)
    t0 = time.time()
    data: list[tuple[torch.Tensor, torch.Tensor]] = []
    for it in items:
        audio = load_audio(it.path)
        data.append((torch.from_numpy(audio), labeler.frame_units(audio)))
    print(f"labelled {len(data)} utterances in {time.time() - t0:.0f}s", flush=True)

    device = torch.device(options.device)
    model = HubertModel(small_config(options.layers))
    model.to(device)  # type: ignore[arg-type]  # transformers types .to() for dtypes only
    head = nn.Linear(model.config.hidden_size, labeler.vocab_size).to(device)
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=options.lr, weight_decay=0.01)
    crop = int(options.crop_seconds * 16000)
    gen = torch.Generator().manual_seed(options.seed)
    warmup, step, elapsed = 200, 0, 0.0
    checkpoint, run = Path(options.work) / "checkpoint.pt", run_options(options, RESUMABLE)
    state = load_checkpoint(checkpoint, run, device)
    if state is not None:
        model.load_state_dict(state["model"])
        head.load_state_dict(state["head"])
        opt.load_state_dict(state["optimizer"])
        step, elapsed = state["step"], state["elapsed"]
        set_random_state(rng, state["rng"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed from {checkpoint} at step {step}", flush=True)
    started = time.time() - elapsed
    deadline = started + options.minutes * 60

    def save() -> None:
        save_torch({"model": model.state_dict(), "head": head.state_dict(),
                    "optimizer": opt.state_dict(), "step": step, "elapsed": time.time() - started,
                    "rng": random_state(rng), "generator": gen.get_state(),
                    "torch_rng": torch.get_rng_state(), "run": run}, checkpoint)

    model.train()
    with StepStop() as stop:  # SIGTERM / Ctrl-C: checkpoint after the current step
        while (time.time() < deadline and (options.max_steps is None or step < options.max_steps)
               and not stop()):
            batch = rng.sample(data, options.batch_size)
            waves, labels, lengths = [], [], []
            for wave, lab in batch:
                # random crop aligned to the 320-sample frame grid so labels stay aligned
                start = 320 * rng.randint(0, max(0, (len(wave) - crop) // 320))
                w = wave[start : start + crop]
                n = min(num_frames(len(w)), len(lab) - start // 320)
                waves.append(F.pad(w, (0, crop - len(w))))
                labels.append(F.pad(lab[start // 320 : start // 320 + n], (0, num_frames(crop) - n), value=-100))
                lengths.append(n)
            x, y = torch.stack(waves), torch.stack(labels)
            mask = span_mask(len(batch), y.shape[1], lengths, gen=gen)
            attn = torch.zeros_like(x, dtype=torch.long)
            for i, (full, _) in enumerate(batch):
                attn[i, : min(len(full), crop)] = 1
            x, y, mask, attn = x.to(device), y.to(device), mask.to(device), attn.to(device)
            hidden = model(x, attention_mask=attn, mask_time_indices=mask).last_hidden_state  # (B, F, D)
            logits = head(hidden[:, : y.shape[1]])
            loss = F.cross_entropy(logits[mask], y[mask], ignore_index=-100)
            for group in opt.param_groups:
                group["lr"] = options.lr * min(1.0, (step + 1) / warmup)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            step += 1
            if step % 50 == 0:
                acc = (logits[mask].argmax(-1) == y[mask]).float().mean().item()
                print(f"step {step} loss {loss.item():.3f} masked acc {acc:.3f}", flush=True)
            if step % options.checkpoint_every == 0:
                save()
                model.save_pretrained(options.out)
        save()  # also when the time is up: a rerun with a larger budget continues from here
        if stop.stopped:
            stop.interrupt(step, checkpoint)
    model.save_pretrained(options.out)
    print(f"done: {step} steps -> {options.out}", flush=True)
