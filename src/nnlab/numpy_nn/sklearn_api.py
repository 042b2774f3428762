"""``MLPClassifier``: the from-scratch NumPy MLP behind the scikit-learn estimator API.

Imported lazily by ``nnlab.numpy_nn`` (module ``__getattr__``) so that the engine itself never imports scikit-learn.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._validate import in_range, nonneg_float, one_of, positive_float, positive_int
from ..errors import TrainingDiverged, check
from .layers import DTYPES, INITS
from .losses import SoftmaxCrossEntropy, softmax
from .mlp import MLP, hidden_sizes_problem, train_epoch
from .optim import SGD, Adam

OPTIMIZERS = ("sgd", "adam")


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """Multi-layer perceptron classifier trained by mini-batch SGD or Adam on the mean softmax cross-entropy.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(20,)
        Widths (units) of the hidden layers, each followed by a ReLU. ``()`` gives a linear (softmax) model.
    optimizer : {"sgd", "adam"}, default="adam"
        Update rule (PyTorch's ``SGD``/``Adam`` rules, see ``nnlab.numpy_nn.optim``).
    learning_rate_init : float, default=0.01
        Step size (constant; no schedule).
    momentum : float in [0, 1), default=0.9
        SGD momentum (ignored by Adam).
    nesterov : bool, default=False
        Nesterov momentum for SGD (needs momentum > 0).
    weight_decay : float >= 0, default=0.0
        L2 penalty coefficient added to every gradient (``grad + weight_decay * param``), weights and biases.
    batch_size : int, default=32
        Samples per mini-batch; clipped to the number of training samples.
    max_iter : int, default=100
        Epochs (full passes over the data) run by ``fit``; there is no early stopping.
    init : {"he", "xavier"}, default="he"
        Weight initialisation (biases start at zero), see ``nnlab.numpy_nn.Linear``.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights and the per-epoch shuffling. An int gives reproducible fits.
    dtype : {"float64", "float32"}, default="float64"
        Floating-point type of parameters and computations.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels; the output unit ``k`` stands for ``classes_[k]``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when ``X`` had string column names
    net_ : nnlab.numpy_nn.MLP
        The trained network (``n_features_in_ -> hidden_layer_sizes -> n_classes``).
    loss_curve_ : list of float
        Mean training loss of every epoch run.
    loss_ : float
        The last entry of ``loss_curve_``.
    n_iter_ : int
        Epochs run so far (``fit`` restarts the count; ``partial_fit`` adds one per call).
    """

    def __init__(self, hidden_layer_sizes=(20,), *, optimizer="adam", learning_rate_init=0.01, momentum=0.9,
                 nesterov=False, weight_decay=0.0, batch_size=32, max_iter=100, init="he", random_state=None,
                 dtype="float64"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.optimizer = optimizer
        self.learning_rate_init = learning_rate_init
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.init = init
        self.random_state = random_state
        self.dtype = dtype

    # -- validation ----------------------------------------------------------------------------------------
    def _check_params(self) -> np.dtype:
        """Check every hyperparameter; raise one ConfigError listing all problems. Returns the numpy dtype."""
        dt = None
        try:
            dt = np.dtype(self.dtype)
        except TypeError:
            pass
        problems = [
            hidden_sizes_problem("hidden_layer_sizes", self.hidden_layer_sizes),
            one_of("optimizer", self.optimizer, OPTIMIZERS),
            positive_float("learning_rate_init", self.learning_rate_init),
            in_range("momentum", self.momentum, 0.0, 1.0, hi_open=True),
            None if isinstance(self.nesterov, (bool, np.bool_)) else f"nesterov must be a bool, got {self.nesterov!r}",
            nonneg_float("weight_decay", self.weight_decay),
            positive_int("batch_size", self.batch_size),
            positive_int("max_iter", self.max_iter),
            one_of("init", self.init, INITS),
            None if dt is not None and dt.name in DTYPES else f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}",
        ]
        if self.optimizer == "sgd" and self.nesterov and not (isinstance(self.momentum, (int, float)) and self.momentum > 0):
            problems.append(f"nesterov=True needs momentum > 0, got momentum={self.momentum!r}")
        check([p for p in problems if p], "MLPClassifier parameters")
        return dt

    def _make_optimizer(self):
        params = self.net_.parameters()
        if self.optimizer == "sgd":
            return SGD(params, lr=self.learning_rate_init, momentum=self.momentum, nesterov=bool(self.nesterov),
                       weight_decay=self.weight_decay)
        return Adam(params, lr=self.learning_rate_init, weight_decay=self.weight_decay)

    def _encode(self, y) -> np.ndarray:
        """Labels -> indices into ``classes_`` (int64); a label outside ``classes_`` is a ValueError."""
        idx = np.searchsorted(self.classes_, y)
        idx = np.minimum(idx, len(self.classes_) - 1)
        bad = self.classes_[idx] != y
        if np.any(bad):
            raise ValueError(f"y contains labels not seen in classes_ {self.classes_.tolist()}: "
                             f"{np.unique(np.asarray(y)[bad]).tolist()}")
        return idx.astype(np.int64)

    # -- training ------------------------------------------------------------------------------------------
    def _initialize(self, X, classes, dt: np.dtype) -> None:
        classes = np.unique(classes)
        if len(classes) < 2:   # checked before any attribute is set, so a failed fit leaves no fitted state
            raise ValueError(f"MLPClassifier needs at least 2 classes in y, got {len(classes)} class: "
                             f"{classes.tolist()}")
        self.classes_ = classes
        # One seed from random_state drives the whole fit (weights, then shuffling), so int seeds reproduce it.
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        rng = np.random.default_rng(seed)
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        self.net_ = MLP(X.shape[1], sizes, len(self.classes_), init=self.init, seed=rng, dtype=dt)
        self._rng_state = rng.bit_generator.state
        self._optimizer_state = None
        self.loss_curve_ = []
        self.n_iter_ = 0

    def _run_epochs(self, X, y_idx, epochs: int) -> None:
        # The optimizer and RNG live as plain state between calls, so a pickled estimator resumes exactly.
        opt = self._make_optimizer()
        if self._optimizer_state is not None:
            opt.load_state_dict(self._optimizer_state)
        rng = np.random.default_rng(0)
        rng.bit_generator.state = self._rng_state   # continue the stream where the last call stopped
        loss_fn = SoftmaxCrossEntropy()
        batch = min(int(self.batch_size), X.shape[0])
        for _ in range(epochs):
            loss = train_epoch(self.net_, loss_fn, opt, X, y_idx, batch_size=batch, rng=rng)
            if not np.isfinite(loss):
                raise TrainingDiverged(f"training loss became {loss} at epoch {self.n_iter_ + 1}; "
                                       f"try a smaller learning_rate_init (got {self.learning_rate_init})")
            self.loss_curve_.append(loss)
            self.n_iter_ += 1
        self.loss_ = self.loss_curve_[-1]
        self._optimizer_state = opt.state_dict()
        self._rng_state = rng.bit_generator.state

    def fit(self, X, y):
        """Train from scratch for ``max_iter`` epochs. Returns self."""
        dt = self._check_params()
        X, y = validate_data(self, X, y, dtype=dt, reset=True)
        check_classification_targets(y)
        self._initialize(X, y, dt)
        self._run_epochs(X, self._encode(y), int(self.max_iter))
        return self

    def partial_fit(self, X, y, classes=None):
        """One epoch over ``(X, y)``; the first call needs ``classes`` (all labels that will ever appear)."""
        first = not hasattr(self, "net_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        dt = self._check_params() if first else self.net_.dtype
        X, y = validate_data(self, X, y, dtype=dt, reset=first)
        check_classification_targets(y)
        if first:
            self._initialize(X, classes, dt)
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes={np.unique(classes).tolist()} differs from the first call's "
                             f"{self.classes_.tolist()}")
        self._run_epochs(X, self._encode(y), 1)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        # fitted means a trained network exists (a fit that failed after validate_data set n_features_in_ is not)
        return hasattr(self, "net_")

    # -- prediction ----------------------------------------------------------------------------------------
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape ``(n_samples, n_classes)``, columns in ``classes_`` order."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=self.net_.dtype, reset=False)
        return softmax(self.net_.forward(X))

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=self.net_.dtype, reset=False)
        return self.classes_[self.net_.forward(X).argmax(axis=1)]
