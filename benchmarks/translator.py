"""Translator speed on this machine, measured side by side in one run.

1. Decoding: our fairseq2 beam search against HuggingFace ``EncoderDecoderModel.generate()``
   (BERT encoder + BERT decoder with cross-attention) at the same size, vocabulary, beam and
   output length (32 tokens, as an image), for the ``tiny`` and ``paper`` presets.
2. Training: tokens/s of the six-direction training step, and the fraction of this machine's
   measured fp32 matmul FLOP/s that it reaches (FLOPs ~ 6 x non-embedding parameters x tokens
   + the output projection).

    python benchmarks/translator.py [--presets tiny paper] [--threads 2] [--batch 1 8]
"""

from __future__ import annotations

import argparse
import time

import torch

from tmt.modality import DIRECTIONS, Modality
from tmt.translator.config import PRESETS, TranslatorConfig
from tmt.translator.generate import DecodingOptions, generate
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


def bench_decoding(name: str, batch: int, beam: int, repeat: int) -> None:
    config = PRESETS[name]()
    vocab = Vocabulary.paper()
    torch.manual_seed(0)
    ours = Translator(config, vocab).eval()
    theirs = hf_model(config, vocab.size)
    speech = [torch.randint(0, 200, (SOURCE_LEN - 2,)) for _ in range(batch)]
    sources = [(Modality.SPEECH, s) for s in speech]
    options = DecodingOptions(beam_size=beam)
    input_ids = torch.stack([ours.source_ids(Modality.SPEECH, s) for s in speech])

    def run_ours() -> None:
        out = generate(ours, sources, Modality.IMAGE, options, batch_size=batch)
        assert all(len(o) == OUT_TOKENS for o in out)

    def run_hf() -> None:
        with torch.inference_mode():
            out = theirs.generate(
                input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                num_beams=beam, min_new_tokens=OUT_TOKENS + 1, max_new_tokens=OUT_TOKENS + 1,
                do_sample=False, early_stopping=True,
            )
        assert out.shape[1] == OUT_TOKENS + 2

    run_ours(), run_hf()  # warm-up
    t_ours = best_of(run_ours, repeat)
    t_hf = best_of(run_hf, repeat)
    tokens = batch * (OUT_TOKENS + 1)
    print(
        f"decode {name:5s} batch={batch} beam={beam}: ours {tokens / t_ours:8.1f} tok/s  "
        f"HF EncoderDecoderModel {tokens / t_hf:8.1f} tok/s  ratio {t_hf / t_ours:5.2f}x"
    )


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
    parser.add_argument("--presets", nargs="+", default=["tiny", "paper"])
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads")
    for name in args.presets:
        for batch in args.batch:
            bench_decoding(name, batch, args.beam, 1 if name == "paper" else args.repeat)
    for name in args.presets:
        bench_training(name, 8 if name == "tiny" else 2, args.repeat)


if __name__ == "__main__":
    main()
