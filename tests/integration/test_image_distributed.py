"""The image codec's trainer as two torchrun processes (gloo, CPU)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from tmt.image.codec import ImageCodec

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone"]
# the workers import this checkout's tmt, whatever the environment has installed
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def test_ranks_stay_identical_through_dead_code_restarts(tmp_path: Path) -> None:
    """Each rank steps on half of every batch: the averaged gradients and the main rank's
    restarts (sent to the other) keep the weights, codebook included, identical."""
    worker = Path(__file__).with_name("image_ddp_worker.py")
    done = subprocess.run([*TORCHRUN, str(worker), str(tmp_path)], env=ENV, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = (load_file(tmp_path / f"rank{r}.safetensors") for r in (0, 1))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    restarted = json.loads((tmp_path / "restarted-rank0.json").read_text())
    assert sum(restarted) > 0  # 24 codes, 8 images x 32 queries: some were re-seeded
    assert json.loads((tmp_path / "restarted-rank1.json").read_text()) == [0] * 6  # main only


def test_cli_under_torchrun_saves_one_codec(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))
    sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "train" / "codecs"))
    from test_compiling import SMALL
    from test_image_train import tiny_corpus

    corpus = tiny_corpus(tmp_path / "corpus")
    override = {k: v for k, v in SMALL.items() if k != "image_size"}
    cmd = [*TORCHRUN, "-m", "tmt", "codec", "train", "image", "--corpus", str(corpus), "--out",
           str(tmp_path / "out"), "--work", str(tmp_path / "work"), "--override", json.dumps(override),
           "--steps", "3", "--batch-size", "4", "--threads", "1", "--eval-every", "2",
           "--freeze-encoder", "--perceptual-weight", "0.5"]  # the recipe's stage 2: no BatchNorm trains
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    codec = ImageCodec.load(tmp_path / "out")
    assert codec.config.extra["processes"] == 2
    assert codec.config.extra["train_options"]["batch_size"] == 4  # the step's, both ranks'
    assert (tmp_path / "work" / "checkpoint.pt").is_file()
    odd = subprocess.run([*cmd[:-11], "--steps", "3", "--batch-size", "3"], env=ENV,
                         capture_output=True, text=True, timeout=600)
    assert odd.returncode != 0 and "does not split into 2 ranks" in odd.stderr
