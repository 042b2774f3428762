"""From-scratch neural networks in NumPy: layers, loss, MLP, optimizers, and a scikit-learn estimator.

This package imports NumPy only (never torch; a test checks it). ``MLPClassifier`` needs scikit-learn, so it is
imported lazily, on first access, and ``import nnlab.numpy_nn`` stays free of scikit-learn too.
"""

from __future__ import annotations

from .layers import Linear, ReLU
from .losses import SoftmaxCrossEntropy, log_softmax, softmax
from .mlp import MLP, train_epoch, train_step
from .optim import SGD, Adam

__all__ = ["Linear", "ReLU", "SoftmaxCrossEntropy", "softmax", "log_softmax", "MLP", "SGD", "Adam",
           "train_step", "train_epoch", "MLPClassifier"]


def __getattr__(name: str):
    if name == "MLPClassifier":
        from .sklearn_api import MLPClassifier

        return MLPClassifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"MLPClassifier"})
