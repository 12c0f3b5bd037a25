"""``tmt train --config FILE.yaml``: token stores → :class:`Trainer`, single process or torchrun."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from tmt.errors import TmtError
from tmt.train.config import TrainConfig
from tmt.train.distributed import Dist
from tmt.train.loop import Trainer, TrainResult

log = logging.getLogger(__name__)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["max_steps=10", "model.dropout_p=0"]`` → nested dict (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TmtError(f"override {item!r} is not of the form key=value")
        parsed = yaml.safe_load(value)
        head, _, rest = key.partition(".")
        if rest:
            out.setdefault(head, {})[rest] = parsed
        else:
            out[head] = parsed
    return out


def load_train_data(config: TrainConfig) -> tuple[Any, Any, dict[str, int]]:
    """Train and validation views of the configured token stores, and their vocab sizes."""
    from tmt.data.store import TokenStore

    if not config.stores:
        raise TmtError("the config names no token stores ('stores: [DIR, ...]')")
    for path in config.stores:
        if not Path(path).is_dir():
            raise TmtError(f"token store not found: {path}")
    store = TokenStore(config.stores)
    train = store.split(config.train_split)
    try:
        valid = store.split(config.valid_split)
    except TmtError:
        valid = store.subset([])
    sizes = dict(config.vocab or store.vocab_sizes)
    return train, valid, sizes


def run_training(config_path: str | Path, overrides: list[str] | None = None) -> TrainResult:
    """Train as the config says; under torchrun every process calls this."""
    config = TrainConfig.load(config_path, parse_overrides(overrides or []))
    dist = Dist.from_env(config.device)
    try:
        train, valid, sizes = load_train_data(config)
        trainer = Trainer(config, train, valid, vocab_sizes=sizes, dist=dist)
        result = trainer.fit()
        dist.barrier()
        return result
    finally:
        dist.close()
