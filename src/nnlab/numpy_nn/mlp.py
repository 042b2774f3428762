"""The from-scratch multi-layer perceptron: ``Linear -> ReLU -> ... -> Linear`` (logits out), NumPy only,
and the one training step/epoch that both Part I and the scikit-learn estimators run.

Parameter names follow ``torch.nn.Sequential`` indices: ``layers.0.W``, ``layers.0.b``, ``layers.2.W``, ...
(odd indices are the activations), the same indices as ``nnlab.models.mlp.MLP`` (``layers.0.weight`` ...).
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from .._validate import one_of, positive_int, sizes_problem
from ..errors import CheckpointError, ConfigError, check
from .layers import ACTIVATIONS, Linear, ReLU, resolve_dtype, resolve_rng


class MLP:
    """``in_features -> hidden_sizes[0] -> ... -> out_features`` with an activation (ReLU by default) between
    the affine layers.

    ``forward(x (N, in_features)) -> logits (N, out_features)`` (no output activation: pair it with a loss from
    ``losses``, e.g. ``SoftmaxCrossEntropy``). ``backward(dL/dlogits) -> dL/dx`` fills every layer's gradients.
    All parameters live in one contiguous vector (``flat_parameters``; each ``W``/``b`` is a view of it), and so
    do their gradients (``flat_gradients``). ``x`` may be a SciPy sparse matrix.
    """

    def __init__(self, in_features: int, hidden_sizes=(20,), out_features: int = 2, *, init: str = "he",
                 seed=0, dtype=np.float64, activation: str = "relu"):
        check([p for p in (positive_int("in_features", in_features), sizes_problem("hidden_sizes", hidden_sizes),
                           positive_int("out_features", out_features), one_of("activation", activation, ACTIVATIONS))
               if p], "MLP")
        if isinstance(hidden_sizes, (Integral, np.integer)):
            hidden_sizes = (hidden_sizes,)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.init, self.dtype, self.activation = init, resolve_dtype(dtype), activation
        rng = resolve_rng(seed, "seed")
        sizes = (self.in_features, *self.hidden_sizes, self.out_features)
        self.layers: list = []
        for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            if i:
                self.layers.append(_hidden_activation(activation))
            self.layers.append(Linear(d_in, d_out, init=init, rng=rng, dtype=self.dtype))
        n = sum(d_in * d_out + d_out for d_in, d_out in zip(sizes[:-1], sizes[1:]))
        self._flat_params = np.empty(n, dtype=self.dtype)   # (P,) every W and b, in state_dict order
        self._flat_grads = np.zeros(n, dtype=self.dtype)    # (P,) their gradients
        self._linears = [layer for layer in self.layers if isinstance(layer, Linear)]   # set_activation keeps them
        # for l2_penalty: a (P,) mask, 1 on the weights and 0 on the biases; the last coefficient times it; scratch
        self._weight_mask = np.zeros(n, dtype=self.dtype)
        self._l2_coef, self._l2_scale = None, np.empty(n, dtype=self.dtype)
        self._scratch = np.empty(n, dtype=self.dtype)
        offset = 0
        for layer in self._linears:
            self._weight_mask[offset:offset + layer.W.size] = 1.0   # each layer's block is W, then b
            offset = layer._bind(self._flat_params, self._flat_grads, offset)
        assert offset == n
        self._buffers: dict = {}                             # see _buffer

    # -- forward / backward ------------------------------------------------------------------------------
    def forward(self, x, *, ones_column: bool = False) -> np.ndarray:
        """Logits ``(N, out_features)``; ``x`` is cast to the model's dtype. Caches what ``backward`` needs.

        ``ones_column=True``: ``x`` is ``(N, in_features + 1)``, a dense array whose last column is all ones (the
        training loops build it once per fit); the first layer then adds its bias inside its product
        (``Linear.forward_with_ones``). Same logits and gradients, fewer NumPy calls."""
        if not isinstance(x, np.ndarray) and not _is_sparse(x):
            x = np.asarray(x)
        width = self.in_features + 1 if ones_column else self.in_features
        if x.ndim != 2 or x.shape[1] != width or (ones_column and not isinstance(x, np.ndarray)):
            kind = "a dense input whose last column is ones" if ones_column else "input"
            raise ConfigError(f"MLP expects {kind} of shape (N, {width}), got {x.shape}")
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i == 0 and ones_column:
                out = self._buffer(("out", i), x.shape[0], layer.out_features) if i < last else None
                x = layer.forward_with_ones(x, out=out)
            elif i < last and isinstance(layer, Linear) and isinstance(x, np.ndarray):   # hidden affine, dense input
                x = layer.forward(x, out=self._buffer(("out", i), x.shape[0], layer.out_features))
            else:
                x = layer.forward(x)
        return x                                   # the logits: a new array, the caller's to keep

    __call__ = forward

    def backward(self, grad: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Back-propagate ``dL/dlogits`` ``(N, out_features)``; fills (overwrites) all grads; returns ``dL/dx``.

        ``input_grad=False`` skips the product that only ``dL/dx`` needs (training never uses it) and returns None.
        """
        for i in range(len(self.layers) - 1, 0, -1):
            layer = self.layers[i]
            if isinstance(layer, Linear) and grad.dtype == self.dtype:   # dL/d(hidden activations): reused buffer
                grad = layer.backward(grad, out=self._buffer(("grad", i), grad.shape[0], layer.in_features))
            else:
                grad = layer.backward(grad)
        return self.layers[0].backward(grad, input_grad)   # dL/dx: a new array, the caller's to keep

    def _buffer(self, key, n: int, width: int) -> np.ndarray:
        """An ``(n, width)`` array for a hidden layer's output or input gradient, the same from step to step.

        Rows ``[:n]`` of the largest one asked for under ``key`` so far (kept until ``clear_cache``). A new
        ``(200, 100)`` float64 array per layer and step can cost more than the allocation: depending on the state
        of the allocator it comes from fresh pages of memory (page faults). These are intermediate results, never
        returned: the next step overwrites them.
        """
        buf = self._buffers.get(key)
        if buf is None or buf.shape[0] < n:
            buf = self._buffers[key] = np.empty((n, width), dtype=self.dtype)
        return buf[:n]

    def set_activation(self, activation: str) -> None:
        """Put a new hidden activation between the same affine layers (the weights stay)."""
        check([p for p in (one_of("activation", activation, ACTIVATIONS),) if p], "MLP")
        for i in range(1, len(self.layers), 2):
            self.layers[i] = _hidden_activation(activation)
        self.activation = activation

    def clear_cache(self) -> None:
        """Drop every layer's cached activations (after inference: nothing of the input stays referenced)."""
        for layer in self.layers:
            layer.clear_cache()
        self._buffers = {}

    # -- parameters and state ----------------------------------------------------------------------------
    def named_parameters(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """``[(name, param, grad), ...]`` in ``state_dict`` order; arrays are the live ones, not copies."""
        out = []
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Linear):
                out += [(f"layers.{i}.W", layer.W, layer.dW), (f"layers.{i}.b", layer.b, layer.db)]
        return out

    def parameters(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(param, grad), ...]`` for an optimizer; the optimizer updates ``param`` in place."""
        return [(p, g) for _, p, g in self.named_parameters()]

    @property
    def num_parameters(self) -> int:
        return int(self._flat_params.size)

    @property
    def flat_parameters(self) -> np.ndarray:
        """``(P,)``: every parameter in ``state_dict`` order, live (writing into it changes the model)."""
        return self._flat_params

    @property
    def flat_gradients(self) -> np.ndarray:
        """``(P,)``: the gradients ``backward`` wrote, in the order of ``flat_parameters``, live."""
        return self._flat_grads

    @property
    def linears(self) -> list[Linear]:
        """The affine layers, input to output."""
        return list(self._linears)

    def l2_penalty(self, coef: float) -> float:
        """Add ``coef * W`` to every ``dW`` and return ``coef / 2 * sum ||W||^2``, the penalty with that gradient.

        Only weights are penalised, never biases (scikit-learn's ``alpha`` convention). Call after ``backward``.
        """
        # dW += coef * W for every layer at once, over the flat vectors: (P,) scale = coef on the weights, 0 on the
        # biases; it changes only with the batch size. Three NumPy calls in all, instead of three per layer
        if coef != self._l2_coef:
            np.multiply(self._weight_mask, coef, out=self._l2_scale)
            self._l2_coef = coef
        tmp = np.multiply(self._flat_params, self._l2_scale, out=self._scratch)   # (P,) coef * W, 0 on the biases
        self._flat_grads += tmp
        return 0.5 * float(np.dot(tmp, self._flat_params))     # coef / 2 * sum ||W||^2 (the biases add 0)

    def state_dict(self) -> dict[str, np.ndarray]:
        """``{"layers.0.W": (in, h0) copy, "layers.0.b": (h0,) copy, ...}``."""
        return {name: p.copy() for name, p, _ in self.named_parameters()}

    def load_state_dict(self, state: dict) -> None:
        """Copy arrays into the parameters in place; keys and shapes must match exactly."""
        own = {name: p for name, p, _ in self.named_parameters()}
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        problems = []
        if missing:
            problems.append(f"missing keys {missing}")
        if unexpected:
            problems.append(f"unexpected keys {unexpected}")
        for name in own.keys() & state.keys():
            if np.shape(state[name]) != own[name].shape:
                problems.append(f"{name} has shape {np.shape(state[name])}, expected {own[name].shape}")
        check(problems, f"state for {self!r}", CheckpointError)
        for name, p in own.items():
            p[...] = state[name]

    def config(self) -> dict:
        return {"in_features": self.in_features, "hidden_sizes": self.hidden_sizes, "out_features": self.out_features,
                "init": self.init, "dtype": self.dtype.name, "activation": self.activation}

    # Pickle/deepcopy rebuild the views into the flat buffers (pickling views would copy them apart).
    def __getstate__(self) -> dict:
        return {"config": self.config(), "state": self.state_dict()}

    def __setstate__(self, st: dict) -> None:
        self.__init__(**st["config"], seed=0)
        self.load_state_dict(st["state"])

    def __repr__(self) -> str:
        act = "" if self.activation == "relu" else f", activation={self.activation!r}"
        return (f"MLP({self.in_features}, {self.hidden_sizes}, {self.out_features}, init={self.init!r}, "
                f"dtype={self.dtype.name}{act})")


def loss_and_gradient(model: MLP, loss_fn, x, y, *, sample_weight=None, alpha: float = 0.0,
                      ones_column: bool = False) -> float:
    """Forward and backward on one batch: fills the model's gradients and returns the batch loss.

    The loss is ``loss_fn``'s (weighted) mean over the batch plus, with ``alpha > 0``, the L2 penalty
    ``alpha / (2 * sum(w)) * sum ||W||^2`` on the weights (scikit-learn's convention: ``sum(w)`` is the batch
    size without sample weights). The gradients are exactly those of that sum. ``ones_column``: as ``MLP.forward``.
    """
    logits = model.forward(x, ones_column=ones_column)
    if sample_weight is None:
        loss = loss_fn.forward(logits, y)
    else:
        loss = loss_fn.forward(logits, y, sample_weight)
    model.backward(loss_fn.backward(), input_grad=False)
    if alpha:
        total = x.shape[0] if sample_weight is None else float(sample_weight.sum())
        loss += model.l2_penalty(alpha / total)
    return loss


def train_step(model: MLP, loss_fn, optimizer, x, y, *, sample_weight=None, alpha: float = 0.0,
               ones_column: bool = False) -> float:
    """One optimizer step on one batch; returns the batch's loss (before the update)."""
    loss = loss_and_gradient(model, loss_fn, x, y, sample_weight=sample_weight, alpha=alpha, ones_column=ones_column)
    optimizer.step()
    return loss


def with_ones_column(X, dtype) -> np.ndarray:
    """``[X, 1]``: a dense ``(N, D + 1)`` copy of ``X`` in ``dtype`` with a last column of ones, the input of
    ``MLP.forward(..., ones_column=True)`` (one copy per fit or epoch, then no bias add in any step)."""
    X1 = np.empty((X.shape[0], X.shape[1] + 1), dtype=dtype)   # (N, D + 1)
    X1[:, :-1] = X
    X1[:, -1] = 1
    return X1


def train_batches(model: MLP, loss_fn, optimizer, X, y, *, batch_size: int, sample_weight=None,
                  alpha: float = 0.0, order: np.ndarray | None = None, ones_column: bool = False) -> float:
    """One pass over ``(X, y)`` in mini-batches of ``batch_size`` (the last one may be smaller); returns the mean of
    the batch losses weighted by batch size (``sum_b loss_b * n_b / N``).

    Batch ``k`` is rows ``k * batch_size`` to ``(k + 1) * batch_size`` of ``X`` (a slice, a view), or, given
    ``order`` (a permutation of the rows), rows ``order[k * batch_size:(k + 1) * batch_size]``, gathered batch by
    batch: the shuffled data are never copied whole (40 MB for 50,000 x 100 float64), and each batch is still in
    cache when the forward pass reads it. A dense ``X`` is gathered into one buffer that every batch of this pass
    reuses (the model reads a batch only until its step is done), instead of a new array per batch.
    ``ones_column``: ``X`` is ``with_ones_column``'s ``[X, 1]`` (see ``MLP.forward``).
    """
    n = X.shape[0]
    gather = order is not None and isinstance(X, np.ndarray)
    if gather:
        order = np.asarray(order)
        if order.size and not (-n <= order.min() and order.max() < n):
            raise IndexError(f"order holds row indices outside [-{n}, {n}) for {n} rows")
        buffer = np.empty((min(batch_size, n), *X.shape[1:]), dtype=X.dtype)   # (batch_size, D) reused
    total = 0.0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        rows = slice(start, stop) if order is None else order[start:stop]
        # X[rows] written into the buffer; mode="wrap" (same rows as X[rows] once the range is checked above)
        # spares take's default bounds check, which would gather into a temporary and copy it over
        x = X.take(rows, axis=0, out=buffer[:stop - start], mode="wrap") if gather else X[rows]
        w = None if sample_weight is None else sample_weight[rows]
        total += train_step(model, loss_fn, optimizer, x, y[rows], sample_weight=w, alpha=alpha,
                            ones_column=ones_column) * (stop - start)
    return total / n


def train_epoch(model: MLP, loss_fn, optimizer, X: np.ndarray, y: np.ndarray, *, batch_size: int,
                rng: np.random.Generator) -> float:
    """One pass over ``(X, y)`` in shuffled mini-batches (the last one may be smaller); returns the mean loss.

    The data are permuted once per epoch (one copy), so each batch is a slice (a view), not a gather: with
    Part I's tiny batches a gather per batch would add NumPy calls to every step.

    Speed: with tiny batches the cost is per-call overhead, not arithmetic, so a step is kept to ~25 NumPy
    calls: one optimizer update over the flat parameter vector, no input gradient for the first layer, in-place
    gradient writes, method reductions (``a.sum()``, not ``np.mean``). ``benchmarks/bench_part1.py`` measures it
    against scikit-learn (timings: ``benchmarks/RESULTS.md``).
    """
    perm = rng.permutation(X.shape[0])
    Xs = with_ones_column(np.asarray(X)[perm], model.dtype)   # (N, D + 1) shuffled, in the model's dtype, [X, 1]
    ys = np.asarray(y)[perm]                                  # (N,)
    return train_batches(model, loss_fn, optimizer, Xs, ys, batch_size=batch_size, ones_column=True)


def _hidden_activation(name: str):
    """The layer between two affine layers. ReLU works in place there: its input is the affine layer's fresh output
    and its gradient the next affine layer's fresh input gradient, which nothing else reads (a few per cent of a
    training step with hidden width 100: two (N, D) arrays fewer, float rather than bool masks)."""
    return ReLU(inplace=True) if name == "relu" else ACTIVATIONS[name]()


def _is_sparse(x) -> bool:
    """A SciPy sparse matrix/array, recognised without importing SciPy (the engine imports NumPy only)."""
    return hasattr(x, "tocsr") and hasattr(x, "nnz")
