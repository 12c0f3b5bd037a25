"""A bundle of tiny random codecs + translator: load, translate all six ways, CLI round trips."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tmt.bundle import Bundle, write_bundle
from tmt.cli import main
from tmt.errors import TmtError
from tmt.modality import DIRECTIONS, Modality
from tmt.translator.config import TranslatorConfig
from tmt.translator.generate import DecodingOptions
from tmt.translator.model import Translator
from tmt.vocab import Vocabulary

sys.path.insert(0, str(Path(__file__).parent))
from speech_fixtures import SR, utterance  # noqa: E402
from test_image_codec import small_config  # noqa: E402

CAPTIONS = ["a small red circle on the left", "a large blue square at the top",
            "a small green star below a large pink heart"]


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    from tmt.image.codec import ImageCodec
    from tmt.speech.audio import save_audio
    from tmt.speech.codec import SpeechCodec
    from tmt.speech.features import MfccFeatures
    from tmt.speech.quantizer import KMeansQuantizer
    from tmt.speech.tokenizer import SpeechTokenizer
    from tmt.speech.unit_mel import UnitMelConfig, UnitMelModel, UnitMelVocoder
    from tmt.text import TextTokenizer

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("bundle")
    feats = MfccFeatures()
    waves = [utterance(i) for i in range(3)]
    frames = torch.cat(feats.forward_batch([torch.from_numpy(w) for w in waves]))
    speech = SpeechCodec(SpeechTokenizer(feats, KMeansQuantizer.fit(frames, k=20, niter=5)),
                         UnitMelVocoder(UnitMelModel(UnitMelConfig.tiny())))
    speech.save(root / "codecs" / "speech")
    ImageCodec(small_config()).save(root / "codecs" / "image")
    text = TextTokenizer.train(CAPTIONS, vocab_size=200, min_frequency=1)
    text.save(root / "codecs" / "text")
    vocab = Vocabulary(speech_size=20, image_size=24, text_size=text.vocab_size)
    config = TranslatorConfig(model_dim=32, num_encoder_layers=1, num_decoder_layers=1,
                              num_attn_heads=2, ffn_inner_dim=64, max_seq_len=600)
    write_bundle(root / "model", Translator(config, vocab),
                 {m: root / "codecs" / m.value for m in Modality}, name="test")
    save_audio(root / "in.wav", waves[0], SR)
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(root / "in.png")
    return root


def test_bundle_translates_all_six_directions(bundle_dir):
    bundle = Bundle.load(bundle_dir / "model")
    inputs = {Modality.SPEECH: bundle_dir / "in.wav", Modality.IMAGE: bundle_dir / "in.png",
              Modality.TEXT: CAPTIONS[0]}
    options = DecodingOptions(beam_size=2, max_speech_len=8, max_text_len=6)
    for src, tgt in DIRECTIONS:
        results = bundle.translate([inputs[src], inputs[src]], src, tgt, options)
        assert len(results) == 2
        out = results[0].output
        if tgt is Modality.TEXT:
            assert isinstance(out, str)
        elif tgt is Modality.SPEECH:
            assert isinstance(out, np.ndarray) and out.ndim == 1 and out.dtype == np.float32
        else:
            assert isinstance(out, Image.Image) and len(results[0].ids) == 32
    with pytest.raises(TmtError, match="both text|cannot translate"):
        bundle.translate(["x"], "text", "text")


def test_codec_vocabulary_mismatch_is_refused(bundle_dir, tmp_path):
    meta = json.loads((bundle_dir / "model" / "bundle.json").read_text())
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "translator").symlink_to(bundle_dir / "model" / "translator")
    meta["codecs"]["text"] = str(bundle_dir / "codecs" / "image")
    (tmp_path / "m" / "bundle.json").write_text(json.dumps(meta))
    bundle = Bundle.load(tmp_path / "m")
    with pytest.raises(TmtError):
        bundle.encode(Modality.TEXT, "a red circle")


def test_cli_translate_encode_decode_round_trip(bundle_dir, tmp_path, capsys):
    model = str(bundle_dir / "model")
    out = tmp_path / "out.png"
    assert main(["translate", "--from", "text", "--to", "image", CAPTIONS[1], "-o", str(out),
                 "--model", model, "--beam", "2"]) == 0
    assert Image.open(out).size == (16, 16)
    wav = tmp_path / "out.wav"
    assert main(["translate", "--from", "image", "--to", "speech", str(bundle_dir / "in.png"),
                 "-o", str(wav), "--model", model, "--max-len", "6"]) == 0
    assert wav.stat().st_size > 44
    capsys.readouterr()
    assert main(["translate", "--from", "speech", "--to", "text", str(bundle_dir / "in.wav"),
                 "--model", model, "--max-len", "5", "--strategy", "greedy"]) == 0
    capsys.readouterr()  # an untrained model's text; only the exit code matters here
    assert main(["encode", "text", CAPTIONS[0], "--model", model]) == 0
    ids = capsys.readouterr().out.split()
    assert main(["decode", "text", *ids, "--model", model]) == 0
    assert capsys.readouterr().out.strip() == CAPTIONS[0]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav at all")
    assert main(["translate", "--from", "speech", "--to", "text", str(bad), "--model", model]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tmt: error:") and err.count("\n") == 1


def test_pack_writes_a_loadable_bundle(bundle_dir, tmp_path, capsys):
    assert main(["pack", str(bundle_dir / "model" / "translator"), "--codecs",
                 str(bundle_dir / "codecs"), "--out", str(tmp_path / "packed"),
                 "--rerank", "0.5"]) == 0
    assert "codecs ['image', 'speech', 'text']" in capsys.readouterr().out
    packed = Bundle.load(tmp_path / "packed")
    assert packed.translator.vocab.speech_size == 20
    assert packed.default_options.rerank == 0.5
    assert main(["pack", str(bundle_dir / "model" / "translator"), "--codecs",
                 str(bundle_dir / "codecs"), "--out", str(tmp_path / "bad"), "--rerank", "-1"]) == 2
    assert "rerank weight" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_speech_decoder_handles_a_single_unit(bundle_dir):
    bundle = Bundle.load(bundle_dir / "model")
    for n in (1, 2, 3):
        wave = bundle.decode(Modality.SPEECH, torch.arange(n))
        assert wave.ndim == 1 and len(wave) > 0 and np.isfinite(wave).all()


# -- the public API (issue 28, item 4) -------------------------------------------------------
def _bundle_with_defaults(bundle_dir, tmp_path, decoding):
    meta = json.loads((bundle_dir / "model" / "bundle.json").read_text())
    meta["decoding"] = decoding
    meta["codecs"] = {m: str((bundle_dir / "model" / d).resolve()) for m, d in meta["codecs"].items()}
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "translator").symlink_to(bundle_dir / "model" / "translator")
    (tmp_path / "m" / "bundle.json").write_text(json.dumps(meta))
    return Bundle.load(tmp_path / "m")


def test_translate_takes_one_item_or_a_list(bundle_dir):
    bundle = Bundle.load(bundle_dir / "model")
    one = bundle.translate(CAPTIONS[0], "text", "image", beam_size=1)
    many = bundle.translate([CAPTIONS[0]], "text", "image", beam_size=1)
    assert not isinstance(one, list) and isinstance(many, list) and len(many) == 1
    assert torch.equal(one.ids, many[0].ids)
    assert bundle.translate([], "text", "image") == []


def test_load_model_with_int8_weights(bundle_dir):
    import tmt

    model = tmt.load_model(str(bundle_dir / "model"), precision="int8")
    assert model.options().precision == "int8"
    picture = model.translate(CAPTIONS[0], "text", "image")
    assert len(picture.ids) == 32
    exact = model.translate(CAPTIONS[0], "text", "image", precision="fp32")
    assert len(exact.ids) == 32
    with pytest.raises(TmtError, match="precision must be one of"):
        tmt.load_model(str(bundle_dir / "model"), precision="int4")


def test_caller_options_are_merged_over_the_bundle_defaults(bundle_dir, tmp_path):
    bundle = _bundle_with_defaults(bundle_dir, tmp_path,
                                   {"max_text_len": 7, "max_speech_len": 9, "rerank": 0.5})
    merged = bundle.options(DecodingOptions(beam_size=2))
    assert (merged.beam_size, merged.max_text_len, merged.max_speech_len, merged.rerank) == (2, 7, 9, 0.5)
    assert bundle.options({"rerank": 0.0}).rerank == 0.0  # a mapping turns a bundle setting off
    assert bundle.options(beam_size=3, max_text_len=4).max_text_len == 4
    with pytest.raises(TmtError, match="unknown decoding option"):
        bundle.options(beams=3)
    # the length cap of the bundle holds when the caller only changes the beam
    out = bundle.translate(bundle_dir / "in.wav", "speech", "text", DecodingOptions(beam_size=2))
    assert len(out.ids) <= 7


def test_results_carry_a_score_and_save_by_suffix(bundle_dir, tmp_path):
    bundle = Bundle.load(bundle_dir / "model")
    beam = bundle.translate(CAPTIONS[1], "text", "speech", beam_size=2, max_speech_len=6)
    assert np.isfinite(beam.score) and beam.score <= 0  # a log-probability
    reranked = bundle.translate(CAPTIONS[1], "text", "speech", beam_size=2, max_speech_len=6,
                                rerank=0.5)
    assert np.isfinite(reranked.score)
    assert beam.save(tmp_path / "a" / "out.wav").stat().st_size > 44
    image = bundle.translate(CAPTIONS[1], "text", "image", beam_size=1)
    assert Image.open(image.save(tmp_path / "out.png")).size == (16, 16)
    text = bundle.translate(bundle_dir / "in.png", "image", "text", beam_size=1, max_text_len=4)
    assert text.save(tmp_path / "out.txt").read_text() == f"{text.output}\n"
    with pytest.raises(TmtError, match="cannot save image as 'out.wav'"):
        image.save(tmp_path / "out.wav")


def test_batch_size_does_not_change_the_results(bundle_dir):
    bundle = Bundle.load(bundle_dir / "model")
    one = bundle.translate(CAPTIONS, "text", "image", beam_size=2, batch_size=1)
    all_ = bundle.translate(CAPTIONS, "text", "image", beam_size=2, batch_size=3)
    assert all(torch.equal(a.ids, b.ids) for a, b in zip(one, all_, strict=True))
    with pytest.raises(TmtError, match="batch size"):
        bundle.translate(CAPTIONS, "text", "image", batch_size=0)


def test_decoding_options_and_bundles_are_exported_from_tmt():
    import tmt

    assert tmt.DecodingOptions is DecodingOptions and tmt.Bundle is Bundle
    assert tmt.__version__ == "0.2.0"


def test_bundles_by_name_under_tmt_home(bundle_dir, tmp_path, monkeypatch, capsys):
    from tmt.bundle import available_models, resolve_model

    monkeypatch.setenv("TMT_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "mine").symlink_to(bundle_dir / "model")
    assert resolve_model("mine") == tmp_path / "home" / "mine"
    assert resolve_model("shapes").parent.name == "models"  # the built-in one
    models = {(m["name"], m["source"]) for m in available_models()}
    assert {("mine", "user"), ("shapes", "built-in")} <= models
    with pytest.raises(TmtError, match="known by name: mine, shapes"):
        resolve_model("nothing")
    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {m["name"] for m in listed["bundles"]} >= {"mine", "shapes"}


def _modules(obj, depth=0, seen=None):
    """Every torch module reachable through the attributes of a codec (3 levels deep)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 3:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.nn.Module):
        yield obj
    elif hasattr(obj, "__dict__"):
        for value in vars(obj).values():
            yield from _modules(value, depth + 1, seen)


def test_load_model_puts_every_part_on_the_device():
    # the built-in bundle on the meta device: the translator, the image codec, the speech
    # vocoder and its Griffin-Lim (MFCC features and the faiss unit lookup have no weights and
    # stay CPU libraries)
    bundle = Bundle.load("shapes", device="meta")
    assert all(p.device.type == "meta" for p in bundle.translator.parameters())
    for modality in Modality:
        for module in _modules(bundle.codec(modality)):
            tensors = [*module.parameters(), *module.buffers()]
            assert all(t.device.type == "meta" for t in tensors), (modality, type(module))
    assert len(list(_modules(bundle.codec(Modality.SPEECH)))) >= 4
