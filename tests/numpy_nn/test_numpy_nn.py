"""The from-scratch NumPy engine: gradients against central differences and torch.autograd (float64),
hand-worked optimizer steps, optimizers against torch.optim, state round trips, float32, validation,
the no-torch import rule and an accuracy floor on two moons."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from nnlab.errors import CheckpointError, ConfigError
from nnlab.numpy_nn import (MLP, SGD, Adam, Identity, Linear, Logistic, PoissonDeviance, ReLU,
                            SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy, SquaredError, Tanh, log_softmax,
                            loss_and_gradient, sigmoid, softmax, train_epoch)

RTOL_FD = 1e-6   # central differences with h = 1e-6 in float64 are good to ~1e-8 relative; leave margin


def numerical_grad(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences (f(x + h e_i) - f(x - h e_i)) / 2h of the scalar f() w.r.t. each entry of x (in place)."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        fp = f()
        x[i] = old - h
        fm = f()
        x[i] = old
        grad[i] = (fp - fm) / (2 * h)
    return grad


def away_from_zero(a: np.ndarray, margin: float = 1e-2) -> np.ndarray:
    """Move entries off ReLU's kink so that central differences are valid there."""
    return np.where(np.abs(a) < margin, np.sign(a) * margin + (a == 0) * margin, a)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ---------------------------------------------------------------------------------------------------------------
# Layers and loss: gradient checks
# ---------------------------------------------------------------------------------------------------------------
def test_linear_gradients_match_finite_differences_and_torch(rng):
    layer = Linear(4, 3, rng=0)
    layer.b[...] = rng.standard_normal(3)  # nonzero bias so db is not trivial
    x = rng.standard_normal((5, 4))                      # (N, D_in)
    G = rng.standard_normal((5, 3))                      # upstream dL/dout; L = sum(out * G)
    out = layer.forward(x)
    np.testing.assert_allclose(out, x @ layer.W + layer.b, rtol=0, atol=1e-15)
    dx = layer.backward(G)

    loss = lambda: float(np.sum(layer.forward(x) * G))   # noqa: E731
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=RTOL_FD, atol=1e-8)
    dW, db = layer.dW.copy(), layer.db.copy()
    np.testing.assert_allclose(dW, numerical_grad(loss, layer.W), rtol=RTOL_FD, atol=1e-8)
    np.testing.assert_allclose(db, numerical_grad(loss, layer.b), rtol=RTOL_FD, atol=1e-8)

    xt = torch.tensor(x, requires_grad=True)
    Wt = torch.tensor(layer.W, requires_grad=True)
    bt = torch.tensor(layer.b, requires_grad=True)
    (torch.nn.functional.linear(xt, Wt.T, bt) * torch.from_numpy(G)).sum().backward()
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dW, Wt.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(db, bt.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_linear_backward_overwrites_gradients_and_can_skip_input_grad(rng):
    layer = Linear(3, 2, rng=1)
    x = rng.standard_normal((4, 3))
    G = rng.standard_normal((4, 2))
    layer.forward(x)
    layer.backward(G)
    first = layer.dW.copy()
    layer.forward(x)
    assert layer.backward(G, input_grad=False) is None
    np.testing.assert_array_equal(layer.dW, first)  # not accumulated: the same batch gives the same gradient


def test_relu_gradient_matches_finite_differences_and_torch(rng):
    relu = ReLU()
    x = away_from_zero(rng.standard_normal((6, 5)))
    G = rng.standard_normal((6, 5))
    out = relu.forward(x)
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    dx = relu.backward(G)
    np.testing.assert_allclose(dx, numerical_grad(lambda: float(np.sum(relu.forward(x) * G)), x),
                               rtol=RTOL_FD, atol=1e-8)
    xt = torch.tensor(x, requires_grad=True)
    (torch.relu(xt) * torch.from_numpy(G)).sum().backward()
    np.testing.assert_array_equal(dx, xt.grad.numpy())


def test_relu_gradient_at_zero_is_zero_like_torch():
    relu = ReLU()
    relu.forward(np.array([[0.0, -1.0, 2.0]]))
    np.testing.assert_array_equal(relu.backward(np.ones((1, 3))), [[0.0, 0.0, 1.0]])


def test_inplace_relu_writes_over_its_arrays_and_agrees_with_the_plain_one(rng):
    x = rng.standard_normal((6, 5))
    G = rng.standard_normal((6, 5))
    plain, inplace = ReLU(), ReLU(inplace=True)
    out, dx = plain.forward(x), plain.backward(G)
    x2, G2 = x.copy(), G.copy()
    out2 = inplace.forward(x2)
    dx2 = inplace.backward(G2)
    assert out2 is x2 and dx2 is G2                 # written over the arrays it was given
    np.testing.assert_array_equal(out2, out)
    np.testing.assert_array_equal(dx2, dx)
    assert all(isinstance(layer, ReLU) and layer.inplace for layer in MLP(3, (4, 4), 2).layers[1::2])


def test_softmax_cross_entropy_value_and_gradient(rng):
    ce = SoftmaxCrossEntropy()
    logits = rng.standard_normal((7, 4)) * 3
    y = rng.integers(0, 4, size=7)
    loss = ce.forward(logits, y)
    grad = ce.backward()

    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)        # naive softmax is fine at this scale
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(7), y])), rel=1e-13)
    np.testing.assert_allclose(grad, (p - np.eye(4)[y]) / 7, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(ce.backward(), grad)        # backward again: the same, nothing of the cache changed
    np.testing.assert_allclose(grad, numerical_grad(lambda: ce.forward(logits, y), logits), rtol=RTOL_FD, atol=1e-9)

    lt = torch.tensor(logits, requires_grad=True)
    lt_loss = torch.nn.functional.cross_entropy(lt, torch.from_numpy(y))
    lt_loss.backward()
    assert loss == pytest.approx(lt_loss.item(), rel=1e-13)
    np.testing.assert_allclose(grad, lt.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    ce = SoftmaxCrossEntropy()
    logits = np.array([[1e4, -1e4, 0.0], [-5e3, 5e3, 5e3]])
    y = np.array([1, 0])
    loss = ce.forward(logits, y)
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y)).item()
    assert math.isfinite(loss) and loss == pytest.approx(expected, rel=1e-12)
    assert np.all(np.isfinite(ce.backward()))
    # float32: a naive exp would overflow at 89; log-sum-exp keeps it finite
    l32 = np.array([[200.0, 0.0], [0.0, 300.0]], dtype=np.float32)
    assert ce.forward(l32, np.array([1, 1])) == pytest.approx(100.0, rel=1e-6)
    assert ce.backward().dtype == np.float32


def test_softmax_and_log_softmax_rows(rng):
    logits = rng.standard_normal((5, 3)) * 50
    p = softmax(logits)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=0, atol=1e-14)
    np.testing.assert_allclose(np.log(p), log_softmax(logits), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(p, torch.softmax(torch.from_numpy(logits), 1).numpy(), rtol=1e-12, atol=1e-300)


def _check_mlp_gradients(model, n_classes: int, rng):
    """Every parameter's and the input's gradient of the softmax cross-entropy against central differences."""
    for _, p, _ in model.named_parameters():
        if p.ndim == 1:
            p[...] = rng.standard_normal(p.shape) * 0.1   # nonzero biases
    x = rng.standard_normal((6, 3))
    y = rng.integers(0, n_classes, size=6)
    ce = SoftmaxCrossEntropy()
    ce.forward(model.forward(x), y)
    dx = model.backward(ce.backward())
    loss = lambda: ce.forward(model.forward(x), y)  # noqa: E731
    for name, p, g in model.named_parameters():
        np.testing.assert_allclose(g, numerical_grad(loss, p), rtol=1e-5, atol=1e-9, err_msg=name)
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-5, atol=1e-9)


def test_mlp_gradients_match_finite_differences(rng):
    _check_mlp_gradients(MLP(3, (5, 4), 3, seed=7), 3, rng)


@pytest.mark.parametrize("layer,torch_fn", [
    (Tanh(), torch.tanh),
    (Logistic(), torch.sigmoid),
    (Identity(), lambda t: t),
])
def test_smooth_activations_match_finite_differences_and_torch(layer, torch_fn, rng):
    x = rng.standard_normal((6, 5)) * 3                  # (N, D), into the saturating range too
    G = rng.standard_normal((6, 5))                      # upstream dL/dy; L = sum(y * G)
    out = layer.forward(x)
    dx = layer.backward(G)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch_fn(xt)
    (yt * torch.from_numpy(G)).sum().backward()
    np.testing.assert_allclose(out, yt.detach().numpy(), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dx, numerical_grad(lambda: float(np.sum(layer.forward(x) * G)), x),
                               rtol=RTOL_FD, atol=1e-8)
    assert layer.forward(x.astype(np.float32)).dtype == np.float32
    assert layer.backward(G.astype(np.float32)).dtype == np.float32


def test_sigmoid_keeps_relative_precision_and_never_overflows():
    x = np.array([-800.0, -40.0, -1.0, 0.0, 1.0, 40.0, 800.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):   # no overflow (underflow to 0 is fine)
        s = sigmoid(x)
    expected = torch.sigmoid(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(s, expected, rtol=1e-14, atol=0)   # relative, even at 4.2e-18
    assert s[0] == 0.0 and s[-1] == 1.0


def _losses_with_targets(rng, n=7, k=3):
    """(loss, logits (N, K), targets, torch loss of logits and targets) for every output loss."""
    import torch.nn.functional as F

    z = rng.standard_normal((n, k)) * 2
    labels = rng.integers(0, k, size=n)
    bits = (rng.random((n, k)) > 0.5).astype(np.float64)
    counts = rng.poisson(2.0, size=(n, k)).astype(np.float64)     # includes zeros: 0 log 0 = 0
    reals = rng.standard_normal((n, k))

    def poisson_half_deviance(zt, yt):
        ylogy = torch.xlogy(yt, yt)
        return (ylogy - yt * zt - yt + torch.exp(zt)).sum(1)

    return [
        (SoftmaxCrossEntropy(), z, labels, lambda zt, yt: F.cross_entropy(zt, yt, reduction="none")),
        (SigmoidBinaryCrossEntropy(), z, bits,
         lambda zt, yt: F.binary_cross_entropy_with_logits(zt, yt, reduction="none").sum(1)),
        (SquaredError(), z, reals, lambda zt, yt: 0.5 * ((zt - yt) ** 2).sum(1)),
        (PoissonDeviance(), z, counts, poisson_half_deviance),
    ]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("which", range(4))
def test_output_losses_value_and_fused_gradient(which, weighted, rng):
    """Every loss (and its fused gradient) against torch.autograd and central differences, float64."""
    loss_fn, z, y, torch_per_sample = _losses_with_targets(rng)[which]
    w = rng.integers(0, 4, size=z.shape[0]).astype(np.float64) if weighted else None
    w = None if w is None else np.where(w.sum() > 0, w, 1.0)
    loss = loss_fn.forward(z, y, w) if weighted else loss_fn.forward(z, y)
    grad = loss_fn.backward()

    zt = torch.tensor(z, requires_grad=True)
    per = torch_per_sample(zt, torch.from_numpy(y))               # (N,) per-sample loss
    wt = torch.ones(z.shape[0], dtype=torch.float64) if w is None else torch.from_numpy(w)
    t_loss = (per * wt).sum() / wt.sum()                          # (weighted) mean over samples
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-10, atol=1e-14)
    f = (lambda: loss_fn.forward(z, y, w)) if weighted else (lambda: loss_fn.forward(z, y))
    np.testing.assert_allclose(grad, numerical_grad(f, z), rtol=RTOL_FD, atol=1e-9)
    out = type(loss_fn).output(z)                                 # the prediction the loss compares with y
    assert out.shape == z.shape and np.all(np.isfinite(out))


def test_binary_cross_entropy_is_finite_for_huge_logits():
    bce = SigmoidBinaryCrossEntropy()
    z = np.array([[1e4], [-1e4], [30.0]])
    y = np.array([[0.0], [1.0], [1.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = bce.forward(z, y)
    assert loss == pytest.approx((1e4 + 1e4 + np.log1p(np.exp(-30.0))) / 3, rel=1e-12)
    # sigmoid(30) - 1 = -9.4e-14 is a difference of nearly equal numbers: good to ~1e-16 absolute, not relative
    np.testing.assert_allclose(bce.backward(), [[1 / 3], [-1 / 3], [-np.exp(-30.0) / (1 + np.exp(-30.0)) / 3]],
                               rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("activation", ["tanh", "logistic", "identity"])
def test_mlp_with_each_activation_matches_finite_differences(activation, rng):
    _check_mlp_gradients(MLP(3, (5, 4), 2, seed=3, activation=activation), 2, rng)


def test_loss_and_gradient_with_l2_penalty_and_weights_is_one_exact_gradient(rng):
    """The regularised objective that L-BFGS minimises: its flat gradient against central differences."""
    model = MLP(4, (6,), 3, seed=0, activation="tanh")
    x = rng.standard_normal((9, 4))
    y = rng.standard_normal((9, 3))
    w = rng.random(9) + 0.1
    loss_fn, alpha = SquaredError(), 0.7

    def objective():
        return loss_and_gradient(model, loss_fn, x, y, sample_weight=w, alpha=alpha)

    objective()
    grad = model.flat_gradients.copy()
    np.testing.assert_allclose(grad, numerical_grad(objective, model.flat_parameters), rtol=1e-6, atol=1e-9)
    # the penalty is alpha / (2 sum(w)) * sum ||W||^2, on the weights only
    penalty = alpha / (2 * w.sum()) * sum(float(np.sum(lin.W ** 2)) for lin in model.linears)
    data = loss_fn.forward(model.forward(x), y, w)
    assert objective() == pytest.approx(data + penalty, rel=1e-13)


# ---------------------------------------------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------------------------------------------
def _tiny_linear():
    """Linear(2 -> 2) with zero weights on one sample x = [1, 2], label 0.

    logits = 0, p = [1/2, 1/2], loss = log 2, dL/dlogits = p - onehot = [-1/2, 1/2]
    dW = x^T g = [[-1/2, 1/2], [-1, 1]],  db = [-1/2, 1/2].
    """
    layer = Linear(2, 2, rng=0)
    layer.W[...] = 0.0
    layer.b[...] = 0.0
    return layer, np.array([[1.0, 2.0]]), np.array([0])


def _grad_step(layer, x, y, opt):
    ce = SoftmaxCrossEntropy()
    loss = ce.forward(layer.forward(x), y)
    layer.backward(ce.backward())
    opt.step()
    return loss


def test_one_sgd_step_by_hand():
    layer, x, y = _tiny_linear()
    loss = _grad_step(layer, x, y, SGD(layer.parameters(), lr=0.1))
    assert loss == pytest.approx(math.log(2), rel=1e-15)
    np.testing.assert_allclose(layer.dW, [[-0.5, 0.5], [-1.0, 1.0]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(layer.db, [-0.5, 0.5], rtol=0, atol=1e-15)
    # W <- W - lr * dW
    np.testing.assert_allclose(layer.W, [[0.05, -0.05], [0.1, -0.1]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(layer.b, [0.05, -0.05], rtol=0, atol=1e-15)


def test_two_momentum_steps_by_hand():
    layer, x, y = _tiny_linear()
    opt = SGD(layer.parameters(), lr=0.1, momentum=0.9)
    _grad_step(layer, x, y, opt)                       # buf_1 = g_1, same step as plain SGD
    np.testing.assert_allclose(layer.W, [[0.05, -0.05], [0.1, -0.1]], rtol=0, atol=1e-15)
    # Step 2 at W_1: logits = [1*0.05 + 2*0.1 + 0.05, -(same)] = [0.3, -0.3], p_0 = sigmoid(0.6)
    s = 1.0 / (1.0 + math.exp(-0.6))                  # 0.645656306...
    g = np.array([s - 1.0, 1.0 - s])                  # dL/dlogits = p - onehot(0)
    loss = _grad_step(layer, x, y, opt)
    assert loss == pytest.approx(-math.log(s), rel=1e-14)
    # buf_2 = 0.9 * g_1 + g_2 ; W_2 = W_1 - lr * buf_2
    g1_W, g1_b = np.array([[-0.5, 0.5], [-1.0, 1.0]]), np.array([-0.5, 0.5])
    g2_W, g2_b = np.outer([1.0, 2.0], g), g
    np.testing.assert_allclose(layer.W, np.array([[0.05, -0.05], [0.1, -0.1]]) - 0.1 * (0.9 * g1_W + g2_W),
                               rtol=0, atol=1e-15)
    np.testing.assert_allclose(layer.b, np.array([0.05, -0.05]) - 0.1 * (0.9 * g1_b + g2_b), rtol=0, atol=1e-15)
    assert layer.W[0, 0] == pytest.approx(0.05 + 0.1 * (0.45 + (1 - s)), rel=1e-14)   # 0.1304343...


def test_first_adam_step_moves_each_weight_by_lr_against_its_gradient_sign():
    layer, x, y = _tiny_linear()
    _grad_step(layer, x, y, Adam(layer.parameters(), lr=0.01, eps=0.0))
    # m_hat = g, v_hat = g^2 after bias correction, so the step is lr * g / |g| = lr * sign(g)
    np.testing.assert_allclose(layer.W, [[0.01, -0.01], [0.01, -0.01]], rtol=1e-12, atol=0)
    np.testing.assert_allclose(layer.b, [0.01, -0.01], rtol=1e-12, atol=0)


OPTIMIZERS = [
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.05, momentum=0.9)),
    ("sgd", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=1e-2)),
    ("adam", dict(lr=1e-2)),
    ("adam", dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2)),
]


def _make(kind, params, kw):
    return (SGD if kind == "sgd" else Adam)(params, **kw)


@pytest.mark.parametrize("layout", ["flat", "loose"])
@pytest.mark.parametrize("kind,kw", OPTIMIZERS)
def test_optimizers_follow_torch_optim(kind, kw, layout, rng):
    """Same gradients in, same parameters out, for 6 steps with a learning rate changed midway (a schedule)."""
    np_params = MLP(3, (4,), 2, seed=0).parameters()      # views of one flat buffer: one vectorised update
    if layout == "loose":
        np_params = np_params + Linear(3, 2, rng=1).parameters()   # separate arrays: one update per array
    t_params = [torch.tensor(p, requires_grad=True) for p, _ in np_params]
    opt = _make(kind, np_params, kw)
    assert len(opt._groups) == (1 if layout == "flat" else len(np_params))
    t_opt = (torch.optim.SGD if kind == "sgd" else torch.optim.Adam)(t_params, **kw)
    for step in range(6):
        if step == 3:
            opt.lr = kw["lr"] / 2
            for group in t_opt.param_groups:
                group["lr"] = kw["lr"] / 2
        for (p, g), tp in zip(np_params, t_params):
            g[...] = rng.standard_normal(g.shape)
            tp.grad = torch.from_numpy(g.copy())
        opt.step()
        t_opt.step()
    for (p, _), tp in zip(np_params, t_params):
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind,kw", OPTIMIZERS)
def test_optimizer_state_dict_resumes_exactly(kind, kw, rng):
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    ce = SoftmaxCrossEntropy()

    a = MLP(3, (6,), 2, seed=3)
    opt_a = _make(kind, a.parameters(), kw)
    train_epoch(a, ce, opt_a, X, y, batch_size=8, rng=np.random.default_rng(0))
    model_state, opt_state = a.state_dict(), opt_a.state_dict()
    assert opt_state["step"] == 5
    train_epoch(a, ce, opt_a, X, y, batch_size=8, rng=np.random.default_rng(1))

    b = MLP(3, (6,), 2, seed=99)                     # different init: everything must come from the state
    opt_b = _make(kind, b.parameters(), kw)
    b.load_state_dict(model_state)
    opt_b.load_state_dict(pickle.loads(pickle.dumps(opt_state)))
    train_epoch(b, ce, opt_b, X, y, batch_size=8, rng=np.random.default_rng(1))
    for (name, pa, _), (_, pb, _) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(pa, pb, err_msg=name)
    assert opt_b.step_count == opt_a.step_count == 10


def test_state_dicts_are_copies_with_torch_like_names():
    model = MLP(2, (3, 4), 5, seed=0)
    sd = model.state_dict()
    assert list(sd) == ["layers.0.W", "layers.0.b", "layers.2.W", "layers.2.b", "layers.4.W", "layers.4.b"]
    assert [v.shape for v in sd.values()] == [(2, 3), (3,), (3, 4), (4,), (4, 5), (5,)]
    sd["layers.0.W"][...] = 123.0
    assert not np.any(model.layers[0].W == 123.0)
    assert model.num_parameters == sum(v.size for v in sd.values())
    opt = SGD(model.parameters(), lr=0.1, momentum=0.5)
    buf = opt.state_dict()["state"]["momentum_buffer"]
    assert [b.shape for b in buf] == [v.shape for v in sd.values()]


def test_pickled_mlp_keeps_training_like_the_original(rng):
    X = rng.standard_normal((30, 2))
    y = (X.sum(1) > 0).astype(np.int64)
    ce = SoftmaxCrossEntropy()
    a = MLP(2, (5,), 2, seed=0)
    b = pickle.loads(pickle.dumps(a))
    for m in (a, b):
        train_epoch(m, ce, SGD(m.parameters(), lr=0.1, momentum=0.9), X, y, batch_size=7, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(a.forward(X), b.forward(X))
    assert not np.array_equal(a.state_dict()["layers.0.W"], MLP(2, (5,), 2, seed=0).state_dict()["layers.0.W"])


# ---------------------------------------------------------------------------------------------------------------
# dtypes, init, validation
# ---------------------------------------------------------------------------------------------------------------
def test_float32_path_stays_float32_and_learns(rng):
    X = rng.standard_normal((200, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)     # XOR-like: needs the hidden layer
    model = MLP(2, (16,), 2, seed=0, dtype=np.float32)
    ce = SoftmaxCrossEntropy()
    opt = Adam(model.parameters(), lr=0.02)
    first = train_epoch(model, ce, opt, X, y, batch_size=20, rng=np.random.default_rng(0))
    for _ in range(40):
        last = train_epoch(model, ce, opt, X, y, batch_size=20, rng=np.random.default_rng(0))
    logits = model.forward(X)                       # float64 input is cast at the boundary
    assert logits.dtype == np.float32
    assert all(p.dtype == np.float32 and g.dtype == np.float32 for p, g in model.parameters())
    assert all(b.dtype == np.float32 for bs in opt.state_dict()["state"].values() for b in bs)
    assert last < first / 2
    assert (logits.argmax(1) == y).mean() > 0.9


def test_float32_and_float64_agree_to_float32_precision(rng):
    x = rng.standard_normal((8, 5))
    m64 = MLP(5, (7,), 3, seed=0)
    m32 = MLP(5, (7,), 3, seed=0, dtype="float32")
    np.testing.assert_allclose(m32.forward(x), m64.forward(x), rtol=1e-5, atol=1e-5)


def test_init_schemes_have_the_documented_scale():
    he = Linear(1000, 500, init="he", rng=0)
    assert he.W.std() == pytest.approx(math.sqrt(2 / 1000), rel=0.02)
    xa = Linear(1000, 500, init="xavier", rng=0)
    bound = math.sqrt(6 / 1500)
    assert np.abs(xa.W).max() <= bound and np.abs(xa.W).max() > 0.99 * bound
    assert xa.W.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    assert not he.b.any() and not xa.b.any()


def test_same_seed_same_weights_and_generators_are_accepted():
    a, b = MLP(4, (8,), 3, seed=5), MLP(4, (8,), 3, seed=5)
    c = MLP(4, (8,), 3, seed=np.random.default_rng(5))
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k])
        np.testing.assert_array_equal(v, c.state_dict()[k])
    assert not np.array_equal(a.state_dict()["layers.0.W"], MLP(4, (8,), 3, seed=6).state_dict()["layers.0.W"])


@pytest.mark.parametrize("make,match", [
    (lambda: MLP(2, (0, 32), 2), r"hidden_sizes must be > 0, got \(0, 32\)"),
    (lambda: MLP(2, (20, "a"), 2), r"hidden_sizes must be a tuple of positive integers, got \(20, 'a'\)"),
    (lambda: MLP(0, (4,), 2), r"in_features must be a positive integer, got 0"),
    (lambda: MLP(2, (4,), 2, init="kaiming"), r"unknown init 'kaiming'; valid: he, xavier"),
    (lambda: MLP(2, (4,), 2, dtype=np.float16), r"dtype must be one of float64, float32, got <class 'numpy.float16'>"),
    (lambda: MLP(2, (4,), 2, seed=-1), r"seed must be a numpy.random.Generator or an int seed >= 0, got -1"),
    (lambda: Linear(3, 2.5), r"out_features must be a positive integer, got 2.5"),
    (lambda: SGD(MLP(2, (3,), 2).parameters(), lr=-0.1), r"lr must be a finite number > 0, got -0.1"),
    (lambda: SGD(MLP(2, (3,), 2).parameters(), lr=0.1, nesterov=True), r"nesterov=True needs momentum > 0"),
    (lambda: SGD(MLP(2, (3,), 2).parameters(), lr=0.1, momentum=1.5), r"momentum must be in \[0.0, 1.0\), got 1.5"),
    (lambda: Adam(MLP(2, (3,), 2).parameters(), betas=(0.9, 1.0)), r"betas\[1\] must be in \[0.0, 1.0\), got 1.0"),
    (lambda: SGD([], lr=0.1), r"params is empty"),
    (lambda: SGD([(np.zeros(3), np.zeros(2))], lr=0.1), r"params\[0\] must be a \(param, grad\) pair"),
])
def test_bad_settings_raise_config_error_naming_the_value(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_several_problems_are_reported_together():
    with pytest.raises(ConfigError) as e:
        MLP(-1, (0,), 0)
    msg = str(e.value)
    assert "in_features" in msg and "hidden_sizes" in msg and "out_features" in msg


def test_bad_inputs_raise_config_error():
    model = MLP(3, (4,), 2, seed=0)
    with pytest.raises(ConfigError, match=r"MLP expects input of shape \(N, 3\), got \(5, 4\)"):
        model.forward(np.zeros((5, 4)))
    with pytest.raises(ConfigError, match=r"got \(3,\)"):
        model.forward(np.zeros(3))
    ce = SoftmaxCrossEntropy()
    logits = np.zeros((3, 2))
    with pytest.raises(ConfigError, match=r"labels must be in \[0, 1\] for 2 classes, got values in \[0, 2\]"):
        ce.forward(logits, np.array([0, 1, 2]))
    with pytest.raises(ConfigError, match=r"got values in \[-1, 1\]"):
        ce.forward(logits, np.array([0, -1, 1]))
    with pytest.raises(ConfigError, match=r"labels must be integers of shape \(3,\), got dtype float64"):
        ce.forward(logits, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ConfigError, match=r"labels must be integers of shape \(3,\).*shape \(2,\)"):
        ce.forward(logits, np.array([0, 1]))


def test_unchecked_cross_entropy_matches_the_checked_one():
    """``check_labels=False`` (labels in range by construction) skips only the checks: same loss, same gradient."""
    rng = np.random.default_rng(3)
    logits, y = rng.standard_normal((7, 4)), rng.integers(0, 4, 7)
    w = rng.uniform(0.5, 2.0, 7)
    for sw in (None, w):
        checked, unchecked = SoftmaxCrossEntropy(), SoftmaxCrossEntropy(check_labels=False)
        assert unchecked.forward(logits, y, sw) == checked.forward(logits, y, sw)
        np.testing.assert_array_equal(unchecked.backward(), checked.backward())
    assert SoftmaxCrossEntropy().check_labels and not SoftmaxCrossEntropy(check_labels=False).check_labels
    with pytest.raises(ConfigError, match="labels must be in"):       # the default still refuses bad labels
        SoftmaxCrossEntropy().forward(logits, np.array([0, 1, 2, 3, 4, 0, 1]))


def test_load_state_dict_rejects_another_architecture():
    model = MLP(3, (4,), 2, seed=0)
    with pytest.raises(CheckpointError, match=r"layers.0.W has shape \(3, 5\), expected \(3, 4\)"):
        model.load_state_dict(MLP(3, (5,), 2).state_dict())
    with pytest.raises(CheckpointError, match=r"missing keys \['layers.2.W', 'layers.2.b'\]"):
        model.load_state_dict({k: v for k, v in model.state_dict().items() if k.startswith("layers.0")})
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(CheckpointError, match=r"buffers \['exp_avg', 'exp_avg_sq'\], expected \['momentum_buffer'\]"):
        opt.load_state_dict(Adam(model.parameters()).state_dict())


# ---------------------------------------------------------------------------------------------------------------
# Layering and end-to-end behaviour
# ---------------------------------------------------------------------------------------------------------------
def test_numpy_nn_never_imports_torch_or_sklearn():
    code = (
        "import sys, numpy as np\n"
        "import nnlab.numpy_nn as nn\n"
        "m = nn.MLP(2, (8,), 2, seed=0)\n"
        "X = np.random.default_rng(0).standard_normal((32, 2)); y = (X[:, 0] > 0).astype(np.int64)\n"
        "opt = nn.Adam(m.parameters(), lr=0.01)\n"
        "nn.train_epoch(m, nn.SoftmaxCrossEntropy(), opt, X, y, batch_size=8, rng=np.random.default_rng(0))\n"
        "nn.softmax(m.forward(X)); m.state_dict(); opt.state_dict()\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'sklearn', 'scipy'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"numpy_nn pulled in: {out.stdout.strip()}"


def test_mlp_reaches_95_percent_on_two_moons():
    from sklearn.datasets import make_moons
    from sklearn.model_selection import train_test_split

    X, y = make_moons(1000, noise=0.2, random_state=0)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    model = MLP(2, (20,), 2, seed=0)
    ce = SoftmaxCrossEntropy()
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)   # lr per step on the mean loss of 32 samples
    rng = np.random.default_rng(0)
    losses = [train_epoch(model, ce, opt, X_tr, y_tr, batch_size=32, rng=rng) for _ in range(50)]
    accuracy = (model.forward(X_te).argmax(1) == y_te).mean()
    assert accuracy >= 0.95, f"test accuracy {accuracy:.3f} < 0.95"
    assert losses[-1] < 0.15 < losses[0]
