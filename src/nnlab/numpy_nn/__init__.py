"""From-scratch neural networks in NumPy: layers, losses, MLP, optimizers, and scikit-learn estimators.

This package imports NumPy only (never torch; a test checks it). ``MLPClassifier`` and ``MLPRegressor``
(drop-ins for scikit-learn's) need scikit-learn and SciPy, so they are imported lazily, on first access, and
``import nnlab.numpy_nn`` stays free of both.
"""

from __future__ import annotations

from .layers import ACTIVATIONS, Identity, Linear, Logistic, ReLU, Tanh, sigmoid
from .losses import (OUTPUT_LOSSES, PoissonDeviance, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy, SquaredError,
                     log_softmax, softmax)
from .mlp import MLP, loss_and_gradient, train_batches, train_epoch, train_step
from .optim import SGD, Adam

_ESTIMATORS = ("MLPClassifier", "MLPRegressor")

__all__ = ["Linear", "ReLU", "Tanh", "Logistic", "Identity", "ACTIVATIONS", "sigmoid",
           "SoftmaxCrossEntropy", "SigmoidBinaryCrossEntropy", "SquaredError", "PoissonDeviance", "OUTPUT_LOSSES",
           "softmax", "log_softmax", "MLP", "SGD", "Adam", "loss_and_gradient", "train_step", "train_batches",
           "train_epoch", *_ESTIMATORS]


def __getattr__(name: str):
    if name in _ESTIMATORS:
        from . import sklearn_api

        return getattr(sklearn_api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_ESTIMATORS))
