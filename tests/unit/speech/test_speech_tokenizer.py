from __future__ import annotations

import numpy as np
import pytest
import torch
from speech_fixtures import utterance

from tmt.errors import TmtError
from tmt.speech.audio import save_audio
from tmt.speech.features import HubertFeatures, MfccFeatures, num_frames
from tmt.speech.quantizer import KMeansQuantizer
from tmt.speech.tokenizer import SpeechTokenizer


@pytest.fixture(scope="module")
def waves():
    return [utterance(seed, seconds=0.6 + 0.2 * (seed % 3)) for seed in range(6)]


@pytest.fixture(scope="module")
def mfcc_tokenizer(waves):
    feats = MfccFeatures()
    frames = torch.cat(feats.forward_batch([torch.from_numpy(w) for w in waves]))
    return SpeechTokenizer(feats, KMeansQuantizer.fit(frames, k=16, niter=10))


@pytest.fixture(scope="module")
def hubert_dir(tmp_path_factory):
    """A tiny random HubertModel saved in the HuggingFace format (as hubert-base-ls960 is)."""
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    cfg = HubertConfig(
        hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
    )
    path = tmp_path_factory.mktemp("hubert")
    HubertModel(cfg).save_pretrained(path)
    return path


def test_units_are_deduplicated_in_range_with_durations(mfcc_tokenizer, waves):
    units, durs = mfcc_tokenizer.encode_with_durations(waves[0])
    assert units.dtype == torch.long and units.ndim == 1
    assert 0 <= int(units.min()) and int(units.max()) < mfcc_tokenizer.vocab_size
    assert bool((units[1:] != units[:-1]).all())  # no consecutive repeats
    assert int(durs.sum()) == num_frames(len(waves[0]))  # 50 frames/s before dedup
    assert len(units) < num_frames(len(waves[0]))
    assert torch.equal(mfcc_tokenizer.encode(waves[0]), units)


def test_path_bytes_and_array_give_the_same_units(mfcc_tokenizer, waves, tmp_path):
    save_audio(tmp_path / "u.wav", waves[1])
    from_path = mfcc_tokenizer.encode(tmp_path / "u.wav")
    assert torch.equal(from_path, mfcc_tokenizer.encode((tmp_path / "u.wav").read_bytes()))
    assert torch.equal(from_path, mfcc_tokenizer.encode(str(tmp_path / "u.wav")))


def test_hubert_layer_batched_equals_one_by_one(hubert_dir, waves):
    feats = HubertFeatures.from_pretrained(hubert_dir, layer=2)
    assert len(feats.model.encoder.layers) == 2  # layers above the read one are dropped
    dense = feats.forward_batch([torch.from_numpy(w) for w in waves])
    tok = SpeechTokenizer(feats, KMeansQuantizer.fit(torch.cat(dense), k=12, niter=10), batch_size=4)
    batched = tok.encode_batch(waves)
    single = [tok.encode(w) for w in waves]
    assert all(torch.equal(a, b) for a, b in zip(batched, single))
    assert [d.shape[0] for d in dense] == [num_frames(len(w)) for w in waves]


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_hubert_features_equal_the_full_models_hidden_states(hubert_dir, waves, norm):
    """Only the layers up to the read one run, batched: still the full HubertModel's hidden
    states of that layer, utterance by utterance (GroupNorm and LayerNorm conv front ends)."""
    from transformers import HubertConfig, HubertModel

    config = HubertConfig.from_pretrained(hubert_dir, feat_extract_norm=norm)
    torch.manual_seed(1)
    full = HubertModel(config).eval()
    feats = HubertFeatures(HubertModel(config), layer=2)
    feats.model.load_state_dict(full.state_dict(), strict=False)
    batched = feats.forward_batch([torch.from_numpy(w) for w in waves])
    for wave, got in zip(waves, batched):
        with torch.inference_mode():
            out = full(torch.from_numpy(wave).float()[None], output_hidden_states=True)
        expected = out.hidden_states[2][0]
        assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()


def test_int8_hubert_features_stay_close_to_float32(hubert_dir, waves):
    feats = HubertFeatures.from_pretrained(hubert_dir, layer=2)
    int8 = feats.at_precision("int8")
    inputs = [torch.from_numpy(w) for w in waves[:3]]
    for exact, approx in zip(feats.forward_batch(inputs), int8.forward_batch(inputs)):
        assert approx.shape == exact.shape
        # this 32-wide random model magnifies the rounding (HuBERT-Base's layer 6: cosine 0.998)
        assert float(torch.nn.functional.cosine_similarity(approx, exact, dim=1).mean()) > 0.8
    assert any(isinstance(p, torch.nn.Parameter) for p in feats.model.encoder.parameters())


def test_long_audio_is_chunked_on_the_frame_grid(hubert_dir):
    feats = HubertFeatures.from_pretrained(hubert_dir, layer=1)
    wave = np.concatenate([utterance(s, seconds=1.0) for s in range(4)])  # 4 s
    dense = feats.forward_batch([torch.from_numpy(wave)])[0]
    tok = SpeechTokenizer(feats, KMeansQuantizer.fit(dense, k=8, niter=5), chunk_seconds=1.0)
    chunked = tok.frame_features([wave])[0]
    assert chunked.shape == dense.shape  # chunks tile the frame grid exactly
    assert int(tok.encode_with_durations(wave)[1].sum()) == num_frames(len(wave))


def test_save_load_roundtrip_and_errors(hubert_dir, waves, tmp_path):
    feats = HubertFeatures.from_pretrained(hubert_dir, layer=3)
    dense = torch.cat(feats.forward_batch([torch.from_numpy(w) for w in waves]))
    tok = SpeechTokenizer(feats, KMeansQuantizer.fit(dense, k=10, niter=5))
    tok.save(tmp_path / "tok", half=False)
    again = SpeechTokenizer.load(tmp_path / "tok")
    assert again.vocab_size == 10
    assert all(torch.equal(tok.encode(w), again.encode(w)) for w in waves[:3])
    with pytest.raises(TmtError, match="not a speech tokenizer"):
        SpeechTokenizer.load(tmp_path)
    with pytest.raises(TmtError, match="layer"):
        HubertFeatures.from_pretrained(hubert_dir, layer=9)


def test_reads_gslm_km_bin(mfcc_tokenizer, waves, tmp_path):
    """fairseq/GSLM ship k-means as a joblib-saved scikit-learn KMeans (km.bin)."""
    import joblib
    from sklearn.cluster import KMeans

    feats = MfccFeatures()
    frames = torch.cat(feats.forward_batch([torch.from_numpy(w) for w in waves])).numpy()
    km = KMeans(n_clusters=12, n_init=1, random_state=0).fit(frames)
    joblib.dump(km, tmp_path / "km.bin")
    with pytest.raises(TmtError, match="is a pickle"):  # no code runs without the opt-in
        KMeansQuantizer.from_sklearn(tmp_path / "km.bin")
    quantizer = KMeansQuantizer.from_sklearn(tmp_path / "km.bin", trust_pickle=True)
    assert np.array_equal(quantizer.assign(frames).numpy(), km.predict(frames))
    # the one-time conversion: the same centroids, read with no pickle
    converted = KMeansQuantizer.from_sklearn(quantizer.save(tmp_path / "km.safetensors"))
    assert np.array_equal(converted.centroids, quantizer.centroids)
    (tmp_path / "bad.bin").write_bytes(b"garbage")
    with pytest.raises(TmtError, match="cannot read k-means"):
        KMeansQuantizer.from_sklearn(tmp_path / "bad.bin", trust_pickle=True)
