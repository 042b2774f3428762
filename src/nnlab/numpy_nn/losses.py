"""Output losses, each fused with its output activation into one numerically stable unit (NumPy only).

Every loss takes the network's raw last-layer outputs ``z`` (logits), never probabilities:

| class                         | ``output(z)``    | per-sample loss                            | ``dL/dz``          |
|-------------------------------|------------------|--------------------------------------------|--------------------|
| ``SoftmaxCrossEntropy``       | softmax (1 of C) | ``log sum_j exp(z_j) - z_y``               | ``p - onehot(y)``  |
| ``SigmoidBinaryCrossEntropy`` | sigmoid per unit | ``sum_k softplus(z_k) - y_k z_k``          | ``sigmoid(z) - y`` |
| ``SquaredError``              | identity         | ``1/2 sum_k (z_k - y_k)^2``                | ``z - y``          |
| ``PoissonDeviance``           | ``mu = exp(z)``  | ``sum_k y_k log(y_k / mu_k) - y_k + mu_k`` | ``mu - y``         |

Each pair (output activation, loss) is a *canonical link*, which is why the gradient with respect to ``z`` is
simply "prediction minus target". The batch loss is the mean over samples, or the weighted mean
``sum_i w_i l_i / sum_i w_i`` with ``sample_weight``; the gradient row ``i`` is then scaled by ``w_i / sum(w)``
(``1 / N`` without weights). ``forward`` returns the loss as a Python float and caches what ``backward`` needs.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .layers import sigmoid

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


def _row_scale(sample_weight, n: int, dtype) -> tuple[np.ndarray | float, float]:
    """``(scale, total)``: row ``i`` of the mean loss's gradient is multiplied by ``scale[i] = w_i / sum(w)``.

    Without weights the scale is the scalar ``1 / N``; with weights it is an ``(N, 1)`` column, so that it
    broadcasts over the outputs. ``total`` is ``N`` or ``sum(w)`` (the loss's denominator).
    """
    if sample_weight is None:
        return 1.0 / n, float(n)
    w = np.asarray(sample_weight)
    if w.shape != (n,):
        raise ConfigError(f"sample_weight must have shape ({n},), got {w.shape}")
    total = float(w.sum())
    if not total > 0:
        raise ConfigError(f"sample_weight must sum to a positive number, got a sum of {total}")
    return (w / total).astype(dtype, copy=False).reshape(n, 1), total


def _mean(per: np.ndarray, scale) -> float:
    """The (weighted) mean over samples of the per-sample loss ``per.sum(axis=1)`` (``per`` is ``(N, K)``)."""
    if isinstance(scale, float):
        return float(per.sum()) * scale
    return float(per.sum(axis=1) @ scale[:, 0])


def _check_pair(z: np.ndarray, y: np.ndarray, what: str) -> None:
    if z.ndim != 2 or z.shape[0] == 0:
        raise ConfigError(f"{what} expects outputs of shape (N, K) with N >= 1, got {z.shape}")
    if y.shape != z.shape:
        raise ConfigError(f"{what} expects targets of the outputs' shape {z.shape}, got {y.shape}")


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels, with the fused gradient.

    ``forward(logits (N, C), y (N,) int in [0, C), sample_weight (N,) or None) -> mean loss`` (a Python float);
    ``backward() -> dL/dlogits = (p - onehot(y)) / N`` (rows scaled by ``w_i / sum(w)`` with weights).
    """

    out_activation = "softmax"

    def __init__(self, check_labels: bool = True):
        # check_labels=False: the caller guarantees integer labels in [0, C) (scikit-learn's estimator builds them as
        # an argmax), and each step is spared the range check (a reduction and a few Python checks, ~1% of a step)
        self.check_labels = bool(check_labels)
        self._p = None
        self._at = None
        self._scale = None
        self._rows = np.arange(0)

    @staticmethod
    def output(logits: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, C)``."""
        return softmax(logits)

    @staticmethod
    def _check(logits: np.ndarray, y: np.ndarray) -> None:
        if logits.ndim != 2:
            raise ConfigError(f"logits must have shape (N, C), got {logits.shape}")
        n, c = logits.shape
        if y.shape != (n,) or y.dtype.kind not in "iu":
            raise ConfigError(f"labels must be integers of shape ({n},), got dtype {y.dtype} and shape {y.shape}")
        if n == 0:
            raise ConfigError("cross-entropy of an empty batch (N = 0) is undefined")
        # one reduction checks both ends: viewed as unsigned, a negative label becomes huge (two's complement)
        if y.view(_UNSIGNED[y.itemsize]).max() >= c:
            raise ConfigError(f"labels must be in [0, {c - 1}] for {c} classes, got values in [{y.min()}, {y.max()}]")

    def forward(self, logits: np.ndarray, y: np.ndarray, sample_weight=None) -> float:
        if self.check_labels:
            y = np.asarray(y)
            self._check(logits, y)
        n = logits.shape[0]
        scale = 1.0 / n if sample_weight is None else _row_scale(sample_weight, n, logits.dtype)[0]
        # A column-major copy (the caller's logits stay intact): every reduction over the C classes below then
        # runs down N contiguous values per class instead of along N rows of C values, which NumPy does slowly
        # for small C (C = 10, N = 200: this whole forward takes about half the time).
        shifted = logits.copy(order="F")                        # (N, C)
        shifted -= shifted.max(axis=1, keepdims=True)           # log-sum-exp trick: exp(shifted) <= 1
        rows = self._rows if self._rows.shape[0] == n else np.arange(n)  # (N,) reused while N stays the same
        # (i, y_i) sits at y_i * N + i in the column-major buffer: a 1-D take there (and in backward) is cheaper
        # than the 2-D fancy index shifted[rows, y]
        at = np.multiply(y, n, dtype=np.intp)                   # (N,) intp: no overflow for small label dtypes
        at += rows
        z_y = shifted.reshape(-1, order="F").take(at)           # (N,) shifted logit of each sample's label
        e = np.exp(shifted, out=shifted)                        # (N, C)
        s = e.sum(axis=1, keepdims=True)                        # (N, 1) >= 1, so log(s) is finite
        # -log p_y = log sum_j exp(z_j) - z_y per sample, on the shifted logits (the shift cancels)
        if sample_weight is None:
            loss = (np.log(s).sum() - z_y.sum()) / n
        else:
            loss = float((np.log(s)[:, 0] - z_y) @ scale[:, 0])
        e /= s                                                  # (N, C) softmax probabilities p
        self._p, self._at, self._rows, self._scale = e, at, rows, scale
        return float(loss)

    def backward(self) -> np.ndarray:
        """``dL/dlogits`` of the mean loss, ``(p - onehot(y)) / N``, shape ``(N, C)``.

        The fused form holds because softmax is followed by cross-entropy against a hard integer label and the
        mean over the batch: d/dz_k [log sum_j exp(z_j) - z_y] = p_k - [k == y], divided by N for the mean
        (by ``sum(w) / w_i`` for a weighted mean). It does not hold for soft/smoothed targets (the onehot
        becomes the target distribution), for a sum reduction (no 1/N), or for any other op between the logits
        and the loss.
        """
        if self._p is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        scale = self._scale
        grad = np.multiply(self._p, scale, order="F")       # (N, C) new column-major array: p stays intact
        flat = grad.reshape(-1, order="F")                  # (C * N,) a view of it, as in forward
        flat[self._at] -= scale if isinstance(scale, float) else scale[:, 0]   # minus onehot(y), scaled
        return grad

    def __repr__(self) -> str:
        return "SoftmaxCrossEntropy()"


class SigmoidBinaryCrossEntropy:
    """Mean over samples of the summed binary cross-entropy of K independent sigmoid outputs.

    For binary classification (``K = 1``) and multilabel targets (``K`` labels, each 0 or 1).
    ``forward(logits (N, K), y (N, K) in [0, 1], sample_weight) -> mean loss``; ``backward() -> (sigmoid(z) - y) / N``.

    Per output, ``-y log s - (1 - y) log(1 - s)`` with ``s = sigmoid(z)`` equals ``softplus(z) - y z``, and
    ``softplus(z) = max(z, 0) + log1p(exp(-|z|))`` never overflows; so the loss is finite for any finite ``z``
    (scikit-learn clips the probabilities at machine epsilon instead, which caps each term at ~36.04).
    """

    out_activation = "logistic"

    def __init__(self):
        self._diff = None

    @staticmethod
    def output(logits: np.ndarray) -> np.ndarray:
        """Per-output probabilities ``sigmoid(z)``, ``(N, K)``."""
        return sigmoid(logits)

    def forward(self, logits: np.ndarray, y: np.ndarray, sample_weight=None) -> float:
        _check_pair(logits, y, "SigmoidBinaryCrossEntropy")
        scale, _ = _row_scale(sample_weight, logits.shape[0], logits.dtype)
        e = np.exp(-np.abs(logits))                        # (N, K) in (0, 1]: shared by softplus and sigmoid
        per = np.log1p(e)                                  # softplus(z) = max(z, 0) + log1p(exp(-|z|))
        per += np.maximum(logits, 0.0)
        per -= y * logits                                  # (N, K) per-output loss
        loss = _mean(per, scale)
        s = 1.0 / (1.0 + e)                                # sigmoid(|z|)
        p = np.where(logits >= 0, s, e * s)                # (N, K) sigmoid(z), as layers.sigmoid
        p -= y                                             # (N, K) sigmoid(z) - y
        self._diff, self._scale = p, scale
        return float(loss)

    def backward(self) -> np.ndarray:
        """``(sigmoid(z) - y) * w_i / sum(w)``, shape ``(N, K)``.

        Fused form: d/dz [softplus(z) - y z] = sigmoid(z) - y, for every target ``y`` in [0, 1] (soft targets too).
        It needs the sigmoid to be the output activation and the loss to be summed over the K outputs (a mean
        over outputs would divide by K).
        """
        if self._diff is None:
            raise RuntimeError("SigmoidBinaryCrossEntropy.backward called before forward")
        return self._diff * self._scale

    def __repr__(self) -> str:
        return "SigmoidBinaryCrossEntropy()"


class SquaredError:
    """Half squared error, summed over the K outputs and averaged over samples (identity output).

    ``forward(pred (N, K), y (N, K), sample_weight) -> mean_i 1/2 sum_k (pred_ik - y_ik)^2``;
    ``backward() -> (pred - y) / N``. For ``K = 1`` this is scikit-learn's ``squared_error`` loss; for ``K > 1``
    scikit-learn reports the mean over outputs but follows this (summed) loss's gradient.
    """

    out_activation = "identity"

    def __init__(self):
        self._diff = None

    @staticmethod
    def output(z: np.ndarray) -> np.ndarray:
        return z

    def forward(self, pred: np.ndarray, y: np.ndarray, sample_weight=None) -> float:
        _check_pair(pred, y, "SquaredError")
        scale, _ = _row_scale(sample_weight, pred.shape[0], pred.dtype)
        diff = pred - y                                    # (N, K)
        loss = 0.5 * _mean(diff * diff, scale)
        self._diff, self._scale = diff, scale
        return float(loss)

    def backward(self) -> np.ndarray:
        """``(pred - y) * w_i / sum(w)``: d/dz 1/2 (z - y)^2 = z - y, because the output activation is the identity."""
        if self._diff is None:
            raise RuntimeError("SquaredError.backward called before forward")
        return self._diff * self._scale

    def __repr__(self) -> str:
        return "SquaredError()"


class PoissonDeviance:
    """Half Poisson deviance with the log link ``mu = exp(z)``, summed over outputs, averaged over samples.

    Per output ``y log(y / mu) - y + mu`` (``0 log 0 = 0``), i.e. ``y log y - y z - y + exp(z)``: it is 0 when
    ``mu == y`` and needs ``y >= 0``. ``backward() -> (exp(z) - y) / N``.
    """

    out_activation = "exp"

    def __init__(self):
        self._diff = None

    @staticmethod
    def output(z: np.ndarray) -> np.ndarray:
        """The predicted means ``exp(z)``."""
        return np.exp(z)

    def forward(self, z: np.ndarray, y: np.ndarray, sample_weight=None) -> float:
        _check_pair(z, y, "PoissonDeviance")
        scale, _ = _row_scale(sample_weight, z.shape[0], z.dtype)
        mu = np.exp(z)                                     # (N, K) predicted means
        ylogy = np.zeros_like(mu)
        np.log(y, out=ylogy, where=(y != 0))               # log y where y != 0 (negative y gives nan, as it should)
        ylogy *= y                                         # y log y, with 0 log 0 = 0
        per = ylogy - y * z - y + mu                       # (N, K)
        loss = _mean(per, scale)
        mu -= y
        self._diff, self._scale = mu, scale
        return float(loss)

    def backward(self) -> np.ndarray:
        """``(exp(z) - y) * w_i / sum(w)``: d/dz [exp(z) - y z] = mu - y, which needs the log link mu = exp(z)."""
        if self._diff is None:
            raise RuntimeError("PoissonDeviance.backward called before forward")
        return self._diff * self._scale

    def __repr__(self) -> str:
        return "PoissonDeviance()"


#: output losses under scikit-learn's ``out_activation_`` names
OUTPUT_LOSSES = {"softmax": SoftmaxCrossEntropy, "logistic": SigmoidBinaryCrossEntropy,
                 "identity": SquaredError, "exp": PoissonDeviance}
