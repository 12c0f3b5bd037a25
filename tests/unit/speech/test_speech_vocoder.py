from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from speech_fixtures import utterance

from tmt.errors import TmtError
from tmt.speech.hifigan import CodeHiFiGAN, CodeHiFiGANConfig, CodeHiFiGANVocoder
from tmt.speech.interop import load_fairseq_code_hifigan

K = 20


def fairseq_generator_state(cfg: dict) -> dict[str, torch.Tensor]:
    """Random weights under the key names and shapes of fairseq's CodeGenerator
    (fairseq/models/text_to_speech/{codehifigan,hifigan,fastspeech2}.py), with the old
    ``torch.nn.utils.weight_norm`` parameters ``weight_g`` / ``weight_v``."""
    g = torch.Generator().manual_seed(0)

    def rnd(*shape):
        return 0.1 * torch.randn(*shape, generator=g)

    def wn(prefix, out_ch, in_ch, k, state):
        state[f"{prefix}.weight_g"] = rnd(out_ch, 1, 1).abs() + 0.5
        state[f"{prefix}.weight_v"] = rnd(out_ch, in_ch, k)
        state[f"{prefix}.bias"] = rnd(in_ch if prefix.startswith("ups") else out_ch)

    s: dict[str, torch.Tensor] = {"dict.weight": rnd(cfg["num_embeddings"], cfg["embedding_dim"])}
    d = cfg["dur_predictor_params"]
    e, h, k = d["encoder_embed_dim"], d["var_pred_hidden_dim"], d["var_pred_kernel_size"]
    s |= {"dur_predictor.conv1.0.weight": rnd(h, e, k), "dur_predictor.conv1.0.bias": rnd(h),
          "dur_predictor.ln1.weight": torch.ones(h), "dur_predictor.ln1.bias": rnd(h),
          "dur_predictor.conv2.0.weight": rnd(h, h, k), "dur_predictor.conv2.0.bias": rnd(h),
          "dur_predictor.ln2.weight": torch.ones(h), "dur_predictor.ln2.bias": rnd(h),
          "dur_predictor.proj.weight": rnd(1, h), "dur_predictor.proj.bias": torch.tensor([1.0])}
    ch = cfg["upsample_initial_channel"]
    wn("conv_pre", ch, cfg["model_in_dim"], 7, s)
    block = 0
    for i, k in enumerate(cfg["upsample_kernel_sizes"]):
        # ConvTranspose1d weight is (in, out, k); weight_norm's g is (in, 1, 1)
        wn(f"ups.{i}", ch // 2**i, ch // 2 ** (i + 1), k, s)
        c = ch // 2 ** (i + 1)
        for rk, dil in zip(cfg["resblock_kernel_sizes"], cfg["resblock_dilation_sizes"]):
            for j in range(len(dil)):
                wn(f"resblocks.{block}.convs1.{j}", c, c, rk, s)
                wn(f"resblocks.{block}.convs2.{j}", c, c, rk, s)
            block += 1
    wn("conv_post", 1, c, 7, s)
    return s


@pytest.fixture
def fairseq_checkpoint(tmp_path):
    cfg = {
        "resblock": "1", "upsample_rates": [5, 4, 4, 2, 2], "upsample_kernel_sizes": [11, 8, 8, 4, 4],
        "upsample_initial_channel": 32, "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]],
        "num_embeddings": K, "embedding_dim": 8, "model_in_dim": 8, "segment_size": 8960,
        "code_hop_size": 320, "sampling_rate": 16000, "num_mels": 80,
        "dur_predictor_params": {"encoder_embed_dim": 8, "var_pred_hidden_dim": 8,
                                 "var_pred_kernel_size": 3, "var_pred_dropout": 0.5},
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    state = fairseq_generator_state(cfg)
    torch.save({"generator": state, "steps": 10}, tmp_path / "g_00000010")
    return tmp_path, state


def test_loads_fairseq_code_hifigan_checkpoint(fairseq_checkpoint):
    path, state = fairseq_checkpoint
    vocoder = load_fairseq_code_hifigan(path / "g_00000010", path / "config.json")
    model = vocoder.model
    assert torch.equal(model.embed.weight, state["dict.weight"])
    # weight norm: effective weight = g * v / ||v||
    v, g = state["conv_pre.weight_v"], state["conv_pre.weight_g"]
    assert torch.allclose(model.pre.weight, g * v / v.norm(dim=(1, 2), keepdim=True), atol=1e-6)
    units = torch.tensor([3, 7, 1, 19, 4])
    durations = torch.tensor([2, 1, 3, 1, 2])
    wave = vocoder.decode(units, durations)
    assert wave.dtype == np.float32 and wave.shape == (9 * 320,)  # 320 samples per unit frame
    assert np.abs(wave).max() <= 1.0 and np.abs(wave).max() > 0
    predicted = vocoder.decode(units)  # durations from the duration predictor
    assert len(predicted) == int(model.predict_durations(units[None]).sum()) * 320
    assert np.array_equal(predicted, vocoder.decode(units))  # deterministic in eval mode
    with pytest.raises(TmtError, match="unit ids"):
        vocoder.decode(torch.tensor([0, K]))


def test_mismatched_fairseq_checkpoint_is_one_line_error(fairseq_checkpoint):
    path, state = fairseq_checkpoint
    del state["conv_post.bias"]
    torch.save({"generator": state}, path / "broken")
    with pytest.raises(TmtError, match="does not match"):
        load_fairseq_code_hifigan(path / "broken", path / "config.json")
    torch.save({"model": {}}, path / "other")
    with pytest.raises(TmtError, match="no 'generator'"):
        load_fairseq_code_hifigan(path / "other", path / "config.json")


def test_code_hifigan_trains_with_mpd_msd_mel_and_feature_matching(tmp_path):
    from tmt.train.codecs.hifigan import GanBatch, MelLoss, MultiDiscriminator, train_step

    torch.manual_seed(0)
    gen = CodeHiFiGAN(CodeHiFiGANConfig.tiny(num_embeddings=K))
    disc = MultiDiscriminator.tiny()
    opt_g = torch.optim.AdamW(gen.parameters(), 2e-3, betas=(0.8, 0.99))
    opt_d = torch.optim.AdamW(disc.parameters(), 2e-3, betas=(0.8, 0.99))
    wave = torch.from_numpy(utterance(0, seconds=0.4))[: 20 * 320]
    frames = torch.randint(0, K, (1, 20))
    units, durs = torch.unique_consecutive(frames[0], return_counts=True)
    batch = GanBatch(frames, wave.view(1, 1, -1), units[None], durs[None])
    logs = [train_step(gen, disc, opt_g, opt_d, MelLoss(), batch) for _ in range(6)]
    assert all(np.isfinite(list(entry.values())).all() for entry in logs)
    assert logs[-1]["mel"] < logs[0]["mel"]  # the generator learns the target spectrum
    vocoder = CodeHiFiGANVocoder(gen)
    vocoder.save(tmp_path / "voc")
    again = CodeHiFiGANVocoder.load(tmp_path / "voc")
    assert np.allclose(again.decode(units, durs), vocoder.decode(units, durs), atol=1e-5)


def test_unit_mel_vocoder_learns_and_roundtrips(tmp_path):
    from tmt.speech.mel import MelFrontEnd
    from tmt.speech.unit_mel import UnitMelConfig, UnitMelModel, UnitMelVocoder
    from tmt.train.codecs.vocoder import collate, loss_fn

    torch.manual_seed(0)
    cfg = UnitMelConfig.tiny()
    front = MelFrontEnd(cfg.mel)
    examples = []
    for seed in range(4):
        mel = front.log_mel(utterance(seed, seconds=1.0)).T  # (51, 80): enough for 12 × ≤ 3 frames
        durs = torch.randint(1, 4, (12,))
        examples.append((torch.randint(0, cfg.vocab_size, (12,)), durs, mel[: int(durs.sum())]))
    model = UnitMelModel(cfg)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    batch = collate(examples, cfg.vocab_size)
    first = sum(loss_fn(model, batch)).item()
    for _ in range(30):
        opt.zero_grad()
        sum(loss_fn(model, batch)).backward()
        opt.step()
    assert sum(loss_fn(model, batch)).item() < 0.7 * first
    vocoder = UnitMelVocoder(model)
    units, durs, _ = examples[0]
    wave = vocoder.decode(units, durs)
    assert wave.dtype == np.float32 and len(wave) == int(durs.sum()) * 320
    vocoder.save(tmp_path / "mel", half=False)
    assert np.allclose(UnitMelVocoder.load(tmp_path / "mel").decode(units), vocoder.decode(units), atol=1e-4)


def _vocoder_examples():
    """Six (units, durations, log-mel) examples of the tiny unit→mel vocoder, and its config."""
    from tmt.speech.mel import MelFrontEnd
    from tmt.speech.unit_mel import UnitMelConfig

    cfg = UnitMelConfig.tiny()
    front = MelFrontEnd(cfg.mel)
    g = torch.Generator().manual_seed(0)
    examples = []
    for seed in range(6):
        mel = front.log_mel(utterance(seed, seconds=0.6)).T
        durs = torch.randint(1, 3, (10,), generator=g)
        examples.append((torch.randint(0, cfg.vocab_size, (10,), generator=g), durs, mel[: int(durs.sum())]))
    return examples, cfg


def test_vocoder_training_stops_at_its_step_count_and_repeats(tmp_path, capsys):
    from tmt.train.codecs.vocoder import train

    examples, cfg = _vocoder_examples()
    runs = [train(list(examples[:4]), examples[4:], cfg, steps=5, batch_size=2, log_every=2,
                  out=tmp_path / f"run{k}") for k in range(2)]
    logged = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    # steps 2, 4 and the last (5) are validated, in each of the two runs
    assert [line.split()[1] for line in logged] == ["2", "4", "5"] * 2
    first, second = (dict(m.named_parameters()) for m in runs)
    assert all(torch.equal(first[k], second[k]) for k in first)
    with pytest.raises(ValueError, match="steps or minutes"):
        train(examples[:4], examples[4:], cfg)


def test_vocoder_training_out_of_time_checkpoints_and_a_rerun_continues(tmp_path, capsys):
    from tmt.train.codecs.vocoder import train

    examples, cfg = _vocoder_examples()
    checkpoint = tmp_path / "checkpoint.pt"
    # a budget of 0.3 s: the steps done by then are checkpointed (not only every 100th)
    train(examples[:4], examples[4:], cfg, minutes=0.005, batch_size=2, checkpoint=checkpoint)
    done = torch.load(checkpoint, weights_only=True)["step"]
    assert done >= 1
    train(examples[:4], examples[4:], cfg, steps=done + 3, batch_size=2, checkpoint=checkpoint)
    assert f"resumed from {checkpoint} at step {done}" in capsys.readouterr().out
    assert torch.load(checkpoint, weights_only=True)["step"] == done + 3
