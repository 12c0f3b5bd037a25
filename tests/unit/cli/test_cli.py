"""One CLI round trip per command, and one-line errors for user mistakes."""

import json
import sys
from pathlib import Path

import pytest
import yaml

from tmt.cli import build_parser, main

sys.path.insert(0, str(Path(__file__).parent))
from test_train import MICRO, VOCAB, concepts  # noqa: E402


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for command in ("translate", "encode", "decode", "tokenize", "train", "models", "data"):
        assert command in out
    with pytest.raises(SystemExit):
        build_parser().parse_args(["translate", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "--beam BEAM beam size (default: 5)" in out
    assert "(default: None)" not in out  # no default is not a default worth printing
    assert "sampling temperature (default: 1.0)" in out and "(0: all) (default: 0)" in out


def test_help_says_each_default_once(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["pack", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: the codecs built into tmt)" in out and out.count("(default:") == out.count("default")
    assert "reranking weight (see tmt translate --rerank) (default: 0.0)" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["translate", "--from", "text", "--to", "text", "hello"], "both text"),
        (["translate", "--from", "speech", "--to", "text", "/no/such.wav"], "input file not found"),
        (["translate", "--from", "text", "--to", "image", "  "], "empty text input"),
        (["translate", "--from", "text", "--to", "image", "x", "--model", "/nowhere"], "no model bundle"),
        (["train", "--config", "/no/such.yaml"], "config file not found"),
        (["decode", "image", "1", "2"], "needs an output file"),
        (["tokenize", "nosuch", "--root", ".", "--out", "x"], "unknown dataset"),
    ],
)
def test_user_mistakes_are_one_line_errors(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_models_lists_presets_with_parameter_counts(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    assert "paper" in out and "229.8M" in out and "tiny" in out


def test_train_command_round_trip(tmp_path, capsys):
    from tmt.data.records import TokenExample
    from tmt.data.store import TokenStoreWriter

    store = tmp_path / "store"
    with TokenStoreWriter(store, shard_size=5, vocab_sizes=VOCAB) as writer:
        for i, c in enumerate(concepts(3) * 4):
            split = "valid" if i < 3 else "train"
            writer.add(TokenExample(id=str(i), split=split, speech=c["speech"], image=c["image"],
                                    text=c["text"]))
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({
        "out_dir": str(tmp_path / "run"), "stores": [str(store)], "model": MICRO,
        "batch_size": 4, "max_steps": 3, "valid_every": 3, "checkpoint_every": 2,
    }))
    code, out, err = run(capsys, "train", "--config", str(config), "--set", "max_steps=4")
    assert code == 0, err
    assert "trained to step 4" in out
    saved = json.loads((tmp_path / "run" / "model" / "vocab.json").read_text())
    assert (saved["speech_size"], saved["image_size"], saved["text_size"]) == (20, 30, 40)
    assert "step 4 valid speech-image=" in err  # periodic validation was reported
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert metrics[-1]["step"] == 4 and "text-speech" in metrics[-1]["valid"]

    config.write_text(yaml.safe_dump({"out_dir": str(tmp_path / "x"), "stores": [str(tmp_path / "none")]}))
    code, _, err = run(capsys, "train", "--config", str(config))
    assert code == 2 and "token store not found" in err


@pytest.mark.parametrize("command", [["codec", "train", t] for t in (
    "speech-units", "hubert", "vocoder", "hifigan", "image-semantic", "image", "image-refit",
    "judge", "unit-probe", "unit-bpe")] + [["judge-report"]])
def test_trainer_help_shows_real_defaults_only(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in out and "(default: False)" not in out
    assert "(default: " in out  # real defaults are still shown


def test_unseen_defaults_repeat_the_library_constants():
    from tmt.cli import data
    from tmt.data.augment import CONDITIONS
    from tmt.data.shapes_tts import UNSEEN_VOICES

    assert data.UNSEEN_VOICES == UNSEEN_VOICES and data.CONDITIONS == tuple(CONDITIONS)


def test_every_command_has_an_example_and_version_and_quiet_exist(capsys):
    from tmt import __version__
    from tmt.cli import commands

    parser = build_parser()
    for path, command in commands(parser):
        assert (command.epilog or "").startswith(f"example: tmt {path}"), path
    with pytest.raises(SystemExit):
        parser.parse_args(["--version"])
    assert capsys.readouterr().out.strip() == f"tmt {__version__}"
    assert parser.parse_args(["--quiet", "models"]).quiet


def test_quiet_turns_progress_bars_off(monkeypatch):
    from tmt.cli import _configure_output
    from tmt.progress import bar_off

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert not bar_off() and bar_off(True)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert bar_off()
    monkeypatch.delenv("TQDM_DISABLE")
    _configure_output(quiet=True)
    assert bar_off()


def test_translate_with_int8_weights(tmp_path, capsys):
    out = tmp_path / "circle.png"
    code, printed, err = run(capsys, "translate", "--from", "text", "--to", "image",
                             "a small red circle", "--precision", "int8", "-o", str(out))
    assert code == 0, err
    assert out.is_file() and printed.strip() == str(out)


def test_text_input_names_the_output_file():
    from tmt.cli.translate import _default_output

    assert _default_output("text", "a small red circle", "image", "a small red circle") == \
        "a_small_red_circle.image.png"
    assert _default_output("speech", "dir/in.wav", "image") == "in.image.png"
    assert _default_output("image", "x.png", "text") is None


def test_every_command_that_runs_a_model_takes_a_device():
    from tmt.cli import commands

    # corpus generation, reports, packing and fitting text/BPE vocabularies run no model
    no_model = {"models", "data shapes", "data unseen", "data report", "pack",
                "codec train unit-bpe", "codec convert-km", "text train"}
    for path, command in commands(build_parser()):
        options = {o for action in command._actions for o in action.option_strings}
        assert ("--device" in options) != (path in no_model), path


def test_stdin_from_a_terminal_is_refused_not_waited_on(monkeypatch, capsys):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdin", Terminal(""))
    assert main(["translate", "--from", "text", "--to", "image", "-"]) == 2
    err = capsys.readouterr().err
    assert "stdin is a terminal" in err and err.count("\n") == 1
