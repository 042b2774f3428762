"""Softmax and cross-entropy as one numerically stable unit (NumPy only)."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}  # same-size unsigned view of an int label array


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise ``log softmax`` via log-sum-exp: subtracting the row max keeps ``exp`` <= 1 (no overflow)."""
    shifted = logits - logits.max(axis=1, keepdims=True)              # (N, C), each row's max is 0
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, C)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(N, C)`` logits; rows sum to 1. Stable for any finite logits."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))  # (N, C), in (0, 1]
    e /= e.sum(axis=1, keepdims=True)
    return e


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels, with the fused gradient.

    ``forward(logits (N, C), y (N,) int in [0, C)) -> mean loss`` (a Python float);
    ``backward() -> dL/dlogits = (p - onehot(y)) / N``.
    """

    def __init__(self):
        self._p = None
        self._y = None
        self._rows = np.arange(0)

    def forward(self, logits: np.ndarray, y: np.ndarray) -> float:
        if logits.ndim != 2:
            raise ConfigError(f"logits must have shape (N, C), got {logits.shape}")
        n, c = logits.shape
        y = np.asarray(y)
        if y.shape != (n,) or y.dtype.kind not in "iu":
            raise ConfigError(f"labels must be integers of shape ({n},), got dtype {y.dtype} and shape {y.shape}")
        if n == 0:
            raise ConfigError("cross-entropy of an empty batch (N = 0) is undefined")
        # one reduction checks both ends: viewed as unsigned, a negative label becomes huge (two's complement)
        if y.view(_UNSIGNED[y.itemsize]).max() >= c:
            raise ConfigError(f"labels must be in [0, {c - 1}] for {c} classes, got values in [{y.min()}, {y.max()}]")
        shifted = logits - logits.max(axis=1, keepdims=True)   # (N, C) log-sum-exp trick: exp(shifted) <= 1
        e = np.exp(shifted)                                     # (N, C)
        s = e.sum(axis=1, keepdims=True)                        # (N, 1) >= 1, so log(s) is finite
        rows = self._rows if self._rows.shape[0] == n else np.arange(n)  # (N,) reused while N stays the same
        # mean over the batch of -log p_y = log sum_j exp(z_j) - z_y, on the shifted logits (the shift cancels)
        loss = (np.log(s).sum() - shifted[rows, y].sum()) / n
        e /= s                                                  # (N, C) softmax probabilities p
        self._p, self._y, self._rows = e, y, rows
        return float(loss)

    def backward(self) -> np.ndarray:
        """``dL/dlogits`` of the mean loss, ``(p - onehot(y)) / N``, shape ``(N, C)``.

        The fused form holds because softmax is followed by cross-entropy against a hard integer label and the
        mean over the batch: d/dz_k [log sum_j exp(z_j) - z_y] = p_k - [k == y], divided by N for the mean.
        It does not hold for soft/smoothed targets (the onehot becomes the target distribution), for a sum
        reduction (no 1/N), for per-sample weights, or for any other op between the logits and the loss.
        """
        if self._p is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        n = self._p.shape[0]
        grad = self._p * (1.0 / n)         # (N, C) new array: the cached p stays intact
        grad[self._rows, self._y] -= 1.0 / n
        return grad

    def __repr__(self) -> str:
        return "SoftmaxCrossEntropy()"
