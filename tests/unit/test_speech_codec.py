from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from speech_fixtures import utterance

from tmt.errors import TmtError
from tmt.modality import Codec, Modality
from tmt.speech.codec import SpeechCodec
from tmt.speech.features import MfccFeatures
from tmt.speech.quantizer import KMeansQuantizer
from tmt.speech.tokenizer import SpeechTokenizer
from tmt.speech.unit_mel import UnitMelConfig, UnitMelModel, UnitMelVocoder

REPO = Path(__file__).resolve().parents[2]


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
    shipped = REPO / "tokenizers" / "speech"
    assert not list((REPO / "tokenizers").rglob("*.py"))
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

    import tmt.speech.fit_tokenizer as fit
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
