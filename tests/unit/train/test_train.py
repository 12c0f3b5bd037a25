"""The training loop learns, resumes exactly, and reads its YAML config strictly."""

import pytest
import torch

from tmt import precision
from tmt.errors import TmtError
from tmt.modality import DIRECTIONS, Modality
from tmt.train.config import TrainConfig
from tmt.train.loop import Trainer
from tmt.translator.generate import DecodingOptions, generate
from tmt.translator.model import Translator

MICRO = dict(model_dim=64, num_encoder_layers=1, num_decoder_layers=1, num_attn_heads=4,
             ffn_inner_dim=128, max_seq_len=48, dropout_p=0.0, attn_dropout_p=0.0)
VOCAB = {"speech": 20, "image": 30, "text": 40}


def concepts(k: int, seed: int = 0) -> list[dict]:
    """A fixed mapping between three random 'languages': concept i has one sequence in each."""
    g = torch.Generator().manual_seed(seed)
    return [
        {
            Modality.SPEECH: torch.randint(0, 20, (int(torch.randint(4, 9, (1,), generator=g)),), generator=g),
            Modality.IMAGE: torch.randint(0, 30, (32,), generator=g),
            Modality.TEXT: torch.randint(0, 40, (int(torch.randint(2, 5, (1,), generator=g)),), generator=g),
        }
        for _ in range(k)
    ]


def config(tmp_path, **kw) -> TrainConfig:
    base = dict(out_dir=str(tmp_path / "run"), vocab=VOCAB, model=MICRO, batch_size=8,
                max_steps=120, lr=3e-3, warmup_steps=10, label_smoothing=0.0,
                valid_every=1000, checkpoint_every=1000, log_every=10)
    base.update(kw)
    return TrainConfig(**base)


def test_six_direction_training_learns_a_fixed_mapping(tmp_path):
    protos = concepts(4)
    result = Trainer(config(tmp_path), protos * 4, protos).fit()
    assert set(result.valid_loss) == {f"{s}-{t}" for s, t in DIRECTIONS}
    assert max(result.valid_loss.values()) < 0.1, result.valid_loss
    model = Translator.load(tmp_path / "run" / "model")
    options = DecodingOptions(strategy="greedy", max_speech_len=12, max_text_len=8)
    for src, tgt in DIRECTIONS:
        out = generate(model, [(src, p[src]) for p in protos], tgt, options)
        assert all(torch.equal(o, p[tgt]) for o, p in zip(out, protos)), (src, tgt)


class Interrupt(Exception):
    pass


def test_killed_and_resumed_run_ends_with_identical_weights(tmp_path):
    protos = concepts(3)
    data = protos * 4
    kw = dict(max_steps=8, checkpoint_every=3, model={**MICRO, "dropout_p": 0.1})
    straight = Trainer(config(tmp_path / "a", **kw), data)
    straight.fit()

    def kill_at_5(step):
        if step == 5:
            raise Interrupt  # dies between checkpoints: steps 4-5 are lost and redone

    first = Trainer(config(tmp_path / "b", **kw), data)
    with pytest.raises(Interrupt):
        first.fit(on_step=kill_at_5)
    resumed = Trainer(config(tmp_path / "b", **kw), data)
    assert resumed.maybe_resume() and resumed.step == 3
    resumed.fit()
    a, b = straight.translator.state_dict(), resumed.translator.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # and the resumed run really did move away from its start
    assert not torch.equal(a["model.encoder.layers.0.ffn.inner_proj.weight"],
                           Trainer(config(tmp_path / "c", **kw), data).translator.state_dict()[
                               "model.encoder.layers.0.ffn.inner_proj.weight"])


def test_config_errors_are_one_clear_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("batch_size: 4\n")
    with pytest.raises(TmtError, match="missing required key 'out_dir'"):
        TrainConfig.load(path)
    path.write_text("out_dir: x\nbogus: 1\n")
    with pytest.raises(TmtError, match="unknown keys: bogus"):
        TrainConfig.load(path)
    path.write_text("out_dir: x\ndirections: [speech-video]\n")
    with pytest.raises(TmtError, match="unknown modality 'video'"):
        TrainConfig.load(path)
    with pytest.raises(TmtError, match="config file not found"):
        TrainConfig.load(tmp_path / "none.yaml")


def test_resume_with_a_different_model_is_refused(tmp_path):
    protos = concepts(2)
    Trainer(config(tmp_path, max_steps=2, checkpoint_every=1), protos).fit()
    other = Trainer(config(tmp_path, max_steps=4, model={**MICRO, "ffn_inner_dim": 96}), protos)
    with pytest.raises(TmtError, match="does not match the configured model"):
        other.fit()


def test_source_directions_and_direction_sampling(tmp_path):
    from tmt.data.records import TokenExample

    c = concepts(1)[0]
    items = [
        TokenExample(id="a", source="shapes", speech=c[Modality.SPEECH], image=c[Modality.IMAGE], text=c[Modality.TEXT]),
        TokenExample(id="b", source="voices", speech=c[Modality.SPEECH], image=c[Modality.IMAGE], text=c[Modality.TEXT]),
        TokenExample(id="c", source="shapes", speech=c[Modality.SPEECH], text=c[Modality.TEXT]),
    ]
    trainer = Trainer(config(tmp_path, source_directions={"voices": ["speech-text", "speech-image"]}), items)
    got = [(ex[Modality.SPEECH] is not None, d) for ex, d in trainer.pairs(items, [0, 1, 2], None)]
    dirs = [d for _, d in got]
    assert len(dirs) == 6 + 2 + 2
    assert sorted(dirs[6:8]) == [(Modality.SPEECH, Modality.IMAGE), (Modality.SPEECH, Modality.TEXT)]
    sampled = Trainer(config(tmp_path, directions_per_example=2), items)
    first = sampled.pairs(items, [0, 1, 2], step=0)
    assert len(first) == 2 + 2 + 2
    assert [d for _, d in first] == [d for _, d in sampled.pairs(items, [0, 1, 2], step=0)]  # deterministic
    assert any([d for _, d in sampled.pairs(items, [0], step=s)] != [d for _, d in first[:2]] for s in range(1, 6))


def test_direction_weights_move_the_draw_towards_heavy_directions(tmp_path):
    from collections import Counter

    from tmt.data.records import TokenExample

    c = concepts(1)[0]
    items = [TokenExample(id=str(i), source="shapes", speech=c[Modality.SPEECH], image=c[Modality.IMAGE],
                          text=c[Modality.TEXT]) for i in range(50)]
    counts = {}
    for weights in ({}, {"image-text": 8.0, "speech-image": 8.0}):
        trainer = Trainer(config(tmp_path, directions_per_example=2, direction_weights=weights), items)
        drawn = Counter(d for step in range(4) for _, d in trainer.pairs(items, range(50), step=step))
        assert sum(drawn.values()) == 4 * 50 * 2
        counts[bool(weights)] = drawn
    heavy = [(Modality.IMAGE, Modality.TEXT), (Modality.SPEECH, Modality.IMAGE)]
    uniform, weighted = counts[False], counts[True]
    assert sum(uniform[d] for d in heavy) < 160 < sum(weighted[d] for d in heavy)  # 1/3 of 400 vs ~3/4
    assert all(weighted[d] > 0 for d in DIRECTIONS)  # light directions are still drawn


@pytest.mark.parametrize("weights", [{"image-text": 0.0}, {"image-image": 1.0}, {"image-txt": 2.0}])
def test_bad_direction_weights_are_refused(tmp_path, weights):
    with pytest.raises(TmtError):
        TrainConfig.from_dict({"out_dir": str(tmp_path), "direction_weights": weights})


def test_sigterm_checkpoints_the_finished_steps(tmp_path):
    import os
    import signal

    protos = concepts(2)

    def term_at_3(step):
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    trainer = Trainer(config(tmp_path, max_steps=10, checkpoint_every=1000), protos * 4)
    with pytest.raises(KeyboardInterrupt, match="stopped by signal at step 3"):
        trainer.fit(on_step=term_at_3)
    resumed = Trainer(config(tmp_path, max_steps=10, checkpoint_every=1000), protos * 4)
    assert resumed.maybe_resume() and resumed.step == 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored


def test_model_override_updates_the_files_model_mapping(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("out_dir: x\nmodel: {model_dim: 64, num_attn_heads: 4}\n")
    config = TrainConfig.load(path, {"model": {"dropout_p": 0.0}, "max_steps": 7})
    assert config.model == {"model_dim": 64, "num_attn_heads": 4, "dropout_p": 0.0}
    assert config.max_steps == 7


def test_image_embeddings_start_from_the_codec_codebook(tmp_path):
    from tmt.data.fixtures import write_tiny_codecs
    from tmt.image.codec import ImageCodec
    from tmt.train.start import build_translator

    codec_dir = write_tiny_codecs(tmp_path / "codecs") / "image"  # 24 codes
    codes = ImageCodec.load(codec_dir).quantizer.lookup(torch.arange(24)[None])[0]
    sizes = {**VOCAB, "image": 24}

    torch.manual_seed(0)
    plain = build_translator(config(tmp_path), sizes)
    torch.manual_seed(0)  # the same random initialisation
    seeded = build_translator(config(tmp_path, image_embeddings_from=str(codec_dir)), sizes)
    before = plain.model.encoder_frontend.embed.weight.detach()
    after = seeded.model.encoder_frontend.embed.weight.detach()
    rows = seeded.vocab.id_range(Modality.IMAGE)
    image = after[rows.start : rows.stop]
    # the codes' angles are kept, each row keeps its random initialisation's norm
    cosine = torch.nn.functional.normalize(image, dim=-1)
    unit = torch.nn.functional.normalize(codes, dim=-1)
    assert torch.allclose(cosine @ cosine.T, unit @ unit.T, atol=1e-5)
    assert torch.allclose(image.norm(dim=-1), before[rows.start : rows.stop].norm(dim=-1), atol=1e-5)
    others = torch.ones(len(before), dtype=torch.bool)
    others[rows.start : rows.stop] = False
    assert torch.equal(after[others], before[others])
    # the tied output layer and the decoder's input read the same table
    assert seeded.model.decoder_frontend.embed.weight.data_ptr() == after.data_ptr()

    with pytest.raises(TmtError, match="24 image code vectors for a vocabulary of 30"):
        build_translator(config(tmp_path, image_embeddings_from=str(codec_dir)), VOCAB)
    with pytest.raises(TmtError, match="init_from continues one"):
        build_translator(config(tmp_path, image_embeddings_from=str(codec_dir),
                                init_from=str(tmp_path / "x")), VOCAB)


def _gradients(trainer: Trainer) -> dict[str, torch.Tensor]:
    trainer.train_step()
    return {n: p.grad.clone() for n, p in trainer.translator.named_parameters() if p.grad is not None}


def test_loss_weights_scale_each_directions_pull(tmp_path):
    data = concepts(16, seed=4)
    names = [f"{d[0].value}-{d[1].value}" for d in DIRECTIONS]
    plain = Trainer(config(tmp_path / "a", batch_size=16), data)
    doubled = Trainer(config(tmp_path / "b", batch_size=16, loss_weights=dict.fromkeys(names, 2.0)), data)
    one = Trainer(config(tmp_path / "c", batch_size=16, loss_weights={"text-speech": 0.25}), data)
    a, b, c = (t.train_step()[0] for t in (plain, doubled, one))
    assert b == pytest.approx(2 * a, rel=1e-5)  # every direction doubled: the summed loss doubles
    assert c < a  # one direction's share of it cut
    for bad in ({"text-speech": 0.0}, {"speech-speech": 1.0}):
        with pytest.raises(TmtError):
            TrainConfig.from_dict({"out_dir": str(tmp_path), "loss_weights": bad})


@pytest.mark.parametrize("passes", [dict(sources_per_pass=5), dict(share_encoder=True),
                                    dict(share_encoder=True, sources_per_pass=5)])
def test_shared_encodings_and_short_passes_give_the_same_update(tmp_path, passes):
    data = concepts(24, seed=3)
    whole = Trainer(config(tmp_path / "a", batch_size=24), data)
    other = Trainer(config(tmp_path / "b", batch_size=24, **passes), data)
    a, b = _gradients(whole), _gradients(other)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-6, msg=name)


def test_passes_share_encodings_and_sort_by_length(tmp_path):
    data = concepts(24, seed=3)
    trainer = Trainer(config(tmp_path, share_encoder=True, sources_per_pass=5), data)
    pairs = trainer.pairs(data, range(24), None)  # all six directions of each example
    batches = trainer.passes(pairs)
    # 24 examples x 3 source modalities, each encoded once, in passes of at most 5 sources
    assert sum(len(b.source_lens) for b in batches) == 72
    assert all(len(b.source_lens) <= 5 for b in batches)
    assert sum(len(g.index) for b in batches for g in b.groups) == len(pairs) == 144
    for b in batches:  # each source row serves both other modalities as targets
        assert len(b.groups) == 2 and all(torch.equal(g.index, torch.arange(len(b.source_lens))) for g in b.groups)
    speech = [max(b.source_lens) for b in batches if b.groups[0].direction[0] < 2]
    assert speech == sorted(speech) and speech[0] < speech[-1]  # sorted: less padding
    plain = Trainer(config(tmp_path / "p"), data).passes(pairs)  # one pass per direction
    assert [len(b.source_lens) for b in plain] == [24] * 6


def test_bf16_autocast_trains_and_keeps_float32_weights(tmp_path):
    protos = concepts(4)
    trainer = Trainer(config(tmp_path, autocast="bf16"), protos * 4, protos)
    result = trainer.fit()
    assert max(result.valid_loss.values()) < 0.3, result.valid_loss
    assert all(p.dtype == torch.float32 for p in trainer.translator.parameters())


@pytest.mark.parametrize("native", [False, True])
def test_autocast_auto_is_bf16_only_on_native_hardware(tmp_path, monkeypatch, native):
    monkeypatch.setattr(precision, "native_bf16", lambda device: native)
    protos = concepts(2)
    trainer = Trainer(config(tmp_path, autocast="auto"), protos, protos)
    assert trainer.bf16 is native
    with trainer.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == (torch.bfloat16 if native else torch.float32)


@pytest.mark.parametrize("bad", [{"autocast": "fp8"}, {"sources_per_pass": -1}])
def test_bad_pass_settings_are_refused(tmp_path, bad):
    with pytest.raises(TmtError, match=next(iter(bad))):
        TrainConfig.from_dict({"out_dir": str(tmp_path), **bad})


def test_speech_bpe_cuts_stored_units_into_pieces_with_dropout_on_sources(tmp_path):
    from tmt.speech.unit_bpe import UnitBPE

    g = torch.Generator().manual_seed(0)
    words = [torch.randint(0, 20, (4,), generator=g) for _ in range(5)]
    data = [{**c, Modality.SPEECH: torch.cat([words[(i + k) % 5] for k in range(4)])}
            for i, c in enumerate(concepts(40))]
    bpe = UnitBPE.learn([d[Modality.SPEECH] for d in data], base_size=20, vocab_size=40)
    bpe.save(tmp_path / "bpe.json")
    kw = dict(speech_bpe=str(tmp_path / "bpe.json"), directions_per_example=3, max_steps=2)
    trainer = Trainer(config(tmp_path / "a", speech_bpe_dropout=0.5, **kw), data, data[:8])
    assert trainer.translator.vocab.speech_size == 40  # pieces, not units
    sources, targets = [], []
    for step in range(4):
        for example, (src, tgt) in trainer.pairs(data, range(8), step):
            if Modality.SPEECH in (src, tgt):
                (sources if src is Modality.SPEECH else targets).append((example[Modality.SPEECH], step))
    learned = {tuple(p.tolist()) for p in bpe.encode_many([d[Modality.SPEECH] for d in data[:8]])}
    assert targets and all(tuple(p.tolist()) in learned for p, _ in targets)  # as at inference
    assert sum(tuple(p.tolist()) not in learned for p, _ in sources) > len(sources) // 2
    for pieces, _ in sources:  # other cuts of the same units
        assert tuple(bpe.decode(pieces).tolist()) in {tuple(d[Modality.SPEECH].tolist()) for d in data[:8]}
    valid = [ex[Modality.SPEECH] for ex, (src, _) in trainer.pairs(data, range(8), None)
             if src is Modality.SPEECH]
    assert valid and all(tuple(p.tolist()) in learned for p in valid)
    assert trainer.fit().step == 2 and set(trainer.validate()) == {f"{s}-{t}" for s, t in DIRECTIONS}
    plain = Trainer(config(tmp_path / "b", **kw), data)
    assert all(tuple(ex[Modality.SPEECH].tolist()) in learned
               for ex, _ in plain.pairs(data, range(8), 0) if Modality.SPEECH in ex)
    with pytest.raises(TmtError, match="merges 20 units, but the training data's speech has 30"):
        Trainer(config(tmp_path / "c", vocab={**VOCAB, "speech": 30}, **kw), data)
    with pytest.raises(TmtError, match="speech_bpe_dropout needs speech_bpe"):
        TrainConfig.from_dict({"out_dir": "x", "speech_bpe_dropout": 0.1})
    with pytest.raises(TmtError, match=r"speech_bpe_dropout must be in \[0, 1\)"):
        TrainConfig.from_dict({"out_dir": "x", "speech_bpe": "b.json", "speech_bpe_dropout": 1.0})


def test_ctrl_c_mid_step_resumes_bit_exact_with_dropout(tmp_path):
    """A real SIGINT that lands inside a step (after dropout has drawn from the RNG): the run
    stops at the next step boundary, and the resumed run ends with exactly the weights of an
    uninterrupted one."""
    import os
    import signal
    import threading

    protos = concepts(2)
    model = {**MICRO, "dropout_p": 0.1, "attn_dropout_p": 0.1}
    # whatever handled SIGINT before (a background job's shell ignores it) handles it after
    before = signal.getsignal(signal.SIGINT)

    straight = Trainer(config(tmp_path / "a", max_steps=12, model=model), protos * 4)
    straight.fit()

    def interrupt_soon(step):
        if step == 2:
            threading.Timer(0.005, os.kill, (os.getpid(), signal.SIGINT)).start()

    first = Trainer(config(tmp_path / "b", max_steps=12, model=model), protos * 4)
    with pytest.raises(KeyboardInterrupt, match="stopped by signal at step"):
        first.fit(on_step=interrupt_soon)
    assert 2 <= first.step < 12
    resumed = Trainer(config(tmp_path / "b", max_steps=12, model=model), protos * 4)
    assert resumed.maybe_resume()
    resumed.fit()
    for key, value in straight.translator.state_dict().items():
        assert torch.equal(value, resumed.translator.state_dict()[key]), key
    assert signal.getsignal(signal.SIGINT) is before
