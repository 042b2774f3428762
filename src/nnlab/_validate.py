"""Small validators shared by config dataclasses. Each returns a problem string or None."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Iterable


def positive_int(name: str, value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value <= 0:
        return f"{name} must be a positive integer, got {value!r}"
    return None


def nonneg_int(name: str, value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        return f"{name} must be an integer >= 0, got {value!r}"
    return None


def positive_float(name: str, value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        return f"{name} must be a finite number > 0, got {value!r}"
    return None


def nonneg_float(name: str, value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value < 0:
        return f"{name} must be a finite number >= 0, got {value!r}"
    return None


def in_range(name: str, value, lo: float, hi: float, *, lo_open=False, hi_open=False) -> str | None:
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        return f"{name} must be in {lb}{lo}, {hi}{rb}, got {value!r}"
    return None


#: NumPy's legacy RandomState and scikit-learn's random_state take seeds below 2**32 (torch: below 2**64)
MAX_SEED = 2**32 - 1


def seed_range(name: str, value) -> str | None:
    """For an integer already known to be >= 0: at most MAX_SEED."""
    if isinstance(value, Integral) and value > MAX_SEED:
        return f"{name} must be at most 2**32 - 1 = {MAX_SEED}, got {value}"
    return None


def sizes_problem(name: str, value) -> str | None:
    """Layer widths: a tuple or list of positive integers, ``()`` allowed (no hidden layer: a linear model).

    One integer counts as a one-element tuple (as scikit-learn's ``hidden_layer_sizes=100``); NumPy integers
    count as integers (they register as ``numbers.Integral``). The one hidden-size check of both MLPs."""
    if isinstance(value, Integral) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not all(isinstance(h, Integral) and not isinstance(h, bool) for h in value):
        return f"{name} must be a tuple of positive integers, got {value!r}"
    if any(h <= 0 for h in value):
        return f"{name} must be > 0, got {tuple(value)!r}"
    return None


def one_of(name: str, value, choices: Iterable[str]) -> str | None:
    choices = list(choices)
    if value not in choices:
        return f"unknown {name} {value!r}; valid: {', '.join(map(str, choices))}"
    return None


def parse_int_list(name: str, text: str) -> tuple[int, ...]:
    """Parse '1024,256,32' into (1024, 256, 32); raise ConfigError with what was wrong."""
    from .errors import ConfigError

    if isinstance(text, (tuple, list)):
        items = list(text)
    else:
        items = [t.strip() for t in str(text).split(",")]
    out = []
    for t in items:
        try:
            v = int(t)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be comma-separated positive integers, got {text!r} ({t!r} is not an integer)") from None
        if isinstance(t, float) and t != v:
            raise ConfigError(f"{name} must be comma-separated positive integers, got {text!r}")
        if v <= 0:
            raise ConfigError(f"{name} must be comma-separated positive integers, got {text!r} ({v} is not > 0)")
        out.append(v)
    if not out:
        raise ConfigError(f"{name} must not be empty")
    return tuple(out)
