"""`tmt codec train TRAINER`: each trainer runs a few steps on a tiny tmt-shapes corpus, through
the console script's own entry point (the image stages: tests/unit/train/codecs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tmt.cli import main


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from tmt.data.shapes import generate_corpus

    return generate_corpus(tmp_path_factory.mktemp("shapes") / "c", 12, seed=0, workers=1,
                           progress=False)


@pytest.fixture(scope="module")
def units(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("units") / "tokenizer"
    assert main(["codec", "train", "speech-units", "--corpus", str(corpus), "--out", str(out),
                 "--k", "8", "--utterances", "12", "--frames-per-utt", "20"]) == 0
    return out


def test_speech_units_writes_a_tokenizer(units):
    from tmt.speech.tokenizer import SpeechTokenizer

    assert SpeechTokenizer.load(units).vocab_size == 8


def test_hubert_pretrains_a_few_steps(corpus, units, tmp_path):
    assert main(["codec", "train", "hubert", "--corpus", str(corpus), "--targets", str(units),
                 "--out", str(tmp_path / "hubert"), "--work", str(tmp_path / "w"),
                 "--max-steps", "2", "--layers", "1",
                 "--batch-size", "2", "--max-utterances", "6", "--crop-seconds", "0.5"]) == 0
    assert (tmp_path / "hubert" / "config.json").is_file()


def test_vocoder_and_unit_bpe_make_a_speech_codec(corpus, units, tmp_path, capsys):
    from tmt.speech.codec import SpeechCodec

    codec = tmp_path / "codec"
    assert main(["codec", "train", "vocoder", "--corpus", str(corpus), "--tokenizer", str(units),
                 "--out", str(tmp_path / "vocoder"), "--work", str(tmp_path / "w"),
                 "--steps", "2", "--max-utterances", "6",
                 "--batch-size", "2", "--codec-out", str(codec)]) == 0
    assert SpeechCodec.load(codec).vocab_size == 8
    assert main(["codec", "train", "unit-bpe", "--corpus", str(corpus), "--codec", str(codec),
                 "--vocab-size", "12", "--examples", "6"]) == 0
    assert SpeechCodec.load(codec).vocab_size == 12
    capsys.readouterr()
    assert main(["codec", "train", "unit-bpe", "--corpus", str(corpus), "--codec", str(codec)]) == 2
    assert "already has unit BPE" in capsys.readouterr().err


def test_normalizer_extends_a_speech_codec(corpus, units, tmp_path):
    from tmt.speech.codec import SpeechCodec

    assert main(["codec", "train", "vocoder", "--corpus", str(corpus), "--tokenizer", str(units),
                 "--out", str(tmp_path / "voc"), "--work", str(tmp_path / "vw"),
                 "--steps", "2", "--dim", "32",
                 "--codec-out", str(tmp_path / "codec")]) == 0
    assert main(["codec", "train", "normalizer", "--corpus", str(corpus), "--teacher", str(units),
                 "--out", str(tmp_path / "n"), "--work", str(tmp_path / "w"), "--steps", "2",
                 "--batch-size", "4", "--warmup-steps", "1", "--valid-utterances", "2",
                 "--architecture", '{"dim": 32, "layers": 1, "heads": 2, "ffn_dim": 64}',
                 "--vtlp-range", "0.8", "1.2", "--test-warps", "0.9", "1.0", "1.1",
                 "--codec", str(tmp_path / "codec"), "--codec-out", str(tmp_path / "codec2")]) == 0
    codec = SpeechCodec.load(tmp_path / "codec2")
    assert codec.normalizer is not None and codec.vocab_size == 8
    assert codec.normalizer.config.warps == [0.9, 1.0, 1.1]  # the test-time warps travel with it
    wav = next((corpus / "speech").glob("*_1.wav"))
    units_read = codec.encode(wav)
    assert units_read.dtype == torch.long and bool((units_read < 8).all())


def test_normalizer_warp_settings_out_of_range_are_one_line(corpus, units, tmp_path, capsys):
    common = ["codec", "train", "normalizer", "--corpus", str(corpus), "--teacher", str(units),
              "--out", str(tmp_path / "n"), "--work", str(tmp_path / "w"), "--steps", "1"]
    assert main([*common, "--vtlp-range", "1.2", "0.9"]) == 2
    assert "--vtlp-range must be two factors" in capsys.readouterr().err
    assert main([*common, "--test-warps", "0.9", "4"]) == 2
    err = capsys.readouterr().err
    assert err == "tmt: error: --test-warps must be factors in [0.5, 2], got 0.9 4.0\n"


def test_a_rerun_resumes_its_checkpoint_and_refuses_another_runs(corpus, units, tmp_path, capsys):
    args = ["codec", "train", "vocoder", "--corpus", str(corpus), "--tokenizer", str(units),
            "--out", str(tmp_path / "voc"), "--work", str(tmp_path / "w"), "--max-utterances", "4",
            "--batch-size", "2", "--dim", "32"]
    assert main([*args, "--steps", "1"]) == 0
    assert main([*args, "--steps", "2"]) == 0  # more steps: the same run, resumed
    assert "resumed from" in capsys.readouterr().out
    assert main([*args, "--steps", "2", "--dim", "48"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checkpoint of another run (--dim 32 (now 48))" in err


def test_hifigan_trains_a_few_steps(corpus, units, tmp_path):
    from tmt.speech.hifigan import CodeHiFiGANVocoder

    assert main(["codec", "train", "hifigan", "--corpus", str(corpus), "--tokenizer", str(units),
                 "--out", str(tmp_path / "gan"), "--work", str(tmp_path / "w"),
                 "--steps", "2", "--batch-size", "2",
                 "--segment-units", "8", "--max-utterances", "4"]) == 0
    vocoder = CodeHiFiGANVocoder.load(tmp_path / "gan")
    assert len(vocoder.decode(torch.tensor([1, 2, 3]))) > 0


def test_judge_trains_an_epoch(corpus, tmp_path):
    from tmt.eval.image_judge import ImageJudge

    assert main(["codec", "train", "judge", "--corpus", str(corpus), "--out", str(tmp_path / "j"),
                 "--work", str(tmp_path / "w"), "--epochs", "1", "--batch-size", "8"]) == 0
    ImageJudge.load(tmp_path / "j")


def test_unit_probe_scores_a_tokenizer(corpus, units, capsys):
    assert main(["codec", "train", "unit-probe", "--corpus", str(corpus), "--tokenizer", str(units),
                 "--train-utterances", "12", "--test-utterances", "4", "--pnmi-utterances", "2"]) == 0
    assert "word_f1" in capsys.readouterr().out


@pytest.mark.parametrize("trainer", ["speech-units", "hubert", "vocoder", "hifigan", "judge",
                                     "unit-probe", "unit-bpe", "image-semantic", "image",
                                     "image-refit", "normalizer"])
def test_a_missing_corpus_is_one_line_and_exit_2(trainer, tmp_path, capsys):
    extra = {"hubert": ["--targets", str(tmp_path)], "vocoder": ["--tokenizer", str(tmp_path)],
             "hifigan": ["--tokenizer", str(tmp_path)], "unit-probe": ["--tokenizer", str(tmp_path)],
             "unit-bpe": ["--codec", str(tmp_path)], "image-refit": ["--codec", str(tmp_path)],
             "normalizer": ["--teacher", str(tmp_path), "--work", str(tmp_path / "w")]}
    out = [] if trainer in ("unit-probe", "unit-bpe") else ["--out", str(tmp_path / "out")]
    code = main(["codec", "train", trainer, "--corpus", str(tmp_path / "nowhere"), *out,
                 *extra.get(trainer, [])])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "nowhere" in err and "Traceback" not in err


def _trainer_parsers() -> dict[str, object]:
    from tmt.cli import build_parser

    def sub(parser, name):
        action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        return action.choices[name]

    return dict(sub(sub(build_parser(), "codec"), "train")._actions[-1].choices)


@pytest.mark.parametrize("trainer,options", [
    ("speech-units", "tmt.train.codecs.speech_units:SpeechUnitsOptions"),
    ("hubert", "tmt.train.codecs.hubert:HubertOptions"),
    ("vocoder", "tmt.train.codecs.vocoder:VocoderOptions"),
    ("hifigan", "tmt.train.codecs.hifigan:HifiganOptions"),
    ("judge", "tmt.train.codecs.judge:JudgeOptions"),
    ("unit-probe", "tmt.train.codecs.unit_probe:UnitProbeOptions"),
    ("unit-bpe", "tmt.train.codecs.unit_bpe:UnitBpeOptions"),
    ("normalizer", "tmt.train.codecs.normalizer:NormalizerOptions"),
    ("image-semantic", "tmt.train.codecs.image_semantic:SemanticOptions"),
    ("image", "tmt.train.codecs.image:ImageCodecOptions"),
    ("image-refit", "tmt.train.codecs.image_refit:RefitOptions"),
])
def test_help_defaults_are_the_options_defaults(trainer, options):
    # the CLI writes the defaults out (so that `tmt --help` imports no torch): they must agree
    import dataclasses
    import importlib
    from pathlib import Path

    module, name = options.split(":")
    cls = getattr(importlib.import_module(module), name)
    parser = _trainer_parsers()[trainer]
    defaults = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                for f in dataclasses.fields(cls)
                if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}
    train = defaults.pop("train", None)
    if train is not None:  # the step options nested in the image runs
        defaults.update({k: v for k, v in dataclasses.asdict(train).items()
                         if parser.get_default(k) is not None and k not in ("bf16", "compile")})
    defaults.pop("override", None)  # JSON on the command line, a dict in the options
    for key, value in defaults.items():
        given = parser.get_default(key)
        if isinstance(value, Path):
            given = Path(given)
        assert given == value, f"{trainer} --{key.replace('_', '-')}: CLI {given!r}, options {value!r}"
