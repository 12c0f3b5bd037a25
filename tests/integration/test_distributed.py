"""torchrun with 2 CPU processes (gloo): DDP keeps both ranks' weights identical."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

# the workers import this checkout's tmt, whatever the environment has installed
REPO = str(Path(__file__).resolve().parents[2])


def test_two_process_ddp_ranks_end_identical(tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": REPO}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--standalone", str(worker), str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    a = load_file(tmp_path / "rank0.safetensors")
    b = load_file(tmp_path / "rank1.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # dropout differed per rank, yet the weights agree because gradients were all-reduced;
    # and they are trained weights, not the shared initialisation
    init = load_file(tmp_path / "init.safetensors")
    assert any(not torch.equal(a[k], init[k]) for k in a)


def test_two_process_ddp_step_has_the_single_process_gradient(tmp_path):
    """Two ranks of 4 examples each compute the gradient of one process on the same 8: each
    direction's loss is the mean over the whole batch's target tokens, not over a rank's. The
    validation losses, each rank computing some of the batches, are one process's."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "train"))
    from test_train import MICRO, VOCAB, concepts

    from tmt.train.config import TrainConfig
    from tmt.train.loop import Trainer

    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": REPO}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--standalone", str(worker), str(tmp_path), "grads"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    config = TrainConfig(out_dir=str(tmp_path / "one"), vocab=VOCAB,
                         model={**MICRO, "dropout_p": 0.0}, batch_size=8, max_steps=6, lr=1e-3,
                         warmup_steps=2, valid_every=1000, checkpoint_every=1000)
    valid = concepts(4, seed=5) * 3  # 12 examples: batches of 4, two on rank 0, one on rank 1
    expected = Trainer(dataclasses.replace(config, batch_size=4), concepts(4) * 4, valid).validate()
    for rank in (0, 1):
        shared = json.loads((tmp_path / f"valid-rank{rank}.json").read_text())
        assert shared.keys() == expected.keys() and len(expected) == 6
        assert all(abs(shared[k] - expected[k]) < 1e-5 for k in expected), (shared, expected)
    single = Trainer(config, concepts(4) * 4)
    single.train_step()
    ranks = [load_file(tmp_path / f"grads-rank{r}.safetensors") for r in (0, 1)]
    for name, p in single.translator.named_parameters():
        if p.grad is None:
            continue
        assert torch.equal(ranks[0][name], ranks[1][name])
        assert torch.allclose(ranks[0][name], p.grad, rtol=1e-4, atol=1e-6), name
