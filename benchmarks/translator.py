"""Translator speed on this machine, measured side by side in one run.

1. Decoding: our beam search (the fast incremental decoder in float32 and int8, optionally
   bf16; float32 also without the native kernels, "torch-only"; and fairseq2's generator, the
   reference path) against HuggingFace
   ``EncoderDecoderModel.generate()`` (BERT encoder + BERT decoder with cross-attention) at the
   same size, vocabulary, beam and output length (33 tokens: an image's 32 codes + EOS), for
   the ``tiny`` and ``paper`` presets. Then, for the first preset, where a decoding's time goes
   (profiler, self CPU time by kind of op) and the fraction of the weights-streaming limit
   reached: the decoder's per-step weight bytes moved at this machine's measured copy bandwidth.
2. Training: tokens/s of the six-direction training step, and the fraction of this machine's
   measured fp32 matmul FLOP/s that it reaches (FLOPs ~ 6 x non-embedding parameters x tokens
   + the output projection).

    python benchmarks/translator.py [--presets paper tiny] [--threads 1] [--batch 1 8] \
        [--precisions fp32 int8 bf16] [--paper-repeat 1] [--no-training]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections import defaultdict

import torch

from tmt import kernels
from tmt.modality import DIRECTIONS, Modality
from tmt.precision import native_bf16
from tmt.translator.config import PRESETS, TranslatorConfig
from tmt.translator.generate import DecodingOptions, fast_decoder, generate
from tmt.translator.incremental import step_parameters
from tmt.translator.model import Translator
from tmt.vocab import Vocabulary

OUT_TOKENS = 32  # an image: exactly 32 codes, so both decoders produce the same length
SOURCE_LEN = 64


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def hf_model(config: TranslatorConfig, vocab_size: int):
    from transformers import BertConfig, BertLMHeadModel, BertModel, EncoderDecoderModel

    common = dict(
        vocab_size=vocab_size, hidden_size=config.model_dim,
        num_hidden_layers=config.num_encoder_layers, num_attention_heads=config.num_attn_heads,
        intermediate_size=config.ffn_inner_dim, max_position_embeddings=config.max_seq_len,
    )
    encoder = BertModel(BertConfig(**common))
    decoder = BertLMHeadModel(BertConfig(**common, is_decoder=True, add_cross_attention=True))
    model = EncoderDecoderModel(encoder=encoder, decoder=decoder).eval()
    for cfg in (model.config, model.generation_config):
        cfg.decoder_start_token_id = 1
        cfg.bos_token_id = 1
        cfg.pad_token_id = 0
        cfg.eos_token_id = 2
    return model


def bench_decoding(name: str, batch: int, beam: int, repeat: int, precisions: list[str]) -> None:
    config = PRESETS[name]()
    vocab = Vocabulary.paper()
    torch.manual_seed(0)
    ours = Translator(config, vocab).eval()
    theirs = hf_model(config, vocab.size)
    speech = [torch.randint(0, 200, (SOURCE_LEN - 2,)) for _ in range(batch)]
    sources = [(Modality.SPEECH, s) for s in speech]
    input_ids = torch.stack([ours.source_ids(Modality.SPEECH, s) for s in speech])

    def run_ours(precision: str, reference: bool = False, native: bool = True):
        options = DecodingOptions(beam_size=beam, precision=precision)
        def run() -> None:
            with contextlib.nullcontext() if native else kernels.disabled():
                out = generate(ours, sources, Modality.IMAGE, options, batch_size=batch,
                               reference=reference)
            assert all(len(o) == OUT_TOKENS for o in out)
        return run

    def run_hf() -> None:
        with torch.inference_mode():
            out = theirs.generate(
                input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                num_beams=beam, min_new_tokens=OUT_TOKENS + 1, max_new_tokens=OUT_TOKENS + 1,
                do_sample=False, early_stopping=True,
            )
        assert out.shape[1] == OUT_TOKENS + 2

    runs = {f"ours {p}": run_ours(p) for p in precisions}
    if "fp32" in precisions and kernels.enabled():
        runs["ours fp32 torch-only"] = run_ours("fp32", native=False)
    runs["fairseq2 reference"] = run_ours("fp32", reference=True)
    runs["HF generate"] = run_hf
    for fn in runs.values():
        fn()  # warm-up (and the int8 / bf16 weight conversion, kept between calls)
    seconds = {label: float("inf") for label in runs}
    for _ in range(repeat):  # rounds of every run in turn, so that a change of load hits all
        for label, fn in runs.items():
            seconds[label] = min(seconds[label], best_of(fn, 1))
    tokens = batch * (OUT_TOKENS + 1)
    hf = seconds["HF generate"]
    for label, t in seconds.items():
        print(f"decode {name:5s} batch={batch} beam={beam} {label:20s} {tokens / t:8.1f} tok/s "
              f"{t:7.2f} s  {hf / t:5.2f}x HF")


def copy_bandwidth() -> float:
    """Bytes read + written per second by a 256 MB tensor copy."""
    a = torch.ones(64 * 1024 * 1024)
    b = torch.empty_like(a)
    return 2 * a.numel() * 4 / best_of(lambda: b.copy_(a), 5)


KINDS = [  # (kind, substrings of profiler op names), first match wins
    ("linear layers (matmul)", ("addmm", "linear", "aten::mm", "matmul", "quantized::", "skinny")),
    ("attention", ("scaled_dot_product", "softmax_backward", "_softmax", "bmm")),
    ("GELU + LayerNorm", ("gelu", "layer_norm")),
    ("KV cache reorder / writes", ("index_select", "copy_")),
    ("top-k + log-softmax", ("topk", "log_softmax")),
]


def profile_decoding(name: str, batch: int, beam: int, precisions: list[str]) -> None:
    """Where the fast decoder's time goes, and the fraction of the weights-streaming limit."""
    from torch.profiler import ProfilerActivity, profile

    config = PRESETS[name]()
    vocab = Vocabulary.paper()
    torch.manual_seed(0)
    ours = Translator(config, vocab).eval()
    sources = [(Modality.SPEECH, torch.randint(0, 200, (SOURCE_LEN - 2,))) for _ in range(batch)]
    step_params = step_parameters(ours, Modality.IMAGE)
    bandwidth = copy_bandwidth()
    print(f"\nprofile {name} batch={batch} beam={beam}, copy bandwidth {bandwidth / 1e9:.1f} GB/s "
          f"(read + write), decoder weights per step {step_params / 1e6:.0f}M")
    for precision in precisions:
        options = DecodingOptions(beam_size=beam, precision=precision)
        generate(ours, sources, Modality.IMAGE, options, batch_size=batch)  # warm-up
        fast = fast_decoder(ours, precision)
        source = torch.stack([ours.source_ids(m, s) for m, s in sources])
        t_encode = best_of(lambda f=fast, x=source: f.encode(x, [SOURCE_LEN] * batch), 2)
        t_total = best_of(lambda o=options: generate(ours, sources, Modality.IMAGE, o, batch_size=batch), 2)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            generate(ours, sources, Modality.IMAGE, options, batch_size=batch)
        by_kind: dict[str, float] = defaultdict(float)
        for event in prof.key_averages():
            kind = next((k for k, keys in KINDS if any(key in event.key for key in keys)), "other")
            by_kind[kind] += event.self_cpu_time_total
        total = sum(by_kind.values())
        step = (t_total - t_encode) / (OUT_TOKENS + 1)
        weight_bytes = step_params * {"fp32": 4, "int8": 1, "bf16": 2}[precision]
        limit = weight_bytes / bandwidth
        print(f"  {precision}: {t_total:.2f} s = encoder {t_encode * 1e3:.0f} ms + 33 steps of "
              f"{step * 1e3:.1f} ms; streaming limit {limit * 1e3:.1f} ms/step "
              f"({weight_bytes / 1e6:.0f} MB at {bandwidth / 1e9:.1f} GB/s): "
              f"{100 * limit / step:.0f}% of it reached")
        for kind, _ in [*KINDS, ("other", ())]:
            print(f"    {kind:28s} {100 * by_kind[kind] / total:5.1f}%")


def matmul_flops(n: int = 1024, repeat: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t = best_of(lambda: [a @ b for _ in range(5)], repeat)
    return 5 * 2 * n**3 / t


def bench_training(name: str, batch: int, steps: int) -> None:
    config = PRESETS[name]()
    config.dropout_p = config.attn_dropout_p = 0.0
    vocab = Vocabulary(speech_size=200, image_size=1024, text_size=1000)
    torch.manual_seed(0)
    model = Translator(config, vocab)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    examples = [
        {Modality.SPEECH: torch.randint(0, 200, (60,)), Modality.IMAGE: torch.randint(0, 1024, (32,)),
         Modality.TEXT: torch.randint(0, 1000, (12,))}
        for _ in range(batch)
    ]
    batch_obj = model.make_batch(examples, DIRECTIONS)
    assert batch_obj is not None
    tokens = sum(batch_obj.source_lens) + sum(batch_obj.target_lens)

    def step() -> None:
        opt.zero_grad()
        loss, _ = model(batch_obj)
        loss.backward()
        opt.step()

    step()
    seconds = best_of(step, steps)
    embed = model.model.encoder_frontend.embed.weight.numel()
    non_embedding = model.num_parameters() - embed
    # forward + backward = 3 x forward; forward = 2 FLOPs per weight per token; + output proj.
    out_tokens = sum(batch_obj.target_lens)
    flops = 6 * non_embedding * tokens + 6 * embed * out_tokens
    peak = matmul_flops()
    print(
        f"train  {name:5s} batch={batch} examples (6 directions, {tokens} tokens): "
        f"{tokens / seconds:8.0f} tok/s, {flops / seconds / 1e9:6.1f} GFLOP/s = "
        f"{100 * flops / seconds / peak:4.1f}% of measured matmul peak {peak / 1e9:.0f} GFLOP/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["paper", "tiny"])
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--paper-repeat", type=int, default=1, help="rounds for the paper preset")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int8"],
                        help="precisions of our fast decoder (bf16 is emulated, slow, on AVX2 CPUs)")
    parser.add_argument("--no-training", action="store_true", help="decoding figures only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, native bf16: {native_bf16('cpu')}")
    for name in args.presets:
        for batch in args.batch:
            bench_decoding(name, batch, args.beam,
                           args.paper_repeat if name == "paper" else args.repeat, args.precisions)
    profile_decoding(args.presets[0], args.batch[0], args.beam, args.precisions)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.no_training:
        return
    for name in args.presets:
        bench_training(name, 8 if name == "tiny" else 2, args.repeat)


if __name__ == "__main__":
    main()
