"""Unit noise on speech sources: what corrupt_units does, and where the trainer applies it."""

import numpy as np
import pytest
import torch
from test_train import concepts, config

from tmt.errors import TmtError
from tmt.modality import Modality
from tmt.train.config import TrainConfig
from tmt.train.loop import Trainer
from tmt.train.unit_noise import corrupt_units


def _edit_distance(a: list[int], b: list[int]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def _merged(n: int, vocab: int, seed: int) -> torch.Tensor:
    units = torch.randint(0, vocab, (n,), generator=torch.Generator().manual_seed(seed))
    return torch.unique_consecutive(units)


def test_corruption_rate_is_the_edit_rate_and_runs_stay_merged():
    units = _merged(3000, 200, 0)
    for rate in (0.1, 0.3):
        noisy = corrupt_units(units, rate, 200, np.random.default_rng(1))
        assert bool((noisy[1:] != noisy[:-1]).all()) and int(noisy.max()) < 200
        error = _edit_distance(noisy.tolist(), units.tolist()) / len(units)
        assert rate * 0.8 < error < rate * 1.05, (rate, error)
    assert corrupt_units(units, 0.0, 200, np.random.default_rng(1)) is units
    again = corrupt_units(units, 0.3, 200, np.random.default_rng(1))
    assert torch.equal(again, corrupt_units(units, 0.3, 200, np.random.default_rng(1)))
    one = torch.tensor([5])
    assert len(corrupt_units(one, 1.0, 200, np.random.default_rng(0))) >= 1
    with pytest.raises(ValueError, match="rate"):
        corrupt_units(units, 1.5, 200, np.random.default_rng(0))


def test_trainer_corrupts_only_speech_sources_of_training_steps(tmp_path):
    data = [{**c, Modality.SPEECH: _merged(40, 16, i)} for i, c in enumerate(concepts(16))]
    trainer = Trainer(config(tmp_path, speech_unit_noise=0.5, max_steps=2), data, data[:4])
    stored = {tuple(d[Modality.SPEECH].tolist()) for d in data}
    sources, others = [], []
    for example, (src, _) in trainer.pairs(data, range(16), 3):
        if Modality.SPEECH in example:
            (sources if src is Modality.SPEECH else others).append(tuple(example[Modality.SPEECH].tolist()))
    assert others and all(s in stored for s in others)  # speech targets keep the stored units
    assert sources and sum(s not in stored for s in sources) > len(sources) // 2
    again = [tuple(ex[Modality.SPEECH].tolist()) for ex, (src, _) in trainer.pairs(data, range(16), 3)
             if src is Modality.SPEECH]
    assert again == sources  # seeded by seed, step and index
    valid = [tuple(ex[Modality.SPEECH].tolist()) for ex, (src, _) in trainer.pairs(data, range(16), None)
             if src is Modality.SPEECH]
    assert valid and all(s in stored for s in valid)
    assert trainer.fit().step == 2
    with pytest.raises(TmtError, match=r"speech_unit_noise must be in \[0, 1\]"):
        TrainConfig.from_dict({"out_dir": "x", "speech_unit_noise": 2})
