"""NumPy MLP vs PyTorch MLP with identical weights (float64): logits, loss, gradients and training steps
agree to 1e-10; plus the PyTorch MLP's own contract (config, init, input shapes, weight copies)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import nnlab.numpy_nn as npnn
from nnlab.errors import ConfigError
from nnlab.models.mlp import ACTIVATIONS, MLP, copy_numpy_weights_to_torch, copy_torch_weights_to_numpy

TOL = 1e-10


def _pair(in_features, hidden, out_features, seed=0, activation="relu"):
    np_mlp = npnn.MLP(in_features, hidden, out_features, seed=seed, activation=activation)
    for _, p, _ in np_mlp.named_parameters():      # nonzero biases, so bias paths are compared too
        if p.ndim == 1:
            p[...] = np.random.default_rng(seed + 1).standard_normal(p.shape) * 0.1
    t_mlp = MLP(in_features, hidden, out_features, activation=activation).double()
    copy_numpy_weights_to_torch(np_mlp, t_mlp)
    return np_mlp, t_mlp


@pytest.mark.parametrize("hidden,activation", [((), "relu"), ((20,), "relu"), ((16, 8, 4), "relu"),
                                               ((16, 8), "tanh"), ((16, 8), "logistic"), ((16, 8), "identity")])
def test_forward_loss_and_gradients_match(hidden, activation):
    rng = np.random.default_rng(0)
    np_mlp, t_mlp = _pair(5, hidden, 3, activation=activation)
    x = rng.standard_normal((11, 5))
    y = rng.integers(0, 3, size=11)

    ce = npnn.SoftmaxCrossEntropy()
    logits = np_mlp.forward(x)
    loss = ce.forward(logits, y)
    dx = np_mlp.backward(ce.backward())

    xt = torch.tensor(x, requires_grad=True)
    t_logits = t_mlp(xt)
    t_loss = nn.CrossEntropyLoss()(t_logits, torch.from_numpy(y))
    t_loss.backward()

    np.testing.assert_allclose(logits, t_logits.detach().numpy(), rtol=0, atol=TOL)
    assert abs(loss - t_loss.item()) < TOL
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=0, atol=TOL)
    t_params = dict(t_mlp.named_parameters())
    for name, _, g in np_mlp.named_parameters():
        i, kind = name.split(".")[1], name.split(".")[2]
        tg = t_params[f"layers.{i}.{'weight' if kind == 'W' else 'bias'}"].grad.numpy()
        np.testing.assert_allclose(g, tg.T if kind == "W" else tg, rtol=0, atol=TOL, err_msg=name)


@pytest.mark.parametrize("kind,kw", [
    ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("adam", dict(lr=1e-2, weight_decay=1e-3)),
])
def test_training_steps_match(kind, kw):
    rng = np.random.default_rng(1)
    np_mlp, t_mlp = _pair(4, (12, 6), 3)
    X = rng.standard_normal((64, 4))
    y = rng.integers(0, 3, size=64)
    ce = npnn.SoftmaxCrossEntropy()
    opt = (npnn.SGD if kind == "sgd" else npnn.Adam)(np_mlp.parameters(), **kw)
    t_opt = (torch.optim.SGD if kind == "sgd" else torch.optim.Adam)(t_mlp.parameters(), **kw)
    for start in range(0, 64, 16):
        xb, yb = X[start:start + 16], y[start:start + 16]
        loss = npnn.train_step(np_mlp, ce, opt, xb, yb)
        t_opt.zero_grad()
        t_loss = nn.functional.cross_entropy(t_mlp(torch.from_numpy(xb)), torch.from_numpy(yb))
        t_loss.backward()
        t_opt.step()
        assert abs(loss - t_loss.item()) < TOL
    np.testing.assert_allclose(np_mlp.forward(X), t_mlp(torch.from_numpy(X)).detach().numpy(), rtol=0, atol=TOL)


def test_torch_mlp_flattens_cifar_images_like_numpy_on_flat_rows():
    np_mlp, t_mlp = _pair(3 * 32 * 32, (32,), 10)
    x = np.random.default_rng(2).standard_normal((4, 3, 32, 32))                  # (N, C, H, W)
    out = t_mlp(torch.from_numpy(x))                                              # (N, 10)
    assert out.shape == (4, 10)
    np.testing.assert_allclose(out.detach().numpy(), np_mlp.forward(x.reshape(4, -1)), rtol=0, atol=TOL)


def test_weight_copies_round_trip_and_transpose():
    t_mlp = MLP(3, (4,), 2, generator=torch.Generator().manual_seed(0)).double()
    np_mlp = npnn.MLP(3, (4,), 2, seed=1)
    copy_torch_weights_to_numpy(t_mlp, np_mlp)
    np.testing.assert_array_equal(np_mlp.state_dict()["layers.0.W"], t_mlp.layers[0].weight.detach().numpy().T)
    np.testing.assert_array_equal(np_mlp.state_dict()["layers.2.b"], t_mlp.layers[2].bias.detach().numpy())
    with pytest.raises(ConfigError, match="parameter names differ"):
        copy_numpy_weights_to_torch(npnn.MLP(3, (4, 4), 2), t_mlp)
    with pytest.raises(ConfigError, match=r"layers.0.W \(3, 5\) does not fit layers.0.weight \(4, 3\)"):
        copy_numpy_weights_to_torch(npnn.MLP(3, (5,), 2), t_mlp)


def test_module_structure_and_names():
    m = MLP(3072, (128, 64), 10)
    assert [type(layer).__name__ for layer in m.layers] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert [k for k in m.state_dict()] == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias",
                                          "layers.4.weight", "layers.4.bias"]
    assert m.num_parameters() == 3072 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
    assert not any(isinstance(layer, nn.Softmax) for layer in m.modules())   # logits out


def test_constructor_validates_with_the_shared_size_check():
    m = MLP(2, [32, 16], 2, init="xavier")                   # a list read back from config.json
    assert m.hidden_sizes == (32, 16) and m.init == "xavier"
    assert MLP(2, 8, 2).hidden_sizes == (8,)                  # one integer: one hidden layer, as numpy_nn.MLP
    assert MLP(2, (), 2).hidden_sizes == ()                   # a linear model
    with pytest.raises(ConfigError, match=r"hidden_sizes must be > 0, got \(0, 32\)"):
        MLP(2, (0, 32), 2)
    with pytest.raises(ConfigError, match=r"hidden_sizes must be a tuple of positive integers, got \(20, 'a'\)"):
        MLP(2, (20, "a"), 2)
    with pytest.raises(ConfigError, match=r"unknown init 'normal'; valid: he, xavier"):
        MLP(2, (4,), 2, init="normal")
    with pytest.raises(ConfigError, match=r"out_features must be a positive integer, got 0"):
        MLP(2, (4,), 0)
    with pytest.raises(ConfigError, match=r"unknown activation 'gelu'; valid: relu, tanh, logistic, identity"):
        MLP(2, (4,), 2, activation="gelu")
    assert list(ACTIVATIONS) == list(npnn.ACTIVATIONS)       # the same names on both backends
    assert [type(layer).__name__ for layer in MLP(2, (4, 4), 2, activation="tanh").layers] == [
        "Linear", "Tanh", "Linear", "Tanh", "Linear"]


def test_bad_input_shape_names_the_shape():
    m = MLP(3072, (8,), 10)
    with pytest.raises(ConfigError, match=r"got \(2, 3, 32, 31\)"):
        m(torch.zeros(2, 3, 32, 31))


def test_init_is_seeded_and_has_the_documented_scale():
    a = MLP(1000, (500,), 10, generator=torch.Generator().manual_seed(0))
    b = MLP(1000, (500,), 10, generator=torch.Generator().manual_seed(0))
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])
    assert a.layers[0].weight.std().item() == pytest.approx(math.sqrt(2 / 1000), rel=0.02)   # He: fan_in = 1000
    assert not a.layers[0].bias.any()
    x = MLP(1000, (500,), 10, init="xavier", generator=torch.Generator().manual_seed(0))
    bound = math.sqrt(6 / 1500)
    assert x.layers[0].weight.abs().max().item() <= bound
    assert x.layers[0].weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)
