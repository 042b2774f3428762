"""Palindrome data: every sample is a palindrome, the label is the first digit, counts match a brute force,
generation is seeded and vectorised, bad configs raise ConfigError."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch
from torch.overrides import TorchFunctionMode

from nnlab.data import palindrome as pal
from nnlab.data.palindrome import (
    PalindromeConfig,
    encode,
    input_dim,
    is_palindrome,
    make_test_set,
    num_palindromes,
    palindrome_batch,
)
from nnlab.errors import ConfigError


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def full_rows(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, y.unsqueeze(1)], dim=1)  # (B, T+1)


# ---------------------------------------------------------------- counts
@pytest.mark.parametrize("T", [1, 2, 3])
def test_num_palindromes_matches_brute_force(T):
    L = T + 1
    count = sum(1 for s in itertools.product(range(10), repeat=L) if s == s[::-1])  # leading zeros allowed
    assert num_palindromes(T) == count


@pytest.mark.parametrize("T, expected", [(1, 10), (2, 100), (4, 1000), (5, 1000), (20, 10**11), (21, 10**11)])
def test_num_palindromes_formula(T, expected):
    assert num_palindromes(T) == expected  # 10 ** ceil((T + 1) / 2)


# ---------------------------------------------------------------- batches
@pytest.mark.parametrize("T", [1, 2, 5, 6, 20])
def test_batch_shapes_and_palindrome_property(T):
    x, y = palindrome_batch(T, 257, generator=gen(0))
    assert x.shape == (257, T) and y.shape == (257,)
    assert x.dtype == torch.int64 and y.dtype == torch.int64
    assert int(x.min()) >= 0 and int(x.max()) <= 9
    assert bool(is_palindrome(x, y).all())
    rows = full_rows(x, y)
    assert torch.equal(rows, rows.flip(1))  # independent of is_palindrome
    assert torch.equal(y, x[:, 0])


def test_batch_is_deterministic_by_seed():
    a = palindrome_batch(10, 64, generator=gen(7))
    b = palindrome_batch(10, 64, generator=gen(7))
    c = palindrome_batch(10, 64, generator=gen(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_batch_does_not_touch_global_rng():
    state = torch.random.get_rng_state()
    palindrome_batch(5, 10, generator=gen(0))
    assert torch.equal(state, torch.random.get_rng_state())


def test_batch_covers_every_palindrome_about_uniformly():
    T = 2  # 100 palindromes of length 3
    x, y = palindrome_batch(T, 50_000, generator=gen(1))
    rows = full_rows(x, y)
    uniq, counts = torch.unique(rows, dim=0, return_counts=True)
    assert uniq.shape[0] == num_palindromes(T)
    # each has probability 1/100: expected 500, sd ~ 22; 6 sd either way never fails by chance in practice
    assert int(counts.min()) > 500 - 6 * 22 and int(counts.max()) < 500 + 6 * 22


class _CountCalls(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


def test_batch_is_vectorised():
    """The number of torch calls does not grow with the batch size: no per-sample Python."""
    counts = []
    for B in (1, 10, 1000):
        with _CountCalls() as mode:
            palindrome_batch(7, B, generator=gen(0))
        counts.append(mode.calls)
    assert counts[0] == counts[1] == counts[2]
    assert counts[0] < 20


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, "5", None])
def test_batch_bad_length_raises(bad):
    with pytest.raises(ConfigError, match="input_length T must be a positive integer"):
        palindrome_batch(bad, 4, generator=gen(0))


def test_batch_bad_batch_size_and_generator():
    with pytest.raises(ConfigError, match=r"batch_size must be a positive integer, got 0"):
        palindrome_batch(3, 0, generator=gen(0))
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        palindrome_batch(3, 4, generator=0)


# ---------------------------------------------------------------- test set
def test_test_set_returns_every_palindrome_when_n_is_large():
    T = 3  # 100 palindromes
    x, y = make_test_set(T, 10_000, seed=0)
    assert x.shape == (100, T)
    rows = full_rows(x, y)
    assert torch.unique(rows, dim=0).shape[0] == 100
    assert bool(is_palindrome(x, y).all())


@pytest.mark.parametrize("T", [5, 20])  # 20: beyond the permutation limit, drawn digits + dedupe
def test_test_set_distinct_deterministic(T):
    x, y = make_test_set(T, 500, seed=3)
    assert x.shape == (500, T) and y.shape == (500,)
    assert torch.unique(x, dim=0).shape[0] == 500
    assert bool(is_palindrome(x, y).all())
    x2, y2 = make_test_set(T, 500, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = make_test_set(T, 500, seed=4)
    assert not torch.equal(x, x3)


def test_test_set_dedupe_path_tops_up_to_n(monkeypatch):
    """The draw-and-dedupe branch must still return n distinct rows even when duplicates are frequent."""
    monkeypatch.setattr(pal, "_PERMUTE_LIMIT", 1)
    x, y = make_test_set(5, 990, seed=0)  # 990 of 1000: many duplicates among the draws
    assert x.shape == (990, 5)
    assert torch.unique(x, dim=0).shape[0] == 990
    assert bool(is_palindrome(x, y).all())
    x2, _ = make_test_set(5, 990, seed=0)
    assert torch.equal(x, x2)


def test_test_set_bad_args():
    with pytest.raises(ConfigError, match="test size n must be a positive integer, got 0"):
        make_test_set(5, 0, seed=0)
    with pytest.raises(ConfigError, match="seed must be an integer >= 0, got -1"):
        make_test_set(5, 10, seed=-1)


# ---------------------------------------------------------------- encoding
def test_encode_onehot_and_scalar():
    x, _ = palindrome_batch(6, 32, generator=gen(0))
    oh = encode(x, "onehot")
    assert oh.shape == (32, 6, 10) and oh.dtype == torch.float32
    assert torch.equal(oh.argmax(-1), x) and torch.equal(oh.sum(-1), torch.ones(32, 6))
    sc = encode(x, "scalar", dtype=torch.float64)
    assert sc.shape == (32, 6, 1) and sc.dtype == torch.float64
    assert torch.equal(sc[..., 0], x.double())
    assert input_dim("onehot") == 10 and input_dim("scalar") == 1


def test_encode_bad_mode_and_shape():
    x = torch.zeros(2, 3, dtype=torch.int64)
    with pytest.raises(ConfigError, match=r"unknown input_mode 'binary'; valid: onehot, scalar"):
        encode(x, "binary")
    with pytest.raises(ValueError, match=r"shape \(B, T\)"):
        encode(x[0], "onehot")


# ---------------------------------------------------------------- config
def test_config_defaults_and_derived():
    cfg = PalindromeConfig(input_length=5)
    assert cfg.input_mode == "onehot" and cfg.input_dim == 10 and cfg.num_classes == 10
    assert PalindromeConfig(input_length=5, input_mode="scalar").input_dim == 1
    x, y = cfg.test_set()
    assert x.shape == (1000, 5)  # exactly num_palindromes(5) == 1000
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.input_length = 6


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input_length=0), "input_length must be a positive integer, got 0"),
        (dict(input_length=2.5), "input_length must be a positive integer, got 2.5"),
        (dict(input_length=True), "input_length must be a positive integer, got True"),
        (dict(input_length=5, input_mode="digits"), "unknown input_mode 'digits'; valid: onehot, scalar"),
        (dict(input_length=5, test_size=0), "test_size must be a positive integer, got 0"),
        (dict(input_length=5, test_seed=-2), "test_seed must be an integer >= 0, got -2"),
    ],
)
def test_config_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        PalindromeConfig(**kwargs)


def test_config_lists_every_problem():
    with pytest.raises(ConfigError) as err:
        PalindromeConfig(input_length=-1, input_mode="x", test_size=0)
    text = str(err.value)
    assert "input_length" in text and "input_mode" in text and "test_size" in text
