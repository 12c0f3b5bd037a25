"""Training on real + back-translated stores: the pseudo share of each batch, and pseudo media
used as translation sources only."""

import numpy as np
import pytest
import torch
import yaml

from tmt.data.pseudo import generated_modalities, pseudo_source
from tmt.data.records import TokenExample
from tmt.data.store import TokenStore, TokenStoreWriter
from tmt.errors import TmtError
from tmt.modality import DIRECTIONS, Modality
from tmt.train.config import TrainConfig
from tmt.train.loop import Trainer, mixed_batch_indices
from tmt.train.run import run_training

MICRO = dict(model_dim=32, num_encoder_layers=1, num_decoder_layers=1, num_attn_heads=2,
             ffn_inner_dim=64, max_seq_len=48, dropout_p=0.0, attn_dropout_p=0.0)
VOCAB = {"speech": 20, "image": 30, "text": 40}
S, IMG, T = Modality.SPEECH, Modality.IMAGE, Modality.TEXT


def example(i: int, *, pseudo: str = "", split: str = "train") -> TokenExample:
    g = torch.Generator().manual_seed(i)
    generated = {"st": [S, T], "i": [IMG]}.get(pseudo, [])
    return TokenExample(
        id=f"{'p' if pseudo else 'r'}{i}", split=split, pseudo=bool(pseudo),
        source=pseudo_source("demo", generated) if pseudo else "demo",
        speech=torch.randint(0, 20, (5,), generator=g), image=torch.randint(0, 30, (32,), generator=g),
        text=torch.randint(0, 40, (3,), generator=g),
    )


def test_pseudo_source_names_round_trip():
    assert pseudo_source("imagenet", [T, S]) == "imagenet:pseudo-speech+text"
    assert generated_modalities("imagenet:pseudo-speech+text") == (S, T)
    assert generated_modalities("coco") == () == generated_modalities("x:pseudo-nonsense")


def test_mixed_batches_have_the_configured_pseudo_share():
    pools = (np.arange(0, 30), np.arange(30, 40))  # 30 real, 10 pseudo examples
    seen_pseudo = set()
    for step in range(5):
        batch = mixed_batch_indices(pools, 0.25, 8, step, 0)
        assert batch == mixed_batch_indices(pools, 0.25, 8, step, 0)  # pure
        assert sum(i >= 30 for i in batch) == 2 and len(batch) == 8
        seen_pseudo.update(i for i in batch if i >= 30)
    assert seen_pseudo == set(range(30, 40))  # the pseudo pool cycles through its epochs
    assert all(i >= 30 for i in mixed_batch_indices(pools, 1.0, 4, 0, 0))


def test_pseudo_media_are_sources_only_unless_configured(tmp_path):
    data = [example(0), example(1, pseudo="st"), example(2, pseudo="i")]
    base = dict(out_dir=str(tmp_path), vocab=VOCAB, model=MICRO, batch_size=3, max_steps=1)
    trainer = Trainer(TrainConfig(**base), data)
    assert trainer.allowed_directions(data[0]) == list(DIRECTIONS)
    # real image, pseudo speech + text: only pseudo -> real image
    assert set(trainer.allowed_directions(data[1])) == {(S, IMG), (T, IMG)}
    # real speech + text, pseudo image: everything but -> image
    assert set(trainer.allowed_directions(data[2])) == {(S, T), (IMG, S), (IMG, T), (T, S)}
    every = Trainer(TrainConfig(**base, pseudo_as_target=True), data)
    assert every.allowed_directions(data[1]) == list(DIRECTIONS)
    listed = Trainer(TrainConfig(**base, source_directions={data[1].source: ["image-text"]}), data)
    assert listed.allowed_directions(data[1]) == [(IMG, T)]


def test_training_mixes_real_and_pseudo_stores(tmp_path):
    for name, items in [("real", [example(i) for i in range(6)] + [example(9, split="valid")]),
                        ("pseudo", [example(i, pseudo="st") for i in range(12)])]:
        with TokenStoreWriter(tmp_path / name, vocab_sizes=VOCAB) as writer:
            for item in items:
                writer.add(item)
    assert TokenStore([tmp_path / "real", tmp_path / "pseudo"]).pseudo_flags().sum() == 12
    config = dict(out_dir=str(tmp_path / "run"), stores=[str(tmp_path / "real"), str(tmp_path / "pseudo")],
                  model=MICRO, batch_size=4, max_steps=3, pseudo_ratio=0.5, warmup_steps=1,
                  valid_every=3, checkpoint_every=3)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = run_training(tmp_path / "c.yaml")
    assert result.step == 3 and np.isfinite(result.train_loss)
    with pytest.raises(TmtError, match="pseudo_ratio"):
        TrainConfig.from_dict({**config, "pseudo_ratio": 1.5})
