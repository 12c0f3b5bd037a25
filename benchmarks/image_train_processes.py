"""Stage 2 of the image codec as one 2-thread process against two 1-thread torchrun processes
(each stepping on half of every batch), from the same codec, for the same steps.

Both run the recipe's command (``tmt codec train image --freeze-encoder``, cached trunk
features) and the seconds are its ``train_seconds`` (the steps, their validation and checkpoints;
not the start-up or the trunk features), so the ratio is the recipe's. The two runs follow each
other, nothing else should run beside them.

    python benchmarks/image_train_processes.py --init work/image-codec-2b --corpus work/shapes-20k \
        --image-cache work/image-cache [--steps 300] [--compile auto]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tmt import compiling


def run(command: list[str], out: Path, threads: int) -> float:
    """Run one stage-2 command; its ``train_seconds``."""
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)},
                   stdout=subprocess.DEVNULL)
    return float(json.loads((out / "config.json").read_text())["extra"]["train_seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", required=True, help="the codec stage 2 continues (frozen trunk)")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--image-cache", required=True, help="decoded images and trunk features")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--compile", default="auto", choices=compiling.CHOICES)
    args = parser.parse_args()
    seconds = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, threads, launcher in (
            ("one process, 2 threads", 2, [sys.executable, "-m"]),
            ("two processes, 1 thread each", 1, [sys.executable, "-m", "torch.distributed.run",
                                                 "--standalone", "--nproc-per-node", "2", "-m"]),
        ):
            out = Path(scratch) / name.replace(" ", "-").replace(",", "")
            command = [*launcher, "tmt", "codec", "train", "image", "--corpus", args.corpus, "--init", args.init,
                       "--freeze-encoder", "--perceptual-weight", "1.0", "--out", str(out),
                       "--work", f"{out}-train", "--image-cache", args.image_cache,
                       "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                       "--lr", "5e-4", "--threads", str(threads), "--compile", args.compile,
                       "--eval-every", str(args.steps), "--seed", "0"]
            seconds[name] = run(command, out, threads)
    print(f"stage 2 from {args.init}: {args.steps} steps of {args.batch_size}, --compile {args.compile}")
    print("| layout | train_seconds | s/step | steps per second vs one process |")
    print("| --- | ---: | ---: | ---: |")
    base = next(iter(seconds.values()))
    for name, value in seconds.items():
        print(f"| {name} | {value:.1f} | {value / args.steps:.3f} | {base / value:.2f}x |")


if __name__ == "__main__":
    main()
