"""Part I: the PyTorch multi-layer perceptron, ``Flatten -> Linear -> ReLU -> ... -> Linear`` (logits out); the hidden
activation may also be tanh, the logistic sigmoid or the identity, as in ``nnlab.numpy_nn``.

It mirrors the from-scratch ``nnlab.numpy_nn.MLP`` layer for layer: the ``nn.Sequential`` is called ``layers``
so parameter names share the same indices (``layers.0.weight`` here, ``layers.0.W`` there; odd indices are the
activations). The only layout difference is the weight's orientation: ``torch`` stores ``(out, in)``, NumPy ``(in, out)``;
``copy_numpy_weights_to_torch`` / ``copy_torch_weights_to_numpy`` transpose between them.

No softmax at the end: ``nn.CrossEntropyLoss`` applies log-softmax itself, and a softmax before it would
squash the gradients (and compute a different loss).
"""

from __future__ import annotations

import torch
from torch import nn

from .._validate import one_of, positive_int, sizes_problem
from ..errors import ConfigError, check

__all__ = ["ACTIVATIONS", "INITS", "MLP", "copy_numpy_weights_to_torch", "copy_torch_weights_to_numpy"]

#: weight inits: he = N(0, 2/fan_in) (He et al. 2015, for ReLU) | xavier = U(+-sqrt(6/(fan_in+fan_out)))
#: (Glorot & Bengio 2010); biases start at 0 either way
INITS = ("he", "xavier")
#: hidden-layer activations, under the names of ``nnlab.numpy_nn`` (and scikit-learn's ``MLPClassifier``)
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "logistic": nn.Sigmoid, "identity": nn.Identity}


class MLP(nn.Module):
    """``forward(x) -> logits (N, out_features)`` for ``x`` of shape ``(N, in_features)`` or ``(N, *dims)``
    with ``prod(dims) == in_features`` (CIFAR-10 images ``(N, 3, 32, 32)`` with ``in_features = 3072``).

    ``hidden_sizes``: widths of the hidden layers (units), each followed by the ``activation`` (see ``ACTIVATIONS``;
    default ReLU); ``()`` = a linear model. Weights
    follow ``init`` (see ``INITS``) and draw from ``generator`` when given (else torch's global RNG); biases start
    at zero. The same scheme as ``nnlab.numpy_nn.Linear``, so both backends start alike. The run's config (what
    ``config.json`` records) is ``nnlab.experiments.mlp.MLPSpec``, which builds this or the NumPy MLP.
    """

    def __init__(self, in_features: int, hidden_sizes=(20,), out_features: int = 10, *, init: str = "he",
                 generator: torch.Generator | None = None, activation: str = "relu"):
        super().__init__()
        check([p for p in (positive_int("in_features", in_features), sizes_problem("hidden_sizes", hidden_sizes),
                           positive_int("out_features", out_features), one_of("init", init, INITS),
                           one_of("activation", activation, ACTIVATIONS)) if p], what="MLP")
        if not isinstance(hidden_sizes, (tuple, list)):
            hidden_sizes = (hidden_sizes,)  # one integer: one hidden layer (as numpy_nn.MLP and scikit-learn)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.hidden_sizes, self.init, self.activation = tuple(int(h) for h in hidden_sizes), init, activation
        sizes = (self.in_features, *self.hidden_sizes, self.out_features)
        mods: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            if i:
                mods.append(ACTIVATIONS[activation]())
            mods.append(nn.Linear(d_in, d_out))
        self.layers = nn.Sequential(*mods)     # outside `layers`, so indices match numpy_nn's names
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        for m in self.layers:
            if isinstance(m, nn.Linear):
                if self.init == "he":   # std = sqrt(2 / fan_in), fan_in = in_features
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=generator)
                else:
                    nn.init.xavier_uniform_(m.weight, generator=generator)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        if x.dim() > 2:
            x = x.flatten(1)                   # (N, 3, 32, 32) -> (N, 3072); cheaper than calling a module
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ConfigError(f"MLP expects inputs (N, {self.in_features}) or (N, *dims) with prod(dims) == "
                              f"{self.in_features}, got {tuple(shape)}")
        return self.layers(x)                  # (N, in_features) -> (N, out_features) logits

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def _torch_name(numpy_name: str) -> str:
    """``layers.0.W`` -> ``layers.0.weight``; ``layers.0.b`` -> ``layers.0.bias``."""
    prefix, _, kind = numpy_name.rpartition(".")
    return f"{prefix}.{ {'W': 'weight', 'b': 'bias'}[kind] }"


def _check_same_architecture(np_state: dict, torch_mlp: MLP) -> dict[str, torch.Tensor]:
    t_state = dict(torch_mlp.layers.named_parameters(prefix="layers"))
    problems = []
    names = {_torch_name(k): k for k in np_state}
    if set(names) != set(t_state):
        problems.append(f"parameter names differ: numpy {sorted(np_state)} vs torch {sorted(t_state)}")
    else:
        for tname, nname in names.items():
            want = tuple(reversed(np_state[nname].shape)) if nname.endswith(".W") else np_state[nname].shape
            if tuple(t_state[tname].shape) != tuple(want):
                problems.append(f"{nname} {np_state[nname].shape} does not fit {tname} {tuple(t_state[tname].shape)}")
    check(problems, what="weight copy between numpy_nn.MLP and models.mlp.MLP")
    return t_state


@torch.no_grad()
def copy_numpy_weights_to_torch(np_mlp, torch_mlp: MLP) -> None:
    """Copy a ``nnlab.numpy_nn.MLP``'s parameters into ``torch_mlp`` (same sizes), transposing ``W (in, out)``
    into ``weight (out, in)`` and casting to the torch parameters' dtype."""
    np_state = np_mlp.state_dict()
    t_state = _check_same_architecture(np_state, torch_mlp)
    for name, arr in np_state.items():
        value = torch.from_numpy(arr.T.copy() if name.endswith(".W") else arr)
        t_state[_torch_name(name)].copy_(value)


@torch.no_grad()
def copy_torch_weights_to_numpy(torch_mlp: MLP, np_mlp) -> None:
    """The reverse of ``copy_numpy_weights_to_torch``: ``weight (out, in)`` -> ``W (in, out)``."""
    np_state = np_mlp.state_dict()
    t_state = _check_same_architecture(np_state, torch_mlp)
    np_mlp.load_state_dict({name: (t_state[_torch_name(name)].T if name.endswith(".W") else t_state[_torch_name(name)])
                            .detach().cpu().numpy() for name in np_state})
