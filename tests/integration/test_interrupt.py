"""SIGTERM and Ctrl-C (real signals to real processes) during the long-running commands: nothing
finished is lost, and a rerun of the same command ends where an uninterrupted run ends.

`tmt tokenize` and `tmt backtranslate` keep every finished example in the store and a rerun adds
exactly the rest; the codec trainers stop after the current step, write their checkpoint and exit
with code 130, and a rerun resumes from it to the very weights of an uninterrupted run (tmt
train's own tests: tests/unit/train/test_train.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tmt.data.fixtures import write_image, write_tiny_bundle, write_tiny_codecs
from tmt.data.shapes import generate_corpus
from tmt.data.store import TokenStore

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1",
       "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def tmt(*args: object) -> list[str]:
    return [sys.executable, "-m", "tmt", *map(str, args)]


def run(argv: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done


def interrupt(argv: list[str], ready: Path, sig: signal.Signals = signal.SIGTERM) -> str:
    """Start ``argv``, send ``sig`` as soon as ``ready`` exists (mid-run), check that it exits
    with code 130; its stderr."""
    proc = subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while not ready.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before the signal"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err
    return err


def stopped_step(err: str, checkpoint: Path) -> int:
    """The step of the one stderr line a trainer stopped by a signal ends with."""
    lines = [x for x in err.splitlines() if x.startswith("tmt: interrupted:")]
    assert len(lines) == 1, err
    match = re.fullmatch(r"tmt: interrupted: stopped at step (\d+); rerun to resume from (.+)", lines[0])
    assert match and Path(match[2]) == checkpoint and checkpoint.is_file(), err
    return int(match[1])


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def assert_rerun_matches_straight(tmp_path: Path, checkpoint: str, model: str, last: int, *,
                                  counter: str = "step") -> None:
    """The interrupted-then-resumed run (``tmp_path/resumed``) ended where the uninterrupted one
    (``tmp_path/straight``) did: the same final ``counter`` in their ``checkpoint`` files, the
    same ``model`` tensors in them, the same saved weights."""
    final = [torch.load(tmp_path / f"{run}-work" / checkpoint, weights_only=True)
             for run in ("resumed", "straight")]
    assert final[0][counter] == final[1][counter] == last
    assert_same_tensors(final[0][model], final[1][model])
    assert_same_tensors(load_file(tmp_path / "resumed" / "model.safetensors"),
                        load_file(tmp_path / "straight" / "model.safetensors"))


def test_sigterm_during_tokenize_keeps_every_finished_example(tmp_path):
    corpus = generate_corpus(tmp_path / "shapes", 60, seed=3, workers=1, progress=False)
    codecs = write_tiny_codecs(tmp_path / "codecs")
    argv = tmt("tokenize", "shapes", "--root", corpus, "--out", tmp_path / "store",
               "--codecs", codecs, "--shard-size", "5")
    proc = subprocess.Popen(argv, env=ENV, stderr=subprocess.PIPE, text=True)
    # the signal goes as soon as the first shard of 5 is on disk: mid-run, with examples of
    # the next shard queued in memory
    deadline = time.time() + 300
    while not list((tmp_path / "store").glob("shard-*")) and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    kept = int(re.search(r"(\d+) new examples kept", err).group(1))
    assert kept >= 5, err
    assert len(TokenStore(tmp_path / "store")) == kept  # nothing finished was lost
    done = subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    total, written, skipped = map(int, re.search(
        r"(\d+) examples: (\d+) written, (\d+) already stored", done.stdout).groups())
    assert skipped == kept and written > 0 and written + skipped == total, done.stdout
    assert len(TokenStore(tmp_path / "store")) == total


def write_bundle_dir(root: Path) -> Path:
    """A tiny random bundle (the fixture codecs and a one-layer translator)."""
    return write_tiny_bundle(root / "model", write_tiny_codecs(root / "codecs"))


def test_sigterm_during_backtranslate_keeps_every_finished_chunk(tmp_path):
    for i in range(60):  # an ImageNet layout: images only, back-translated to text and speech
        wnid = f"n0000000{i % 3}"
        write_image(tmp_path / "in" / "train" / wnid / f"{wnid}_{i}.JPEG", seed=i)
    model = write_bundle_dir(tmp_path / "bundle")

    def argv(out: Path) -> list[str]:
        return tmt("backtranslate", "imagenet", "--root", tmp_path / "in", "--model", model,
                   "--out", out, "--batch-size", "2", "--shard-size", "2", "--strategy",
                   "greedy", "--max-len", "5")

    store = tmp_path / "store"
    err = interrupt(argv(store), store / "shard-00000")
    kept = int(re.search(r"stopped by signal: (\d+) new examples kept in the store; rerun to "
                         "resume", err).group(1))
    assert 2 <= kept < 60 and kept % 2 == 0, err  # whole chunks of 2, nothing finished lost
    assert len(TokenStore(store)) == kept
    done = run(argv(store))
    assert f"60 examples: {60 - kept} written, {kept} already stored, 0 failed" in done.stdout
    run(argv(tmp_path / "straight"))

    def content(path: Path) -> dict:
        return {e.id: (e.source, e.pseudo, e.image.tolist(), e.text.tolist(), e.speech.tolist())
                for e in TokenStore(path)}

    assert content(store) == content(tmp_path / "straight")


# -- codec trainers -------------------------------------------------------------------------

def test_sigterm_stops_the_image_codec_trainer_at_a_step_and_a_rerun_is_bit_exact(tmp_path):
    from test_image_semantic import SMALL, captioned_corpus

    corpus = captioned_corpus(tmp_path / "corpus")

    def argv(name: str) -> list[str]:
        return tmt("codec", "train", "image", "--corpus", corpus, "--out", tmp_path / name,
                   "--work", tmp_path / f"{name}-work", "--image-cache", tmp_path / "cache",
                   "--override", json.dumps(SMALL), "--steps", "12", "--batch-size", "4",
                   "--threads", "1", "--checkpoint-every", "1", "--eval-every", "100")

    run(argv("straight"))  # also fills the image cache
    checkpoint = tmp_path / "resumed-work" / "checkpoint.pt"
    step = stopped_step(interrupt(argv("resumed"), checkpoint), checkpoint)
    assert 1 <= step < 12 and torch.load(checkpoint, weights_only=True)["step"] == step
    assert f"resumed from {checkpoint} at step {step}" in run(argv("resumed")).stdout
    assert_same_tensors(load_file(tmp_path / "resumed" / "model.safetensors"),
                        load_file(tmp_path / "straight" / "model.safetensors"))


@pytest.mark.parametrize("stage", ["image-semantic", "image-refit"])
def test_sigterm_stops_the_other_image_stages_at_a_step_and_a_rerun_is_bit_exact(tmp_path, stage):
    from test_image_semantic import SMALL, captioned_corpus

    from tmt.cli import main

    corpus = captioned_corpus(tmp_path / "corpus")
    common = ["--corpus", corpus, "--image-cache", tmp_path / "cache", "--steps", "12",
              "--batch-size", "4", "--threads", "1"]
    if stage == "image-semantic":
        options = [*common, "--override", json.dumps(SMALL), "--eval-every", "1"]
        name, model = "semantic.pt", "codec"
    else:  # the decoder of a stage 1 codec (one step of it) is refitted
        assert main(["codec", "train", "image-semantic", *map(str, common), "--out",
                     str(tmp_path / "stage1"), "--work", str(tmp_path / "stage1-work"), "--override",
                     json.dumps(SMALL), "--steps", "1"]) == 0
        options = [*common, "--codec", tmp_path / "stage1", "--checkpoint-every", "1",
                   "--eval-every", "100"]
        name, model = "checkpoint.pt", "decoder"

    def argv(out: str) -> list[str]:
        return tmt("codec", "train", stage, "--out", tmp_path / out, "--work",
                   tmp_path / f"{out}-work", *options)

    checkpoint = tmp_path / "resumed-work" / name
    step = stopped_step(interrupt(argv("resumed"), checkpoint), checkpoint)
    assert 1 <= step < 12
    assert f"resumed from {checkpoint} at step {step}" in run(argv("resumed")).stdout
    run(argv("straight"))
    assert_rerun_matches_straight(tmp_path, name, model, 12)


def test_sigterm_to_one_torchrun_rank_stops_every_rank_at_the_same_step(tmp_path):
    from test_image_semantic import SMALL, captioned_corpus

    corpus = captioned_corpus(tmp_path / "corpus")
    checkpoint = tmp_path / "work" / "checkpoint.pt"
    argv = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
            *tmt("codec", "train", "image", "--corpus", corpus, "--out", tmp_path / "out",
                 "--work", tmp_path / "work", "--override", json.dumps(SMALL), "--steps", "12",
                 "--batch-size", "4", "--threads", "1", "--checkpoint-every", "1",
                 "--eval-every", "100")[1:]]
    proc = subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before the signal"

    def rank_of(pid: str) -> str:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        return next((v[5:].decode() for v in environ if v.startswith(b"RANK=")), "")

    workers = " ".join(p.read_text() for p in Path(f"/proc/{proc.pid}/task").glob("*/children")).split()
    os.kill(int(next(pid for pid in workers if rank_of(pid) == "1")), signal.SIGTERM)  # not the main
    out, err = proc.communicate(timeout=600)
    assert proc.returncode != 0, err
    step = int(re.search(rf"^stopped at step (\d+); rerun to resume from {checkpoint}$", out, re.M)[1])
    assert 1 <= step < 12 and torch.load(checkpoint, weights_only=True)["step"] == step
    assert err.count(f"tmt: interrupted: stopped at step {step}; rerun") == 2, err  # both ranks
    assert f"resumed from {checkpoint} at step {step}" in run(argv).stdout


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny tmt-shapes corpus and its speech units (k = 8)."""
    from tmt.cli import main

    root = tmp_path_factory.mktemp("speech")
    corpus = generate_corpus(root / "corpus", 12, seed=0, workers=1, progress=False)
    assert main(["codec", "train", "speech-units", "--corpus", str(corpus), "--out",
                 str(root / "units"), "--k", "8", "--utterances", "12", "--frames-per-utt", "20"]) == 0
    return corpus, root / "units"


def test_sigterm_stops_the_vocoder_trainer_at_a_step_and_a_rerun_is_bit_exact(tmp_path, speech):
    corpus, units = speech

    def argv(name: str) -> list[str]:
        return tmt("codec", "train", "vocoder", "--corpus", corpus, "--tokenizer", units,
                   "--out", tmp_path / name, "--work", tmp_path / f"{name}-work", "--steps", "40",
                   "--checkpoint-every", "1", "--max-utterances", "6", "--batch-size", "2",
                   "--dim", "32")

    checkpoint = tmp_path / "resumed-work" / "checkpoint.pt"
    step = stopped_step(interrupt(argv("resumed"), checkpoint), checkpoint)
    assert 1 <= step < 40
    assert f"resumed from {checkpoint} at step {step}" in run(argv("resumed")).stdout
    run(argv("straight"))
    assert_rerun_matches_straight(tmp_path, "checkpoint.pt", "model", 40)


def test_ctrl_c_stops_the_judge_trainer_at_a_batch_and_a_rerun_is_bit_exact(tmp_path, speech):
    corpus, _ = speech

    def argv(name: str) -> list[str]:
        return tmt("codec", "train", "judge", "--corpus", corpus, "--out", tmp_path / name,
                   "--work", tmp_path / f"{name}-work", "--epochs", "4", "--batch-size", "2")

    checkpoint = tmp_path / "resumed-work" / "checkpoint.pt"  # written after the first epoch
    step = stopped_step(interrupt(argv("resumed"), checkpoint, signal.SIGINT), checkpoint)
    assert step >= 1
    assert f"resumed from {checkpoint}" in run(argv("resumed")).stdout
    run(argv("straight"))
    assert_rerun_matches_straight(tmp_path, "checkpoint.pt", "model", 4, counter="epoch")


@pytest.mark.parametrize("trainer", ["hifigan", "hubert", "normalizer"])
def test_sigterm_stops_a_speech_trainer_at_a_step_and_a_rerun_is_bit_exact(tmp_path, speech, trainer):
    corpus, units = speech
    options, name, model = {
        "hifigan": (["--tokenizer", units, "--steps", "10", "--batch-size", "2",
                     "--segment-units", "8", "--max-utterances", "4"], "checkpoint.pt", "generator"),
        "hubert": (["--targets", units, "--max-steps", "10", "--layers", "1", "--batch-size", "2",
                    "--max-utterances", "6", "--crop-seconds", "0.5"], "checkpoint.pt", "model"),
        "normalizer": (["--teacher", units, "--steps", "10", "--batch-size", "4",
                        "--warmup-steps", "1", "--valid-utterances", "2", "--architecture",
                        json.dumps({"dim": 32, "layers": 1, "heads": 2, "ffn_dim": 64})],
                       "last.pt", "model"),
    }[trainer]

    def argv(out: str) -> list[str]:
        return tmt("codec", "train", trainer, "--corpus", corpus, "--out", tmp_path / out,
                   "--work", tmp_path / f"{out}-work", "--checkpoint-every", "1", *options)

    checkpoint = tmp_path / "resumed-work" / name
    step = stopped_step(interrupt(argv("resumed"), checkpoint), checkpoint)
    assert 1 <= step < 10
    assert f"resumed from {checkpoint} at step {step}" in run(argv("resumed")).stdout
    run(argv("straight"))
    assert_rerun_matches_straight(tmp_path, name, model, 10)
