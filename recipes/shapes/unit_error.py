"""Unit error of a speech codec on an unseen-voice set, per test-time warp grid of its normalizer.

For each grid (comma-separated warp factors) the codec reads every utterance of the set with
``NormalizerConfig.warps`` set to it; the units are compared with those k-means reads from the
same caption in the output voice. Prints the mean unit error over the clean held-out voices, over
every (voice, condition) group, and for flite:slt clean. Development use (``work/unseen-valid``).

    python recipes/shapes/unit_error.py --codec work/codecs/speech --unseen work/unseen-valid \
        --grids 1.0 0.8,0.9,1.0 0.8,0.9,1.0,1.1,1.2
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch

from tmt.data.unseen import read_unseen_set
from tmt.eval.speech_judge import unit_error_rate
from tmt.speech.codec import SpeechCodec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codec", required=True, help="a speech codec with a unit normalizer")
    parser.add_argument("--unseen", required=True, help="an unseen-voice set (tmt data unseen)")
    parser.add_argument("--grids", nargs="+", default=["1.0"], help="warp grids, e.g. 0.8,0.9,1.0")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    codec = SpeechCodec.load(args.codec)
    if codec.normalizer is None:
        raise SystemExit(f"{args.codec} has no unit normalizer")
    rows = read_unseen_set(args.unseen)
    reference = codec.with_normalizer(None)
    refs = {r["example"]: reference.encode(r["reference"]) for r in rows}
    for grid in args.grids:
        codec.normalizer.config.warps = [float(w) for w in grid.split(",")]
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, r in enumerate(rows):
            groups[r["voice"], r["condition"]].append(i)
        hyps = codec.encode_batch([r["wav"] for r in rows])
        uer = {key: 100 * unit_error_rate([hyps[i] for i in idx], [refs[rows[i]["example"]] for i in idx])
               for key, idx in groups.items()}
        clean = np.mean([v for (_, c), v in uer.items() if c == "clean"])
        slt = uer.get(("flite:slt", "clean"), float("nan"))
        print(f"warps {grid}: clean {clean:.1f}%, every condition {np.mean(list(uer.values())):.1f}%, "
              f"flite:slt clean {slt:.1f}%", flush=True)


if __name__ == "__main__":
    main()
