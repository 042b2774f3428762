"""nnlab.train.schedules: ``lr_multiplier`` for every schedule kind, against values worked out by hand; the
endpoints, the monotonic pieces, a pure function of the step (what makes resume exact), and unknown names
(``--schedule linear`` on the command line: train/test_flags.py)."""

from __future__ import annotations

import math

import pytest

from nnlab.errors import ConfigError
from nnlab.train.config import SCHEDULES, ScheduleConfig
from nnlab.train.schedules import lr_multiplier


def _m(total: int, steps, **cfg) -> list[float]:
    c = ScheduleConfig(**cfg)
    return [lr_multiplier(c, s, total) for s in steps]


def test_every_schedule_kind_is_handled():
    assert SCHEDULES == ("constant", "exponential", "step", "cosine", "onecycle")
    for s in SCHEDULES:  # none falls through to the "unhandled schedule" assertion
        v = lr_multiplier(ScheduleConfig(schedule=s), 0, 10)
        assert 0 < v <= 1


def test_constant_is_one_at_every_step():
    assert _m(10, [0, 1, 9, 10, 10_000], schedule="constant") == [1.0] * 5
    assert lr_multiplier(ScheduleConfig(schedule="constant"), 3, 0) == 1.0  # total_steps unknown: still 1


def test_exponential_is_smooth_gamma_per_decay_every_steps():
    got = _m(10, [0, 5, 10, 15, 20, 30], schedule="exponential", gamma=0.5, decay_every=10)
    assert got == pytest.approx([1.0, math.sqrt(0.5), 0.5, 0.5 * math.sqrt(0.5), 0.25, 0.125], rel=1e-12)
    # total_steps plays no part
    assert _m(1, [20], schedule="exponential", gamma=0.5, decay_every=10) == _m(10**6, [20], schedule="exponential",
                                                                                   gamma=0.5, decay_every=10)
    # the report's setting: x0.98 every 10 epochs of 100 steps
    assert lr_multiplier(ScheduleConfig(schedule="exponential", gamma=0.98, decay_every=1000), 3000, 0) == pytest.approx(0.98**3)
    assert _m(10, [0, 7, 1000], schedule="exponential", gamma=1.0, decay_every=3) == [1.0, 1.0, 1.0]


def test_step_is_a_staircase():
    got = _m(100, [0, 1, 9, 10, 11, 19, 20, 29, 30], schedule="step", gamma=0.5, decay_every=10)
    assert got == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.125]


def test_cosine_without_warmup():
    steps = [0, 25, 50, 75, 100]
    assert _m(100, steps, schedule="cosine") == pytest.approx(
        [1.0, 0.5 * (1 + math.sqrt(0.5)), 0.5, 0.5 * (1 - math.sqrt(0.5)), 0.0], abs=1e-12)
    # the floor: lo + (1 - lo) * the cosine factor
    assert _m(100, [0, 50, 100], schedule="cosine", final_lr_fraction=0.1) == pytest.approx([1.0, 0.55, 0.1], abs=1e-12)
    assert _m(100, [0, 50, 100], schedule="cosine", final_lr_fraction=1.0) == pytest.approx([1.0, 1.0, 1.0])


def test_cosine_with_warmup():
    # warmup 0.2 of 10 steps: 2 warm-up steps at 1/2, 2/2, then the cosine over the remaining 8
    got = _m(10, [0, 1, 2, 6, 10], schedule="cosine", warmup=0.2)
    assert got == pytest.approx([0.5, 1.0, 1.0, 0.5, 0.0], abs=1e-12)


def test_onecycle_linear_warmup_then_linear_decay():
    # warmup 0.1 of 100 steps: steps 0..9 rise as (s + 1) / 10; then a line from 1 (step 10) to lo (step 100)
    got = _m(100, [0, 4, 9, 10, 55, 100], schedule="onecycle", warmup=0.1)
    assert got == pytest.approx([0.1, 0.5, 1.0, 1.0, 0.5, 0.0], abs=1e-12)
    got = _m(100, [0, 10, 55, 100], schedule="onecycle", warmup=0.1, final_lr_fraction=0.2)
    assert got == pytest.approx([0.1, 1.0, 0.6, 0.2], abs=1e-12)  # the warm-up starts from 0, not from lo
    assert _m(4, [0, 1, 2, 3, 4], schedule="onecycle") == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])  # no warm-up


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
@pytest.mark.parametrize("lo", [0.0, 0.05])
def test_endpoints_and_past_the_end(schedule, lo):
    total = 37
    m = _m(total, range(total + 5), schedule=schedule, final_lr_fraction=lo)
    assert m[0] == pytest.approx(1.0)  # peak at the first step without warm-up
    assert m[total] == pytest.approx(lo, abs=1e-12)  # the final fraction at total_steps
    assert m[total:] == pytest.approx([lo] * 5, abs=1e-12)  # clamped after it (an extra eval step, a longer resume)
    assert lr_multiplier(ScheduleConfig(schedule=schedule), 0, 0) == pytest.approx(1.0)  # total_steps 0: no division by 0


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_warmup_rises_then_decay_never_rises(schedule):
    total, warmup, lo = 200, 0.15, 0.01
    warm = round(warmup * total)
    m = _m(total, range(total + 1), schedule=schedule, warmup=warmup, final_lr_fraction=lo)
    rise, fall = m[:warm], m[warm:]
    assert all(a < b for a, b in zip(rise, rise[1:]))  # strictly increasing warm-up, reaching the peak
    assert rise[-1] == pytest.approx(1.0) and rise[0] == pytest.approx(1 / warm)
    assert fall[0] == pytest.approx(1.0) and fall[-1] == pytest.approx(lo)
    assert all(a >= b for a, b in zip(fall, fall[1:]))  # non-increasing after it
    assert all(lo - 1e-12 <= v <= 1 + 1e-12 for v in fall)


@pytest.mark.parametrize("schedule", ["exponential", "step"])
def test_decays_never_rise(schedule):
    m = _m(100, range(200), schedule=schedule, gamma=0.9, decay_every=7)
    assert m[0] == 1.0 and all(a >= b for a, b in zip(m, m[1:])) and m[-1] > 0
    if schedule == "exponential":
        assert all(a > b for a, b in zip(m, m[1:]))


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_a_pure_function_of_the_step(schedule):
    """No hidden state: the value at a step is the same whatever was asked before (resume needs only the step)."""
    c = ScheduleConfig(schedule=schedule, warmup=0.1 if schedule in ("cosine", "onecycle") else 0.0, decay_every=3)
    forward = [lr_multiplier(c, s, 50) for s in range(60)]
    backward = [lr_multiplier(c, s, 50) for s in reversed(range(60))][::-1]
    assert forward == backward


def test_unknown_schedule_and_bad_values_are_config_errors():
    with pytest.raises(ConfigError, match=r"unknown schedule 'linear'; valid: constant, exponential, step, cosine, onecycle"):
        ScheduleConfig(schedule="linear")
    with pytest.raises(ConfigError, match=r"warmup must be in \[0, 1\), got 1"):
        ScheduleConfig(schedule="onecycle", warmup=1.0)
    with pytest.raises(ConfigError, match=r"gamma must be in \(0, 1\]"):
        ScheduleConfig(schedule="exponential", gamma=0.0)
    with pytest.raises(ConfigError, match="decay_every must be a positive integer"):
        ScheduleConfig(schedule="step", decay_every=0)
    with pytest.raises(ConfigError, match=r"final_lr_fraction must be in \[0, 1\]"):
        ScheduleConfig(schedule="cosine", final_lr_fraction=1.5)

