"""nnlab.train.config: rebuilding configs from a run's record; nnlab._validate's shared size check."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nnlab._validate import sizes_problem
from nnlab.errors import ConfigError
from nnlab.train.config import OptimConfig, TrainConfig, from_record


def test_from_record_round_trips_drops_unknown_keys_and_applies_overrides():
    train = TrainConfig(epochs=3, batch_size=7, seed=5)
    section = {**dataclasses.asdict(train), "field_of_a_later_version": 1}
    assert from_record(TrainConfig, section) == train
    again = from_record(TrainConfig, section, device="cpu", progress="off")
    assert again == dataclasses.replace(train, device="cpu", progress="off")
    assert from_record(OptimConfig, {"lr": 0.5}) == OptimConfig(lr=0.5)  # missing keys: the defaults


def test_from_record_validates_and_refuses_bad_input():
    with pytest.raises(ConfigError, match="lr must be a finite number > 0"):
        from_record(OptimConfig, {"lr": -1})
    with pytest.raises(TypeError, match="section must be a dict, got list"):
        from_record(OptimConfig, [])
    with pytest.raises(TypeError, match="OptimConfig has no field 'learning_rate'"):
        from_record(OptimConfig, {}, learning_rate=0.1)  # an override is code: a wrong name is never ignored


@pytest.mark.parametrize("value, problem", [
    ((20, 10), None), ([3], None), ((), None), (5, None), ((np.int64(4),), None),
    ((0, 32), "h must be > 0, got (0, 32)"),
    ([-1], "h must be > 0, got (-1,)"),
    ((20, "a"), "h must be a tuple of positive integers, got (20, 'a')"),
    ((True,), "h must be a tuple of positive integers, got (True,)"),
    ("20", "h must be a tuple of positive integers, got '20'"),
])
def test_sizes_problem(value, problem):
    assert sizes_problem("h", value) == problem
