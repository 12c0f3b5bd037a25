"""`tmt translate` latency for one speech→image request with the bundled model.

- cold: a fresh process, from start to the PNG written (`tmt translate ... -o out.png`);
- warm: the model already loaded in this process, one request (encode + translate + decode),
  split into its three stages.

    python benchmarks/latency.py [--model shapes] [--repeat 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tmt.paths import EXAMPLES


def cold(model: str, wav: Path, repeat: int, threads: int) -> list[float]:
    tmt = Path(sys.executable).with_name("tmt")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeat):
            out = Path(tmp) / f"{i}.png"
            start = time.perf_counter()
            subprocess.run([str(tmt), "translate", "--from", "speech", "--to", "image", str(wav),
                            "-o", str(out), "--model", model], check=True, env=env,
                           capture_output=True)
            times.append(time.perf_counter() - start)
            assert out.is_file()
    return times


def import_seconds(statement: str, repeat: int) -> float:
    """Median wall time of a fresh interpreter running ``statement``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def warm(model: str, wav: Path, repeat: int) -> dict[str, float]:
    import tmt
    from tmt.modality import Modality
    from tmt.translator.generate import generate

    bundle = tmt.load_model(model)
    bundle.translate([wav], "speech", "image")  # load the codecs, warm the caches
    stages: dict[str, list[float]] = {"encode": [], "translate": [], "decode": [], "total": []}
    for _ in range(repeat):
        t0 = time.perf_counter()
        units = bundle.encode(Modality.SPEECH, wav)
        t1 = time.perf_counter()
        (codes,) = generate(bundle.translator, [(Modality.SPEECH, units)], Modality.IMAGE,
                            bundle.default_options)
        t2 = time.perf_counter()
        bundle.decode(Modality.IMAGE, codes)
        t3 = time.perf_counter()
        for key, value in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
            stages[key].append(value)
    return {k: statistics.median(v) for k, v in stages.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--wav", default=str(EXAMPLES / "speech.wav"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    wav = Path(args.wav)
    times = cold(args.model, wav, args.repeat, args.threads)
    print(f"cold start (process start -> PNG written), median of {args.repeat}: "
          f"{statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f})")
    # Where cold start goes: fresh interpreters importing one more layer each (side by side).
    base = import_seconds("import torch", args.repeat)
    ours = import_seconds("import tmt.bundle, tmt.image.codec, tmt.speech.codec, tmt.text",
                          args.repeat)
    diffusers = import_seconds("import torch, diffusers.models.autoencoders.vae", args.repeat)
    print(f"imports, median of {args.repeat}: torch {base:.2f} s; tmt's inference modules "
          f"{ours:.2f} s; torch + diffusers' VAE module (no longer imported) {diffusers:.2f} s")
    stages = warm(args.model, wav, args.repeat)
    print(f"warm speech->image, median of {args.repeat}: {stages['total']:.3f} s "
          f"(encode {stages['encode']:.3f}, translate {stages['translate']:.3f}, "
          f"decode {stages['decode']:.3f})")


if __name__ == "__main__":
    main()
