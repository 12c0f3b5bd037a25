"""The image judge's training, on a tmt-shapes corpus's ground-truth TRAIN images only.

    tmt codec train judge --corpus work/shapes-20k --out tmt/assets/judges/image

The valid split picks the best epoch; the test and compositional splits are never seen.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from tmt.data.shapes import ShapesExample, read_corpus, read_meta
from tmt.data.shapes_world import Record, canonical_record
from tmt.errors import TmtError
from tmt.eval.image_judge import ImageJudge, ImageJudgeConfig, ImageJudgeNet, layout_index
from tmt.eval.judge_report import judge_accuracy as evaluate
from tmt.files import save_torch
from tmt.train.run_state import StepStop, load_checkpoint, run_options

IGNORE = -100
"""Target of a head that does not apply (second object of a one-object scene, …)."""


def record_targets(record: Record, config: ImageJudgeConfig) -> dict[str, int]:
    """Class index per head for one (canonicalized) record; IGNORE where it does not apply."""
    rec = canonical_record(record)
    objs = rec["objects"]
    t = dict.fromkeys(config.heads(), IGNORE)
    t["count"] = len(objs) - 1
    for n, obj in enumerate(objs, start=1):
        t[f"shape{n}"] = config.shapes.index(obj["shape"])
        t[f"colour{n}"] = config.colours.index(obj["colour"])
        t[f"size{n}"] = config.sizes.index(obj["size"])
    if len(objs) == 1:
        t["position"] = config.positions.index(rec["position"])
    else:
        t["relation"] = config.relations.index(rec["relation"])
    return t


def load_images(examples: list[ShapesExample], image_size: int) -> torch.Tensor:
    """(N, 3, S, S) uint8 tensor of the examples' pictures."""
    arrays = np.empty((len(examples), image_size, image_size, 3), dtype=np.uint8)
    for i, ex in enumerate(examples):
        with Image.open(ex.image) as f:
            im = f.convert("RGB")
        if im.size != (image_size, image_size):
            im = im.resize((image_size, image_size), Image.Resampling.BILINEAR)
        arrays[i] = np.asarray(im)
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous()


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mild degradations (blur, noise) so the judge also reads imperfect generated images."""
    b = x.shape[0]
    blur = torch.rand(b, generator=gen) < 0.3
    if blur.any():
        x = x.clone()
        x[blur] = F.avg_pool2d(x[blur], 3, stride=1, padding=1, count_include_pad=False)
    sigma = torch.rand(b, 1, 1, 1, generator=gen) * 0.04
    return (x + sigma * torch.randn(x.shape, generator=gen)).clamp(0, 1)


def _render_heldout(n: int, seed: int, image_size: int) -> tuple[torch.Tensor, list[Record]]:
    """n scenes with held-out pairs, from a random stream no corpus example uses."""
    from tmt.data.shapes_render import render_scene
    from tmt.data.shapes_world import sample_record

    rng = np.random.default_rng([seed, 0xC0305])
    records = [sample_record(rng, compositional=True) for _ in range(n)]
    arrays = np.stack([np.asarray(render_scene(r, rng, image_size)) for r in records])
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous(), records


def train_image_judge(
    corpus: str | Path,
    out: str | Path,
    *,
    config: ImageJudgeConfig | None = None,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    max_train: int | None = None,
    init: str | Path | None = None,
    extra_heldout: int = 0,
    log: bool = True,
    checkpoint: str | Path | None = None,
    run: dict[str, Any] | None = None,
) -> ImageJudge:
    """Train on the corpus's train split, keep the best epoch on valid, save to ``out``.

    ``init`` starts from a trained judge. ``extra_heldout`` > 0 adds that many freshly
    rendered scenes holding the held-out (compositional) colour–shape pairs — never the
    corpus's compositional split itself — for a judge that also reads unseen pairs.
    ``checkpoint``: the training state is saved there after every epoch and, on SIGTERM or
    Ctrl-C, after the current batch (then KeyboardInterrupt); the same call resumes from it
    (``run``: what makes it this run's, see :func:`tmt.train.run_state.load_checkpoint`).
    """
    torch.manual_seed(seed)
    meta = read_meta(corpus)
    model = ImageJudge.load(init, device).model if init else None
    config = model.config if model else config or ImageJudgeConfig(image_size=int(meta["image_size"]))
    train = read_corpus(corpus, "train")[:max_train]
    valid = read_corpus(corpus, "valid")
    if not train:
        raise TmtError(f"{corpus} has no train examples")
    x_train = load_images(train, config.image_size)
    records = [ex.attributes for ex in train]
    if extra_heldout > 0:
        x_extra, extra_records = _render_heldout(extra_heldout, seed, int(meta["image_size"]))
        if x_extra.shape[-1] != config.image_size:
            x_extra = F.interpolate(x_extra.float(), size=config.image_size, mode="bilinear")
            x_extra = x_extra.round().clamp(0, 255).to(torch.uint8)
        x_train = torch.cat([x_train, x_extra])
        records += extra_records
    heads = list(config.heads())
    targets = [record_targets(r, config) for r in records]
    y_train = torch.tensor([[t[h] for h in heads] for t in targets])  # (N, heads)
    n_train = len(records)

    model = model or ImageJudgeNet(config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(n_train / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.15
    )
    gen = torch.Generator().manual_seed(seed)
    best, epoch, position, total = -1.0, 0, 0, 0.0
    order = torch.arange(n_train)
    state = None if checkpoint is None else load_checkpoint(Path(checkpoint), run or {}, device)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        best, epoch, position, total = state["best"], state["epoch"], state["position"], state["total"]
        order = state["order"]
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if log:
            print(f"resumed from {checkpoint} at epoch {epoch + 1}, batch {position}", flush=True)

    def save() -> None:
        if checkpoint is not None:
            save_torch({"model": model.state_dict(), "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(), "best": best, "epoch": epoch,
                        "position": position, "total": total, "order": order,
                        "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                        "run": run or {}}, checkpoint)

    start = time.time()
    # a step is a batch; SIGTERM / Ctrl-C checkpoint after the current one (mid-epoch too)
    with StepStop() as stop:
        while epoch < epochs and not stop():
            if position == 0:  # a new epoch
                start, total = time.time(), 0.0
                order = torch.randperm(n_train, generator=gen)
            model.train()
            idx = order[position * batch_size : (position + 1) * batch_size]
            x = _augment(x_train[idx].float() / 255.0, gen).to(device)
            y = y_train[idx].to(device)
            # teacher forcing: objects are pooled over the true layout's regions
            layout = layout_index(y[:, heads.index("count")], y[:, heads.index("relation")].clamp(min=0))
            logits = model(x, layout)
            loss = sum(
                F.cross_entropy(logits[h], y[:, j], ignore_index=IGNORE)
                for j, h in enumerate(heads)
                if (y[:, j] != IGNORE).any()
            )
            opt.zero_grad()
            loss.backward()  # type: ignore[union-attr]
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)  # type: ignore[union-attr]
            position += 1
            if position < steps_per_epoch:
                continue
            judge = ImageJudge(model, device)
            acc = evaluate(judge, valid) if valid else {"exact": 0.0}
            if log:
                print(
                    f"epoch {epoch + 1}/{epochs} loss {total / n_train:.4f} valid "
                    + " ".join(f"{k} {v:.4f}" for k, v in acc.items())
                    + f" ({time.time() - start:.0f} s)",
                    flush=True,
                )
            if acc["exact"] >= best:
                best = acc["exact"]
                # save every improvement: an interrupted run still leaves its best judge
                config.extra = {
                    "corpus": str(corpus),
                    "train_examples": len(train),
                    "extra_heldout_rendered": extra_heldout,
                    "init": str(init) if init else None,
                    "epoch": epoch + 1,
                    "epochs": epochs,
                    "valid": acc,
                }
                judge.save(out)
            epoch, position = epoch + 1, 0
            save()
        if stop.stopped:
            save()
            stop.interrupt(epoch * steps_per_epoch + position, checkpoint)
    return ImageJudge.load(out, device)  # what ships: fp16 weights read back as fp32


@dataclass(kw_only=True)
class JudgeOptions:
    """An image judge run."""

    corpus: Path
    """tmt-shapes corpus directory."""
    out: Path
    """Where the judge is written (every improvement on the valid split)."""
    epochs: int = 10
    batch_size: int = 128
    lr: float = 3e-3
    seed: int = 0
    threads: int = 1
    """Torch CPU threads."""
    max_train: int | None = None
    """Cap on the train examples."""
    init: Path | None = None
    """Start from this trained judge."""
    extra_heldout: int = 0
    """Also train on this many freshly rendered scenes with the held-out pairs."""
    work: Path = Path("work/judge-train")
    """The checkpoint (``checkpoint.pt``: every epoch, and on SIGTERM or Ctrl-C after the
    current batch) a rerun of the same command resumes from."""
    device: str = "cpu"
    """Torch device the judge trains on (cpu, cuda, cuda:1, ...)."""


RESUMABLE = ("threads", "work", "device")
"""Options a rerun may change and still resume the checkpoint (it refuses other changes)."""


def train_judge(options: JudgeOptions) -> ImageJudge:
    """Train as ``options`` say, then print the judge's accuracy on the held-out splits."""
    torch.set_num_threads(options.threads)
    judge = train_image_judge(
        options.corpus, options.out, epochs=options.epochs, batch_size=options.batch_size,
        lr=options.lr, seed=options.seed, max_train=options.max_train, init=options.init,
        extra_heldout=options.extra_heldout, device=options.device,
        checkpoint=Path(options.work) / "checkpoint.pt", run=run_options(options, RESUMABLE),
    )
    for split in ("test", "compositional"):
        examples = read_corpus(options.corpus, split)
        if examples:
            acc = evaluate(judge, examples)
            print(f"{split} ({len(examples)}): " + " ".join(f"{k} {v:.4f}" for k, v in acc.items()))
    return judge
