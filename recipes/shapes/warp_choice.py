"""How the normalizer's test-time warp is chosen, measured by speech→image on an unseen-voice set.

A bundle whose speech codec has a unit normalizer with test-time warps reads each utterance under
every warp factor; this script translates every reading into an image (the bundle's decoding
options) and scores, per (voice, condition) group, the share of pictures with every attribute
right when the reading is chosen

- per utterance by CTC confidence (what the codec does),
- per utterance by the translator's score of its output (``generate_scored``),
- per group by CTC confidence summed over the group's utterances (one warp per voice, as
  speaker-level VTLN would pick it),
- with one fixed warp for every utterance (each factor in turn).

Development use (``work/unseen-valid``); costs one speech→image decoding per utterance and warp.

    python recipes/shapes/warp_choice.py --model work/cand3/bundle --unseen work/unseen-valid \
        --conditions clean white20 reverb0.4 telephone
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import torch
from tqdm import tqdm

from tmt.bundle import Bundle
from tmt.data.unseen import read_unseen_set
from tmt.eval.shapes_eval import default_judge, score_outputs
from tmt.eval.unseen_eval import _example
from tmt.modality import Modality
from tmt.speech.audio import load_audio
from tmt.speech.codec import SpeechCodec
from tmt.translator.generate import generate_scored

S, IM = Modality.SPEECH, Modality.IMAGE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a bundle whose speech codec has test-time warps")
    parser.add_argument("--unseen", required=True, help="an unseen-voice set (tmt data unseen)")
    parser.add_argument("--conditions", nargs="+", default=["clean", "white20", "reverb0.4", "telephone"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="write the figures as JSON here too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bundle = Bundle.load(args.model)
    codec = bundle.codec(S)
    if not isinstance(codec, SpeechCodec) or codec.normalizer is None or len(codec.normalizer.config.warps) < 2:
        raise SystemExit(f"{args.model}: its speech codec has no normalizer with test-time warps")
    norm = codec.normalizer
    warps = list(norm.config.warps)
    rows = [r for r in read_unseen_set(args.unseen) if r["condition"] in args.conditions]
    waves = [torch.from_numpy(load_audio(r["wav"])) for r in rows]

    # every utterance's CTC confidence under every warp (the codec's own criterion), and readings
    confidence = torch.zeros(len(rows), len(warps))
    readings: dict[float, list[torch.Tensor]] = {}
    with torch.inference_mode():
        for i, wave in enumerate(tqdm(waves, desc="confidence", leave=False)):
            factors = torch.tensor(warps)
            logp, frames = norm(wave[None].repeat(len(warps), 1), torch.full((len(warps),), wave.numel()),
                                warp=factors)
            for j in range(len(warps)):
                confidence[i, j] = logp[j, : int(frames[j])].max(-1).values.mean()
    for w in warps:
        norm.config.warps = [w]
        readings[w] = norm.encode_batch(waves)
    norm.config.warps = warps

    outputs: dict[float, list[tuple[torch.Tensor, float]]] = {}
    for w in warps:
        outputs[w] = []
        for k in tqdm(range(0, len(rows), args.batch_size), desc=f"speech->image, warp {w}", leave=False):
            chunk = [(S, u) for u in readings[w][k : k + args.batch_size]]
            outputs[w].extend(generate_scored(bundle.translator, chunk, IM, bundle.default_options,
                                              batch_size=args.batch_size))

    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[f"{r['voice'] if r['condition'] == 'clean' else 'mixed'} {r['condition']}"].append(i)
    judges: dict[str, object] = {}
    judge_dir = default_judge("test")

    def exact(idx: list[int], choice: list[float]) -> float:
        items = [_example(rows[i]) for i in idx]
        images = [bundle.decode(IM, outputs[w][i][0]) for i, w in zip(idx, choice, strict=True)]
        scores, _ = score_outputs(IM, images, items, [x.attributes for x in items], judges, judge_dir)
        return float(scores["attributes"]["exact"])

    report = {}
    header = ["group", "n", "CTC per utterance", "translator score", "CTC per group (warp)",
              *[f"fixed {w}" for w in warps]]
    print("| " + " | ".join(header) + " |\n|" + " --- |" * len(header))
    for name, idx in groups.items():
        by_ctc = [warps[int(confidence[i].argmax())] for i in idx]
        by_score = [max(warps, key=lambda w, i=i: outputs[w][i][1]) for i in idx]  # type: ignore[misc]
        group_warp = warps[int(confidence[idx].sum(0).argmax())]
        figures = {"n": len(idx), "ctc": exact(idx, by_ctc), "score": exact(idx, by_score),
                   "group": exact(idx, [group_warp] * len(idx)), "group_warp": group_warp,
                   **{f"fixed {w}": exact(idx, [w] * len(idx)) for w in warps}}
        report[name] = figures
        cells = [name, str(len(idx)), f"{100 * figures['ctc']:.0f}%", f"{100 * figures['score']:.0f}%",
                 f"{100 * figures['group']:.0f}% ({group_warp})",
                 *[f"{100 * figures[f'fixed {w}']:.0f}%" for w in warps]]
        print("| " + " | ".join(cells) + " |", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
