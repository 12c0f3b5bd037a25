"""torchrun with 2 CPU processes (gloo): DDP keeps both ranks' weights identical."""

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file


def test_two_process_ddp_ranks_end_identical(tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
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
