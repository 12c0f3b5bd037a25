from __future__ import annotations

import numpy as np
import pytest
import torch
from speech_fixtures import utterance

from tmt.errors import TmtError
from tmt.modality import Codec, Modality
from tmt.paths import CODECS
from tmt.speech.codec import SpeechCodec
from tmt.speech.features import MfccFeatures
from tmt.speech.quantizer import KMeansQuantizer
from tmt.speech.tokenizer import SpeechTokenizer
from tmt.speech.unit_mel import UnitMelConfig, UnitMelModel, UnitMelVocoder


@pytest.fixture(scope="module")
def codec():
    waves = [utterance(s, seconds=0.8) for s in range(4)]
    feats = MfccFeatures()
    frames = torch.cat(feats.forward_batch([torch.from_numpy(w) for w in waves]))
    tok = SpeechTokenizer(feats, KMeansQuantizer.fit(frames, k=20, niter=5))
    torch.manual_seed(0)
    return SpeechCodec(tok, UnitMelVocoder(UnitMelModel(UnitMelConfig.tiny()))), waves


def test_speech_codec_implements_the_codec_protocol(codec, tmp_path):
    c, waves = codec
    assert isinstance(c, Codec) and c.modality is Modality.SPEECH
    ids = c.encode(waves[0])
    assert ids.dtype == torch.long and ids.ndim == 1 and int(ids.max()) < c.vocab_size == 20
    wave = c.decode(ids)
    assert wave.dtype == np.float32 and wave.ndim == 1 and len(wave) >= 320 * len(ids)
    assert [len(x) for x in c.encode_batch(waves)] == [len(c.encode(w)) for w in waves]
    c.save(tmp_path / "codec")
    assert sorted(p.name for p in (tmp_path / "codec").iterdir()) == ["config.json", "tokenizer", "vocoder"]
    again = SpeechCodec.load(tmp_path / "codec")
    assert torch.equal(again.encode(waves[1]), c.encode(waves[1]))
    assert len(again.decode(ids)) == len(wave)


def test_codec_errors_are_one_line(codec, tmp_path):
    c, _ = codec
    with pytest.raises(TmtError, match="unit ids must be in"):
        c.decode(torch.tensor([0, 25]))
    with pytest.raises(TmtError, match="empty unit sequence"):
        c.decode(torch.tensor([], dtype=torch.long))
    with pytest.raises(TmtError, match="not a speech codec"):
        SpeechCodec.load(tmp_path)


def test_shipped_default_codec_loads_and_tokenizers_dir_has_no_python():
    shipped = CODECS / "speech"
    assert not list(CODECS.rglob("*.py"))
    if not (shipped / "config.json").exists():
        pytest.skip("default speech codec not shipped in this checkout")
    c = SpeechCodec.load()
    assert c.vocab_size == 200
    ids = c.encode(utterance(7, seconds=1.0))
    assert 0 <= int(ids.min()) and int(ids.max()) < 200
    assert len(c.decode(ids)) > 0


def test_cli_encode_and_resynth(codec, tmp_path, capsys):
    from tmt.cli import main
    from tmt.speech.audio import load_audio, save_audio

    c, waves = codec
    c.save(tmp_path / "codec")
    save_audio(tmp_path / "in.wav", waves[2])
    assert main(["speech", "encode", str(tmp_path / "in.wav"), "--codec", str(tmp_path / "codec")]) == 0
    printed = [int(t) for t in capsys.readouterr().out.split()]
    assert printed == c.encode(tmp_path / "in.wav").tolist()
    assert main(["speech", "resynth", str(tmp_path / "in.wav"), "--out", str(tmp_path / "out.wav"),
                 "--codec", str(tmp_path / "codec")]) == 0
    assert len(load_audio(tmp_path / "out.wav")) > 0
    assert main(["speech", "encode", str(tmp_path / "missing.wav"), "--codec", str(tmp_path / "codec")]) == 2
    assert "audio file not found" in capsys.readouterr().err


def test_fit_tokenizer_draws_only_from_the_first_examples(tmp_path, monkeypatch):
    import json

    import tmt.train.codecs.speech_units as fit
    from tmt.speech.audio import save_audio

    lines = []
    for i in range(6):
        save_audio(tmp_path / f"{i}.wav", utterance(i, seconds=0.5))
        lines.append(json.dumps({"id": f"{i:06d}", "split": "train" if i != 1 else "valid",
                                 "speech": [{"path": f"{i}.wav", "voice": "v"}]}))
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    drawn: list[list[str]] = []
    real = fit.sample_features
    monkeypatch.setattr(fit, "sample_features", lambda f, paths, *a: drawn.append(
        sorted(p.name for p in paths)) or real(f, paths, *a))
    tokenizer, stats = fit.fit_tokenizer(tmp_path, MfccFeatures(), k=4, utterances=10, examples=3)
    # the first three examples are 0 (train), 1 (valid) and 2 (train)
    assert drawn == [["0.wav", "2.wav"]] and stats["frames"] > 4
    assert tokenizer.vocab_size == 4
    with pytest.raises(TmtError, match="no train utterances"):
        fit.fit_tokenizer(tmp_path, MfccFeatures(), k=4, examples=0)


def _word_sequences(n: int, seed: int) -> list[np.ndarray]:
    """Unit sequences made of 5 fixed 'words' of 2-5 units, with stray units between them."""
    words = [np.random.default_rng(0).integers(0, 30, size=k) for k in (2, 3, 4, 5, 5)]
    rng = np.random.default_rng(seed)
    seqs = []
    for _ in range(n):
        parts = [words[i] if rng.random() < 0.8 else rng.integers(0, 30, size=1)
                 for i in rng.integers(0, 5, size=int(rng.integers(1, 12)))]
        seqs.append(np.concatenate(parts))
    return seqs


def test_unit_bpe_merges_frequent_runs_and_decodes_exactly(tmp_path):
    from collections import Counter

    from tmt.speech.unit_bpe import UnitBPE

    train = _word_sequences(300, seed=0)
    bpe = UnitBPE.learn(train, base_size=30, vocab_size=50)
    assert bpe.vocab_size == 50 and len(bpe.merges) == 20
    pairs = Counter((int(a), int(b)) for s in train for a, b in zip(s[:-1], s[1:], strict=False))
    top = max(pairs.values())
    assert bpe.merges[0] == min(p for p, c in pairs.items() if c == top)  # most frequent; ties: smallest
    assert UnitBPE.learn(train, 30, 50).merges == bpe.merges  # the data alone decides
    unseen = _word_sequences(50, seed=1) + [np.array([7]), np.array([], dtype=np.int64)]
    pieces = bpe.encode_many(unseen)
    for units, p in zip(unseen, pieces, strict=True):
        assert torch.equal(bpe.decode(p), torch.from_numpy(units.astype(np.int64)))  # exact
        assert torch.equal(bpe.encode(units), p)  # one at a time = all at once
    lengths = sum(len(u) for u in unseen), sum(len(p) for p in pieces)
    assert lengths[1] < 0.6 * lengths[0]  # the words became a piece or two each
    bpe.save(tmp_path / "bpe.json")
    assert UnitBPE.load(tmp_path / "bpe.json").merges == bpe.merges
    # runs of one piece: "5 5 5" has one mergeable "5 5", left to right
    run = UnitBPE(10, [(5, 5)])
    assert run.encode(np.array([5, 5, 5])).tolist() == [10, 5]
    assert run.encode(np.array([5, 5, 5, 5, 1])).tolist() == [10, 10, 1]
    # encode (only the merges that apply, earliest first) = encode_many (every merge replayed),
    # on runs and chains of merges over a small alphabet, and with a pair merged twice
    rng = np.random.default_rng(2)
    noisy = [rng.integers(0, 4, size=int(rng.integers(0, 40))) for _ in range(300)]
    chains = UnitBPE.learn(noisy[:200], base_size=4, vocab_size=40)
    tests = noisy[200:] + [np.array([1, 1, 1, 1, 1, 1, 1])]
    for units, replayed in zip(tests, chains.encode_many(tests), strict=True):
        assert torch.equal(chains.encode(units), replayed)
    assert [p.tolist() for p in chains.encode_many(tests[:3])] == [  # few: one by one
        chains.encode(u).tolist() for u in tests[:3]]
    twice = UnitBPE(10, [(5, 6), (5, 6), (10, 10)])
    assert twice.encode(np.array([5, 6, 5, 6, 5])).tolist() == [12, 5]
    with pytest.raises(TmtError, match=r"unit ids must lie in \[0, 30\)"):
        bpe.encode(np.array([3, 30]))
    with pytest.raises(TmtError, match="must not be negative"):
        bpe.encode(np.array([3, -1, 4]))
    with pytest.raises(TmtError, match=r"speech piece ids must lie in \[0, 50\)"):
        bpe.decode(torch.tensor([50]))
    with pytest.raises(TmtError, match="cannot read unit BPE"):
        UnitBPE.load(tmp_path / "nothing.json")
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(TmtError, match="not a unit BPE file"):
        UnitBPE.load(tmp_path / "other.json")
    with pytest.raises(TmtError, match="uses an undefined piece"):
        UnitBPE(10, [(3, 11)])


def test_unit_bpe_dropout_gives_other_segmentations_of_the_same_units():
    from tmt.speech.unit_bpe import UnitBPE

    bpe = UnitBPE.learn(_word_sequences(300, seed=0), base_size=30, vocab_size=50)
    unseen = _word_sequences(40, seed=1)
    rng = np.random.default_rng(0)
    learned = [bpe.encode(u) for u in unseen]
    dropped = [bpe.encode(u, dropout=0.3, rng=rng) for u in unseen]
    for units, other in zip(unseen, dropped, strict=True):
        assert torch.equal(bpe.decode(other), torch.from_numpy(units.astype(np.int64)))
    assert sum(not torch.equal(a, b) for a, b in zip(learned, dropped, strict=True)) >= 10
    assert sum(map(len, dropped)) > sum(map(len, learned))  # fewer merges applied
    again = [bpe.encode(u, dropout=0.3, rng=np.random.default_rng(0)) for u in unseen[:1]]
    assert torch.equal(again[0], dropped[0])  # the generator decides
    assert torch.equal(bpe.encode(unseen[0], dropout=0.0, rng=rng), learned[0])
    units_only = bpe.encode(unseen[0], dropout=0.999999, rng=rng)
    assert torch.equal(units_only, torch.from_numpy(unseen[0].astype(np.int64)))
    with pytest.raises(TmtError, match=r"dropout must be in \[0, 1\)"):
        bpe.encode(unseen[0], dropout=1.0, rng=rng)
    with pytest.raises(TmtError, match="needs a random generator"):
        bpe.encode(unseen[0], dropout=0.1)


def test_speech_codec_with_unit_bpe(codec, tmp_path):
    import json

    from tmt.speech.unit_bpe import UnitBPE

    c, waves = codec
    units = c.encode_batch(waves)
    assert UnitBPE.learn(units, 20, 1000).vocab_size < 1000  # stops when no pair occurs twice
    with_bpe = c.with_bpe(UnitBPE.learn(units, 20, 26))
    pieces = with_bpe.encode_batch(waves)
    assert with_bpe.vocab_size == 26 and sum(map(len, pieces)) < sum(map(len, units))
    assert int(max(int(p.max()) for p in pieces)) >= 20  # merged pieces in use
    assert torch.equal(with_bpe.encode(waves[0]), pieces[0])
    assert len(with_bpe.decode(pieces[0])) == len(c.decode(units[0]))  # the same units voiced
    with_bpe.save(tmp_path / "codec")
    again = SpeechCodec.load(tmp_path / "codec")
    assert again.vocab_size == 26 and torch.equal(again.encode(waves[1]), pieces[1])
    c.save(tmp_path / "codec")  # saved again without: the merges go
    assert SpeechCodec.load(tmp_path / "codec").bpe is None and not (tmp_path / "codec/bpe.json").exists()
    with pytest.raises(TmtError, match="unit BPE is over 30 units"):
        c.with_bpe(UnitBPE(30, []))
    with_bpe.save(tmp_path / "codec")
    cfg = json.loads((tmp_path / "codec/config.json").read_text())
    (tmp_path / "codec/config.json").write_text(json.dumps({**cfg, "vocab_size": 20}))
    with pytest.raises(TmtError, match="says 20 ids, the codec has 26"):
        SpeechCodec.load(tmp_path / "codec")


def test_fit_bpe_adds_merges_learned_on_train_utterances(codec, tmp_path, capsys):
    import json

    from tmt.speech.audio import save_audio
    from tmt.train.codecs import unit_bpe as fit_bpe

    c, _ = codec
    lines = []
    for i in range(5):
        speech = []
        for k in range(2):  # output voice + a random voice
            save_audio(tmp_path / f"{i}_{k}.wav", utterance(2 * i + k, seconds=0.6))
            speech.append({"path": f"{i}_{k}.wav", "voice": f"v{k}"})
        lines.append(json.dumps({"id": f"{i:06d}", "split": "valid" if i == 1 else "train",
                                 "speech": speech}))
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    paths = fit_bpe.train_utterances(tmp_path, examples=10, seed=0)
    assert sorted(p.name for p in paths) == sorted(f"{i}_{k}.wav" for i in (0, 2, 3, 4) for k in (0, 1))
    inputs = fit_bpe.train_utterances(tmp_path, examples=10, seed=0, voices="input")
    assert sorted(p.name for p in inputs) == [f"{i}_1.wav" for i in (0, 2, 3, 4)]
    with pytest.raises(TmtError, match="voices must be one of all, input"):
        fit_bpe.train_utterances(tmp_path, examples=10, seed=0, voices="output")
    c.save(tmp_path / "codec")
    args = fit_bpe.UnitBpeOptions(corpus=tmp_path, codec=tmp_path / "codec", vocab_size=24)
    fit_bpe.fit_unit_bpe(args)
    assert "24 pieces (4 merges) from 8 utterances" in capsys.readouterr().out
    fitted = SpeechCodec.load(tmp_path / "codec")
    assert fitted.vocab_size == 24 and fitted.bpe is not None
    assert torch.equal(fitted.bpe.decode(fitted.encode(paths[0])), c.encode(paths[0]))
    with pytest.raises(TmtError, match="already has unit BPE"):
        fit_bpe.fit_unit_bpe(args)
