"""CodeHiFiGAN training: multi-period + multi-scale discriminators, the HiFi-GAN losses, and
the trainer behind ``tmt codec train hifigan``.

Losses (HiFi-GAN / speech-resynthesis): least-squares adversarial loss, feature matching
(×2), mel-spectrogram L1 (×45), plus MSE on log(1 + duration) for the duration predictor.
A checkpoint in ``work`` (every ``checkpoint_every`` steps, at the end, and after the current
step on SIGTERM or Ctrl-C) is what a rerun of the same command resumes from.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from tmt.files import save_torch
from tmt.speech.audio import load_audio
from tmt.speech.hifigan import LRELU_SLOPE, CodeHiFiGAN, CodeHiFiGANConfig, CodeHiFiGANVocoder
from tmt.speech.tokenizer import SpeechTokenizer
from tmt.train.codecs.speech_data import read_manifest
from tmt.train.run_state import (
    StepStop,
    load_checkpoint,
    random_state,
    run_options,
    set_random_state,
)

FeatureMaps = list[torch.Tensor]


class PeriodDiscriminator(nn.Module):
    """Reshapes (B, 1, T) to (B, 1, T/p, p) and runs 2-D convs along time for period p."""

    def __init__(self, period: int, channels: tuple[int, ...] = (32, 128, 512, 1024, 1024)) -> None:
        super().__init__()
        self.period = period
        chans = (1, *channels)
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(chans[i], chans[i + 1], (5, 1), (3 if i < len(channels) - 1 else 1, 1), padding=(2, 0)))
            for i in range(len(channels))
        )
        self.post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, FeatureMaps]:
        b, c, t = x.shape
        if t % self.period:
            x = F.pad(x, (0, self.period - t % self.period), mode="reflect")
        x = x.view(b, c, -1, self.period)
        return _conv_stack(self.convs, self.post, x)


def _conv_stack(
    convs: nn.ModuleList, post: nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, FeatureMaps]:
    """Leaky-ReLU conv stack + output conv; every activation is kept for feature matching."""
    fmaps: FeatureMaps = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        fmaps.append(x)
    x = post(x)
    fmaps.append(x)
    return x.flatten(1), fmaps


class ScaleDiscriminator(nn.Module):
    """Grouped 1-D convs over the waveform at one scale (spectral norm on the first scale)."""

    def __init__(self, spectral: bool = False, width: int = 128) -> None:
        super().__init__()
        norm = spectral_norm if spectral else weight_norm
        w = width
        spec = [(1, w, 15, 1, 1, 7), (w, w, 41, 2, 4, 20), (w, 2 * w, 41, 2, 16, 20), (2 * w, 4 * w, 41, 4, 16, 20),
                (4 * w, 8 * w, 41, 4, 16, 20), (8 * w, 8 * w, 41, 1, 16, 20), (8 * w, 8 * w, 5, 1, 1, 2)]
        self.convs = nn.ModuleList(
            norm(nn.Conv1d(i, o, k, s, groups=min(g, i), padding=p)) for i, o, k, s, g, p in spec
        )
        self.post = norm(nn.Conv1d(8 * w, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, FeatureMaps]:
        return _conv_stack(self.convs, self.post, x)


class MultiDiscriminator(nn.Module):
    """MPD (periods 2, 3, 5, 7, 11) + MSD (raw, ×2 and ×4 average-pooled)."""

    def __init__(self, periods: tuple[int, ...] = (2, 3, 5, 7, 11), mpd_channels: tuple[int, ...] = (32, 128, 512, 1024, 1024), msd_width: int = 128) -> None:
        super().__init__()
        self.mpd = nn.ModuleList(PeriodDiscriminator(p, mpd_channels) for p in periods)
        self.msd = nn.ModuleList([ScaleDiscriminator(True, msd_width), ScaleDiscriminator(False, msd_width), ScaleDiscriminator(False, msd_width)])

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, FeatureMaps]]:
        outs = [d(x) for d in self.mpd]
        y = x
        for i, d in enumerate(self.msd):
            if i > 0:
                y = F.avg_pool1d(y, 4, 2, padding=2)
            outs.append(d(y))
        return outs

    @classmethod
    def tiny(cls) -> MultiDiscriminator:
        return cls(periods=(2, 3), mpd_channels=(4, 8), msd_width=4)


def discriminator_loss(real: list[tuple[torch.Tensor, FeatureMaps]], fake: list[tuple[torch.Tensor, FeatureMaps]]) -> torch.Tensor:
    return sum((torch.mean((1 - r) ** 2) + torch.mean(f**2) for (r, _), (f, _) in zip(real, fake)), torch.tensor(0.0))


def generator_adv_loss(fake: list[tuple[torch.Tensor, FeatureMaps]]) -> torch.Tensor:
    return sum((torch.mean((1 - f) ** 2) for f, _ in fake), torch.tensor(0.0))


def feature_matching_loss(real: list[tuple[torch.Tensor, FeatureMaps]], fake: list[tuple[torch.Tensor, FeatureMaps]]) -> torch.Tensor:
    total = torch.tensor(0.0)
    for (_, rmaps), (_, fmaps) in zip(real, fake):
        for r, f in zip(rmaps, fmaps):
            total = total + torch.mean(torch.abs(r.detach() - f))
    return 2.0 * total


class MelLoss(nn.Module):
    """L1 between log-mel spectrograms (80 bins, n_fft 1024, hop 256 as in HiFi-GAN)."""

    def __init__(self, sample_rate: int = 16000) -> None:
        super().__init__()
        import torchaudio

        self.mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=1024, hop_length=256, n_mels=80)

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        lf = torch.log(self.mel(fake).clamp_min(1e-5))
        lr = torch.log(self.mel(real).clamp_min(1e-5))
        return F.l1_loss(lf, lr)


@dataclass
class GanBatch:
    """Training segment: frame units (B, F), their waveform (B, 1, F*hop), and optionally the
    deduplicated units (B, U) with durations (B, U) for the duration-predictor loss."""

    frame_units: torch.Tensor
    wave: torch.Tensor
    units: torch.Tensor | None = None
    durations: torch.Tensor | None = None

    def to(self, device: torch.device) -> GanBatch:
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return GanBatch(self.frame_units.to(device), self.wave.to(device), move(self.units),
                        move(self.durations))


def train_step(
    gen: CodeHiFiGAN,
    disc: MultiDiscriminator,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    mel_loss: MelLoss,
    batch: GanBatch,
) -> dict[str, float]:
    """One HiFi-GAN update: discriminator first, then generator (+ duration predictor)."""
    fake = gen.generate(batch.frame_units)  # (B, 1, T)
    real = batch.wave[..., : fake.shape[-1]]
    # 1. discriminator on detached fake audio
    opt_d.zero_grad()
    d_loss = discriminator_loss(disc(real), disc(fake.detach()))
    d_loss.backward()
    opt_d.step()
    # 2. generator: adversarial + feature matching + 45 × mel L1 (+ duration MSE)
    opt_g.zero_grad()
    real_out, fake_out = disc(real), disc(fake)
    mel = mel_loss(fake.squeeze(1), real.squeeze(1))
    g_loss = generator_adv_loss(fake_out) + feature_matching_loss(real_out, fake_out) + 45.0 * mel
    dur = torch.zeros((), device=fake.device)
    if gen.duration is not None and batch.units is not None and batch.durations is not None:
        log_dur = gen.duration(gen.embed(batch.units))
        real_units = batch.durations > 0  # segments of a batch are padded with duration 0
        dur = F.mse_loss(log_dur[real_units], torch.log1p(batch.durations[real_units].float()))
        g_loss = g_loss + dur
    g_loss.backward()
    opt_g.step()
    return {k: float(v.detach()) for k, v in (("d", d_loss), ("g", g_loss), ("mel", mel), ("dur", dur))}


@dataclass(kw_only=True)
class HifiganOptions:
    """A CodeHiFiGAN run on the output voice of a corpus."""

    corpus: Path
    """tmt-shapes corpus directory (the output voice's train utterances are used)."""
    tokenizer: Path
    """The speech tokenizer whose units the vocoder reads."""
    out: Path
    """Vocoder directory to write at the end."""
    steps: int = 1000
    """GAN steps (one discriminator and one generator update each)."""
    batch_size: int = 8
    segment_units: int = 32
    """Unit frames (20 ms each) per training segment."""
    max_utterances: int = 2000
    lr: float = 2e-4
    preset: str = "tiny"
    """``tiny`` (CPU-sized generator and discriminators) or ``paper`` (speech-resynthesis)."""
    seed: int = 0
    work: Path = Path("work/hifigan-train")
    """The checkpoint (``checkpoint.pt``) a rerun of the same command resumes from."""
    checkpoint_every: int = 100
    """Steps between checkpoints (one is also written at the end and on SIGTERM or Ctrl-C)."""
    codec_out: Path | None = None
    """Also write tokenizer + this vocoder as one speech codec here."""
    device: str = "cpu"
    """Torch device the generator and discriminators train on (cpu, cuda, cuda:1, ...)."""


RESUMABLE = ("steps", "work", "checkpoint_every", "codec_out", "device")
"""Options a rerun may change and still resume the checkpoint (it refuses other changes)."""


def _segments(
    tokenizer: SpeechTokenizer, paths: list[Path], units_per_segment: int, hop: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(frame units (F,), waveform (F * hop,)) of each utterance, at least one segment long."""
    out = []
    for path in paths:
        wave = torch.from_numpy(load_audio(path))
        frames = tokenizer.frame_units(wave.numpy())
        frames = frames[: len(wave) // hop]
        if len(frames) >= units_per_segment:
            out.append((frames, wave[: len(frames) * hop]))
    return out


def _batch(
    data: list[tuple[torch.Tensor, torch.Tensor]], size: int, units: int, hop: int,
    rng: random.Random,
) -> GanBatch:
    """Random segments of random utterances, with their deduplicated units and durations
    (padded with duration 0, which the duration loss skips)."""
    frames, waves, deduped = [], [], []
    for frame_units, wave in rng.choices(data, k=size):
        start = rng.randint(0, len(frame_units) - units)
        frames.append(frame_units[start : start + units])
        waves.append(wave[start * hop : (start + units) * hop])
        deduped.append(torch.unique_consecutive(frames[-1], return_counts=True))
    longest = max(len(u) for u, _ in deduped)
    unit_ids = torch.zeros(size, longest, dtype=torch.long)
    durations = torch.zeros(size, longest, dtype=torch.long)
    for i, (u, d) in enumerate(deduped):
        unit_ids[i, : len(u)], durations[i, : len(d)] = u, d
    return GanBatch(torch.stack(frames), torch.stack(waves)[:, None], unit_ids, durations)


def train_hifigan(options: HifiganOptions) -> CodeHiFiGANVocoder:
    """Train CodeHiFiGAN as ``options`` say; the generator is saved to ``options.out``."""
    from tmt.errors import TmtError

    torch.manual_seed(options.seed)
    rng = random.Random(options.seed)
    tokenizer = SpeechTokenizer.load(options.tokenizer)
    items = [it for it in read_manifest(options.corpus, ("train",)) if it.is_output_voice]
    if options.preset == "paper":
        config, disc = CodeHiFiGANConfig(num_embeddings=tokenizer.vocab_size), MultiDiscriminator()
    else:
        config, disc = CodeHiFiGANConfig.tiny(tokenizer.vocab_size), MultiDiscriminator.tiny()
    data = _segments(tokenizer, [it.path for it in items[: options.max_utterances]],
                     options.segment_units, config.hop)
    if not data:
        raise TmtError(f"no output-voice train utterance of {options.corpus} is "
                       f"{options.segment_units} unit frames long")
    device = torch.device(options.device)
    gen, disc = CodeHiFiGAN(config).to(device), disc.to(device)
    opt_g = torch.optim.AdamW(gen.parameters(), options.lr, betas=(0.8, 0.99))
    opt_d = torch.optim.AdamW(disc.parameters(), options.lr, betas=(0.8, 0.99))
    mel_loss = MelLoss(config.sampling_rate).to(device)
    checkpoint, run, step = Path(options.work) / "checkpoint.pt", run_options(options, RESUMABLE), 0
    state = load_checkpoint(checkpoint, run, device)
    if state is not None:
        gen.load_state_dict(state["generator"])
        disc.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        step = state["step"]
        set_random_state(rng, state["rng"])
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed from {checkpoint} at step {step}", flush=True)

    def save() -> None:
        save_torch({"generator": gen.state_dict(), "discriminator": disc.state_dict(),
                    "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "step": step,
                    "rng": random_state(rng), "torch_rng": torch.get_rng_state(), "run": run},
                   checkpoint)

    with StepStop() as stop:  # SIGTERM / Ctrl-C: checkpoint after the current step
        while step < options.steps and not stop():
            batch = _batch(data, options.batch_size, options.segment_units, config.hop, rng).to(device)
            logs = train_step(gen, disc, opt_g, opt_d, mel_loss, batch)
            step += 1
            if step % 50 == 0 or step == options.steps:
                print(f"step {step} " + " ".join(f"{k}={v:.3f}" for k, v in logs.items()), flush=True)
            if step % options.checkpoint_every == 0 or step == options.steps:
                save()
        if stop.stopped:
            save()
            stop.interrupt(step, checkpoint)
    vocoder = CodeHiFiGANVocoder(gen.eval().cpu())
    vocoder.save(options.out)
    if options.codec_out:
        from tmt.speech.codec import SpeechCodec

        SpeechCodec(tokenizer, vocoder).save(options.codec_out)
        print(f"speech codec -> {options.codec_out}", flush=True)
    return vocoder
