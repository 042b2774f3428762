"""``nnlab.numpy_nn.MLPClassifier``: scikit-learn's estimator checks, plus its own behaviour."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_moons
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import train_test_split
from sklearn.utils.estimator_checks import parametrize_with_checks

from nnlab.errors import ConfigError
from nnlab.numpy_nn import MLPClassifier


@parametrize_with_checks([MLPClassifier()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def moons():
    X, y = make_moons(1000, noise=0.2, random_state=0)
    return train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)


def test_reaches_95_percent_on_two_moons(moons):
    X_tr, X_te, y_tr, y_te = moons
    clf = MLPClassifier(hidden_layer_sizes=(20,), random_state=0).fit(X_tr, y_tr)
    assert clf.score(X_te, y_te) >= 0.95
    assert clf.n_iter_ == clf.max_iter == len(clf.loss_curve_)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]


def test_sgd_with_momentum_also_learns(moons):
    X_tr, X_te, y_tr, y_te = moons
    clf = MLPClassifier(optimizer="sgd", learning_rate_init=0.05, momentum=0.9, max_iter=50, random_state=0)
    assert clf.fit(X_tr, y_tr).score(X_te, y_te) >= 0.95


def test_any_labels_map_to_classes_and_back():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 2))
    names = np.array(["cat", "dog", "eel"])
    y = names[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1).astype(int)]
    clf = MLPClassifier(max_iter=30, random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, names)
    proba = clf.predict_proba(X)
    assert proba.shape == (120, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), names[proba.argmax(1)])
    assert clf.score(X, y) > 0.9
    assert clf.net_.out_features == 3 and clf.n_features_in_ == 2


def test_fit_is_reproducible_with_random_state(moons):
    X_tr, _, y_tr, _ = moons
    a = MLPClassifier(max_iter=3, random_state=7).fit(X_tr, y_tr)
    b = clone(a).fit(X_tr, y_tr)
    np.testing.assert_array_equal(a.predict_proba(X_tr), b.predict_proba(X_tr))
    c = MLPClassifier(max_iter=3, random_state=8).fit(X_tr, y_tr)
    assert not np.array_equal(a.predict_proba(X_tr), c.predict_proba(X_tr))


def test_partial_fit_continues_fit_and_survives_pickle(moons):
    X_tr, _, y_tr, _ = moons
    a = MLPClassifier(max_iter=2, optimizer="sgd", random_state=0).fit(X_tr, y_tr)
    b = pickle.loads(pickle.dumps(a))
    full = MLPClassifier(max_iter=3, optimizer="sgd", random_state=0).fit(X_tr, y_tr)
    for clf in (a, b):
        clf.partial_fit(X_tr, y_tr)
        assert clf.n_iter_ == 3
        # two epochs of fit + one partial_fit epoch == three epochs of fit (optimizer and RNG state carried)
        np.testing.assert_allclose(clf.predict_proba(X_tr), full.predict_proba(X_tr), rtol=0, atol=1e-12)


def test_partial_fit_needs_classes_first_and_rejects_unknown_labels():
    X = np.random.default_rng(0).standard_normal((20, 2))
    y = np.arange(20) % 2
    clf = MLPClassifier()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:10], np.zeros(10, dtype=int), classes=[0, 1, 2])     # one label present: fine
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    with pytest.raises(ValueError, match=r"labels not seen in classes_ \[0, 1, 2\]: \[5\]"):
        clf.partial_fit(X[:3], np.array([0, 5, 1]))


def test_float32_dtype(moons):
    X_tr, X_te, y_tr, y_te = moons
    clf = MLPClassifier(dtype="float32", max_iter=30, random_state=0).fit(X_tr, y_tr)
    assert clf.net_.dtype == np.float32 and clf.predict_proba(X_te).dtype == np.float32
    assert clf.score(X_te, y_te) >= 0.9


@pytest.mark.parametrize("params,match", [
    (dict(hidden_layer_sizes=(0, 32)), r"hidden_layer_sizes must be > 0, got \(0, 32\)"),
    (dict(optimizer="rmsprop"), r"unknown optimizer 'rmsprop'; valid: sgd, adam"),
    (dict(learning_rate_init=0), r"learning_rate_init must be a finite number > 0, got 0"),
    (dict(batch_size=0), r"batch_size must be a positive integer, got 0"),
    (dict(max_iter=2.5), r"max_iter must be a positive integer, got 2.5"),
    (dict(dtype="float16"), r"dtype must be one of float64, float32, got 'float16'"),
    (dict(optimizer="sgd", momentum=0.0, nesterov=True), r"nesterov=True needs momentum > 0"),
])
def test_bad_parameters_raise_config_error_at_fit(params, match):
    clf = MLPClassifier(**params)        # sklearn convention: __init__ stores, fit validates
    with pytest.raises(ConfigError, match=match):
        clf.fit(np.zeros((4, 2)), [0, 1, 0, 1])


def test_problems_are_collected_into_one_message():
    with pytest.raises(ConfigError) as e:
        MLPClassifier(batch_size=-1, max_iter=0).fit(np.zeros((4, 2)), [0, 1, 0, 1])
    assert "batch_size" in str(e.value) and "max_iter" in str(e.value)


def test_single_class_and_unfitted_use_are_clear_errors():
    with pytest.raises(ValueError, match=r"at least 2 classes in y, got 1 class: \['a'\]"):
        MLPClassifier().fit(np.zeros((4, 2)), ["a"] * 4)
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(np.zeros((2, 2)))
