"""The training loop's fast path (issue 12): buffers reused from step to step, the flat L2 gradient, the flat label
index of the softmax loss, the one-comparison label matrix of ``MLPClassifier``. Each is checked against the
straightforward computation: a plain NumPy training loop written out below (same initial weights, same shuffles,
scikit-learn's update rules), fancy indexing, ``LabelBinarizer.transform``; and no buffer leaks out to a caller."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import LabelBinarizer

from nnlab.numpy_nn import MLP, SGD, MLPClassifier, SoftmaxCrossEntropy, train_batches, train_step


def reference_fit(X, y, hidden, *, solver, epochs, batch_size, alpha, lr, seed, momentum=0.9,
                  betas=(0.9, 0.999), eps=1e-8):
    """scikit-learn's MLPClassifier (ReLU, softmax, shuffle, Nesterov SGD or Adam) in plain NumPy, no buffers.

    Returns the weights, the biases and the loss of every epoch (mean of the batch losses weighted by batch size).
    """
    rs = np.random.RandomState(seed)
    sizes = [X.shape[1], *hidden, int(y.max()) + 1]
    Ws, bs = [], []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):   # Glorot uniform, W then b per layer, as scikit-learn
        a = np.sqrt(6.0 / (fan_in + fan_out))
        Ws.append(rs.uniform(-a, a, (fan_in, fan_out)))
        bs.append(rs.uniform(-a, a, fan_out))
    params = Ws + bs
    first = [np.zeros_like(p) for p in params]           # velocities (sgd) or first moments (adam)
    second = [np.zeros_like(p) for p in params]
    n, t, order, curve = X.shape[0], 0, np.arange(X.shape[0]), []
    for _ in range(epochs):
        order = order[rs.permutation(n)]
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            m = len(idx)
            acts = [X[idx]]
            for i, (W, b) in enumerate(zip(Ws, bs)):
                z = acts[-1] @ W + b
                acts.append(np.maximum(z, 0.0) if i < len(Ws) - 1 else z)
            z = acts[-1] - acts[-1].max(axis=1, keepdims=True)
            p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            onehot = np.eye(sizes[-1])[y[idx]]
            total += m * (-np.log(p[np.arange(m), y[idx]]).mean() + alpha / (2 * m) * sum((W ** 2).sum() for W in Ws))
            delta = (p - onehot) / m
            gW, gb = [None] * len(Ws), [None] * len(Ws)
            for i in reversed(range(len(Ws))):
                gW[i] = acts[i].T @ delta + alpha / m * Ws[i]
                gb[i] = delta.sum(axis=0)
                if i:
                    delta = (delta @ Ws[i].T) * (acts[i] > 0)
            t += 1
            for k, g in enumerate(gW + gb):
                if solver == "sgd":                      # scikit-learn's Nesterov step on velocities
                    first[k] = momentum * first[k] - lr * g
                    params[k] += momentum * first[k] - lr * g
                else:                                    # Adam with epsilon on sqrt(v), as scikit-learn
                    first[k] = betas[0] * first[k] + (1 - betas[0]) * g
                    second[k] = betas[1] * second[k] + (1 - betas[1]) * g * g
                    step = lr * np.sqrt(1 - betas[1] ** t) / (1 - betas[0] ** t)
                    params[k] -= step * first[k] / (np.sqrt(second[k]) + eps)
        curve.append(total / n)
    return Ws, bs, curve


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_fit_matches_a_plain_numpy_reference(solver):
    """Two hidden layers (buffers for each), batches of 32 with a short last one (22 rows), a strong L2 penalty."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 6))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)    # 3 classes, labelled 0..2 like classes_
    kw = dict(hidden=(7, 5), epochs=8, batch_size=32, alpha=0.05, lr=0.05 if solver == "sgd" else 0.01, seed=0)
    Ws, bs, curve = reference_fit(X, y, solver=solver, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=kw["hidden"], solver=solver, alpha=kw["alpha"],
                            batch_size=kw["batch_size"], learning_rate_init=kw["lr"], max_iter=kw["epochs"], tol=0.0,
                            n_iter_no_change=np.inf, random_state=kw["seed"]).fit(X, y)
    for ours, ref in zip(clf.coefs_ + clf.intercepts_, Ws + bs):
        assert ours.dtype == np.float64
        np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(clf.loss_curve_, curve, rtol=1e-6)


def test_train_batches_gathers_the_rows_that_fancy_indexing_gives():
    """The reused gather buffer and the hidden-layer buffers change nothing: same weights and losses, bit for bit,
    as steps on ``X[rows]`` one by one; a negative index means what it means for ``X[rows]``."""
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((45, 4)), rng.integers(0, 3, 45)
    order = rng.permutation(45)
    order[3] -= 45                                       # the same row, written as a negative index
    nets = [MLP(4, (6, 5), 3, seed=2) for _ in range(2)]
    opts = [SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True, buffer="step") for net in nets]
    losses = [SoftmaxCrossEntropy() for _ in range(2)]
    for _ in range(3):
        fast = train_batches(nets[0], losses[0], opts[0], X, y, batch_size=10, alpha=0.01, order=order)
        total = 0.0
        for start in range(0, 45, 10):
            rows = order[start:start + 10]
            total += train_step(nets[1], losses[1], opts[1], X[rows], y[rows], alpha=0.01) * len(rows)
        assert fast == total / 45
        np.testing.assert_array_equal(nets[0].flat_parameters, nets[1].flat_parameters)
    with pytest.raises(IndexError, match="outside"):
        train_batches(nets[0], losses[0], opts[0], X, y, batch_size=10, order=np.arange(46) % 46)


def test_no_buffer_leaks_to_the_caller_and_clear_cache_drops_them():
    """Logits and dL/dx are new arrays, not the reused buffers: a later step does not change them."""
    rng = np.random.default_rng(3)
    net = MLP(4, (6,), 3)
    x1, x2 = rng.standard_normal((8, 4)), rng.standard_normal((8, 4))
    logits = net.forward(x1)
    dx = net.backward(np.ones_like(logits))
    kept_logits, kept_dx = logits.copy(), dx.copy()
    net.backward(np.full_like(net.forward(x2), 2.0))
    np.testing.assert_array_equal(logits, kept_logits)
    np.testing.assert_array_equal(dx, kept_dx)
    assert net._buffers
    net.clear_cache()
    assert not net._buffers and net.layers[1]._mask is None


def test_softmax_cross_entropy_takes_small_label_dtypes():
    """The flat index y * N + i is built in intp: uint8 labels with N * C > 255 give the int64 result."""
    rng = np.random.default_rng(4)
    logits, y = rng.standard_normal((200, 10)), rng.integers(0, 10, 200)
    a, b = SoftmaxCrossEntropy(), SoftmaxCrossEntropy()
    assert a.forward(logits, y) == b.forward(logits, y.astype(np.uint8))
    np.testing.assert_array_equal(a.backward(), b.backward())


@pytest.mark.parametrize("labels", [np.array([3, 1, 2, 1, 3, 7]), np.array(["b", "a", "c", "a", "b", "c"], dtype=object)])
def test_multiclass_label_matrix_is_the_binarizers(labels):
    X = np.arange(12.0).reshape(6, 2)
    _, Y = MLPClassifier()._validate_input(X, labels, incremental=False, reset=True, dtype=np.float64)
    expected = LabelBinarizer().fit(labels).transform(labels).astype(bool)
    assert Y.dtype == bool
    np.testing.assert_array_equal(Y, expected)


@pytest.mark.parametrize("hidden", [(), (7,), (6, 5)])
def test_ones_column_gives_the_same_logits_and_gradients(hidden):
    """``forward(with_ones_column(x), ones_column=True)``: the first layer's bias rides in its product, [dW; db] in one."""
    from nnlab.numpy_nn.mlp import with_ones_column

    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 4))
    y = rng.integers(0, 3, 9)
    grads = []
    net = MLP(4, hidden, 3, seed=1)
    net.flat_parameters[...] = rng.standard_normal(net.num_parameters)   # non-zero biases
    for ones in (False, True):
        loss = SoftmaxCrossEntropy()
        logits = net.forward(with_ones_column(x, net.dtype) if ones else x, ones_column=ones)
        loss.forward(logits, y)
        net.backward(loss.backward(), input_grad=False)
        grads.append((logits.copy(), net.flat_gradients.copy()))
    np.testing.assert_allclose(grads[1][0], grads[0][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads[1][1], grads[0][1], rtol=1e-12, atol=1e-12)
    assert not np.shares_memory(grads[1][0], net.flat_parameters)


def test_ones_column_input_is_checked():
    from nnlab.errors import ConfigError
    from nnlab.numpy_nn import Linear
    from nnlab.numpy_nn.mlp import with_ones_column

    net = MLP(4, (3,), 2)
    with pytest.raises(ConfigError, match=r"ones of shape \(N, 5\), got \(2, 4\)"):
        net.forward(np.zeros((2, 4)), ones_column=True)
    x1 = with_ones_column(np.arange(8.0).reshape(2, 4), np.float32)
    assert x1.dtype == np.float32 and x1[:, -1].tolist() == [1.0, 1.0] and x1[1, :4].tolist() == [4, 5, 6, 7]
    with pytest.raises(ConfigError, match="one buffer"):
        Linear(4, 3).forward_with_ones(np.ones((2, 5)))   # a lone layer: W and b are separate arrays


def test_train_epoch_with_the_ones_column_follows_the_plain_steps():
    """train_epoch (which now trains on [X, 1]) and plain train_step calls on the same shuffled batches agree."""
    from nnlab.numpy_nn import train_epoch

    rng = np.random.default_rng(3)
    X = rng.standard_normal((23, 3))
    y = rng.integers(0, 2, 23)
    nets = [MLP(3, (8,), 2, seed=0) for _ in range(2)]
    opts = [SGD(n.parameters(), lr=0.1, momentum=0.9) for n in nets]
    losses = [SoftmaxCrossEntropy() for _ in nets]
    for epoch in range(3):
        got = train_epoch(nets[0], losses[0], opts[0], X, y, batch_size=5, rng=np.random.default_rng(epoch))
        perm = np.random.default_rng(epoch).permutation(23)
        total = sum(train_step(nets[1], losses[1], opts[1], X[perm][s:s + 5], y[perm][s:s + 5]) * len(perm[s:s + 5])
                    for s in range(0, 23, 5))
        assert got == pytest.approx(total / 23, rel=1e-12)
    np.testing.assert_allclose(nets[0].flat_parameters, nets[1].flat_parameters, rtol=1e-10, atol=1e-12)
