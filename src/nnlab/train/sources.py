"""Batch sources for the one training loop: every batch is a pure function of (seed, epoch, index).

Deriving the order and the augmentation from the seed and the step (rather than from a running RNG)
makes a resumed run draw exactly the batches an uninterrupted run would have drawn.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .distributed import DistInfo


def step_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed for one (seed, epoch, step) cell, from NumPy's SeedSequence hashing."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))


class ArraySource:
    """A fixed training set held whole as one array/tensor (on the training device for torch).

    ``prepare(x, seed)`` turns a raw batch into model input (normalise, augment) in one batched op.
    Under DDP each rank keeps ``batch[rank::world]`` of every global batch.
    """

    def __init__(self, x, y, batch_size: int, seed: int, *, prepare: Callable | None = None,
                 dist: DistInfo = DistInfo(), drop_last: bool = False):
        self.x, self.y = x, y
        self.n = len(y)
        self.batch_size = batch_size
        self.seed = seed
        self.prepare = prepare
        self.dist = dist
        self.drop_last = drop_last or dist.enabled
        per = self.n // batch_size if self.drop_last else math.ceil(self.n / batch_size)
        self.steps_per_epoch = max(1, per)
        self._perm_epoch, self._perm = None, None
        self._is_torch = not isinstance(y, np.ndarray)

    def _permutation(self, epoch: int):
        if self._perm_epoch != epoch:
            perm = np.random.default_rng([self.seed, 1, epoch]).permutation(self.n)  # (N,)
            if self._is_torch:
                import torch

                perm = torch.as_tensor(perm, device=self.y.device)
            self._perm_epoch, self._perm = epoch, perm
        return self._perm

    def batch(self, epoch: int, i: int):
        idx = self._permutation(epoch)[i * self.batch_size:(i + 1) * self.batch_size]
        if self.dist.enabled:
            idx = idx[self.dist.rank::self.dist.world_size]
        x, y = self.x[idx], self.y[idx]
        if self.prepare is not None:
            x = self.prepare(x, step_seed(self.seed, 2, epoch, i))
        return x, y


class StreamSource:
    """Fresh batches from a generator function (e.g. palindromes): ``make(batch_size, seed, step) -> (x, y)``.

    ``step`` (the global step) lets a curriculum change the task as training goes on."""

    def __init__(self, make: Callable, batch_size: int, seed: int, steps_per_epoch: int, *, dist: DistInfo = DistInfo()):
        self.make = make
        self.batch_size = batch_size
        self.seed = seed
        self.steps_per_epoch = steps_per_epoch
        self.dist = dist

    def batch(self, epoch: int, i: int):
        x, y = self.make(self.batch_size, step_seed(self.seed, 3, epoch, i), epoch * self.steps_per_epoch + i)
        if self.dist.enabled:
            x, y = x[self.dist.rank::self.dist.world_size], y[self.dist.rank::self.dist.world_size]
        return x, y


class EvalSet:
    """A fixed evaluation split, fed in chunks; ``prepare(x)`` normalises (no augmentation)."""

    def __init__(self, x, y, *, prepare: Callable | None = None):
        self.x, self.y, self.prepare = x, y, prepare

    def __len__(self):
        return len(self.y)

    def chunks(self, batch_size: int, dist: DistInfo = DistInfo()):
        n = len(self.y)
        lo, hi = 0, n
        if dist.enabled:  # contiguous shard per rank; sums are all-reduced afterwards
            per = math.ceil(n / dist.world_size)
            lo, hi = min(n, dist.rank * per), min(n, (dist.rank + 1) * per)
        for s in range(lo, hi, batch_size):
            x, y = self.x[s:min(hi, s + batch_size)], self.y[s:min(hi, s + batch_size)]
            yield (self.prepare(x) if self.prepare is not None else x), y
