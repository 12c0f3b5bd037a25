"""Resynthesis intelligibility: speech judge WER on original vs audio → units → audio.

    python benchmarks/speech_resynth_wer.py --corpus work/shapes-20k --codec tmt/assets/codecs/speech

Test-split utterances in the corpus's output voice (the voice the vocoder was trained on).
The judge is PocketSphinx with the corpus grammar (``tmt.eval.speech_judge``). Durations are
predicted by the vocoder (as when decoding translator output) unless ``--gold-durations``.
``--unconstrained`` also scores both with PocketSphinx's general US-English language model
instead of the grammar: a harsher reader that shows degradation the grammar forgives.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from tmt.eval.speech_judge import SpeechJudge, word_error_rate
from tmt.speech.audio import load_audio, save_audio
from tmt.speech.codec import SpeechCodec
from tmt.train.codecs.speech_data import read_manifest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True)
    p.add_argument("--codec", default="tmt/assets/codecs/speech")
    p.add_argument("--grammar", help="JSGF grammar (default: CORPUS/grammar.jsgf)")
    p.add_argument("--split", default="test")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--gold-durations", action="store_true")
    p.add_argument("--save-dir", help="write a few resynthesized wavs here")
    p.add_argument("--unconstrained", action="store_true", help="also score without the grammar")
    args = p.parse_args()
    torch.set_num_threads(1)
    codec = SpeechCodec.load(args.codec)
    judge = SpeechJudge(args.grammar or Path(args.corpus) / "grammar.jsgf")
    items = [it for it in read_manifest(args.corpus, (args.split,)) if it.is_output_voice][: args.n]
    free = None
    if args.unconstrained:
        from pocketsphinx import Decoder

        free = Decoder(samprate=16000, loglevel="FATAL")
    free_orig, free_res = [], []
    refs, orig, resynth = [], [], []
    t_enc = t_dec = audio_s = 0.0
    for i, it in enumerate(items):
        wave = load_audio(it.path)
        audio_s += len(wave) / 16000
        t0 = time.perf_counter()
        units, durs = codec.tokenizer.encode_with_durations(wave)
        t1 = time.perf_counter()
        out = codec.vocoder.decode(units, durs if args.gold_durations else None)
        t2 = time.perf_counter()
        t_enc, t_dec = t_enc + t1 - t0, t_dec + t2 - t1
        refs.append(it.text)
        orig.append(judge.transcribe(wave, 16000))
        resynth.append(judge.transcribe(out, 16000))
        if free is not None:
            for wav, bucket in ((wave, free_orig), (out, free_res)):
                free.start_utt()
                free.process_raw((np.clip(wav, -1, 1) * 32767).astype("<i2").tobytes(), full_utt=True)
                free.end_utt()
                bucket.append(free.hyp().hypstr if free.hyp() is not None else "")
        if args.save_dir and i < 5:
            save_audio(Path(args.save_dir) / f"{it.example_id}_orig.wav", wave)
            save_audio(Path(args.save_dir) / f"{it.example_id}_resynth.wav", out)
    w_orig, w_res = word_error_rate(orig, refs), word_error_rate(resynth, refs)
    print(f"utterances: {len(items)} ({args.split} split, output voice, {audio_s:.0f} s of audio)")
    print(f"judge WER original: {100 * w_orig:.1f}%")
    print(f"judge WER resynthesized ({'gold' if args.gold_durations else 'predicted'} durations): {100 * w_res:.1f}%")
    if free is not None:
        print(f"unconstrained LM WER original: {100 * word_error_rate(free_orig, refs):.1f}%, "
              f"resynthesized: {100 * word_error_rate(free_res, refs):.1f}%")
    print(f"encode RTF {t_enc / audio_s:.3f}, decode RTF {t_dec / audio_s:.3f}")
    for ref, hyp in list(zip(refs, resynth))[:3]:
        print(f"  ref: {ref}\n  hyp: {hyp}")


if __name__ == "__main__":
    main()
