"""The fast decoder (our beam search over IncrementalDecoder) against fairseq2's generator."""

import pytest
import torch

from tmt import kernels
from tmt.errors import TmtError
from tmt.modality import Modality
from tmt.translator.config import TranslatorConfig
from tmt.translator.generate import DecodingOptions, generate_scored
from tmt.translator.model import Translator
from tmt.vocab import EOS, Vocabulary

S, IM, T = Modality.SPEECH, Modality.IMAGE, Modality.TEXT


def _model(seed: int, image_grid: tuple[int, int] | None = None) -> Translator:
    config = TranslatorConfig(model_dim=64, num_encoder_layers=2, num_decoder_layers=2,
                              num_attn_heads=4, ffn_inner_dim=128, max_seq_len=64,
                              image_grid=image_grid)
    torch.manual_seed(seed)
    model = Translator(config, Vocabulary(speech_size=20, image_size=32, text_size=40)).eval()
    with torch.no_grad():  # sharper than BERT's N(0, 0.02) start, so that beams differ
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(8.0)
    return model


def _sources(seed: int) -> list[tuple[Modality, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(S, torch.randint(0, 20, (n,), generator=g)) for n in (5, 11, 8)] + [
        (T, torch.randint(0, 40, (6,), generator=g))]


CASES = [
    (T, DecodingOptions(beam_size=3, max_text_len=9)),
    (T, DecodingOptions(beam_size=5, max_text_len=12, len_penalty=0.6, temperature=0.8)),
    (T, DecodingOptions(strategy="greedy", max_text_len=9)),
    (IM, DecodingOptions(beam_size=4)),
    # reranking reads every hypothesis of the beam, not just the best: the n-best lists must agree
    (T, DecodingOptions(beam_size=4, max_text_len=9, rerank=1.0)),
]


@pytest.mark.parametrize("target,options", CASES)
@pytest.mark.parametrize("seed", [0, 1])
# one source at a time: a beam's rows (<= 8) go through the native kernel where it is built;
# three: 12 rows, torch's GEMM
@pytest.mark.parametrize("batch_size", [1, 3])
def test_fast_float32_equals_the_fairseq2_reference(seed, target, options, batch_size):
    model = _model(seed, image_grid=(4, 8) if target is IM else None)
    sources = [s for s in _sources(seed) if s[0] is not target]
    fast = generate_scored(model, sources, target, options, batch_size=batch_size)
    reference = generate_scored(model, sources, target, options, batch_size=batch_size,
                                reference=True)
    for (ids, score), (ref_ids, ref_score) in zip(fast, reference):
        assert torch.equal(ids, ref_ids)
        assert score == pytest.approx(ref_score, abs=1e-4)
    if target is IM:
        assert all(len(ids) == 32 for ids, _ in fast)


def test_without_the_native_kernels_the_fast_path_still_equals_the_reference():
    model = _model(0)
    sources = _sources(0)[:3]
    options = DecodingOptions(beam_size=3, max_text_len=9)
    with kernels.disabled():
        fast = generate_scored(model, sources, T, options, batch_size=1)
    reference = generate_scored(model, sources, T, options, batch_size=1, reference=True)
    assert [ids.tolist() for ids, _ in fast] == [ids.tolist() for ids, _ in reference]


def test_output_longer_than_the_position_table_is_capped_as_the_reference_caps_it():
    model = _model(0)
    with torch.no_grad():
        model.model.final_proj.bias[EOS] = -1e4  # never chosen: only the cap ends a hypothesis
    options = DecodingOptions(beam_size=2, max_speech_len=500)
    fast = generate_scored(model, [(T, torch.arange(5))], S, options)
    reference = generate_scored(model, [(T, torch.arange(5))], S, options, reference=True)
    assert [len(ids) for ids, _ in fast] == [62]  # 64 positions: the tag, 62 ids, EOS
    assert torch.equal(fast[0][0], reference[0][0])


def test_int8_and_bf16_load_decode_and_mostly_agree_with_float32():
    model = _model(2)
    sources = _sources(2)[:3]
    exact = generate_scored(model, sources, T, DecodingOptions(beam_size=3, max_text_len=9))
    for precision in ("int8", "bf16"):
        options = DecodingOptions(beam_size=3, max_text_len=9, precision=precision)
        approx = generate_scored(model, sources, T, options)
        assert all(0 < len(ids) <= 9 and int(ids.max()) < 40 for ids, _ in approx)
        tokens = sum(len(ids) for ids, _ in exact)
        same = sum(int((a[: len(b)] == b[: len(a)]).sum()) for (a, _), (b, _) in zip(approx, exact))
        assert same >= 0.6 * tokens, precision
        assert [s for _, s in approx] == pytest.approx([s for _, s in exact], abs=0.25)


def test_int8_weights_follow_the_parameters():
    model = _model(3)
    sources = _sources(3)[:1]
    options = DecodingOptions(beam_size=2, max_text_len=5, precision="int8")
    before = generate_scored(model, sources, T, options)[0][1]
    with torch.no_grad():
        model.model.final_proj.bias.add_(torch.linspace(-5, 5, model.vocab.size))
    after = generate_scored(model, sources, T, options)[0][1]
    assert before != after


def test_bad_precision_is_one_clear_error():
    from tmt.precision import check_weight_precision

    with pytest.raises(TmtError, match="precision must be one of fp32, int8, bf16"):
        DecodingOptions(precision="fp16")
    with pytest.raises(TmtError, match="int8 decoding runs on CPU only"):
        check_weight_precision("int8", "cuda")
