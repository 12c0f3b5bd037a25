"""Back-translation throughput of the paper-size translator: images/s for speech + text per image.

``tmt backtranslate imagenet`` gives every image a pseudo caption (image -> text) and pseudo
speech (image -> speech units), one ``generate`` call per direction and chunk, as here. Random
weights, so the lengths are set rather than learned: EOS is made unreachable and every
hypothesis runs to ``--text-len`` / ``--speech-len`` tokens (the assumed mean lengths of a
caption in WordPiece tokens and of its spoken form in deduplicated HuBERT units). Image
tokenization is not included (the paper's SEED tokenizer is a GPU model of its own).

Prints images/s per precision, the projected time for ImageNet-1k (1 281 167 images) on this
machine, and per GPU from the FLOPs one image needs at a stated sustained GPU throughput.

    python benchmarks/backtranslate.py [--threads 1] [--batch 32] [--precisions fp32 int8]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from tmt.modality import Modality
from tmt.translator.config import paper
from tmt.translator.generate import IMAGE_TOKENS, DecodingOptions, generate
from tmt.translator.incremental import step_parameters
from tmt.translator.model import Translator
from tmt.vocab import EOS, Vocabulary

IMAGENET = 1_281_167


def flops_per_image(model: Translator, beam: int, text_len: int, speech_len: int) -> float:
    """Matmul FLOPs (2 per weight use) of both directions for one image: the encoder over the
    source once per direction, then per generated token and beam row every decoder weight but
    the cross-attention keys/values (computed once per source), the head's dense layer and the
    target's output rows; attention over the cache and the source is added too."""
    config = model.config
    m, layers = config.model_dim, config.num_decoder_layers
    source = IMAGE_TOKENS + 2
    enc_layer = sum(p.numel() for p in model.model.encoder.layers[0].parameters())
    cross_kv = 2 * m * m * layers
    total = 0.0
    for target, length in ((Modality.TEXT, text_len), (Modality.SPEECH, speech_len)):
        steps = length + 1  # + EOS
        total += 2 * source * (config.num_encoder_layers * enc_layer + cross_kv)
        per_row = step_parameters(model, target)
        attention = sum(2 * 2 * m * layers * (t + 1 + source) for t in range(steps))
        total += beam * (2 * steps * per_row + attention)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32, help="images per generate call "
                        "(tmt backtranslate's --batch-size default)")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--text-len", type=int, default=14, help="tokens of a pseudo caption")
    parser.add_argument("--speech-len", type=int, default=80,
                        help="units of pseudo speech (a ~3 s caption at ~25 deduplicated units/s)")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int8"])
    parser.add_argument("--gpu-tflops", type=float, default=60.0,
                        help="sustained GPU matmul TFLOP/s assumed for the projection (e.g. an "
                        "A100's 312 bf16 peak at ~20%% utilisation for batched beam search)")
    parser.add_argument("--gpu-batch", type=int, default=256, help="images per batch on a GPU")
    parser.add_argument("--gpu-step-ms", type=float, default=2.0,
                        help="floor of one decoding step on a GPU (launching the ~300 small "
                        "kernels of 12 layers without CUDA graphs)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    torch.manual_seed(0)
    model = Translator(paper(), Vocabulary.paper()).eval()
    with torch.no_grad():
        model.model.final_proj.bias[EOS] = -1e4  # random weights: run to the set lengths
    images = [(Modality.IMAGE, torch.randint(0, model.vocab.image_size, (IMAGE_TOKENS,)))
              for _ in range(args.batch)]
    flops = flops_per_image(model, args.beam, args.text_len, args.speech_len)
    for precision in args.precisions:
        options = DecodingOptions(beam_size=args.beam, max_text_len=args.text_len,
                                  max_speech_len=args.speech_len, precision=precision)
        generate(model, images[:1], Modality.TEXT, options)  # warm-up, weight conversion
        start = time.perf_counter()
        texts = generate(model, images, Modality.TEXT, options, batch_size=args.batch)
        speech = generate(model, images, Modality.SPEECH, options, batch_size=args.batch)
        seconds = time.perf_counter() - start
        assert all(len(t) == args.text_len for t in texts)
        assert all(len(s) == args.speech_len for s in speech)
        rate = args.batch / seconds
        days = IMAGENET / rate / 86400
        print(f"{precision}: {rate:.3f} images/s ({seconds:.1f} s for {args.batch} images, text "
              f"{args.text_len} + speech {args.speech_len} tokens, beam {args.beam}), "
              f"{flops / seconds * args.batch / 1e9:.0f} GFLOP/s; ImageNet-1k: {days:.1f} days "
              f"on this machine at {args.threads} thread(s)")
    # GPU: each of a batch's decoding steps takes its FLOPs at the sustained rate, but no less
    # than the launch floor
    steps = args.text_len + args.speech_len + 2
    step_seconds = max(flops * args.gpu_batch / steps / (args.gpu_tflops * 1e12),
                       args.gpu_step_ms / 1e3)
    gpu_rate = args.gpu_batch / (steps * step_seconds)
    print(f"FLOPs per image: {flops / 1e9:.1f} GFLOP. Per GPU, batches of {args.gpu_batch} images, "
          f"{args.gpu_tflops:.0f} TFLOP/s sustained, steps of at least {args.gpu_step_ms} ms: "
          f"{step_seconds * 1e3:.1f} ms/step, {gpu_rate:.0f} images/s, ImageNet-1k in "
          f"{IMAGENET / gpu_rate / 3600:.1f} GPU-hours")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
