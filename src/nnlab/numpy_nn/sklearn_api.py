"""``MLPClassifier`` and ``MLPRegressor``: drop-ins for scikit-learn's, trained by the from-scratch NumPy engine.

Same constructor (names, defaults, meanings), same fitted attributes, same stopping rules and the same errors
as ``sklearn.neural_network``; with the same ``random_state`` the initial weights, the shuffles and the
early-stopping split come from the same random stream, so a fit follows scikit-learn's to rounding error.
What is scikit-learn's here is its *machinery*: parameter validation (``_parameter_constraints`` checked by
``_fit_context``), input validation (``validate_data``), label binarising, the train/validation split, and the
optimisation by SciPy's L-BFGS-B. The network, its gradients and the SGD/Adam updates are ``nnlab.numpy_nn``'s.

One epoch of the stochastic solvers (``sgd``, ``adam``), as ``_fit_stochastic`` runs it::

    shuffle(order)                                   # cumulative shuffle from random_state (if shuffle)
    loss_ = mean over batches of [weighted mean loss + alpha / (2 sum w) ||W||^2]     (train_batches)
    n_iter_ += 1; t_ += n; loss_curve_.append(loss_)
    no-improvement count += 1 unless the loss fell by > tol (or the validation score rose by > tol)
    invscaling: lr = learning_rate_init / (t_ + 1) ** power_t
    count > n_iter_no_change: stop, or (sgd + adaptive, lr > 1e-6) lr /= 5 and count = 0

Where the numbers differ from scikit-learn 1.9 (on purpose):

- early stopping on multiclass targets uses a stratified split, as scikit-learn documents ("The split is
  stratified, except in a multilabel setting"); its code stratifies binary targets only. So a multiclass
  validation set needs a sample of every class (the error scikit-learn gives for binary targets);
- multi-output squared error: ``loss_`` is the half squared error *summed* over outputs, the objective whose
  gradient both implementations follow (scikit-learn reports the mean over outputs), so that L-BFGS gets the
  exact gradient of the value it is given;
- log-loss values come from the logits exactly, where scikit-learn clips probabilities at machine epsilon;
- a float32 fit stays float32 with L-BFGS too, and ``predict`` casts ``X`` to the fitted dtype;
- ``MLPRegressor.partial_fit`` with ``solver="lbfgs"`` is unavailable, as for the classifier;
- with ``warm_start`` and ``early_stopping`` the kept best weights are a copy, never the live weights.

Where the speed differs on purpose: during L-BFGS every BLAS library but NumPy's own runs one thread
(``_other_blas_on_one_thread``). SciPy's L-BFGS-B calls SciPy's OpenBLAS between NumPy's products, and where each
brings its own OpenBLAS (their PyPI wheels), the two thread pools spin for the same cores.

This module imports scikit-learn, so ``nnlab.numpy_nn`` imports it lazily (the engine itself is NumPy only).
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
import scipy.optimize
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as _SkMLPClassifier
from sklearn.neural_network import MLPRegressor as _SkMLPRegressor
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import Options, StrOptions
from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .losses import OUTPUT_LOSSES
from .mlp import MLP, loss_and_gradient, train_batches, with_ones_column
from .optim import SGD, Adam

STOCHASTIC_SOLVERS = ("sgd", "adam")
FLOAT_DTYPES = (np.float64, np.float32)


def _other_blas_on_one_thread():
    """A context in which every loaded BLAS library other than NumPy's own runs on one thread; NumPy's keeps its
    threads. For L-BFGS: SciPy's optimizer calls SciPy's OpenBLAS on the parameter vector between NumPy's matrix
    products, and where SciPy and NumPy each bring their own OpenBLAS (their PyPI wheels), both pools spin for the
    same cores: at the default thread counts of a 2-core machine a ``load_digits`` fit took 4.6x longer (0.45 s
    against 0.10 s; scikit-learn's own L-BFGS fit pays the same). Where NumPy's library cannot be told apart (no
    library in NumPy's wheel folders, e.g. one BLAS shared by both), nothing changes."""
    from threadpoolctl import ThreadpoolController

    blas = ThreadpoolController().select(user_api="blas")
    numpy_own, others = _numpy_blas_and_others([lib.filepath for lib in blas.lib_controllers])
    if not numpy_own or not others:
        return contextlib.nullcontext()
    return blas.select(filepath=others).limit(limits=1)


def _numpy_blas_and_others(filepaths: list[str]) -> tuple[list[str], list[str]]:
    """The loaded BLAS libraries split into NumPy's own (inside its wheel: ``numpy.libs`` or ``numpy/.dylibs``) and
    the others."""
    root = Path(np.__file__).resolve().parent
    homes = (root, root.parent / "numpy.libs")
    own = [f for f in filepaths if any(Path(f).resolve().is_relative_to(h) for h in homes)]
    return own, [f for f in filepaths if f not in own]


_PARAMETERS_DOC = """
    hidden_layer_sizes : array-like of int, or int, default=(100,)
        Width of each hidden layer (``()`` gives a linear model).
    activation : {"identity", "logistic", "tanh", "relu"}, default="relu"
        Hidden-layer activation: ``x``, ``1 / (1 + exp(-x))``, ``tanh(x)`` or ``max(x, 0)``.
    solver : {"lbfgs", "sgd", "adam"}, default="adam"
        ``"sgd"``: mini-batch SGD with momentum; ``"adam"``: Adam (Kingma & Ba); ``"lbfgs"``: SciPy's L-BFGS-B
        on the whole training set, given the exact gradient of the regularised loss.
    alpha : float >= 0, default=0.0001
        L2 penalty on the weights (not the biases): ``alpha / (2 * n) * sum ||W||^2`` is added to the mean loss of
        every batch of ``n`` samples (``n`` = the sum of the sample weights when they are given).
    batch_size : int >= 1 or "auto", default="auto"
        Samples per mini-batch (stochastic solvers); ``"auto"`` is ``min(200, n_samples)``. A larger value is
        clipped to ``n_samples`` with a warning.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Step-size schedule of ``"sgd"``: constant; ``learning_rate_init / (t + 1) ** power_t`` after each epoch, ``t``
        the samples seen so far; or divided by 5 each time the no-improvement count exceeds ``n_iter_no_change``
        (training stops once it is <= 1e-6).
    learning_rate_init : float > 0, default=0.001
        Initial step size of ``"sgd"`` and ``"adam"``.
    power_t : float >= 0, default=0.5
        Exponent of ``"invscaling"``.
    max_iter : int >= 1, default=200
        Epochs of the stochastic solvers; iterations of ``"lbfgs"``.
    shuffle : bool, default=True
        Reshuffle the training samples before each epoch (stochastic solvers).
    random_state : int, RandomState instance or None, default=None
        Source of the initial weights, the shuffles and the early-stopping split. An int reproduces a fit, and
        gives the same numbers as scikit-learn's estimator with that ``random_state``.
    tol : float >= 0, default=1e-4
        An epoch counts as no improvement unless the training loss fell below its best by more than ``tol`` (or,
        with ``early_stopping``, the validation score rose above its best by more than ``tol``). For
        ``"lbfgs"``, the projected-gradient tolerance ``gtol``.
    verbose : bool or int, default=False
        Print the loss of each epoch (and the stopping decisions) to stdout.
    warm_start : bool, default=False
        ``fit`` continues from the current weights (a new optimizer, ``n_iter_`` counted afresh, ``loss_curve_``
        extended) instead of starting again.
    momentum : float in [0, 1], default=0.9
        Momentum of ``"sgd"``.
    nesterovs_momentum : bool, default=True
        Nesterov's momentum for ``"sgd"`` (when ``momentum > 0``).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified for single-label classification),
        count no improvement on its score (accuracy or R^2) instead of the training loss, and end with the
        weights of the best validation score. Stochastic solvers only; not with ``partial_fit``.
    validation_fraction : float in [0, 1), default=0.1
        Share of the training data held out by ``early_stopping``.
    beta_1, beta_2 : float in [0, 1), default=0.9, 0.999
        Decay rates of Adam's first- and second-moment estimates.
    epsilon : float > 0, default=1e-8
        Adam's denominator term, added to ``sqrt(v)`` (``Adam(eps_on="v")``).
    n_iter_no_change : int >= 1 or numpy.inf, default=10
        Stop (or, with ``"adaptive"``, divide the step size) when the no-improvement count exceeds this.
    max_fun : int >= 1, default=15000
        Maximum number of loss evaluations of ``"lbfgs"``.
    dtype : {"float64", "float32"}, numpy.float64, numpy.float32 or None, default=None
        (nnlab only) Floating-point type of the weights and computations. ``None`` follows ``X`` as
        scikit-learn does: float32 stays float32, anything else becomes float64.
"""

_ATTRIBUTES_DOC = """
    loss_ : float
        Loss of the last epoch (stochastic solvers) or at the L-BFGS solution, penalty included.
    best_loss_ : float or None
        Lowest ``loss_`` so far; ``None`` with ``early_stopping`` (see ``best_validation_score_``). Stochastic only.
    loss_curve_ : list of float
        ``loss_`` of every epoch (``len == n_iter_`` after a fresh ``fit``). Stochastic only.
    validation_scores_ : list of float or None
        Validation score of every epoch with ``early_stopping``, else ``None``. Stochastic only.
    best_validation_score_ : float or None
        Best of ``validation_scores_``, else ``None``. Stochastic only.
    t_ : int
        Training samples seen by the stochastic solver (epochs times ``n_samples``).
    coefs_ : list of ndarray, shape (n_layers_ - 1,)
        ``coefs_[i]`` is layer ``i``'s weight matrix ``(fan_in, fan_out)``: a live view into the engine's flat
        parameter vector (writing into it changes the model; assigning a list copies it in).
    intercepts_ : list of ndarray, shape (n_layers_ - 1,)
        ``intercepts_[i]`` is the bias vector of layer ``i + 1``, live like ``coefs_``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when ``X`` had string column names
    n_iter_ : int
        Epochs run by the last ``fit`` (1 per ``partial_fit``), or L-BFGS iterations.
    n_layers_ : int
        Layers including input and output: ``len(hidden_layer_sizes) + 2``.
    n_outputs_ : int
        Output units.
    out_activation_ : str
        Output activation: ``"softmax"``, ``"logistic"``, ``"identity"`` or ``"exp"``.
"""


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: validation, initialisation, the solvers, the stopping rules."""

    # scikit-learn's own constraint objects (so that every message matches, down to the order in which a set of
    # options is printed, which depends on how the set was built) plus our dtype. The options they allow are the
    # ones implemented here; a test checks it, so a newer scikit-learn with a new option fails loudly.
    _parameter_constraints: dict = {
        **_SkMLPClassifier._parameter_constraints,
        "dtype": [None, StrOptions({"float32", "float64"}), Options(type, {np.float32, np.float64})],
    }

    def _store_params(self, params: dict) -> None:
        """``__init__``'s body: store every argument unchanged (scikit-learn validates in ``fit``)."""
        for name, value in params.items():
            if name != "self":
                setattr(self, name, value)

    # -- the fitted network ----------------------------------------------------------------------------------
    def __sklearn_is_fitted__(self) -> bool:
        return getattr(self, "_net", None) is not None

    @property
    def coefs_(self) -> list[np.ndarray]:
        if not self.__sklearn_is_fitted__():
            raise AttributeError(f"{type(self).__name__!r} object has no attribute 'coefs_'")
        return [layer.W for layer in self._net.linears]

    @coefs_.setter
    def coefs_(self, arrays) -> None:
        self._copy_into("coefs_", arrays, "W")

    @property
    def intercepts_(self) -> list[np.ndarray]:
        if not self.__sklearn_is_fitted__():
            raise AttributeError(f"{type(self).__name__!r} object has no attribute 'intercepts_'")
        return [layer.b for layer in self._net.linears]

    @intercepts_.setter
    def intercepts_(self, arrays) -> None:
        self._copy_into("intercepts_", arrays, "b")

    def _copy_into(self, name: str, arrays, attr: str) -> None:
        check_is_fitted(self)
        own = [getattr(layer, attr) for layer in self._net.linears]
        shapes = [np.shape(a) for a in arrays]
        if shapes != [a.shape for a in own]:
            raise ValueError(f"{name} must have the shapes {[a.shape for a in own]}, got {shapes}")
        for dst, src in zip(own, arrays):
            dst[...] = src

    # -- fit ------------------------------------------------------------------------------------------------
    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if np.any(np.array(sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return sizes

    def _fit(self, X, y, sample_weight, incremental: bool):
        hidden = self._hidden_sizes()
        first_pass = not self.__sklearn_is_fitted__() or (not self.warm_start and not incremental)
        if first_pass:
            dtype = FLOAT_DTYPES if self.dtype is None else np.dtype(self.dtype).type
        else:
            dtype = self._net.dtype.type
        X, Y = self._validate_input(X, y, incremental, reset=first_pass, dtype=dtype)
        if hasattr(X, "tocsr"):
            X = X.tocsr()                               # mini-batches are row slices
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        Y = Y.reshape(-1, 1) if Y.ndim == 1 else Y      # (n, n_outputs)
        rs = check_random_state(self.random_state)
        if first_pass:
            self._initialize(X, Y, hidden, rs)
        elif (X.shape[1], *hidden, Y.shape[1]) != (self._net.in_features, *self._net.hidden_sizes,
                                                    self._net.out_features):
            raise ValueError(f"warm_start/partial_fit needs the fitted architecture {self._layer_units()}, got "
                             f"{[X.shape[1], *hidden, Y.shape[1]]} (hidden_layer_sizes or the targets changed)")
        if self._net.activation != self.activation:
            self._net.set_activation(self.activation)   # scikit-learn reads `activation` at every call
        dt = self._net.dtype
        T = Y.argmax(axis=1) if self.out_activation_ == "softmax" else Y.astype(dt, copy=False)
        w = None if sample_weight is None else sample_weight.astype(dt, copy=False)
        if self.solver in STOCHASTIC_SOLVERS:
            self._fit_stochastic(X, Y, T, w, rs, incremental)
        else:
            self._fit_lbfgs(X, T, w)
        self._net.clear_cache()                        # keep no reference to the training data
        if not np.isfinite(self._net.flat_parameters).all():
            raise ValueError("Solver produced non-finite parameter weights. The input data may contain large "
                             "values and need to be preprocessed.")
        return self

    def _layer_units(self) -> list[int]:
        net = self._net
        return [net.in_features, *net.hidden_sizes, net.out_features]

    def _initialize(self, X, Y, hidden: list[int], rs: np.random.RandomState) -> None:
        """Fresh weights and bookkeeping; weights drawn from ``rs`` in scikit-learn's order and distribution.

        Glorot & Bengio (2010) uniform: ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))`` for the weights *and*
        the biases of each layer, in turn (``a = sqrt(2 / ...)`` for the logistic activation).
        """
        self.n_iter_, self.t_, self.n_outputs_ = 0, 0, Y.shape[1]
        self.n_layers_ = len(hidden) + 2
        self.out_activation_ = self._out_activation()
        net = MLP(X.shape[1], tuple(hidden), Y.shape[1], init="xavier", seed=0, dtype=X.dtype,
                  activation=self.activation)
        factor = 2.0 if self.activation == "logistic" else 6.0
        for layer in net.linears:
            a = np.sqrt(factor / (layer.in_features + layer.out_features))
            layer.W[...] = rs.uniform(-a, a, (layer.in_features, layer.out_features))
            layer.b[...] = rs.uniform(-a, a, layer.out_features)
        self._net = net
        self._best_params = net.flat_parameters.copy()
        self._optimizer_state = None
        for name in ("loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_", "loss_"):
            self.__dict__.pop(name, None)               # nothing stale from an earlier fit with another solver
        if self.solver in STOCHASTIC_SOLVERS:
            self._reset_stopping_state()

    def _reset_stopping_state(self) -> None:
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None
        else:
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = None, None, np.inf

    # -- stochastic solvers -------------------------------------------------------------------------------
    def _make_optimizer(self, incremental: bool):
        """scikit-learn's update rules: SGD's velocity form, Adam's epsilon on ``sqrt(v)``.

        ``partial_fit`` continues the previous call's optimizer (moments and current step size); ``fit`` starts
        a new one, warm start or not.
        """
        params = self._net.parameters()
        if self.solver == "sgd":
            opt = SGD(params, lr=self.learning_rate_init, momentum=self.momentum,
                      nesterov=bool(self.nesterovs_momentum) and self.momentum > 0, buffer="step")
        else:
            opt = Adam(params, lr=self.learning_rate_init, betas=(self.beta_1, self.beta_2), eps=self.epsilon,
                       eps_on="v")
        saved = self._optimizer_state
        if incremental and saved is not None and saved["kind"] == (self.solver, opt.state_names):
            opt.load_state_dict(saved["state"])
            opt.lr = saved["lr"]
        return opt

    def _loss(self):
        """The output's loss; softmax labels are ``Y.argmax(axis=1)``, in range by construction: not re-checked."""
        kind = OUTPUT_LOSSES[self.out_activation_]
        return kind(check_labels=False) if self.out_activation_ == "softmax" else kind()

    def _fit_stochastic(self, X, Y, T, w, rs, incremental: bool) -> None:
        opt = self._make_optimizer(incremental)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        if not hasattr(self, "loss_curve_"):
            self._reset_stopping_state()                # warm start after an L-BFGS fit
        if self.early_stopping:
            X, T, w, val = self._split_validation(X, Y, T, w, rs)
        else:
            val = None
        n = X.shape[0]
        batch_size = self._batch_size(n)
        loss_fn = self._loss()
        order = np.arange(n)
        # fit on a dense X: [X, 1] built once, the first layer's bias then rides in its product (a partial_fit call,
        # one epoch, would pay the copy for too few steps)
        ones = not incremental and isinstance(X, np.ndarray)
        if ones:
            X = with_ones_column(X, self._net.dtype)
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:
                    rs.shuffle(order)                   # cumulative, as scikit-learn shuffles its index array
                self.loss_ = train_batches(self._net, loss_fn, opt, X, T, batch_size=batch_size, sample_weight=w,
                                           alpha=self.alpha, order=order if self.shuffle else None, ones_column=ones)
                self.n_iter_ += 1
                self.t_ += n
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                self._count_no_improvement(val)
                if self.solver == "sgd" and self.learning_rate == "invscaling":
                    opt.lr = self.learning_rate_init / (self.t_ + 1) ** self.power_t
                if self._no_improvement_count > self.n_iter_no_change:
                    if self._stop_or_decay(opt):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                                  "optimization hasn't converged yet.", ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        if self.early_stopping:
            self._net.flat_parameters[...] = self._best_params
        self._optimizer_state = {"kind": (self.solver, opt.state_names), "lr": opt.lr, "state": opt.state_dict()}

    def _batch_size(self, n: int) -> int:
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
        return int(np.clip(self.batch_size, 1, n))

    def _split_validation(self, X, Y, T, w, rs):
        """Hold out ``validation_fraction`` of the rows (drawn from ``rs``); returns the training part and
        ``(X_val, y_val, w_val)`` with ``y_val`` as ``score`` expects it."""
        stratify = self._stratify_on(Y, T)
        train, test = train_test_split(np.arange(X.shape[0]), random_state=rs, test_size=self.validation_fraction,
                                       stratify=stratify)
        if test.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of "
                             "your dataset.")
        val = (X[test], self._score_targets(Y[test]), None if w is None else w[test])
        return X[train], T[train], None if w is None else w[train], val

    def _count_no_improvement(self, val) -> None:
        """One epoch's verdict: improvement means the loss fell, or the validation score rose, by more than tol."""
        if val is not None:
            score = self._validation_score(*val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            improved = not (score < self.best_validation_score_ + self.tol)   # a NaN score resets the count
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params[...] = self._net.flat_parameters
        else:
            improved = not (self.loss_ > self.best_loss_ - self.tol)
            if self.loss_ < self.best_loss_:
                self.best_loss_ = self.loss_
        self._no_improvement_count = 0 if improved else self._no_improvement_count + 1

    def _stop_or_decay(self, opt) -> bool:
        """After too many epochs without improvement: stop, unless sgd's adaptive schedule can divide lr by 5."""
        what = "Validation score" if self.early_stopping else "Training loss"
        msg = f"{what} did not improve more than tol={self.tol:f} for {self.n_iter_no_change} consecutive epochs."
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            stop, tail = True, " Stopping."
        elif opt.lr <= 1e-6:
            stop, tail = True, " Learning rate too small. Stopping."
        else:
            opt.lr /= 5.0
            stop, tail = False, f" Setting learning rate to {opt.lr:f}"
        if self.verbose:
            print(msg + tail)
        return stop

    def _validation_score(self, X, y, w) -> float:
        pred = self._predict(X, check_input=False)
        if np.issubdtype(pred.dtype, np.floating) and not np.isfinite(pred).all():
            return np.nan
        return self._score_function(y, pred, sample_weight=w)

    # -- L-BFGS ---------------------------------------------------------------------------------------------
    def _fit_lbfgs(self, X, T, w) -> None:
        """SciPy's L-BFGS-B on the engine's flat parameter vector, with the exact gradient of the regularised loss."""
        net, loss_fn = self._net, self._loss()

        def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            net.flat_parameters[...] = theta            # (P,) float64 from SciPy, cast to the model's dtype
            loss = loss_and_gradient(net, loss_fn, X, T, sample_weight=w, alpha=self.alpha)
            return loss, net.flat_gradients.astype(np.float64)   # a copy: SciPy keeps it

        verbose = self.verbose is True or self.verbose >= 1
        with _other_blas_on_one_thread():
            result = scipy.optimize.minimize(
                loss_and_grad, net.flat_parameters.astype(np.float64), method="L-BFGS-B", jac=True,
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol,
                         **_get_additional_lbfgs_options_dict("iprint", 1 if verbose else -1)})
        self.n_iter_ = _check_optimize_result("lbfgs", result, self.max_iter)
        self.loss_ = float(result.fun)
        net.flat_parameters[...] = result.x
        self._optimizer_state = None

    def _check_solver(self) -> bool:
        """``partial_fit`` exists only for the stochastic solvers (``hasattr(est, "partial_fit")`` tells)."""
        if self.solver not in STOCHASTIC_SOLVERS:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. {self.solver} is not "
                                 "stochastic.")
        return True

    # -- prediction -----------------------------------------------------------------------------------------
    def _output(self, X, check_input: bool = True) -> np.ndarray:
        """The network's output after the output activation, ``(n_samples, n_outputs_)``."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], dtype=self._net.dtype.type, reset=False)
        if self._net.activation != self.activation:
            self._net.set_activation(self.activation)   # as scikit-learn, the current parameter counts
        z = self._net.forward(X)
        self._net.clear_cache()
        return OUTPUT_LOSSES[self.out_activation_].output(z)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    __doc__ = f"""Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier`` on the NumPy engine.

    Softmax cross-entropy for multiclass targets, sigmoid binary cross-entropy for binary targets (one output
    unit, as scikit-learn) and multilabel indicator targets. Sparse (CSR/CSC) ``X`` is accepted.

    The parameters before ``dtype`` are scikit-learn's, in its order, with its defaults; this replaces the
    earlier ``MLPClassifier(optimizer=..., weight_decay=..., nesterov=..., init=...)`` of this package, whose
    names were not scikit-learn's (use ``solver``, ``alpha``, ``nesterovs_momentum``; the initialisation is
    now always scikit-learn's Glorot-uniform).

    Parameters
    ----------{_PARAMETERS_DOC}
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,), or list of them for multilabel targets
        The labels; predictions are drawn from them.{_ATTRIBUTES_DOC}"""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dtype=None):
        self._store_params(locals())

    _score_function = staticmethod(accuracy_score)

    def _out_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X, y, incremental: bool, reset: bool, dtype):
        """``X`` as floats; ``y`` as the label binarizer's 0/1 matrix (classes learnt here unless continuing)."""
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True, dtype=dtype, reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
            if self._label_binarizer.y_type_ == "multiclass" and y.ndim == 1:
                # the binarizer's 0/1 matrix for the labels it was just fitted on, as one comparison (transform would
                # validate y a second time, which costs more than half a millisecond per fit on digits)
                return X, y[:, None] == self.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same classes as in the previous "
                                     f"call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                                 f"'y' has {classes}.")
        return X, self._label_binarizer.transform(y).astype(bool)   # bool keeps float32 fits float32

    def _stratify_on(self, Y, T):
        """Single-label targets are split stratified by class; multilabel ones are not."""
        if self.n_outputs_ == 1:
            return Y                                    # binary: the (n, 1) 0/1 column, as scikit-learn
        return T if self.out_activation_ == "softmax" else None

    def _score_targets(self, Y):
        return self._label_binarizer.inverse_transform(Y)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit to ``X`` (dense or sparse, ``(n_samples, n_features)``) and labels ``y`` (``(n_samples,)`` or a
        multilabel indicator matrix). Returns self."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``(X, y)``; the first call needs ``classes``, every label that will ever appear."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y if type_of_target(y).startswith("multilabel") else classes)
        return self._fit(X, y, sample_weight, incremental=True)

    def _predict(self, X, check_input: bool = True):
        out = self._output(X, check_input)
        return self._label_binarizer.inverse_transform(out.ravel() if self.n_outputs_ == 1 else out)

    def predict(self, X):
        """Labels, ``(n_samples,)`` (or an indicator matrix for multilabel targets)."""
        check_is_fitted(self)
        return self._predict(X)

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities ``(n_samples, n_classes)``, columns in ``classes_`` order (per label for multilabel)."""
        check_is_fitted(self)
        p = self._output(X)
        if self.n_outputs_ == 1:
            p = p.ravel()
            return np.vstack([1 - p, p]).T
        return p

    def predict_log_proba(self, X) -> np.ndarray:
        """``log(predict_proba(X))``."""
        p = self.predict_proba(X)
        return np.log(p, out=p)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = f"""Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor`` on the NumPy engine.

    Half squared error with an identity output, or (``loss="poisson"``) half Poisson deviance with the log link
    ``exp`` (``y >= 0``). One or several outputs; sparse (CSR/CSC) ``X`` is accepted.

    Parameters
    ----------
    loss : {{"squared_error", "poisson"}}, default="squared_error"
        The loss, as in scikit-learn >= 1.7 (where it is also the first positional parameter).{_PARAMETERS_DOC}
    Attributes
    ----------{_ATTRIBUTES_DOC}"""

    _parameter_constraints: dict = {**_SkMLPRegressor._parameter_constraints,
                                    "dtype": _BaseMLP._parameter_constraints["dtype"]}

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dtype=None):
        self._store_params(locals())

    _score_function = staticmethod(r2_score)

    def _out_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _validate_input(self, X, y, incremental: bool, reset: bool, dtype):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
                             dtype=dtype, reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _stratify_on(self, Y, T):
        return None

    def _score_targets(self, Y):
        return Y

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit to ``X`` (dense or sparse) and targets ``y`` (``(n_samples,)`` or ``(n_samples, n_outputs)``)."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)`` from the current weights (a first call initialises them)."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _predict(self, X, check_input: bool = True):
        out = self._output(X, check_input)
        return out.ravel() if out.shape[1] == 1 else out

    def predict(self, X) -> np.ndarray:
        """Predictions, ``(n_samples,)`` for one output, else ``(n_samples, n_outputs)``."""
        check_is_fitted(self)
        return self._predict(X)

