"""Learning-rate multipliers as pure functions of the step (no torch), shared by both backends.

A function of the step alone makes resume exact: the schedule's whole state is the step counter.
"""

from __future__ import annotations

import math

from .config import ScheduleConfig


def lr_multiplier(cfg: ScheduleConfig, step: int, total_steps: int) -> float:
    """Multiplier of the peak lr for optimizer step ``step`` (0-based) out of ``total_steps``."""
    s = cfg.schedule
    if s == "constant":
        return 1.0
    if s == "exponential":  # smooth: gamma per decay_every steps (report: x0.98 every 10 epochs)
        return cfg.gamma ** (step / cfg.decay_every)
    if s == "step":  # staircase
        return cfg.gamma ** (step // cfg.decay_every)
    total = max(1, total_steps)
    warm = int(round(cfg.warmup * total))
    if warm > 0 and step < warm:
        return (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    lo = cfg.final_lr_fraction
    if s == "cosine":
        return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * progress))
    if s == "onecycle":  # linear warm-up (above), then linear decay to the final fraction
        return lo + (1 - lo) * (1 - progress)
    raise AssertionError(f"unhandled schedule {s}")
