"""UnitNormalizer: CTC head over two backbones, greedy decoding, files, and the speech codec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tmt.errors import TmtError
from tmt.speech.normalizer import NormalizerConfig, UnitNormalizer, greedy_units

TINY = dict(num_units=12, dim=32, layers=1, heads=2, ffn_dim=64, dropout=0.0)


def test_greedy_units_merge_repeats_drop_blanks_and_stay_deduplicated() -> None:
    blank = 5
    frames = torch.tensor([1, 1, 5, 1, 2, 2, 5, 5, 3, 5])
    log_probs = torch.nn.functional.one_hot(frames, 6).float().log()
    # "1 1 <b> 1" is two 1s for CTC, but units are deduplicated by definition: one 1
    assert greedy_units(log_probs, blank).tolist() == [1, 2, 3]


@pytest.mark.parametrize("subsample", [2, 4])
def test_ctc_frames_are_100_per_second(subsample: int) -> None:
    torch.manual_seed(0)
    model = UnitNormalizer(NormalizerConfig(**TINY, subsample=subsample, upsample=subsample)).eval()
    waves = torch.randn(2, 16000) * 0.1
    logp, frames = model(waves, torch.tensor([16000, 8000]))
    assert logp.shape[0] == 2 and logp.shape[-1] == 13
    assert frames.tolist() == [logp.shape[1], pytest.approx(logp.shape[1] // 2, abs=subsample)]
    assert abs(int(frames[0]) - 100) <= subsample
    assert torch.allclose(logp.exp().sum(-1), torch.ones(logp.shape[:2]), atol=1e-4)


def test_batched_encoding_equals_one_by_one() -> None:
    torch.manual_seed(0)
    model = UnitNormalizer(NormalizerConfig(**TINY)).eval()
    waves = [torch.randn(n) * 0.1 for n in (16000, 5000, 23000)]
    together = model.encode_batch(waves)
    alone = [model.encode_batch([w])[0] for w in waves]
    for a, b in zip(together, alone, strict=True):
        assert torch.equal(a, b)
        assert a.dtype == torch.long and bool((a < 12).all())


def test_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = UnitNormalizer(NormalizerConfig(**TINY)).eval()
    model.save(tmp_path / "n", half=False)
    again = UnitNormalizer.load(tmp_path / "n")
    wave = [torch.randn(12000) * 0.1]
    assert torch.equal(model.encode_batch(wave)[0], again.encode_batch(wave)[0])
    cfg = json.loads((tmp_path / "n" / "config.json").read_text())
    assert cfg["format"] == "tmt-unit-normalizer" and cfg["format_version"] == 1


def test_bad_files_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(TmtError, match="cannot read the normalizer config"):
        UnitNormalizer.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "tmt-unit-normalizer", "dim": "wide"}))
    with pytest.raises(TmtError, match="cannot load the unit normalizer"):
        UnitNormalizer.load(tmp_path)
    with pytest.raises(TmtError, match="multiple of heads"):
        NormalizerConfig(dim=30, heads=4)


def test_vtlp_warp_of_one_is_the_identity() -> None:
    torch.manual_seed(0)
    model = UnitNormalizer(NormalizerConfig(**TINY)).eval()
    waves, lengths = torch.randn(2, 8000) * 0.1, torch.tensor([8000, 8000])
    plain, _ = model(waves, lengths)
    warped, _ = model(waves, lengths, warp=torch.ones(2))
    assert torch.allclose(plain, warped, atol=1e-5)
    other, _ = model(waves, lengths, warp=torch.full((2,), 1.15))
    assert not torch.allclose(plain, other, atol=1e-3)


def test_test_time_warps_keep_each_utterances_most_confident_reading() -> None:
    torch.manual_seed(0)
    warps = [0.85, 1.0, 1.15]
    model = UnitNormalizer(NormalizerConfig(**TINY, warps=warps)).eval()
    waves = [torch.randn(n) * 0.1 for n in (16000, 5000, 23000)]
    chosen = model.encode_batch(waves)
    # by hand: every warp's reading of one utterance, the one with the best mean frame log-prob
    for wave, units in zip(waves, chosen, strict=True):
        n = torch.tensor([wave.numel()])
        readings = []
        for w in warps:
            with torch.inference_mode():
                logp, frames = model(wave[None], n, warp=torch.tensor([w]))
            lp = logp[0, : int(frames[0])]
            readings.append((float(lp.max(-1).values.mean()), greedy_units(lp, model.blank)))
        assert torch.equal(units, max(readings, key=lambda r: r[0])[1])
    # batched as one-by-one, and the readings really differ between warps (the choice matters)
    assert all(torch.equal(a, model.encode_batch([w])[0]) for a, w in zip(chosen, waves, strict=True))
    plain = UnitNormalizer(NormalizerConfig(**TINY)).eval()
    plain.load_state_dict(model.state_dict())
    assert any(not torch.equal(a, b) for a, b in zip(chosen, plain.encode_batch(waves), strict=True))


def test_test_time_warps_are_checked() -> None:
    with pytest.raises(TmtError, match="warps must be factors"):
        NormalizerConfig(**TINY, warps=[])
    with pytest.raises(TmtError, match="warps must be factors"):
        NormalizerConfig(**TINY, warps=[1.0, 3.0])
    with pytest.raises(TmtError, match="hubert backbone has none"):
        NormalizerConfig(backbone="hubert", hubert={"hidden_size": 8}, warps=[0.9, 1.0])


@pytest.fixture(scope="module")
def hubert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random HubertModel saved in the HuggingFace format (as hubert-base-ls960 is)."""
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    cfg = HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    path = tmp_path_factory.mktemp("hubert")
    HubertModel(cfg).save_pretrained(path)
    return path


def test_hubert_backbone_fine_tunes_with_ctc_and_reloads(hubert_dir: Path, tmp_path: Path) -> None:
    """The paper setting: a HuBERT loaded from disk is the normalizer's backbone (Lee et al.)."""
    from transformers import HubertModel

    pretrained = HubertModel.from_pretrained(hubert_dir)
    cfg = NormalizerConfig(num_units=12, backbone="hubert", hubert=pretrained.config.to_dict(), upsample=2)
    model = UnitNormalizer(cfg)
    model.backbone.model.load_state_dict(pretrained.state_dict())
    waves, lengths = torch.randn(2, 16000) * 0.1, torch.tensor([16000, 12000])
    logp, frames = model(waves, lengths)
    assert frames.tolist() == [98, 74]  # 49 and 37 HuBERT frames (20 ms), two CTC frames each
    targets = torch.tensor([1, 2, 3, 4, 5])
    loss = torch.nn.functional.ctc_loss(logp.transpose(0, 1), targets.repeat(2), frames,
                                        torch.tensor([5, 5]), blank=12)
    loss.backward()
    assert model.backbone.model.encoder.layers[0].attention.q_proj.weight.grad is not None
    model.eval().save(tmp_path / "n", half=False)
    again = UnitNormalizer.load(tmp_path / "n")
    wave = [torch.randn(16000) * 0.1]
    assert torch.equal(model.encode_batch(wave)[0], again.encode_batch(wave)[0])
