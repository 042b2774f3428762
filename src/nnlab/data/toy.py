"""Part I toy data: scikit-learn's ``make_moons`` and ``make_circles`` with the report's protocol.

The report: 1,000 points, 80/20 train/test split, moons noise 0.2, circles noise 0.05 (scikit-learn's
default ``factor=0.8``). The split is stratified and drawn from the seed, so a run is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._validate import in_range, one_of, positive_int
from ..errors import check

DATASETS = ("moons", "circles")
#: The report's noise per data set (Part I, Task 1).
DEFAULT_NOISE = {"moons": 0.2, "circles": 0.05}


@dataclass(frozen=True)
class ToyDataConfig:
    dataset: str = field(default="moons", metadata={"help": "2-D data set: moons | circles"})
    n_samples: int = field(default=1000, metadata={"help": "number of points (report: 1000)"})
    noise: float | None = field(default=None, metadata={"help": "Gaussian noise std; default: moons 0.2, circles 0.05"})
    factor: float = field(default=0.8, metadata={"help": "circles: inner/outer radius ratio (scikit-learn default 0.8)"})
    test_fraction: float = field(default=0.2, metadata={"help": "fraction held out for the test set (report: 0.2)"})
    val_fraction: float = field(default=0.0, metadata={"help": "fraction of the training part held out for validation"})

    def __post_init__(self):
        problems = [
            one_of("dataset", self.dataset, DATASETS),
            positive_int("n_samples", self.n_samples),
            in_range("test_fraction", self.test_fraction, 0, 1, lo_open=True, hi_open=True),
            in_range("val_fraction", self.val_fraction, 0, 1, hi_open=True),
            in_range("factor", self.factor, 0, 1, lo_open=True, hi_open=True),
        ]
        if self.noise is not None:
            problems.append(in_range("noise", self.noise, 0, 10))
        check([p for p in problems if p])
        if self.n_samples < 10:
            check([f"n_samples must be >= 10 for an 80/20 split, got {self.n_samples}"])
        # scikit-learn's stratified split needs at least one point per class (2) on each side of every split
        n_test = math.ceil(self.test_fraction * self.n_samples)
        n_train = self.n_samples - n_test
        n_val = math.ceil(self.val_fraction * n_train) if self.val_fraction > 0 else None
        if min(n_test, n_train) < 2 or (n_val is not None and min(n_val, n_train - n_val) < 2):
            sizes = f"{n_train - (n_val or 0)} training, " + (f"{n_val} validation, " if n_val is not None else "") + f"{n_test} test"
            check([f"n_samples={self.n_samples}, test_fraction={self.test_fraction}, val_fraction={self.val_fraction} "
                   f"give {sizes} points; each split needs at least 2 (one per class)"])

    @property
    def resolved_noise(self) -> float:
        return DEFAULT_NOISE[self.dataset] if self.noise is None else float(self.noise)


@dataclass
class ToySplits:
    """float features (N, 2) and int64 labels (N,) per split; ``val`` is None without a validation split."""

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray] | None
    test: tuple[np.ndarray, np.ndarray]
    class_names: tuple[str, ...] = ("0", "1")


def make_toy(cfg: ToyDataConfig, seed: int) -> ToySplits:
    """Generate the data set and a stratified split, all from ``seed``."""
    from sklearn.datasets import make_circles, make_moons
    from sklearn.model_selection import train_test_split

    if cfg.dataset == "moons":
        X, y = make_moons(n_samples=cfg.n_samples, noise=cfg.resolved_noise, random_state=seed)
    else:
        X, y = make_circles(n_samples=cfg.n_samples, noise=cfg.resolved_noise, factor=cfg.factor, random_state=seed)
    X = X.astype(np.float64)
    y = y.astype(np.int64)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=cfg.test_fraction, stratify=y, random_state=seed)
    val = None
    if cfg.val_fraction > 0:
        X_tr, X_va, y_tr, y_va = train_test_split(X_tr, y_tr, test_size=cfg.val_fraction, stratify=y_tr, random_state=seed + 1)
        val = (X_va, y_va)
    return ToySplits(train=(X_tr, y_tr), val=val, test=(X_te, y_te))
