"""ImageCodec: exactly 32 ids per image, decode to images, save/load, presets, training steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from tmt.errors import TmtError
from tmt.image.codec import ImageCodec
from tmt.image.config import ImageCodecConfig, paper, tiny
from tmt.image.metrics import codebook_usage, psnr
from tmt.modality import Codec, Modality
from tmt.paths import CODECS
from tmt.train.codecs.image_steps import Trainer, TrainOptions


def small_config(**overrides: object) -> ImageCodecConfig:
    sizes: dict = dict(
        image_size=16,
        patch_size=8,
        vit_dim=16,
        vit_layers=1,
        vit_heads=2,
        qformer_dim=16,
        qformer_layers=1,
        qformer_heads=2,
        code_dim=8,
        codebook_size=24,
        bridge_dim=16,
        bridge_layers=1,
        bridge_heads=2,
        latent_channels=8,
        decoder_channels=(8, 16),
        decoder_norm_groups=4,
        pixel_shuffle=2,
    )
    return ImageCodecConfig(**{**sizes, **overrides})


def random_images(n: int, size: int = 16, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)
    ]


@pytest.fixture(autouse=True, scope="module")
def one_thread():  # type: ignore[no-untyped-def]
    """Tiny models run fastest on one thread; on a loaded machine two threads were ~25x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def codec() -> ImageCodec:
    torch.manual_seed(0)
    return ImageCodec(small_config()).eval()


def test_implements_codec_protocol(codec: ImageCodec) -> None:
    assert isinstance(codec, Codec)
    assert codec.modality is Modality.IMAGE
    assert codec.vocab_size == 24 and codec.image_size == 16 and codec.num_tokens == 32


def test_encode_gives_exactly_32_ids_in_range(codec: ImageCodec, tmp_path: Path) -> None:
    image = random_images(1, size=40)[0]  # any size: resized and cropped to 16
    path = tmp_path / "x.png"
    image.save(path)
    for source in (image, path, str(path), path.read_bytes()):
        ids = codec.encode(source)
        assert ids.dtype == torch.long and ids.shape == (32,)
        assert 0 <= int(ids.min()) and int(ids.max()) < codec.vocab_size
    batch = codec.encode_ids(random_images(3))
    assert batch.shape == (3, 32) and batch.dtype == torch.long
    assert codec.encode_ids([]).shape == (0, 32)


def test_batch_and_single_agree(codec: ImageCodec) -> None:
    images = random_images(3, seed=1)
    batch = codec.encode_ids(images)
    assert torch.equal(batch[1], codec.encode(images[1]))
    decoded = codec.decode_batch(batch)
    assert np.array_equal(np.asarray(decoded[2]), np.asarray(codec.decode(batch[2])))


def test_decode_gives_rgb_images(codec: ImageCodec) -> None:
    ids = torch.randint(0, codec.vocab_size, (2, 32))
    images = codec.decode_batch(ids)
    assert len(images) == 2 and all(im.mode == "RGB" and im.size == (16, 16) for im in images)
    assert codec.decode(ids[0]).size == (16, 16)


def test_decode_rejects_bad_ids(codec: ImageCodec) -> None:
    for bad in (
        torch.zeros(31, dtype=torch.long),
        torch.full((32,), 24),
        torch.full((32,), -1),
        torch.zeros(32),
    ):
        with pytest.raises(TmtError):
            codec.decode(bad)
    with pytest.raises(TmtError):
        codec.decode_batch(torch.zeros(2, 33, dtype=torch.long))


def test_save_load_round_trip(codec: ImageCodec, tmp_path: Path) -> None:
    codec.save(tmp_path / "c")
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    assert json.loads((tmp_path / "c" / "config.json").read_text())["codebook_size"] == 24
    loaded = ImageCodec.load(tmp_path / "c")
    assert loaded.config == codec.config
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    # fp16 on disk: weights equal up to half precision
    for (name, a), (_, b) in zip(codec.state_dict().items(), loaded.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-3, rtol=1e-3), name
    # what a user sees: decoding the same ids gives the same image up to a rounding step
    ids = codec.encode_ids(random_images(2, seed=3))
    a, b = codec.decode_batch(ids), loaded.decode_batch(ids)
    assert all(np.abs(np.asarray(x, int) - np.asarray(y, int)).max() <= 2 for x, y in zip(a, b))


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(TmtError, match="not an image codec"):
        ImageCodec.load(tmp_path)
    ImageCodec(small_config()).save(tmp_path / "a")
    (tmp_path / "a" / "config.json").write_text(
        json.dumps({**small_config().to_dict(), "codebook_size": 32})
    )
    with pytest.raises(TmtError, match="does not match"):
        ImageCodec.load(tmp_path / "a")


def test_bad_configs_are_refused() -> None:
    with pytest.raises(TmtError):
        small_config(patch_size=5)
    with pytest.raises(TmtError):
        small_config(vit_heads=3)
    with pytest.raises(TmtError):
        ImageCodecConfig.from_dict({"image_size": 64, "colour": "red"})


def test_presets() -> None:
    cfg = paper()
    assert (cfg.image_size, cfg.codebook_size, cfg.num_queries, cfg.code_dim) == (224, 8192, 32, 32)
    with torch.device("meta"):  # instantiable without allocating ~1 GB
        model = ImageCodec(cfg)
    assert 150e6 < sum(p.numel() for p in model.parameters()) < 400e6
    assert model.quantizer.codebook.shape == (8192, 32)
    assert tiny().image_size == 64 and tiny().num_queries == 32
    assert ImageCodecConfig.from_dict(cfg.to_dict()) == cfg


def test_query_causality(codec: ImageCodec) -> None:
    """Query i attends only to queries <= i: perturbing a late query changes nothing before it."""
    patches = torch.randn(1, 4, 16)
    base = codec.qformer(patches)
    with torch.no_grad():
        saved = codec.qformer.queries.clone()
        # a random change: adding a constant to every dimension would be erased by the
        # pre-LayerNorms (the test then only passed on rounding differences of some CPUs)
        codec.qformer.queries[:, 20] += torch.randn(codec.qformer.queries.shape[-1])
        moved = codec.qformer(patches)
        codec.qformer.queries.copy_(saved)
    assert torch.allclose(base[:, :20], moved[:, :20], atol=1e-6)
    assert not torch.allclose(base[:, 20:], moved[:, 20:])


def test_training_steps_reduce_loss() -> None:
    torch.manual_seed(0)
    model = ImageCodec(small_config())
    trainer = Trainer(model, TrainOptions(steps=40, lr=3e-3, warmup=1, restart_every=10))
    batch = torch.stack(
        [torch.from_numpy(np.array(im)).permute(2, 0, 1) for im in random_images(8, seed=2)]
    )
    batch = batch.float() / 127.5 - 1
    losses = [trainer.train_step(batch)["loss"] for _ in range(25)]
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])
    assert trainer.step == 25


def test_metrics() -> None:
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    assert torch.all(psnr(x, x) > 90)
    assert torch.allclose(
        psnr(torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)),
        torch.tensor([10 * np.log10(4.0)], dtype=torch.float32),
    )
    usage = codebook_usage(torch.tensor([[0, 1, 2, 3]]), 8)
    assert usage.used == 4 and usage.share_used == 0.5 and abs(usage.perplexity - 4) < 1e-9


SHIPPED = CODECS / "image"


@pytest.mark.skipif(not (SHIPPED / "config.json").is_file(), reason="no shipped image codec")
def test_shipped_codec_loads_and_round_trips() -> None:
    codec = ImageCodec.load(SHIPPED)
    assert codec.image_size == 64 and codec.num_tokens == 32
    assert not list(SHIPPED.glob("*.py"))
    # a large red circle in the middle of a light background comes back red where it was
    image = Image.new("RGB", (64, 64), (240, 240, 240))
    ImageDraw.Draw(image).ellipse([20, 20, 44, 44], fill=(220, 30, 30))
    ids = codec.encode(image)
    assert ids.shape == (32,) and int(ids.max()) < codec.vocab_size
    out = np.asarray(codec.decode(ids), dtype=int)
    assert out[28:36, 28:36, 0].mean() > out[28:36, 28:36, 1].mean() + 60
    assert out[:6, :6].mean() > 180  # background stays light


def test_caption_alignment_loss_trains() -> None:
    from tmt.train.codecs.image_alignment import caption_targets

    vocab, words = caption_targets(["a red circle", "a blue star", "a red star", "a blue circle"])
    assert vocab == ["a", "blue", "circle", "red", "star"] and words.sum() == 12
    torch.manual_seed(0)
    trainer = Trainer(
        ImageCodec(small_config()),
        TrainOptions(steps=40, lr=3e-3, warmup=1, caption_weight=1.0),
        len(vocab),
    )
    batch = torch.rand(4, 3, 16, 16) * 2 - 1
    aligns = [trainer.train_step(batch, words)["align"] for _ in range(15)]
    assert aligns[-1] < 0.7 * aligns[0]
    assert "caption_head" not in "".join(
        trainer.codec.state_dict()
    )  # not part of the shipped codec


def test_vae_decoder_matches_diffusers() -> None:
    """Our VAE decoder is diffusers' Decoder layer for layer: same keys, same output."""
    from diffusers.models.autoencoders.vae import Decoder

    from tmt.image.vae_decoder import VAEDecoder

    torch.manual_seed(0)
    for channels, layers in [((8, 16), 1), ((8, 16, 16), 2)]:
        reference = Decoder(
            in_channels=4,
            out_channels=12,
            up_block_types=("UpDecoderBlock2D",) * len(channels),
            block_out_channels=channels,
            layers_per_block=layers,
            norm_num_groups=4,
        ).eval()
        ours = VAEDecoder(
            in_channels=4,
            out_channels=12,
            block_out_channels=channels,
            layers_per_block=layers,
            norm_num_groups=4,
        ).eval()
        ours.load_state_dict(reference.state_dict())  # strict: identical parameter names
        latent = torch.randn(2, 4, 4, 4)
        with torch.no_grad():
            expected = reference(latent)
            assert torch.allclose(ours(latent), expected, atol=1e-5)
        assert expected.shape == (2, 12, 4 * 2 ** (len(channels) - 1), 4 * 2 ** (len(channels) - 1))


def fsq_config(**overrides: object) -> ImageCodecConfig:
    return small_config(
        quantizer="fsq", code_dim=3, fsq_levels=(8, 4, 3), codebook_size=96, **overrides
    )


def test_fsq_ids_and_lookup_agree() -> None:
    torch.manual_seed(0)
    codec = ImageCodec(fsq_config(stem_channels=(8,))).eval()
    z = torch.randn(64, 32, 3) * 3
    codes, ids, loss = codec.quantizer(z)
    assert float(loss) == 0.0
    assert int(ids.min()) >= 0 and int(ids.max()) < 96
    assert torch.allclose(codec.quantizer.lookup(ids), codes)
    grid = codec.quantizer.lookup(torch.arange(96).unsqueeze(0))[0]
    assert len({tuple(row.tolist()) for row in grid}) == 96  # every id is a distinct grid point
    assert grid.min() >= -1 and grid.max() <= 1
    ids = codec.encode_ids(random_images(3))
    assert ids.shape == (3, 32) and codec.decode(ids[0]).size == (16, 16)


def test_fsq_and_stem_configs_are_checked(tmp_path: Path) -> None:
    with pytest.raises(TmtError, match="fsq levels"):
        small_config(quantizer="fsq", code_dim=3, fsq_levels=(4, 3, 3), codebook_size=24)
    with pytest.raises(TmtError, match="levels"):
        small_config(quantizer="fsq", code_dim=2, fsq_levels=(4, 3, 2), codebook_size=24)
    with pytest.raises(TmtError, match="stem"):
        small_config(stem_channels=(8, 8, 8, 8))
    with pytest.raises(TmtError, match="quantizer"):
        small_config(quantizer="lfq")
    torch.manual_seed(0)
    codec = ImageCodec(fsq_config(stem_channels=(8,))).eval()
    codec.save(tmp_path / "fsq", dtype=torch.float32)
    loaded = ImageCodec.load(tmp_path / "fsq")
    images = random_images(2, seed=3)
    assert torch.equal(loaded.encode_ids(images), codec.encode_ids(images))


def test_fsq_training_steps_reduce_loss() -> None:
    torch.manual_seed(0)
    model = ImageCodec(fsq_config())
    trainer = Trainer(model, TrainOptions(steps=40, lr=3e-3, warmup=1, fg_weight=0))
    colours = torch.rand(8, 3, 1, 1, generator=torch.Generator().manual_seed(2)) * 2 - 1
    batch = colours.expand(8, 3, 16, 16).contiguous()  # flat colours: learnable in a few steps
    losses = [trainer.train_step(batch)["loss"] for _ in range(25)]
    assert np.mean(losses[-3:]) < 0.6 * np.mean(losses[:3])


def test_vae_decoder_seeded_init_matches_diffusers() -> None:
    from diffusers.models.autoencoders.vae import Decoder

    from tmt.image.vae_decoder import VAEDecoder

    kwargs = dict(in_channels=4, out_channels=12, block_out_channels=(8, 16), layers_per_block=1,
                  norm_num_groups=4)
    torch.manual_seed(3)
    reference = Decoder(up_block_types=("UpDecoderBlock2D",) * 2, **kwargs)  # type: ignore[arg-type]
    torch.manual_seed(3)
    ours = VAEDecoder(**kwargs)  # type: ignore[arg-type]
    for name, tensor in reference.state_dict().items():
        assert torch.equal(ours.state_dict()[name], tensor), name


def test_caption_generation_loss_trains() -> None:
    """--caption-loss lm: the caption is written word by word from the codes; order matters."""
    from tmt.train.codecs.image_alignment import CaptionDecoder, caption_sequences

    vocab, seqs = caption_sequences(["a red circle above a blue star", "a blue star"])
    assert vocab[:3] == ["<pad>", "<s>", "</s>"] and seqs.shape == (2, 9)
    assert seqs[1, 4] == 2 and seqs[1, 5:].eq(0).all() and seqs[:, 0].eq(1).all()
    torch.manual_seed(0)
    trainer = Trainer(
        ImageCodec(small_config()),
        TrainOptions(steps=40, lr=3e-3, warmup=1, caption_weight=1.0, caption_loss="lm"),
        len(vocab),
    )
    assert isinstance(trainer.caption_head, CaptionDecoder)
    batch = torch.rand(2, 3, 16, 16) * 2 - 1
    aligns = [trainer.train_step(batch, seqs)["align"] for _ in range(15)]
    assert aligns[-1] < 0.3 * aligns[0]
