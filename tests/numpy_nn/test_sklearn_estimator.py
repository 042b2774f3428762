"""``nnlab.numpy_nn.MLPClassifier``/``MLPRegressor``: scikit-learn's estimator checks, plus their own behaviour.

``tests/numpy_nn/test_sklearn_dropin.py`` compares them with scikit-learn's estimators parameter by parameter; this file
holds the estimator checks and what a user of this package relies on (accuracy floors, labels, pickling,
reproducibility, the errors for misuse, no reference kept to the data).
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_moons
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from nnlab.numpy_nn import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# The real defaults (200 epochs, hidden (100,)); the checks set what they need themselves. No expected failures.
# On 1 thread the ~130 checks take ~5 s of CPU.
@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def moons():
    X, y = make_moons(1000, noise=0.2, random_state=0)
    return train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)


@pytest.mark.parametrize("params", [
    dict(solver="lbfgs"),
    dict(solver="adam", learning_rate_init=0.01, batch_size=32),
    dict(solver="sgd", learning_rate_init=0.05, batch_size=32),
], ids=lambda p: p["solver"])
def test_reaches_95_percent_on_two_moons(moons, params):
    X_tr, X_te, y_tr, y_te = moons
    clf = MLPClassifier(hidden_layer_sizes=(20,), random_state=0, **params).fit(X_tr, y_tr)
    assert clf.score(X_te, y_te) >= 0.95
    if params["solver"] != "lbfgs":
        assert len(clf.loss_curve_) == clf.n_iter_ and clf.loss_curve_[-1] < clf.loss_curve_[0]
        assert clf.best_loss_ == min(clf.loss_curve_)


def test_regressor_fits_a_smooth_function():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(300, 2))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2
    reg = MLPRegressor(hidden_layer_sizes=(32,), solver="lbfgs", random_state=0).fit(X[:200], y[:200])
    assert reg.score(X[200:], y[200:]) >= 0.95
    assert reg.predict(X[:5]).shape == (5,)
    two = MLPRegressor(hidden_layer_sizes=(32,), solver="lbfgs", random_state=0).fit(X, np.column_stack([y, -y]))
    assert two.predict(X[:5]).shape == (5, 2) and two.n_outputs_ == 2


def test_any_labels_map_to_classes_and_back():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 2))
    names = np.array(["cat", "dog", "eel"])
    y = names[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1).astype(int)]
    clf = MLPClassifier(hidden_layer_sizes=(20,), solver="lbfgs", random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, names)
    proba = clf.predict_proba(X)
    assert proba.shape == (120, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), names[proba.argmax(1)])
    with np.errstate(divide="ignore"):      # log(0) = -inf where a probability underflowed, as scikit-learn
        np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))
    assert clf.score(X, y) > 0.9
    assert clf.coefs_[-1].shape == (20, 3) and clf.n_features_in_ == 2 and clf.out_activation_ == "softmax"


def test_binary_and_multilabel_targets_use_sigmoid_outputs():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    binary = MLPClassifier(hidden_layer_sizes=(10,), solver="lbfgs", random_state=0).fit(X, X[:, 0] > 0)
    assert binary.out_activation_ == "logistic" and binary.n_outputs_ == 1 and binary.coefs_[-1].shape == (10, 1)
    assert binary.predict_proba(X).shape == (200, 2) and binary.score(X, X[:, 0] > 0) > 0.95
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 0] + X[:, 2] > 0]).astype(int)
    multi = MLPClassifier(hidden_layer_sizes=(10,), solver="lbfgs", random_state=0).fit(X, Y)
    assert multi.out_activation_ == "logistic" and multi.n_outputs_ == 3
    assert multi.predict(X).shape == (200, 3) and multi.predict_proba(X).shape == (200, 3)
    assert (multi.predict(X) == Y).mean() > 0.95


def test_fit_is_reproducible_with_random_state(moons):
    X_tr, _, y_tr, _ = moons
    a = MLPClassifier(max_iter=3, random_state=7).fit(X_tr, y_tr)
    b = clone(a).fit(X_tr, y_tr)
    np.testing.assert_array_equal(a.predict_proba(X_tr), b.predict_proba(X_tr))
    c = MLPClassifier(max_iter=3, random_state=8).fit(X_tr, y_tr)
    assert not np.array_equal(a.predict_proba(X_tr), c.predict_proba(X_tr))


def test_partial_fit_continues_fit_and_survives_pickle(moons):
    """Without shuffling, two epochs of fit and one partial_fit are three epochs of fit (optimizer state carried)."""
    X_tr, _, y_tr, _ = moons
    params = dict(solver="sgd", shuffle=False, random_state=0, hidden_layer_sizes=(20,), learning_rate_init=0.05)
    a = MLPClassifier(max_iter=2, **params).fit(X_tr, y_tr)
    b = pickle.loads(pickle.dumps(a))
    full = MLPClassifier(max_iter=3, **params).fit(X_tr, y_tr)
    for clf in (a, b):
        clf.partial_fit(X_tr, y_tr)
        assert clf.n_iter_ == 1 and clf.t_ == 3 * len(y_tr) and len(clf.loss_curve_) == 3
        np.testing.assert_allclose(clf.predict_proba(X_tr), full.predict_proba(X_tr), rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.loss_curve_, full.loss_curve_, rtol=1e-12)


def test_partial_fit_needs_classes_first_and_rejects_unknown_labels():
    X = np.random.default_rng(0).standard_normal((20, 2))
    y = np.arange(20) % 2
    clf = MLPClassifier()
    with pytest.raises(ValueError, match="classes must be passed on the first call to partial_fit"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:10], np.zeros(10, dtype=int), classes=[0, 1, 2])     # one label present: fine
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    with pytest.raises(ValueError, match=r"`y` has classes not in `self.classes_`"):
        clf.partial_fit(X[:3], np.array([0, 5, 1]))


@pytest.mark.parametrize("dtype", ["float32", np.float32])
def test_float32_dtype(moons, dtype):
    X_tr, X_te, y_tr, y_te = moons
    clf = MLPClassifier(hidden_layer_sizes=(20,), solver="lbfgs", dtype=dtype, random_state=0).fit(X_tr, y_tr)
    assert clf.coefs_[0].dtype == np.float32 and clf.predict_proba(X_te).dtype == np.float32
    assert clf.score(X_te, y_te) >= 0.95


@pytest.mark.parametrize("params,match", [
    (dict(hidden_layer_sizes=(0, 32)), r"hidden_layer_sizes must be > 0, got \[0, 32\]\."),
    (dict(solver="rmsprop"), r"The 'solver' parameter of MLPClassifier must be a str among .*Got 'rmsprop' instead"),
    (dict(learning_rate_init=0), r"The 'learning_rate_init' parameter of MLPClassifier must be a float in the range "
                                 r"\(0.0, inf\)\. Got 0 instead"),
    (dict(batch_size=0), r"The 'batch_size' parameter of MLPClassifier must be"),
    (dict(max_iter=2.5), r"The 'max_iter' parameter of MLPClassifier must be an int in the range \[1, inf\)"),
    (dict(dtype="float16"), r"The 'dtype' parameter of MLPClassifier must be .*Got 'float16' instead"),
])
def test_bad_parameters_raise_at_fit_with_scikit_learns_messages(params, match):
    clf = MLPClassifier(**params)        # scikit-learn's convention: __init__ stores, fit validates
    with pytest.raises(ValueError, match=match):
        clf.fit(np.zeros((4, 2)), [0, 1, 0, 1])


def test_old_parameter_names_are_gone():
    for old in ("optimizer", "weight_decay", "nesterov", "init"):
        with pytest.raises(TypeError, match=old):
            MLPClassifier(**{old: 0})
    with pytest.raises(InvalidParameterError):
        MLPClassifier().set_params(momentum=2.0).fit(np.zeros((4, 2)), [0, 1, 0, 1])


def test_single_class_predicts_it_and_unfitted_use_is_a_clear_error():
    clf = MLPClassifier(max_iter=5).fit(np.random.default_rng(0).standard_normal((6, 2)), ["a"] * 6)
    assert list(clf.predict(np.zeros((2, 2)))) == ["a", "a"]        # as scikit-learn
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(np.zeros((2, 2)))
    with pytest.raises(AttributeError, match="coefs_"):
        MLPRegressor().coefs_


def test_no_reference_to_the_data_is_kept(moons):
    """After fit and after predict, no layer still holds its last input or activations (they could be large)."""
    X_tr, _, y_tr, _ = moons
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2).fit(X_tr, y_tr)
    for _ in range(2):
        assert all(lin._x is None for lin in clf._net.linears)
        assert all(v is None for layer in clf._net.layers[1::2] for name, v in vars(layer).items()
                   if name.startswith("_"))                   # the caches; ReLU's `inplace` setting stays
        clf.predict(X_tr)


def test_convergence_warning_only_when_max_iter_ends_the_fit(moons):
    X_tr, _, y_tr, _ = moons
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(2\) reached"):
        MLPClassifier(max_iter=2).fit(X_tr, y_tr)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = MLPClassifier(max_iter=200, tol=0.1, n_iter_no_change=2, random_state=0).fit(X_tr, y_tr)
    assert clf.n_iter_ < 200
