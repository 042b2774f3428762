"""Palindrome digit sequences for the Part III recurrent models.

A sample is a sequence of ``T + 1`` decimal digits that reads the same both ways. The model sees the
first ``T`` digits and predicts the last one, which equals the first: the task measures whether a
recurrent network remembers its first input for ``T`` steps.

Leading zeros are allowed (as in the report's dataset): ``0120210`` is a valid palindrome of length 7.
The number of distinct palindromes of length ``T + 1`` is therefore ``10 ** ceil((T + 1) / 2)``: the first
``ceil((T + 1) / 2)`` digits are free and the rest mirror them.

Everything here is vectorised: a batch is drawn with one ``torch.randint`` for the free half and one
``flip`` for the mirrored half, on the device of the generator, with no per-sample Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .._validate import nonneg_int, one_of, positive_int, seed_range
from ..errors import ConfigError, check

__all__ = [
    "NUM_DIGITS",
    "INPUT_MODES",
    "PalindromeConfig",
    "encode",
    "input_dim",
    "is_palindrome",
    "make_test_set",
    "num_palindromes",
    "palindrome_batch",
]

NUM_DIGITS = 10  # digits 0-9; also the number of classes of the prediction
# "onehot": each digit is a 10-vector; "scalar": the digit value as one float (the report's input_dim=1).
INPUT_MODES = ("onehot", "scalar")

# Above this many distinct palindromes, make_test_set draws digits instead of enumerating/permuting indices
# (randperm over 10**k indices needs 8 * 10**k bytes).
_PERMUTE_LIMIT = 10**7


def _check_length(T) -> None:
    problem = positive_int("input_length T", T)
    if problem:
        raise ConfigError(problem)


def num_palindromes(T: int) -> int:
    """Number of distinct palindromes of length ``T + 1`` over digits 0-9, leading zeros allowed.

    ``10 ** ceil((T + 1) / 2)``: e.g. T=5 (length 6) -> 1000, T=20 (length 21) -> 10**11.
    """
    _check_length(T)
    return NUM_DIGITS ** ((T + 2) // 2)  # (T + 2) // 2 == ceil((T + 1) / 2)


def _mirror(half: torch.Tensor, T: int) -> torch.Tensor:
    """Free half ``(N, ceil(L/2))`` -> full palindrome ``(N, L)`` with ``L = T + 1``."""
    L = T + 1
    return torch.cat([half, half[:, : L // 2].flip(1)], dim=1)  # (N, L)


def _split(full: torch.Tensor, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    return full[:, :T].contiguous(), full[:, T].contiguous()  # x (N, T), y (N,)


def palindrome_batch(
    T: int, batch_size: int, *, generator: torch.Generator, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``batch_size`` palindromes of length ``T + 1`` uniformly (with replacement).

    Returns ``x`` int64 ``(B, T)`` (the first T digits) and ``y`` int64 ``(B,)`` (the last digit, == ``x[:, 0]``).
    The batch is made on ``device`` (default: the generator's device) by the generator, which must live on
    that device (a CPU generator for CPU tensors, a CUDA generator for CUDA tensors).
    """
    problems = [p for p in (positive_int("input_length T", T), positive_int("batch_size", batch_size)) if p]
    check(problems, "palindrome batch")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    device = generator.device if device is None else torch.device(device)
    half = torch.randint(
        0, NUM_DIGITS, (batch_size, (T + 2) // 2), generator=generator, device=device, dtype=torch.int64
    )  # (B, ceil((T+1)/2))
    return _split(_mirror(half, T), T)


def is_palindrome(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Bool ``(B,)``: does the row ``x[b] + [y[b]]`` read the same both ways."""
    full = torch.cat([x, y.unsqueeze(1)], dim=1)  # (B, T+1)
    return (full == full.flip(1)).all(dim=1)


def make_test_set(
    T: int, n: int, seed: int, *, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed held-out set: ``min(n, num_palindromes(T))`` DISTINCT palindromes, determined by ``seed``.

    - If ``n >= num_palindromes(T)``, every palindrome is returned exactly once (in a seeded random order),
      so the set has ``num_palindromes(T)`` rows, fewer than ``n``.
    - Otherwise ``n`` distinct palindromes are drawn without replacement.

    The rows are drawn on the CPU (so the set is the same whatever ``device``) and then moved to ``device``.
    Note: training batches come from the same finite space, so for small T the test set is not disjoint
    from what training sees (as in the report); it is held out in the sense that it is fixed and never
    used for updates.
    """
    problems = [p for p in (positive_int("input_length T", T), positive_int("test size n", n),
                            nonneg_int("seed", seed)) if p]
    check(problems, "palindrome test set")
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    k = (T + 2) // 2  # free digits
    total = num_palindromes(T)
    if total <= _PERMUTE_LIMIT:
        idx = torch.randperm(total, generator=g)[: min(n, total)]  # (N,) distinct indices into 10**k
        powers = NUM_DIGITS ** torch.arange(k - 1, -1, -1, dtype=torch.int64)  # (k,) most significant first
        half = (idx.unsqueeze(1) // powers) % NUM_DIGITS  # (N, k) base-10 digits of each index
    else:
        # 10**k > 1e7 >> n in practice: draw, drop duplicate rows, top up until n distinct rows.
        half = torch.empty(0, k, dtype=torch.int64)
        while half.shape[0] < n:
            more = torch.randint(0, NUM_DIGITS, (n - half.shape[0], k), generator=g, dtype=torch.int64)
            cand = torch.cat([half, more])
            _, inverse = torch.unique(cand, dim=0, return_inverse=True)
            # keep the first occurrence of each row, in draw order (so the result is seed-determined)
            first = torch.full((int(inverse.max()) + 1,), cand.shape[0], dtype=torch.int64)
            first.scatter_reduce_(0, inverse, torch.arange(cand.shape[0]), reduce="amin")
            half = cand[first.sort().values]
    x, y = _split(_mirror(half, T), T)
    return x.to(device), y.to(device)


def input_dim(mode: str) -> int:
    """Feature size per time step for an input mode: onehot -> 10, scalar -> 1."""
    problem = one_of("input_mode", mode, INPUT_MODES)
    if problem:
        raise ConfigError(problem)
    return NUM_DIGITS if mode == "onehot" else 1


def encode(x_digits: torch.Tensor, mode: str = "onehot", *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Digits int64 ``(B, T)`` -> float features ``(B, T, 10)`` (onehot) or ``(B, T, 1)`` (scalar).

    ``scalar`` feeds the digit value itself (0.0 ... 9.0), as the report's ``input_dim=1`` model did.
    """
    input_dim(mode)  # validates the name
    if x_digits.dim() != 2:
        raise ValueError(f"x_digits must have shape (B, T), got {tuple(x_digits.shape)}")
    if mode == "scalar":
        return x_digits.to(dtype).unsqueeze(-1)  # (B, T, 1)
    return torch.nn.functional.one_hot(x_digits, NUM_DIGITS).to(dtype)  # (B, T, 10)


@dataclass(frozen=True)
class PalindromeConfig:
    """The palindrome task: what the model sees and the fixed test set."""

    input_length: int = field(metadata={"help": "T: digits the model sees (sequences have T + 1 digits), >= 1"})
    input_mode: str = field(default="onehot", metadata={
        "help": "onehot (10 features per step) | scalar (the digit value as 1 feature, the report's input_dim=1)"})
    test_size: int = field(default=1000, metadata={
        "help": "held-out palindromes (capped at 10**ceil((T+1)/2), the number that exist)"})
    test_seed: int = field(default=0, metadata={"help": "seed of the held-out set, independent of the training seed"})

    def __post_init__(self):
        problems = [
            positive_int("input_length", self.input_length),
            one_of("input_mode", self.input_mode, INPUT_MODES),
            positive_int("test_size", self.test_size),
            nonneg_int("test_seed", self.test_seed) or seed_range("test_seed", self.test_seed),
        ]
        check([p for p in problems if p], "palindrome config")

    @property
    def input_dim(self) -> int:
        return input_dim(self.input_mode)

    @property
    def num_classes(self) -> int:
        return NUM_DIGITS

    def test_set(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed held-out set ``(x (N, T) int64, y (N,) int64)`` on ``device``."""
        return make_test_set(self.input_length, self.test_size, self.test_seed, device=device)
