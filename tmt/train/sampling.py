"""Which examples a training step reads: seeded epoch permutations, so a resumed run (or a
data-parallel one) sees exactly the batches of an uninterrupted single process."""

from __future__ import annotations

import numpy as np


def batch_indices(
    num_examples: int, batch_size: int, step: int, seed: int, *, rank: int = 0, world_size: int = 1
) -> list[int]:
    """Example indices of ``step`` for process ``rank`` of ``world_size``: a pure function of its
    arguments.

    Each epoch is a fresh permutation (seeded by ``seed`` and the epoch); the step's global batch
    is ``batch_size * world_size`` examples, of which each rank takes its contiguous share. The
    union of the ranks' shares is therefore the batch one process of ``batch_size * world_size``
    would read."""
    global_batch = batch_size * world_size
    per_epoch = max(1, num_examples // global_batch)
    epoch, within = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(num_examples)
    start = within * global_batch + rank * batch_size
    return [int(i) for i in perm[start : start + batch_size] % num_examples]


def mixed_batch_indices(
    pools: tuple[np.ndarray, np.ndarray], ratio: float, batch_size: int, step: int, seed: int,
    *, rank: int = 0, world_size: int = 1,
) -> list[int]:
    """Indices of ``step`` drawn ``1 - ratio`` from ``pools[0]`` (real examples) and ``ratio``
    from ``pools[1]`` (pseudo ones), each pool cycling through its own seeded epochs; a pure
    function of its arguments, as :func:`batch_indices`."""
    real, pseudo = pools
    n_pseudo = round(batch_size * ratio) if len(real) else batch_size
    n_pseudo = min(n_pseudo, batch_size) if len(pseudo) else 0
    out: list[int] = []
    for pool, n, stream in ((real, batch_size - n_pseudo, 0), (pseudo, n_pseudo, 1)):
        if n > 0:
            share = batch_indices(len(pool), n, step, seed * 2 + stream, rank=rank,
                                  world_size=world_size)
            out.extend(int(pool[i]) for i in share)
    return out
