"""The Bayes-optimal classifier of the Part I toy data, computed exactly from the generating process (NumPy only).

scikit-learn's generators (``sklearn/datasets/_samples_generator.py``, checked against 1.9) put each class on a
1-D curve and add isotropic Gaussian noise ``N(0, σ² I)`` to every point:

- ``make_moons(n)``: class 0 at ``(cos t, sin t)``, class 1 at ``(1 - cos t, 1 - sin t - 0.5)``, with
  ``t = linspace(0, π, n_c)`` (end points included);
- ``make_circles(n, factor=0.8)``: class 0 at ``(cos t, sin t)``, class 1 at ``factor · (cos t, sin t)``, with
  ``t = linspace(0, 2π, n_c, endpoint=False)``;

with ``n_0 = n // 2`` points on class 0 and ``n_1 = n - n_0`` on class 1. So a point of class ``c`` is one of
the ``n_c`` curve points ``m_k`` plus noise, and its density is the average of Gaussian kernels over the curve:

    p(x | c) = Σ_k w_k · N(x; m_k, σ² I),        P(c | x) = π_c p(x | c) / Σ_c' π_c' p(x | c')

with ``w_k = 1 / n_c`` and ``π_c = n_c / n`` for the generator's discrete set (``n_samples`` given), or, in
the limit of a continuous curve (``n_samples=None``), quadrature weights over the curve parameter and
``π_c = 1/2``. The Bayes-optimal prediction is ``argmax_c P(c | x)``; its expected accuracy, the Bayes rate,
is ``∫ max_c π_c p(x | c) dx`` (:func:`bayes_rate`, a midpoint rule on a grid) or ``E[max_c P(c | x)]``
(:func:`bayes_rate_mc`, Monte Carlo). A test point is classified on its own: the classifier does not use
which curve points the other points of the same draw took (each is used once), a negligible dependence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validate import in_range, positive_float
from ..errors import check

#: Rows times curve points per kernel block: bounds each (rows, nodes) scratch array to 16 MiB of float64.
_BLOCK = 1 << 21


@dataclass(frozen=True)
class CurveMixture:
    """Each class ``c``: points ``nodes[c]`` (K_c, 2) with weights ``weights[c]`` (K_c,) summing to 1, and a
    prior ``priors[c]``; a sample of class ``c`` is a point drawn by weight plus ``N(0, noise² I)``."""

    nodes: tuple[np.ndarray, ...]
    weights: tuple[np.ndarray, ...]
    priors: tuple[float, ...]
    noise: float  # σ, the noise standard deviation (same unit as the coordinates)

    def __post_init__(self):
        problems = [positive_float("noise", self.noise)]  # σ = 0: the posterior of noiseless curves is degenerate
        if not (len(self.nodes) == len(self.weights) == len(self.priors) >= 2):
            problems.append(f"nodes, weights and priors need one entry per class (at least 2), got "
                            f"{len(self.nodes)}, {len(self.weights)}, {len(self.priors)}")
        for c, (m, w) in enumerate(zip(self.nodes, self.weights)):
            if m.ndim != 2 or m.shape[1] != 2 or len(m) == 0 or w.shape != (len(m),):
                problems.append(f"class {c}: nodes must be (K, 2) with K >= 1 and weights (K,), got {m.shape} and {w.shape}")
            elif not (np.all(w >= 0) and abs(float(w.sum()) - 1) < 1e-9):
                problems.append(f"class {c}: weights must be >= 0 and sum to 1, got sum {float(w.sum())!r}")
        if self.priors and not (all(p > 0 for p in self.priors) and abs(sum(self.priors) - 1) < 1e-9):
            problems.append(f"priors must be > 0 and sum to 1, got {tuple(self.priors)!r}")
        check([p for p in problems if p], "Bayes mixture")
        object.__setattr__(self, "noise", float(self.noise))

    @property
    def num_classes(self) -> int:
        return len(self.nodes)


def _curve_params(dataset: str, k: int, discrete: bool) -> tuple[np.ndarray, np.ndarray]:
    """(t, w): ``k`` values of the curve parameter and their weights (sum 1)."""
    if dataset == "circles":  # endpoint=False: the generator's points, and the periodic rectangle rule (spectral)
        return np.linspace(0, 2 * np.pi, k, endpoint=False), np.full(k, 1 / k)
    if discrete:  # moons: the generator's linspace, end points included
        return np.linspace(0, np.pi, k), np.full(k, 1 / k)
    x, w = np.polynomial.legendre.leggauss(k)  # Gauss–Legendre on [0, π]: the half circle is not periodic
    return (x + 1) * (np.pi / 2), w / 2


def toy_mixture(dataset: str, noise: float, *, n_samples: int | None = 1000, factor: float = 0.8,
                nodes: int = 1024) -> CurveMixture:
    """The generating process of ``make_moons``/``make_circles`` as a :class:`CurveMixture`.

    ``n_samples``: the data set's size, giving the generator's own discrete curve points and class sizes
    (the Bayes classifier of that data); ``None``: the continuous curves with ``nodes`` quadrature nodes per
    class and equal priors (the limit of many points). ``factor``: circles' inner radius (scikit-learn's
    default 0.8)."""
    problems = []
    if dataset not in ("moons", "circles"):
        problems.append(f"unknown dataset {dataset!r}; valid: moons, circles")
    if n_samples is not None and (isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2):
        problems.append(f"n_samples must be an integer >= 2 or None (continuous curves), got {n_samples!r}")
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
        problems.append(f"nodes must be a positive integer, got {nodes!r}")
    if dataset == "circles":
        problems.append(in_range("factor", factor, 0, 1, lo_open=True, hi_open=True))
    check([p for p in problems if p], "Bayes mixture")
    discrete = n_samples is not None
    if discrete:
        sizes = (n_samples // 2, n_samples - n_samples // 2)  # the generator's n_samples_out, n_samples_in
        priors = (sizes[0] / n_samples, sizes[1] / n_samples)
    else:
        sizes, priors = (nodes, nodes), (0.5, 0.5)
    (t0, w0), (t1, w1) = _curve_params(dataset, sizes[0], discrete), _curve_params(dataset, sizes[1], discrete)
    if dataset == "moons":
        m0 = np.stack([np.cos(t0), np.sin(t0)], 1)  # (K0, 2) upper half circle
        m1 = np.stack([1 - np.cos(t1), 1 - np.sin(t1) - 0.5], 1)  # (K1, 2) lower one, shifted
    else:
        m0 = np.stack([np.cos(t0), np.sin(t0)], 1)  # (K0, 2) radius 1
        m1 = factor * np.stack([np.cos(t1), np.sin(t1)], 1)  # (K1, 2) radius factor
    return CurveMixture(nodes=(m0, m1), weights=(w0, w1), priors=priors, noise=noise)


def mixture_for(cfg) -> CurveMixture:
    """The mixture behind a :class:`nnlab.data.toy.ToyDataConfig` (its data set, size, noise and factor)."""
    return toy_mixture(cfg.dataset, cfg.resolved_noise, n_samples=cfg.n_samples, factor=cfg.factor)


def _as_points(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"points must be an array of shape (N, 2), got shape {X.shape}")
    return X


def log_joint(mix: CurveMixture, X) -> np.ndarray:
    """``log(π_c p(x | c))`` for every point and class: (N, C), stable (log-sum-exp over the curve points)."""
    X = _as_points(X)  # (N, 2)
    s2 = mix.noise ** 2
    out = np.empty((len(X), mix.num_classes))
    log_norm = -math.log(2 * math.pi * s2)  # 2-D isotropic Gaussian
    x2 = (X * X).sum(1)  # (N,)
    for c, (m, w) in enumerate(zip(mix.nodes, mix.weights)):
        logw = np.log(np.where(w > 0, w, np.finfo(float).tiny))  # (K,)
        m2 = (m * m).sum(1)  # (K,)
        rows = max(1, _BLOCK // len(m))
        for a in range(0, len(X), rows):
            # (n, K) squared distances |x|² - 2 x·m + |m|²: the coordinates are O(1) and σ² >= 1e-4 in use, so the
            # cancellation costs ~1e-12 of d2/σ²; clipped at 0 against rounding
            d2 = np.maximum(x2[a:a + rows, None] - 2 * X[a:a + rows] @ m.T + m2[None, :], 0.0)
            e = logw[None, :] - d2 / (2 * s2)  # (n, K)
            top = e.max(1)  # (n,)
            out[a:a + rows, c] = top + np.log(np.exp(e - top[:, None]).sum(1)) + log_norm + math.log(mix.priors[c])
    return out


def posterior(mix: CurveMixture, X) -> np.ndarray:
    """``P(c | x)``: (N, C), rows sum to 1."""
    lj = log_joint(mix, X)
    p = np.exp(lj - lj.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def predict(mix: CurveMixture, X) -> np.ndarray:
    """The Bayes-optimal labels ``argmax_c P(c | x)``: (N,) int64 (ties, measure zero, go to the lower class)."""
    return log_joint(mix, X).argmax(1).astype(np.int64)


def accuracy(mix: CurveMixture, X, y) -> float:
    """Fraction (0–1) of the labelled points ``(X, y)`` that the Bayes-optimal classifier gets right."""
    y = np.asarray(y)
    X = _as_points(X)
    if y.shape != (len(X),):
        raise ValueError(f"labels must have shape ({len(X)},) to match the points, got {y.shape}")
    return float((predict(mix, X) == y).mean()) if len(y) else float("nan")


def bayes_rate(mix: CurveMixture, *, step: float | None = None, pad: float = 7.0) -> float:
    """The Bayes rate ``∫ max_c π_c p(x | c) dx`` by the midpoint rule on a square grid.

    The grid covers every curve point ± ``pad``·σ (the mass outside is below 1e-10) with cells of side
    ``step`` (default σ/4). The integrand is smooth except for a kink on the decision boundary, so the
    error falls as step². Worst case, a straight boundary along grid lines (two point classes at ±σ): 6e-4
    at σ/4, 4e-5 at σ/16. On the toy data's curved boundaries the kink errors of neighbouring cells largely
    cancel: circles at σ = 0.05 give 0.977184 against the 1-D Rice-density integral's 0.977166 at σ/4
    (tests/data/test_bayes.py)."""
    s = mix.noise
    h = s / 4 if step is None else float(step)
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"step must be a finite number > 0, got {step!r}")
    allm = np.concatenate(mix.nodes)  # (K, 2)
    lo, hi = allm.min(0) - pad * s, allm.max(0) + pad * s
    nx, ny = (int(math.ceil(v)) for v in (hi - lo) / h)
    xs = lo[0] + h * (np.arange(nx) + 0.5)  # cell midpoints
    ys = lo[1] + h * (np.arange(ny) + 0.5)
    total = 0.0
    for a in range(0, nx, max(1, 200_000 // ny)):  # a band of columns at a time
        gx, gy = np.meshgrid(xs[a:a + max(1, 200_000 // ny)], ys, indexing="ij")
        total += float(np.exp(log_joint(mix, np.c_[gx.ravel(), gy.ravel()]).max(1)).sum())
    return total * h * h


def sample(mix: CurveMixture, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` i.i.d. draws ``(X (n, 2), y (n,))`` of the mixture, from ``seed``."""
    rng = np.random.default_rng(seed)
    y = rng.choice(mix.num_classes, size=n, p=np.asarray(mix.priors))
    X = np.empty((n, 2))
    for c in range(mix.num_classes):
        idx = np.flatnonzero(y == c)
        k = rng.choice(len(mix.nodes[c]), size=len(idx), p=mix.weights[c])
        X[idx] = mix.nodes[c][k] + rng.normal(scale=mix.noise, size=(len(idx), 2))
    return X, y.astype(np.int64)


def bayes_rate_mc(mix: CurveMixture, n: int, seed: int) -> tuple[float, float]:
    """The Bayes rate as ``E[max_c P(c | x)]`` over ``n`` draws: (estimate, its standard error)."""
    X, _ = sample(mix, n, seed)
    m = posterior(mix, X).max(1)  # (n,) the probability that the Bayes prediction is right, given x
    return float(m.mean()), float(m.std(ddof=1) / math.sqrt(n))


def split_accuracy(cfg, seed: int) -> float:
    """The Bayes-optimal classifier's accuracy (0–1) on the test split that ``make_toy(cfg, seed)`` makes —
    the very points a Part I run with this data config and seed is tested on."""
    from .toy import make_toy

    X, y = make_toy(cfg, seed).test
    return accuracy(mixture_for(cfg), X, y)
