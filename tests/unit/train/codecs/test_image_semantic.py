"""The CNN encoder, its caption pre-training (stage 1) and the frozen-encoder, perceptual stage 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from tmt import precision
from tmt.cli import main as cli_main
from tmt.errors import TmtError
from tmt.image.codec import ImageCodec
from tmt.image.config import ImageCodecConfig
from tmt.train.codecs.image_alignment import perceptual_loss, trunk_features
from tmt.train.codecs.image_refit import DecoderTrainer
from tmt.train.codecs.image_steps import Trainer, TrainOptions


def semantic_main(argv: list[str]) -> int:
    return cli_main(["codec", "train", "image-semantic", *argv])


def train_main(argv: list[str]) -> int:
    return cli_main(["codec", "train", "image", *argv])


def refit_main(argv: list[str]) -> int:
    return cli_main(["codec", "train", "image-refit", *argv])


@pytest.fixture(autouse=True, scope="module")
def one_thread():  # type: ignore[no-untyped-def]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SMALL = {
    "encoder": "cnn", "local_queries": False, "cnn_channels": [8, 16], "vit_dim": 16, "qformer_dim": 16,
    "qformer_layers": 1, "qformer_heads": 2, "code_dim": 8, "codebook_size": 24,
    "bridge_dim": 16, "bridge_heads": 2, "latent_channels": 8, "decoder_channels": [8, 16],
    "decoder_norm_groups": 4,
}


def captioned_corpus(root: Path, n: int = 12) -> Path:
    """Red or blue squares on a light background, captioned with their colour."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    lines = []
    for i in range(n):
        array = np.full((64, 64, 3), 240, dtype=np.uint8)
        x, y = rng.integers(0, 40, 2)
        colour = ("red", (220, 30, 30)) if i % 2 else ("blue", (30, 30, 220))
        array[y : y + 20, x : x + 20] = colour[1]
        Image.fromarray(array).save(root / "images" / f"{i}.png")
        split = "train" if i < 8 else "valid"
        lines.append(json.dumps({
            "id": str(i), "split": split, "image": f"images/{i}.png",
            "caption": f"a {colour[0]} square",
        }))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_cnn_codec_encodes_and_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    codec = ImageCodec(ImageCodecConfig.from_dict({**SMALL, "image_size": 16})).eval()
    assert codec.config.num_patches == 4 * 4
    images = [Image.new("RGB", (16, 16), c) for c in ((200, 0, 0), (0, 0, 200))]
    ids = codec.encode_ids(images)
    assert ids.shape == (2, 32) and int(ids.max()) < 24
    codec.save(tmp_path / "c", dtype=torch.float32)
    loaded = ImageCodec.load(tmp_path / "c")
    assert loaded.config.encoder == "cnn" and loaded.config.cnn_channels == (8, 16)
    assert torch.equal(loaded.encode_ids(images), ids)


def test_cnn_config_is_checked() -> None:
    with pytest.raises(TmtError, match="encoder must be"):
        ImageCodecConfig(encoder="resnet")
    with pytest.raises(TmtError, match="cnn_channels"):
        ImageCodecConfig(encoder="cnn", image_size=12, patch_size=4, cnn_channels=(8, 8, 8))


def test_perceptual_loss_compares_features() -> None:
    torch.manual_seed(0)
    codec = ImageCodec(ImageCodecConfig.from_dict({**SMALL, "image_size": 16})).eval()
    image = torch.rand(2, 3, 16, 16) * 2 - 1
    assert perceptual_loss(codec, image, image).item() < 1e-9
    assert perceptual_loss(codec, -image, image).item() > 1e-3
    vit = ImageCodec(ImageCodecConfig(image_size=16, vit_dim=16, vit_heads=2, qformer_dim=16,
                                      qformer_heads=2, bridge_dim=16, bridge_heads=2,
                                      decoder_channels=(16, 32)))
    with pytest.raises(TmtError, match="cnn"):
        perceptual_loss(vit, image, image)


def test_cached_trunk_features_change_no_step() -> None:
    """A frozen-trunk step on features computed once (trunk_features) is the step that runs
    the trunk itself: the same losses, the same gradients, the same updated weights."""
    torch.manual_seed(0)
    images = (torch.rand(6, 3, 16, 16) * 255).to(torch.uint8)
    batch = images.float() / 127.5 - 1
    opts = TrainOptions(steps=4, batch_size=6, freeze_encoder=True, perceptual_weight=1.0)
    results = []
    for cached in (False, True):
        torch.manual_seed(1)
        codec = ImageCodec(ImageCodecConfig.from_dict({**SMALL, "image_size": 16}))
        trainer = Trainer(codec, opts)
        features = trunk_features(codec, images) if cached else None
        stats = trainer.train_step(batch, features=features)
        grads = {n: p.grad.clone() for n, p in codec.named_parameters() if p.grad is not None}
        results.append((stats, grads, {n: p.detach().clone() for n, p in codec.named_parameters()}))
    (plain, plain_grads, plain_weights), (cached, cached_grads, cached_weights) = results
    assert plain_grads and plain_grads.keys() == cached_grads.keys()
    assert not any(n.startswith("encoder.trunk.") for n in plain_grads)  # frozen
    for key in ("loss", "rec", "vq", "perceptual"):
        assert cached[key] == pytest.approx(plain[key], rel=1e-5), key
    for name in plain_grads:
        assert torch.allclose(cached_grads[name], plain_grads[name], rtol=1e-4, atol=1e-7), name
    for name in plain_weights:
        assert torch.allclose(cached_weights[name], plain_weights[name], rtol=1e-4, atol=1e-6), name

    # the decoder refit: the perceptual reference from the cache, the same loss
    codec = ImageCodec(ImageCodecConfig.from_dict({**SMALL, "image_size": 16}))
    ids = codec.quantize(batch)[1]
    losses = []
    for reference in (None, trunk_features(codec, images)):
        copy = ImageCodec(codec.config)
        copy.load_state_dict(codec.state_dict())
        losses.append(DecoderTrainer(copy, opts).train_step(ids, batch, reference))
    assert losses[1]["perceptual"] == pytest.approx(losses[0]["perceptual"], rel=1e-5)
    assert losses[1]["loss"] == pytest.approx(losses[0]["loss"], rel=1e-5)

    unfrozen = Trainer(ImageCodec(codec.config), TrainOptions(steps=1, batch_size=6))
    with pytest.raises(TmtError, match="frozen encoder"):
        unfrozen.train_step(batch, features=trunk_features(codec, images))


def test_stage1_then_frozen_stage2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = captioned_corpus(tmp_path / "corpus")
    stage1 = [
        "--corpus", str(corpus), "--out", str(tmp_path / "encoder"), "--work", str(tmp_path / "w1"),
        "--override", json.dumps(SMALL), "--batch-size", "4", "--eval-every", "1",
    ]
    assert semantic_main([*stage1, "--steps", "1"]) == 0
    assert semantic_main([*stage1, "--steps", "2"]) == 0
    output = capsys.readouterr().out
    assert "resumed from" in output and "word_f1=" in output
    encoder = ImageCodec.load(tmp_path / "encoder")
    assert encoder.config.encoder == "cnn"
    assert encoder.config.extra["stage1"]["steps"] == 2

    stage2 = [
        "--corpus", str(corpus), "--out", str(tmp_path / "codec"), "--work", str(tmp_path / "w2"),
        "--init", str(tmp_path / "encoder"), "--freeze-encoder", "--perceptual-weight", "1",
        "--steps", "2", "--batch-size", "4", "--threads", "1", "--eval-every", "100",
        "--image-cache", str(tmp_path / "cache"),
    ]
    assert train_main(stage2) == 0
    # the decoded images and the frozen trunk's features of the training images went to the
    # shared --image-cache, not to --work
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert cached[:2] == ["images-train-64-all.pt", "images-valid-64-512.pt"]
    assert len(cached) == 3 and cached[2].startswith("trunk-train-64-all-")
    assert not list((tmp_path / "w2").glob("images-*"))
    codec = ImageCodec.load(tmp_path / "codec")
    for name, tensor in encoder.encoder.trunk.state_dict().items():
        if tensor.is_floating_point():  # fp16 on disk: equal to fp16 precision
            assert torch.allclose(codec.encoder.trunk.state_dict()[name], tensor, atol=1e-2), name
    assert codec.config.extra["train_options"]["freeze_encoder"] is True
    assert codec.config.extra["stage1"]["steps"] == 2  # stage 1's facts are kept
    assert codec.encode(corpus / "images" / "0.png").shape == (32,)

    # continuing stage 2 from that codec keeps the first run's record, in order
    more = [*stage2, "--init", str(tmp_path / "codec"), "--out", str(tmp_path / "codec2"),
            "--work", str(tmp_path / "w3"), "--steps", "1", "--lr", "5e-4"]
    assert train_main(more) == 0
    # stage 1 saved its trunk in float32, the codecs save theirs in float16: a second trunk ...
    assert len(list((tmp_path / "cache").iterdir())) == 4
    again = [*more, "--init", str(tmp_path / "codec2"), "--out", str(tmp_path / "codec3"),
             "--work", str(tmp_path / "w4")]
    assert train_main(again) == 0
    assert len(list((tmp_path / "cache").iterdir())) == 4  # ... whose features are then reused
    extra = ImageCodec.load(tmp_path / "codec2").config.extra
    assert extra["stage1"]["steps"] == 2
    assert [run["train_options"]["steps"] for run in extra["earlier_runs"]] == [2]
    assert extra["train_options"]["lr"] == 5e-4 and extra["init"] == str(tmp_path / "codec")


def test_stage1_refuses_a_vit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = captioned_corpus(tmp_path / "corpus")
    code = semantic_main([
        "--corpus", str(corpus), "--out", str(tmp_path / "o"), "--work", str(tmp_path / "w"),
        "--override", '{"encoder": "vit"}', "--steps", "1",
    ])
    assert code == 2 and "cnn" in capsys.readouterr().err


LOCAL = {
    **SMALL, "cnn_channels": [4, 4, 8], "local_queries": True, "decoder_channels": [8, 16],
    "pixel_shuffle": 4,
}


def test_local_queries_read_and_write_their_own_region() -> None:
    torch.manual_seed(0)
    codec = ImageCodec(ImageCodecConfig.from_dict(LOCAL)).eval()
    assert codec.qformer.regions is not None
    assert codec.qformer.regions.sum(dim=1).tolist() == [2] * 32  # 64 cells, 2 per query
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    changed = image.clone()
    changed[:, :, 48:, 48:] = -image[:, :, 48:, 48:]  # the bottom-right corner only
    with torch.no_grad():
        before, after = (codec.to_code(codec.qformer(codec.encoder(x))) for x in (image, changed))
    # query 0 reads the top-left cells, far outside the corner's reach; causal self-attention
    # means only later queries can also see what the changed ones read
    assert torch.allclose(before[:, 0], after[:, 0], atol=1e-6)
    assert not torch.allclose(before[:, -1], after[:, -1], atol=1e-3)
    # the decoder puts code 31 back on the last two cells of its latent grid (the VAE decoder's
    # attention and group norms then act on the whole picture, as in any VQ-VAE decoder)
    codes = codec.quantizer.lookup(torch.zeros(1, 32, dtype=torch.long))
    moved = codes.clone()
    moved[0, 31] = codec.quantizer.lookup(torch.tensor([[5]]))[0, 0]
    with torch.no_grad():
        diff = (codec.decoder.bridge(codes) - codec.decoder.bridge(moved)).abs().sum(dim=1)[0]
    assert diff[7, 6:].min() > 0 and diff.flatten()[:62].max() == 0


def test_local_queries_need_a_matching_grid() -> None:
    with pytest.raises(TmtError, match="local_queries"):
        ImageCodecConfig.from_dict({**LOCAL, "num_queries": 24})
    with pytest.raises(TmtError, match="local_queries"):
        ImageCodecConfig.from_dict({**LOCAL, "pixel_shuffle": 2})


def test_validation_targets_use_the_training_vocabulary() -> None:
    from tmt.train.codecs.image_alignment import caption_targets

    vocab, _ = caption_targets(["a red square", "a blue square"])
    same, targets = caption_targets(["a green square"], vocab)  # "green" never seen in training
    assert same == vocab == ["a", "blue", "red", "square"]
    assert targets.tolist() == [[1.0, 0.0, 0.0, 1.0]]


def test_refit_decoder_keeps_the_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = captioned_corpus(tmp_path / "corpus")
    torch.manual_seed(0)
    ImageCodec(ImageCodecConfig.from_dict({**SMALL, "local_queries": True, "cnn_channels": [8, 16, 16]})).save(
        tmp_path / "codec"
    )
    old = ImageCodec.load(tmp_path / "codec")
    base = ["--codec", str(tmp_path / "codec"), "--corpus", str(corpus), "--batch-size", "4",
            "--threads", "1", "--eval-every", "100"]
    wide = [*base, "--out", str(tmp_path / "wide"), "--work", str(tmp_path / "w"),
            "--override", json.dumps({"decoder_channels": [16, 32], "decoder_layers_per_block": 2})]
    assert refit_main([*wide, "--steps", "1"]) == 0
    assert refit_main([*wide, "--steps", "3"]) == 0
    assert "resumed from" in capsys.readouterr().out
    new = ImageCodec.load(tmp_path / "wide")
    assert new.config.decoder_channels == (16, 32)
    images = sorted((corpus / "images").glob("*.png"))
    assert torch.equal(new.encode_ids(images), old.encode_ids(images))  # same codes
    record = new.config.extra["decoder_refit"]
    assert record["continued_decoder"] is False and record["options"]["steps"] == 3
    assert new.decode(new.encode(images[0])).size == (64, 64)

    # a stale ids cache (other images or another codec) is recomputed, not trained on
    cache = tmp_path / "w" / "train-ids.pt"
    right = torch.load(cache)
    torch.save(torch.zeros_like(right), cache)
    assert refit_main([*wide, "--steps", "3"]) == 0
    assert torch.equal(torch.load(cache), right)

    # an unchanged decoder continues from its weights; fields that would change the codes are refused
    same = [*base, "--out", str(tmp_path / "same"), "--work", str(tmp_path / "w2"), "--steps", "1"]
    assert refit_main(same) == 0
    assert ImageCodec.load(tmp_path / "same").config.extra["decoder_refit"]["continued_decoder"] is True
    assert refit_main([*same, "--override", '{"codebook_size": 32}']) == 2
    assert "would change the codes" in capsys.readouterr().err
    assert refit_main([*same, "--work", str(tmp_path / "w"), "--out", str(tmp_path / "x")]) == 2
    assert "different decoder" in capsys.readouterr().err


def test_batch_indices_cover_each_epoch_once_and_depend_only_on_seed_and_step() -> None:
    from tmt.train.sampling import batch_indices

    epoch0 = [i for step in range(3) for i in batch_indices(10, 3, step, 0)]  # 3 full batches
    assert sorted(epoch0) == sorted(set(epoch0)) and len(epoch0) == 9
    assert batch_indices(10, 3, 4, 0) == batch_indices(10, 3, 4, 0)
    assert [i for s in range(3, 6) for i in batch_indices(10, 3, s, 0)] != epoch0
    assert batch_indices(10, 3, 0, 1) != batch_indices(10, 3, 0, 0)


def test_bf16_trainers_keep_float32_weights_and_code_choice(tmp_path: Path) -> None:
    corpus = captioned_corpus(tmp_path / "corpus")
    common = ["--corpus", str(corpus), "--batch-size", "4", "--eval-every", "100", "--bf16",
              "--image-cache", str(tmp_path / "cache")]
    assert semantic_main([*common, "--out", str(tmp_path / "encoder"), "--work", str(tmp_path / "w1"),
                          "--override", json.dumps(SMALL), "--steps", "2"]) == 0
    assert ImageCodec.load(tmp_path / "encoder").config.extra["stage1"]["bf16"] is True
    assert train_main([*common, "--out", str(tmp_path / "codec"), "--work", str(tmp_path / "w2"),
                       "--init", str(tmp_path / "encoder"), "--freeze-encoder",
                       "--perceptual-weight", "1", "--steps", "2", "--threads", "1"]) == 0
    codec = ImageCodec.load(tmp_path / "codec")
    assert codec.config.extra["train_options"]["bf16"] is True
    assert refit_main([*common, "--codec", str(tmp_path / "codec"), "--out", str(tmp_path / "refit"),
                       "--work", str(tmp_path / "w3"), "--steps", "2", "--threads", "1"]) == 0
    refit = ImageCodec.load(tmp_path / "refit")
    assert refit.config.extra["decoder_refit"]["options"]["bf16"] is True
    assert all(p.dtype == torch.float32 for p in refit.parameters())
    # under autocast the code of each query is still chosen in float32
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    hook = codec.quantizer.register_forward_hook(lambda m, args, out: seen.append((args[0], out[1])))
    pixels = torch.rand(4, 3, 64, 64) * 2 - 1
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert codec(pixels).reconstruction.dtype == torch.bfloat16  # the rest runs in bfloat16
    hook.remove()
    z, ids = seen[0]
    assert z.dtype == torch.float32
    assert torch.equal(ids, (F.normalize(z, dim=-1) @ codec.quantizer.codes().t()).argmax(-1))


def test_bf16_auto_trains_in_float32_without_native_bf16(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(precision, "native_bf16", lambda device: False)
    corpus = captioned_corpus(tmp_path / "corpus")
    assert semantic_main(["--corpus", str(corpus), "--batch-size", "4", "--bf16", "auto",
                          "--image-cache", str(tmp_path / "cache"), "--out", str(tmp_path / "encoder"),
                          "--work", str(tmp_path / "w1"), "--override", json.dumps(SMALL),
                          "--steps", "1"]) == 0
    assert ImageCodec.load(tmp_path / "encoder").config.extra["stage1"]["bf16"] is False
    assert "precision: float32 (--bf16 auto)" in capsys.readouterr().out
