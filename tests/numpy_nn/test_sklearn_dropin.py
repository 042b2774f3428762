"""``nnlab.numpy_nn.MLPClassifier``/``MLPRegressor`` against scikit-learn's, parameter by parameter, on the same data.

The oracle is scikit-learn itself. With the same ``random_state`` both draw the same initial weights, shuffles and
early-stopping split from one random stream, so a fit must follow scikit-learn's *to rounding error*: every
comparison below asserts equal shapes, dtypes, iteration counts and attribute presence, and numbers equal to
``RTOL``. The arithmetic differs only in the order of floating-point operations (e.g. the fused softmax
cross-entropy, a differently ordered Adam update); observed differences are ~1e-15 after 30 epochs, and
``RTOL = 1e-6`` leaves room for other BLAS builds without letting any semantic difference (one more epoch, a
wrong schedule, another shuffle) through: those change the numbers at the 1e-2 level.
"""

from __future__ import annotations

import inspect
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import neural_network as skl
from sklearn.datasets import (load_digits, make_classification, make_friedman1, make_multilabel_classification,
                              make_regression)
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

from nnlab.numpy_nn import MLP, SGD, Adam, MLPClassifier, MLPRegressor
from nnlab.numpy_nn import sklearn_api

# fixed small epoch budgets end most fits with a ConvergenceWarning; fit_pair records warnings where they matter
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RTOL, ATOL = 1e-6, 1e-9          # see the module docstring
OURS = {"clf": MLPClassifier, "reg": MLPRegressor}
THEIRS = {"clf": skl.MLPClassifier, "reg": skl.MLPRegressor}
FITTED = ("classes_", "loss_", "best_loss_", "loss_curve_", "validation_scores_", "best_validation_score_", "t_",
          "coefs_", "intercepts_", "n_features_in_", "feature_names_in_", "n_iter_", "n_layers_", "n_outputs_",
          "out_activation_")

# small data sets, so that the ~60 paired fits below take a few seconds in all
X_C, Y_MULTI = make_classification(150, 6, n_informative=4, n_redundant=0, n_classes=3, random_state=0)
Y_BIN = (Y_MULTI == 1).astype(int)
Y_STR = np.array(["ant", "bee", "cat"])[Y_MULTI]
X_ML, Y_ML = make_multilabel_classification(150, 6, n_classes=3, random_state=0)
X_R, Y_R = make_regression(120, 5, n_informative=4, noise=5.0, random_state=0)
Y_R = Y_R / Y_R.std()
Y_R2 = np.column_stack([Y_R, np.sin(X_R[:, 0])])
Y_COUNTS = np.random.RandomState(0).poisson(np.exp(0.3 * X_R[:, 0] + 0.5))
W_INT = np.random.RandomState(1).randint(0, 4, size=150)          # sample weights, zeros included


def fit_pair(kind, X, y, *, sample_weight=None, **params):
    """(ours, scikit-learn's, [our warnings], [their warnings]): the same parameters, data and seed on both sides.

    ``params`` may hold a callable for ``random_state`` (a factory, so that each side gets its own RandomState).
    """
    out, caught = [], []
    for cls in (OURS[kind], THEIRS[kind]):
        p = {k: (v() if callable(v) else v) for k, v in params.items()}
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            out.append(cls(**p).fit(X, y, sample_weight=sample_weight))
        caught.append([(x.category, str(x.message)) for x in w])
    return out[0], out[1], caught[0], caught[1]


def assert_same_fit(ours, theirs, X, *, rtol=RTOL, atol=ATOL, same_loss=True, same_dtype=True):
    """Same fitted attributes (presence, shape, dtype, value) and the same predictions."""
    for name in FITTED:
        assert hasattr(ours, name) == hasattr(theirs, name), f"{name}: ours {hasattr(ours, name)}"
    for name in ("n_iter_", "t_", "n_layers_", "n_outputs_", "n_features_in_", "out_activation_"):
        if hasattr(theirs, name):
            assert getattr(ours, name) == getattr(theirs, name), name
    if hasattr(theirs, "classes_"):
        np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    for name in ("coefs_", "intercepts_"):
        a, b = getattr(ours, name), getattr(theirs, name)
        assert [x.shape for x in a] == [x.shape for x in b], name
        if same_dtype:
            assert [x.dtype for x in a] == [x.dtype for x in b], name
        for i, (x, y) in enumerate(zip(a, b)):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"{name}[{i}]")
    if same_loss:
        assert ours.loss_ == pytest.approx(theirs.loss_, rel=rtol, abs=atol)
        if hasattr(theirs, "loss_curve_"):
            np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol, atol=atol)
    for name in ("best_loss_", "validation_scores_", "best_validation_score_"):
        if hasattr(theirs, name) and getattr(theirs, name) is None:
            assert getattr(ours, name) is None, name
        elif hasattr(theirs, name) and same_loss:
            np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=rtol, atol=atol, err_msg=name)
    if isinstance(ours, MLPClassifier):
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=rtol, atol=atol)
    else:
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------------------------------------
# The surface: signature, constraints, errors
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["clf", "reg"])
def test_constructor_is_scikit_learns_plus_dtype(kind):
    ours = list(inspect.signature(OURS[kind]).parameters.values())
    theirs = list(inspect.signature(THEIRS[kind]).parameters.values())
    assert [(p.name, p.kind, p.default) for p in ours[:-1]] == [(p.name, p.kind, p.default) for p in theirs]
    assert (ours[-1].name, ours[-1].kind, ours[-1].default) == ("dtype", inspect.Parameter.KEYWORD_ONLY, None)
    assert OURS[kind]().get_params().keys() == THEIRS[kind]().get_params().keys() | {"dtype"}


@pytest.mark.parametrize("kind", ["clf", "reg"])
def test_parameter_constraints_are_scikit_learns_and_all_their_options_are_implemented(kind):
    """The very constraint objects, so the messages are the same; and every option they allow is one we run."""
    from sklearn.utils._param_validation import StrOptions

    from nnlab.numpy_nn import ACTIVATIONS

    ours, theirs = OURS[kind]._parameter_constraints, THEIRS[kind]._parameter_constraints
    assert ours.keys() == theirs.keys() | {"dtype"}
    assert all(ours[name] is constraints for name, constraints in theirs.items())
    implemented = {"activation": set(ACTIVATIONS), "solver": {"lbfgs", "sgd", "adam"},
                   "learning_rate": {"constant", "invscaling", "adaptive"}, "batch_size": {"auto"},
                   "loss": {"squared_error", "poisson"}}
    for name, constraints in theirs.items():
        for c in constraints:
            if isinstance(c, StrOptions):
                assert c.options <= implemented[name], (name, c.options)


BAD_PARAMS = [dict(hidden_layer_sizes=(0, 32)), dict(hidden_layer_sizes=-1), dict(hidden_layer_sizes="big"),
              dict(activation="softmax"), dict(solver="rmsprop"), dict(alpha=-1.0), dict(batch_size=0),
              dict(batch_size="all"), dict(learning_rate="cosine"), dict(learning_rate_init=0), dict(power_t=-0.5),
              dict(max_iter=2.5), dict(max_iter=0), dict(shuffle="yes"), dict(random_state="seed"), dict(tol=-1),
              dict(verbose="loud"), dict(warm_start=None), dict(momentum=1.5), dict(nesterovs_momentum=1),
              dict(early_stopping="no"), dict(validation_fraction=1.0), dict(beta_1=1.0), dict(beta_2=-0.1),
              dict(epsilon=0.0), dict(n_iter_no_change=0), dict(n_iter_no_change=2.5), dict(max_fun=0)]


def _error(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the point is to compare whatever is raised
        return type(e), str(e)
    return None, "no error"


@pytest.mark.parametrize("kind", ["clf", "reg"])
@pytest.mark.parametrize("params", BAD_PARAMS, ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
def test_bad_parameters_raise_scikit_learns_error(kind, params):
    X, y = (X_C[:20], Y_MULTI[:20]) if kind == "clf" else (X_R[:20], Y_R[:20])
    ours = _error(lambda: OURS[kind](**params).fit(X, y))
    theirs = _error(lambda: THEIRS[kind](**params).fit(X, y))
    assert ours == theirs
    assert ours[0] is not None


def test_regressor_loss_and_our_dtype_are_validated_the_same_way():
    assert _error(lambda: MLPRegressor(loss="absolute_error").fit(X_R, Y_R)) == \
        _error(lambda: skl.MLPRegressor(loss="absolute_error").fit(X_R, Y_R))
    kind, msg = _error(lambda: MLPClassifier(dtype="float16").fit(X_C, Y_MULTI))
    assert issubclass(kind, ValueError) and "The 'dtype' parameter of MLPClassifier must be" in msg
    assert "'float16'" in msg


def _data_errors():
    X, y = X_C[:30], Y_MULTI[:30]
    nan = X.copy()
    nan[0, 0] = np.nan
    return {
        "nan-in-X": lambda c: c().fit(nan, y),
        "1d-X": lambda c: c().fit(X[:, 0], y),
        "empty-X": lambda c: c().fit(X[:0], y[:0]),
        "complex-X": lambda c: c().fit(X + 1j, y),
        "inconsistent-length": lambda c: c().fit(X, y[:-1]),
        "continuous-y": lambda c: c().fit(X, np.linspace(0, 1, 30)),
        "predict-before-fit": lambda c: c().predict(X),
        "predict-wrong-width": lambda c: c(max_iter=1).fit(X, y).predict(X[:, :4]),
        "bad-sample-weight-shape": lambda c: c().fit(X, y, sample_weight=np.ones(3)),
        "all-zero-sample-weight": lambda c: c().fit(X, y, sample_weight=np.zeros(30)),
        "partial-fit-without-classes": lambda c: c().partial_fit(X, y),
        "partial-fit-unknown-class": lambda c: c().partial_fit(X, y, classes=[0, 1, 2]).partial_fit(X[:3], [0, 5, 1]),
        "partial-fit-other-classes": lambda c: c().partial_fit(X, y, classes=[0, 1, 2]).partial_fit(X, y,
                                                                                                 classes=[0, 1]),
        "partial-fit-early-stopping": lambda c: c(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2]),
        "partial-fit-lbfgs": lambda c: c(solver="lbfgs").partial_fit(X, y, classes=[0, 1, 2]),
        "warm-start-other-classes": lambda c: c(max_iter=1, warm_start=True).fit(X, y).fit(X, (y > 0).astype(int)),
        "validation-set-too-small": lambda c: c(early_stopping=True).fit(X[:10], y[:10] > 0),
        "no-validation-fraction": lambda c: c(early_stopping=True, validation_fraction=0.0).fit(X, y),
        "hidden-sizes-not-positive": lambda c: c(hidden_layer_sizes=[3, 0]).fit(X, y),
    }


@pytest.mark.parametrize("case", sorted(_data_errors()))
def test_bad_data_and_misuse_raise_scikit_learns_error(case):
    fn = _data_errors()[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, theirs = _error(lambda: fn(MLPClassifier)), _error(lambda: fn(skl.MLPClassifier))
    assert ours[0] is not None and ours == theirs


# ---------------------------------------------------------------------------------------------------------------
# Same trajectories: every parameter against scikit-learn
# ---------------------------------------------------------------------------------------------------------------
BASE = dict(hidden_layer_sizes=(8,), max_iter=25, random_state=0)
CLASSIFIER_CASES = {
    "adam": {},
    "adam-betas-epsilon-lr": dict(beta_1=0.8, beta_2=0.99, epsilon=1e-6, learning_rate_init=0.01),
    "sgd-nesterov": dict(solver="sgd", learning_rate_init=0.05),
    "sgd-momentum-no-nesterov": dict(solver="sgd", momentum=0.5, nesterovs_momentum=False, learning_rate_init=0.05),
    "sgd-no-momentum": dict(solver="sgd", momentum=0.0, learning_rate_init=0.1),
    "sgd-invscaling": dict(solver="sgd", learning_rate="invscaling", power_t=0.25, learning_rate_init=0.5),
    "sgd-adaptive": dict(solver="sgd", learning_rate="adaptive", tol=0.05, n_iter_no_change=1, max_iter=40,
                         learning_rate_init=0.05),
    "activation-identity": dict(activation="identity"),
    "activation-logistic": dict(activation="logistic", solver="sgd", learning_rate_init=0.1),
    "activation-tanh": dict(activation="tanh"),
    "alpha-large": dict(alpha=0.5),
    "alpha-zero": dict(alpha=0.0),
    "batch-size-17": dict(batch_size=17),
    "no-shuffle": dict(shuffle=False, batch_size=40),
    "stops-by-tol": dict(tol=0.02, n_iter_no_change=2, learning_rate_init=0.01, max_iter=100),
    "n-iter-no-change-inf": dict(tol=10.0, n_iter_no_change=np.inf),
    "linear-model": dict(hidden_layer_sizes=()),
    "hidden-int": dict(hidden_layer_sizes=7),
    "two-hidden-layers": dict(hidden_layer_sizes=(8, 5), learning_rate_init=0.01),
    "random-state-instance": dict(random_state=lambda: np.random.RandomState(3)),
    "lbfgs": dict(solver="lbfgs", max_iter=15),
    "lbfgs-max-fun": dict(solver="lbfgs", max_fun=7),
    "lbfgs-tol": dict(solver="lbfgs", max_iter=500, tol=1e-2),
}


def _rtol(params) -> float:
    """L-BFGS amplifies rounding differences more than SGD/Adam (its line search and curvature pairs feed on
    differences of gradients): ~1e-5 relative after 15 iterations, so its fits are compared at 1e-4."""
    return 1e-4 if params.get("solver") == "lbfgs" else RTOL


@pytest.mark.parametrize("case", sorted(CLASSIFIER_CASES))
def test_multiclass_fit_follows_scikit_learn(case):
    params = {**BASE, **CLASSIFIER_CASES[case]}
    ours, theirs, w_ours, w_theirs = fit_pair("clf", X_C, Y_MULTI, **params)
    assert_same_fit(ours, theirs, X_C, rtol=_rtol(params))
    assert w_ours == w_theirs                                   # ConvergenceWarning (or none) alike
    assert ours.out_activation_ == "softmax" and ours.coefs_[-1].shape[1] == 3


def test_the_stopping_cases_really_stop_early_and_the_others_warn():
    stopped, *_ = fit_pair("clf", X_C, Y_MULTI, **{**BASE, **CLASSIFIER_CASES["stops-by-tol"]})
    assert stopped.n_iter_ < 100 and len(stopped.loss_curve_) == stopped.n_iter_
    full, _, w, _ = fit_pair("clf", X_C, Y_MULTI, **{**BASE, **CLASSIFIER_CASES["n-iter-no-change-inf"]})
    assert full.n_iter_ == 25
    assert w == [(ConvergenceWarning, "Stochastic Optimizer: Maximum iterations (25) reached and the optimization "
                                      "hasn't converged yet.")]


OTHER_TARGETS = {
    "binary-adam": ("clf", X_C, Y_BIN, {}),
    "binary-lbfgs": ("clf", X_C, Y_BIN, dict(solver="lbfgs", max_iter=15)),
    "binary-early-stopping": ("clf", X_C, Y_BIN, dict(early_stopping=True, validation_fraction=0.2,
                                                      n_iter_no_change=3, tol=0.01, max_iter=80,
                                                      learning_rate_init=0.01)),
    "string-labels": ("clf", X_C, Y_STR, dict(solver="sgd", learning_rate_init=0.05)),
    "multilabel-adam": ("clf", X_ML, Y_ML, dict(learning_rate_init=0.01)),
    "multilabel-lbfgs": ("clf", X_ML, Y_ML, dict(solver="lbfgs", max_iter=15)),
    "multilabel-early-stopping": ("clf", X_ML, Y_ML, dict(early_stopping=True, learning_rate_init=0.01)),
    "regression-adam": ("reg", X_R, Y_R, dict(learning_rate_init=0.01)),
    "regression-sgd": ("reg", X_R, Y_R, dict(solver="sgd", learning_rate_init=0.01)),
    "regression-lbfgs": ("reg", X_R, Y_R, dict(solver="lbfgs", max_iter=15)),
    "regression-early-stopping": ("reg", X_R, Y_R, dict(early_stopping=True, validation_fraction=0.2,
                                                        learning_rate_init=0.01, max_iter=60)),
    "regression-poisson": ("reg", X_R, Y_COUNTS, dict(loss="poisson", learning_rate_init=0.01)),
    "regression-poisson-lbfgs": ("reg", X_R, Y_COUNTS, dict(loss="poisson", solver="lbfgs", max_iter=15)),
}


@pytest.mark.parametrize("case", sorted(OTHER_TARGETS))
def test_binary_multilabel_and_regression_fits_follow_scikit_learn(case):
    kind, X, y, params = OTHER_TARGETS[case]
    ours, theirs, w_ours, w_theirs = fit_pair(kind, X, y, **{**BASE, **params})
    assert_same_fit(ours, theirs, X, rtol=_rtol(params))
    assert w_ours == w_theirs
    expected = {"binary": "logistic", "string": "softmax", "multilabel": "logistic", "regression": "identity"}
    assert ours.out_activation_ == ("exp" if "poisson" in case else expected[case.split("-")[0]])
    if case == "binary-early-stopping":
        assert ours.n_iter_ < 80 and len(ours.validation_scores_) == ours.n_iter_ and ours.best_loss_ is None


def test_multi_output_regression_follows_scikit_learns_steps():
    """scikit-learn follows the gradient of the half squared error summed over outputs but reports its mean over
    outputs; we report the summed value (the one whose gradient is followed). Same steps, so the same weights;
    ``tol=0`` keeps the stopping rule out of it. With ``alpha=0`` the reported losses differ by the factor 2
    (two outputs) exactly."""
    for alpha in (0.0001, 0.0):
        ours, theirs, *_ = fit_pair("reg", X_R, Y_R2, **{**BASE, "tol": 0.0, "n_iter_no_change": np.inf,
                                                          "alpha": alpha})
        assert_same_fit(ours, theirs, X_R, same_loss=False)
    np.testing.assert_allclose(ours.loss_curve_, 2 * np.asarray(theirs.loss_curve_), rtol=RTOL)


@pytest.mark.parametrize("kind,solver", [("clf", "adam"), ("clf", "lbfgs"), ("reg", "sgd"), ("reg", "lbfgs")])
def test_sample_weight_follows_scikit_learn(kind, solver):
    X, y = (X_C, Y_MULTI) if kind == "clf" else (X_R, Y_R)
    w = W_INT[: X.shape[0]]
    lr = {"learning_rate_init": 0.01} if solver != "lbfgs" else {}
    ours, theirs, *_ = fit_pair(kind, X, y, sample_weight=w, **{**BASE, "solver": solver, **lr})
    assert_same_fit(ours, theirs, X, rtol=_rtol({"solver": solver}))


@pytest.mark.parametrize("kind,solver", [("clf", "adam"), ("clf", "lbfgs"), ("reg", "sgd")])
def test_sparse_input_follows_scikit_learn_and_our_dense_fit(kind, solver):
    X, y = (X_C, Y_MULTI) if kind == "clf" else (X_R, Y_R)
    X = np.where(np.abs(X) < 0.5, 0.0, X)                       # ~40% zeros
    params = {**BASE, "solver": solver, **({"learning_rate_init": 0.01} if solver == "sgd" else {})}
    ours, theirs, *_ = fit_pair(kind, sp.csr_matrix(X), y, **params)
    assert_same_fit(ours, theirs, X, rtol=_rtol(params))
    dense, *_ = fit_pair(kind, X, y, **params)
    for a, b in zip(ours.coefs_, dense.coefs_):
        np.testing.assert_allclose(a, b, rtol=_rtol(params), atol=ATOL)


@pytest.mark.parametrize("kind,solver", [("clf", "adam"), ("clf", "lbfgs"), ("reg", "sgd")])
def test_float32_input_stays_float32_and_follows_scikit_learn(kind, solver):
    """float32 rounding (1e-7 per operation) accumulates over the epochs: compared at 1e-3."""
    X, y = (X_C, Y_MULTI) if kind == "clf" else (X_R, Y_R)
    X32 = X.astype(np.float32)
    params = {**BASE, "solver": solver, **({"learning_rate_init": 0.01} if solver == "sgd" else {})}
    ours, theirs, *_ = fit_pair(kind, X32, y, **params)
    assert all(c.dtype == np.float32 for c in ours.coefs_ + ours.intercepts_)
    # scikit-learn's L-BFGS hands back float64 weights; ours stay float32
    assert_same_fit(ours, theirs, X32, rtol=1e-3, atol=1e-4, same_dtype=solver != "lbfgs")
    out = ours.predict_proba(X32) if kind == "clf" else ours.predict(X32)
    assert out.dtype == np.float32
    assert MLPClassifier(max_iter=1, dtype="float32").fit(X_C, Y_MULTI).coefs_[0].dtype == np.float32
    assert MLPClassifier(max_iter=1, dtype=np.float64).fit(X_C.astype(np.float32), Y_MULTI).coefs_[0].dtype == \
        np.float64
    assert MLPClassifier(max_iter=1).fit(X_C.astype(int), Y_MULTI).coefs_[0].dtype == np.float64


# ---------------------------------------------------------------------------------------------------------------
# Incremental use: warm start, partial_fit
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_warm_start_continues_like_scikit_learn(solver):
    pair = []
    for cls in (MLPClassifier, skl.MLPClassifier):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est = cls(**{**BASE, "solver": solver, "max_iter": 5}).fit(X_C, Y_MULTI)
            first = [c.copy() for c in est.coefs_]
            est.set_params(warm_start=True, max_iter=7).fit(X_C, Y_MULTI)
        pair.append(est)
    ours, theirs = pair
    assert_same_fit(ours, theirs, X_C, rtol=_rtol({"solver": solver}))
    assert not np.allclose(first[0], ours.coefs_[0])
    if solver != "lbfgs":
        assert ours.n_iter_ == 7 and len(ours.loss_curve_) == 12 and ours.t_ == 12 * 150   # the curve goes on


def test_warm_start_with_another_activation_uses_it_like_scikit_learn():
    pair = []
    for cls in (MLPClassifier, skl.MLPClassifier):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est = cls(**{**BASE, "max_iter": 5}).fit(X_C, Y_MULTI)
            pair.append(est.set_params(warm_start=True, activation="tanh").fit(X_C, Y_MULTI))
    assert_same_fit(*pair, X_C)


def test_without_warm_start_a_second_fit_starts_again():
    est = MLPClassifier(**BASE).fit(X_C, Y_MULTI)
    est.fit(X_C, Y_MULTI)
    fresh = MLPClassifier(**BASE).fit(X_C, Y_MULTI)
    np.testing.assert_array_equal(est.coefs_[0], fresh.coefs_[0])
    assert len(est.loss_curve_) == est.n_iter_ == 25


@pytest.mark.parametrize("kind,solver", [("clf", "sgd"), ("clf", "adam"), ("reg", "adam")])
def test_partial_fit_calls_follow_scikit_learn(kind, solver):
    X, y = (X_C, Y_MULTI) if kind == "clf" else (X_R, Y_R)
    extra = {"classes": np.unique(y)} if kind == "clf" else {}
    pair = []
    for cls in (OURS[kind], THEIRS[kind]):
        est = cls(**{**BASE, "solver": solver, "learning_rate": "invscaling" if solver == "sgd" else "constant"})
        est.partial_fit(X[:60], y[:60], **extra)
        est.partial_fit(X[60:], y[60:])
        est.partial_fit(X, y)
        pair.append(est)
    assert_same_fit(*pair, X)
    assert pair[0].n_iter_ == 1 and pair[0].t_ == 2 * len(y)


@pytest.mark.parametrize("kind", ["clf", "reg"])
def test_one_partial_fit_is_one_epoch_of_fit(kind):
    X, y = (X_C, Y_MULTI) if kind == "clf" else (X_R, Y_R)
    extra = {"classes": np.unique(y)} if kind == "clf" else {}
    inc = OURS[kind](**BASE).partial_fit(X, y, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = OURS[kind](**{**BASE, "max_iter": 1}).fit(X, y)
    for a, b in zip(inc.coefs_ + inc.intercepts_, one.coefs_ + one.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert inc.loss_curve_ == one.loss_curve_ and inc.n_iter_ == one.n_iter_ == 1


def test_partial_fit_after_fit_continues_the_optimizer_like_scikit_learn():
    pair = []
    for cls in (MLPClassifier, skl.MLPClassifier):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est = cls(**{**BASE, "solver": "sgd", "learning_rate": "adaptive", "tol": 0.05, "n_iter_no_change": 1,
                         "learning_rate_init": 0.05, "max_iter": 6}).fit(X_C, Y_MULTI)
        pair.append(est.partial_fit(X_C, Y_MULTI).partial_fit(X_C, Y_MULTI))
    assert_same_fit(*pair, X_C)


# ---------------------------------------------------------------------------------------------------------------
# Semantics spelled out
# ---------------------------------------------------------------------------------------------------------------
def test_verbose_output_is_scikit_learns_and_adaptive_divides_by_five(capsys):
    params = {**BASE, "solver": "sgd", "learning_rate": "adaptive", "tol": 10.0, "n_iter_no_change": 1,
              "learning_rate_init": 0.01, "max_iter": 100, "verbose": True}
    out = []
    for cls in (MLPClassifier, skl.MLPClassifier):
        cls(**params).fit(X_C, Y_MULTI)
        out.append(capsys.readouterr().out)
    assert out[0] == out[1]
    rates = [float(r) for r in re.findall(r"Setting learning rate to ([0-9.]+)", out[0])]
    assert rates == pytest.approx([0.01 / 5 ** k for k in range(1, len(rates) + 1)], abs=5e-7)   # printed with %f
    # 0.01 / 5**6 = 6.4e-7 <= 1e-6, so the trigger after the sixth division stops training
    assert len(rates) == 6 and out[0].rstrip().endswith("Learning rate too small. Stopping.")


def test_verbose_early_stopping_output_is_scikit_learns(capsys):
    params = {**BASE, "early_stopping": True, "verbose": 1, "n_iter_no_change": 2, "tol": 0.01, "max_iter": 60,
              "learning_rate_init": 0.01}
    out = []
    for cls in (MLPClassifier, skl.MLPClassifier):
        cls(**params).fit(X_C, Y_BIN)
        out.append(capsys.readouterr().out)
    assert out[0] == out[1] and "Validation score did not improve more than tol=0.010000" in out[0]


def test_attribute_semantics():
    plain = MLPClassifier(**BASE).fit(X_C, Y_MULTI)
    assert len(plain.loss_curve_) == plain.n_iter_ and plain.validation_scores_ is None
    assert plain.best_validation_score_ is None and plain.best_loss_ == min(plain.loss_curve_)
    assert plain.n_layers_ == 3 and plain.n_outputs_ == 3 and plain.t_ == plain.n_iter_ * 150
    early = MLPClassifier(**{**BASE, "early_stopping": True}).fit(X_C, Y_BIN)
    assert early.best_loss_ is None and len(early.validation_scores_) == early.n_iter_
    assert early.best_validation_score_ == max(early.validation_scores_)
    lbfgs = MLPRegressor(**{**BASE, "solver": "lbfgs"}).fit(X_R, Y_R)
    assert not hasattr(lbfgs, "loss_curve_") and not hasattr(lbfgs, "best_loss_") and lbfgs.t_ == 0
    assert not hasattr(lbfgs, "partial_fit") and not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(plain, "feature_names_in_")              # set by validate_data for named columns only


def test_early_stopping_restores_the_best_weights(monkeypatch):
    held_out = {}
    real = sklearn_api.train_test_split

    def spy(*args, **kw):
        train, test = real(*args, **kw)
        held_out["rows"] = test
        return train, test

    monkeypatch.setattr(sklearn_api, "train_test_split", spy)
    est = MLPClassifier(**{**BASE, "early_stopping": True, "validation_fraction": 0.3, "n_iter_no_change": 8,
                           "tol": 0.0, "max_iter": 200, "learning_rate_init": 0.05}).fit(X_C, Y_MULTI)
    assert est.validation_scores_[-1] < est.best_validation_score_          # the last epoch was not the best...
    rows = held_out["rows"]
    assert est.score(X_C[rows], Y_MULTI[rows]) == est.best_validation_score_   # ...and its weights are not kept


def test_multiclass_early_stopping_split_is_stratified(monkeypatch):
    """scikit-learn documents a stratified split; its 1.9 code stratifies binary targets only. Ours stratifies
    every single-label target, by class."""
    seen = {}
    real = sklearn_api.train_test_split

    def spy(*args, stratify=None, **kw):
        seen["stratify"] = stratify
        return real(*args, stratify=stratify, **kw)

    monkeypatch.setattr(sklearn_api, "train_test_split", spy)
    MLPClassifier(**{**BASE, "early_stopping": True, "max_iter": 2}).fit(X_C, Y_STR)
    np.testing.assert_array_equal(seen["stratify"], Y_MULTI)     # class indices, in classes_ order
    MLPClassifier(**{**BASE, "early_stopping": True, "max_iter": 2}).fit(X_ML, Y_ML)
    assert seen["stratify"] is None                              # multilabel: not stratified


def test_batch_size_larger_than_the_data_warns_and_is_clipped_like_scikit_learn():
    ours, theirs, w_ours, w_theirs = fit_pair("clf", X_C, Y_MULTI, **{**BASE, "batch_size": 1000, "max_iter": 3})
    assert_same_fit(ours, theirs, X_C)
    assert w_ours == w_theirs and (UserWarning, "Got `batch_size` less than 1 or larger than sample size. It is "
                                                "going to be clipped") in w_ours


def test_coefs_are_live_views_and_assignment_copies_in():
    est = MLPClassifier(**BASE).fit(X_C, Y_MULTI)
    before = est.predict_proba(X_C)
    est.coefs_[0][...] = 0.0                                     # in place: the model changes
    assert not np.allclose(est.predict_proba(X_C), before)
    est.coefs_ = [np.ones_like(c) for c in est.coefs_]           # assignment copies into the network
    assert all(np.all(c == 1.0) for c in est.coefs_)
    with pytest.raises(ValueError, match=r"coefs_ must have the shapes \[\(6, 8\), \(8, 3\)\], got \[\(6, 8\)\]"):
        est.coefs_ = [np.ones((6, 8))]


# ---------------------------------------------------------------------------------------------------------------
# The update rules are scikit-learn's
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,kw", [("sgd", dict(momentum=0.9, nesterov=True)), ("sgd", dict(momentum=0.7)),
                                     ("sgd", dict(momentum=1.0)), ("adam", dict(betas=(0.8, 0.99), eps=1e-3)),
                                     ("sgd-loose", dict(momentum=0.7)),
                                     ("adam-loose", dict(betas=(0.8, 0.99), eps=1e-3))])
def test_update_rules_match_scikit_learns_optimizers_through_a_schedule(kind, kw):
    """SGD(buffer="step") and Adam(eps_on="v") against sklearn's SGDOptimizer/AdamOptimizer; the step size
    changes midway (as "adaptive"/"invscaling" do), which is where SGD's two buffer forms differ. "-loose": on
    separate arrays (one update per array) instead of the MLP's flat vectors (one update in all)."""
    rng = np.random.default_rng(0)
    ours_params = MLP(3, (4,), 2, seed=0).parameters()
    if kind.endswith("loose"):
        ours_params = [(p.copy(), g.copy()) for p, g in ours_params]
    theirs_params = [p.copy() for p, _ in ours_params]
    if kind.startswith("sgd"):
        ours = SGD(ours_params, lr=0.1, buffer="step", **kw)
        theirs = SGDOptimizer(theirs_params, 0.1, momentum=kw["momentum"], nesterov=kw.get("nesterov", False))
    else:
        ours = Adam(ours_params, lr=0.01, eps_on="v", **kw)
        theirs = AdamOptimizer(theirs_params, 0.01, beta_1=kw["betas"][0], beta_2=kw["betas"][1], epsilon=kw["eps"])
    assert len(ours._groups) == (len(ours_params) if kind.endswith("loose") else 1)
    for step in range(8):
        if step == 4:
            ours.lr /= 5
            theirs.learning_rate_init /= 5                    # Adam recomputes its rate from the initial one
            theirs.learning_rate /= 5
        grads = [rng.standard_normal(p.shape) for p in theirs_params]
        for (_, g), gt in zip(ours_params, grads):
            g[...] = gt
        ours.step()
        theirs.update_params(theirs_params, grads)
    for (p, _), pt in zip(ours_params, theirs_params):
        np.testing.assert_allclose(p, pt, rtol=1e-12, atol=1e-14)


def test_lbfgs_runs_every_blas_but_numpys_on_one_thread_and_restores_them(monkeypatch):
    """SciPy's L-BFGS-B calls SciPy's OpenBLAS between NumPy's products; two OpenBLAS pools spinning for the same
    cores made a digits fit 4.6x slower at the default thread counts. During the optimisation every other BLAS runs
    one thread, NumPy's keeps its own; afterwards every library is back where it was."""
    from threadpoolctl import threadpool_info

    import scipy.linalg  # noqa: F401  (loads SciPy's BLAS, as the optimizer does)

    def blas_threads() -> dict[str, int]:
        return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    before = blas_threads()
    numpy_own, others = sklearn_api._numpy_blas_and_others(list(before))
    if not numpy_own or not others or all(before[f] == 1 for f in others):
        pytest.skip("needs NumPy's own BLAS beside another one running more than one thread")
    seen = []
    minimize = sklearn_api.scipy.optimize.minimize

    def spy(*args, **kwargs):
        seen.append(blas_threads())
        return minimize(*args, **kwargs)

    monkeypatch.setattr(sklearn_api.scipy.optimize, "minimize", spy)
    X, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier(solver="lbfgs", max_iter=3, random_state=0).fit(X[:200], y[:200])
    assert len(seen) == 1
    assert {f: seen[0][f] for f in others} == {f: 1 for f in others}
    assert {f: seen[0][f] for f in numpy_own} == {f: before[f] for f in numpy_own}
    assert blas_threads() == before


def _scipy_linalg_imports(text: str) -> list[str]:
    """Every module named ``scipy.linalg`` or below it that the source imports, at module level or in a function."""
    import ast

    names = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and not node.level:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return [n for n in names if n == "scipy.linalg" or n.startswith("scipy.linalg.")]


def test_the_engine_calls_no_scipy_blas():
    """SciPy ships its own OpenBLAS, beside NumPy's: a SciPy BLAS call in a training step sets the two libraries'
    thread pools against each other for the same cores (with both at their default thread count, a SciPy ``daxpy``
    per step made a ``partial_fit`` epoch on 50,000 x 100 rows ~40x slower). So no numpy_nn module imports
    ``scipy.linalg`` (its BLAS/LAPACK wrappers). L-BFGS runs in ``scipy.optimize``, as scikit-learn's does."""
    import nnlab.numpy_nn

    snippet = "def f():\n    from scipy.linalg.blas import get_blas_funcs\nimport scipy.linalg\n"
    assert sorted(_scipy_linalg_imports(snippet)) == ["scipy.linalg", "scipy.linalg.blas"]   # the checker sees both
    bad = {path.name: hits for path in sorted(Path(nnlab.numpy_nn.__file__).parent.glob("*.py"))
           if (hits := _scipy_linalg_imports(path.read_text(encoding="utf-8")))}
    assert not bad, bad


# ---------------------------------------------------------------------------------------------------------------
# Accuracy and R^2 with the default parameters, on real data
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_digits_accuracy_matches_scikit_learn_with_defaults(solver):
    """Default parameters (200 epochs or iterations at most, tol 1e-4). Same trajectory up to rounding, which
    200 epochs can amplify into a few flipped near-tie predictions: the accuracies must agree within 1% (7 of
    the 697 test digits), and both reach a floor."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    ours, theirs, *_ = fit_pair("clf", X[:1100], y[:1100], solver=solver, random_state=0)
    acc_ours, acc_theirs = ours.score(X[1100:], y[1100:]), theirs.score(X[1100:], y[1100:])
    assert abs(acc_ours - acc_theirs) <= 0.01, (acc_ours, acc_theirs)
    assert acc_ours >= (0.85 if solver == "sgd" else 0.9)
    assert abs(ours.n_iter_ - theirs.n_iter_) <= 2


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_friedman_r2_matches_scikit_learn_with_defaults(solver):
    """Default parameters on Friedman #1 (400 training rows, target standardised); R^2 must agree within 0.01
    (rounding only, as above) and reach a floor."""
    X, y = make_friedman1(500, noise=1.0, random_state=0)
    y = (y - y.mean()) / y.std()
    ours, theirs, *_ = fit_pair("reg", X[:400], y[:400], solver=solver, random_state=0)
    r2_ours, r2_theirs = ours.score(X[400:], y[400:]), theirs.score(X[400:], y[400:])
    assert abs(r2_ours - r2_theirs) <= 0.01, (r2_ours, r2_theirs)
    assert r2_ours >= {"adam": 0.7, "sgd": 0.4, "lbfgs": 0.85}[solver]
