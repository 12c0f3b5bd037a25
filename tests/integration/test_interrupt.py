"""SIGTERM during `tmt tokenize` (a real signal to a real process): every example finished
before the signal is in the store, and a rerun adds exactly the rest."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tmt.data.fixtures import write_tiny_codecs
from tmt.data.shapes import generate_corpus
from tmt.data.store import TokenStore


def test_sigterm_during_tokenize_keeps_every_finished_example(tmp_path):
    corpus = generate_corpus(tmp_path / "shapes", 60, seed=3, workers=1, progress=False)
    codecs = write_tiny_codecs(tmp_path / "codecs")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    argv = [sys.executable, "-m", "tmt", "tokenize", "shapes", "--root", str(corpus),
            "--out", str(tmp_path / "store"), "--codecs", str(codecs), "--shard-size", "5"]
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
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
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    total, written, skipped = map(int, re.search(
        r"(\d+) examples: (\d+) written, (\d+) already stored", done.stdout).groups())
    assert skipped == kept and written > 0 and written + skipped == total, done.stdout
    assert len(TokenStore(tmp_path / "store")) == total
