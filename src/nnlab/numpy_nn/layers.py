"""Layers of the from-scratch engine: ``Linear`` and the activations ``ReLU``, ``Tanh``, ``Logistic``, ``Identity``,
each with its forward and backward side by side.

Conventions (shared by every layer here):

- ``forward(x)`` caches exactly what ``backward`` needs, and nothing else.
- ``backward(grad_out)`` takes ``dL/d(output)`` and returns ``dL/d(input)``; it uses only the cache.
- Parameter gradients are *overwritten* by ``backward`` (no accumulation as in PyTorch), and are the sum
  over the batch: the loss already divides by ``N``, so ``dW`` is the gradient of the mean loss.
- Parameters and gradients are updated in place (``W[...] = ...``), never rebound, so that optimizers and
  the ``MLP``'s contiguous parameter buffer keep seeing the same arrays.
- ``Linear`` also takes a SciPy sparse matrix as input (anything with ``@`` that is not an ndarray); the engine
  never imports SciPy itself.
- ``Linear.forward``/``backward`` take an optional ``out=`` array for their result, as NumPy's functions do: the
  ``MLP`` passes the same ones at every training step for its hidden layers (see ``MLP._buffer``).

Only NumPy is imported here (never torch): a test checks it.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from .._validate import one_of, positive_int
from ..errors import ConfigError, check

INITS = ("he", "xavier")
DTYPES = ("float64", "float32")


def resolve_dtype(dtype) -> np.dtype:
    """``np.float64``/``np.float32`` (or their names) -> ``np.dtype``; anything else is a ConfigError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return dt


def resolve_rng(rng, name: str = "rng") -> np.random.Generator:
    """A ``np.random.Generator`` is used as is; an int seed builds one. Randomness is always explicit."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, Integral) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise ConfigError(f"{name} must be a numpy.random.Generator or an int seed >= 0, got {rng!r}")


class Linear:
    """Affine layer ``y = x @ W + b`` with ``W`` of shape ``(in_features, out_features)``.

    ``W`` is stored as ``(in, out)`` so that a batch ``x`` of shape ``(N, in)`` multiplies on the left
    (``torch.nn.Linear.weight`` is the transpose, ``(out, in)``). Biases start at zero.

    Init schemes (weights):
      - ``"he"``: ``N(0, 2 / fan_in)``, He et al. 2015 ("Delving deep into rectifiers"), for ReLU nets;
        the same distribution as ``torch.nn.init.kaiming_normal_(w, nonlinearity="relu")``.
      - ``"xavier"``: ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``, Glorot & Bengio 2010;
        the same as ``torch.nn.init.xavier_uniform_``.
    """

    def __init__(self, in_features: int, out_features: int, *, init: str = "he", rng=0, dtype=np.float64):
        check([p for p in (positive_int("in_features", in_features), positive_int("out_features", out_features),
                           one_of("init", init, INITS)) if p])
        self.in_features, self.out_features, self.init = int(in_features), int(out_features), init
        self.dtype = resolve_dtype(dtype)
        rng = resolve_rng(rng)
        shape = (self.in_features, self.out_features)
        if init == "he":
            W = rng.standard_normal(shape) * np.sqrt(2.0 / self.in_features)
        else:
            a = np.sqrt(6.0 / (self.in_features + self.out_features))
            W = rng.uniform(-a, a, size=shape)
        self.W = W.astype(self.dtype)                              # (D_in, D_out)
        self.b = np.zeros(self.out_features, dtype=self.dtype)    # (D_out,)
        self.dW = np.zeros_like(self.W)                            # (D_in, D_out)
        self.db = np.zeros_like(self.b)                            # (D_out,)
        self._x = None
        self._ones = np.ones(0, dtype=self.dtype)                  # (N,) for db, kept while N stays the same
        self._Wb = self._dWb = None                                # [W; b] and [dW; db] once bound (_bind)

    def forward(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``x @ W + b``, shape ``(N, D_out)``; written into ``out`` if given (as NumPy's ``out=``; dense ``x``)."""
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ConfigError(f"Linear expects input of shape (N, {self.in_features}), got {x.shape}")
        self._x = x                      # (N, D_in): a reference, not a copy; dW needs it
        out = x @ self.W if out is None else np.matmul(x, self.W, out=out)   # (N, D_out)
        out += self.b                    # broadcast (D_out,) over the batch
        return out

    def forward_with_ones(self, x1: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The same ``x @ W + b`` for ``x1 = [x, 1]`` ``(N, D_in + 1)``, an input whose last column is all ones: one
        product ``x1 @ [W; b]`` (and in ``backward`` one product ``x1.T @ grad_out = [dW; db]``), without the bias's
        broadcast add and sum (~4% of a scikit-learn-sized training step: 200 x 64 inputs, 100 hidden units).
        Needs ``b`` stored right after ``W`` (``_bind``: an ``MLP``'s flat buffers)."""
        if self._Wb is None:
            raise ConfigError("Linear.forward_with_ones needs W and b in one buffer, as in an MLP's layers")
        if x1.ndim != 2 or x1.shape[1] != self.in_features + 1:
            raise ConfigError(f"Linear.forward_with_ones expects input of shape (N, {self.in_features + 1}), "
                              f"got {x1.shape}")
        self._x = x1                     # (N, D_in + 1)
        return x1 @ self._Wb if out is None else np.matmul(x1, self._Wb, out=out)   # (N, D_out)

    def backward(self, grad_out: np.ndarray, input_grad: bool = True,
                 out: np.ndarray | None = None) -> np.ndarray | None:
        """Fill ``dW``, ``db``; return ``dL/dx`` (or None with ``input_grad=False``: a first layer needs none),
        written into ``out`` if given."""
        x = self._x                                   # (N, D_in)
        if x is None:
            raise RuntimeError("Linear.backward called before forward")
        if isinstance(x, np.ndarray) and x.shape[1] > self.in_features:   # forward_with_ones: [dW; db] at once
            np.matmul(x.T, grad_out, out=self._dWb)   # (D_in + 1, N) @ (N, D_out) -> (D_in + 1, D_out)
        else:
            if isinstance(x, np.ndarray):
                np.matmul(x.T, grad_out, out=self.dW)  # (D_in, N) @ (N, D_out) -> (D_in, D_out), summed over N
            else:
                self.dW[...] = x.T @ grad_out          # sparse x: SciPy's product returns a dense (D_in, D_out)
            # db = 1^T grad_out, the sum over N as one matrix-vector product: ~3x faster than grad_out.sum(axis=0) on
            # short C-ordered rows ((200, 100): 2.5 against 7.5 us), a step's second-largest cost after the products
            n = grad_out.shape[0]
            self._ones = self._ones if self._ones.shape[0] == n else np.ones(n, dtype=self.dtype)  # (N,) reused
            np.dot(self._ones, grad_out, out=self.db)  # (N,) @ (N, D_out) -> (D_out,); np.dot: less dispatch
        if not input_grad:
            return None
        return np.matmul(grad_out, self.W.T, out=out)  # (N, D_out) @ (D_out, D_in) -> (N, D_in)

    def clear_cache(self) -> None:
        """Drop the reference to the last input (after inference, so that it can be freed)."""
        self._x = None

    def parameters(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(W, dW), (b, db)]``: each parameter with the array its gradient is written into."""
        return [(self.W, self.dW), (self.b, self.db)]

    def _bind(self, params: np.ndarray, grads: np.ndarray, offset: int) -> int:
        """Move W, b, dW, db into views of the flat buffers ``params``/``grads`` from ``offset``; return the end.

        The MLP keeps all its parameters in one contiguous vector so an optimizer updates them in one
        vectorised operation instead of one per array (it matters for small networks and batches).
        """
        start = offset
        for name, gname in (("W", "dW"), ("b", "db")):
            arr = getattr(self, name)
            end = offset + arr.size
            view, gview = params[offset:end].reshape(arr.shape), grads[offset:end].reshape(arr.shape)
            view[...] = arr
            gview[...] = getattr(self, gname)
            setattr(self, name, view)
            setattr(self, gname, gview)
            offset = end
        # W (D_in, D_out) then b (D_out,), row after row: together the (D_in + 1, D_out) matrix [W; b]
        shape = (self.in_features + 1, self.out_features)
        self._Wb, self._dWb = params[start:offset].reshape(shape), grads[start:offset].reshape(shape)
        return offset

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features}, init={self.init!r}, dtype={self.dtype.name})"


class Activation:
    """Base of the parameter-free element-wise layers below: no parameters, a plain repr."""

    def parameters(self) -> list:
        return []

    def clear_cache(self) -> None:
        """Drop what ``forward`` kept for ``backward`` (the cache attributes: set in ``__init__``, named ``_...``)."""
        for name in vars(self):
            if name.startswith("_"):
                setattr(self, name, None)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(Activation):
    """``y = max(x, 0)``; its derivative is taken as 0 at ``x == 0`` (as ``torch.relu``).

    ``inplace=True`` (as ``torch.nn.ReLU(inplace=True)``): ``forward`` writes ``y`` over ``x`` and ``backward``
    writes ``dL/dx`` over ``grad_out``, two (N, D) arrays fewer per step. Only for callers whose arrays nothing
    else reads, as in the ``MLP``: an affine layer's fresh output, the next affine layer's fresh input gradient.
    """

    def __init__(self, inplace: bool = False):
        self.inplace = bool(inplace)
        self._mask = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        # a 1/0 mask in x's dtype, not a bool one: NumPy multiplies two float arrays about twice as fast. Its array
        # is reused while the input's shape stays (a training step would otherwise allocate a new (N, D) one)
        if self._mask is None or self._mask.shape != x.shape or self._mask.dtype != x.dtype:
            self._mask = np.empty_like(x)
        # against a float 0.0: an int 0 takes a slower casting loop (7.3 against 9.5 us for a (200, 100) float64 x)
        np.greater(x, 0.0, out=self._mask)                           # (N, D) 1.0 / 0.0: all that backward needs
        return np.multiply(x, self._mask, out=x if self.inplace else None)           # (N, D)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        if self._mask is None:
            raise RuntimeError("ReLU.backward called before forward")
        return np.multiply(grad_out, self._mask, out=grad_out if self.inplace else None)   # (N, D)

    def __repr__(self) -> str:
        return "ReLU(inplace=True)" if self.inplace else "ReLU()"


class Tanh(Activation):
    """``y = tanh(x)``; ``dy/dx = 1 - y**2``, so backward needs only the cached output."""

    def __init__(self):
        self._y = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = np.tanh(x)             # (N, D)
        return self._y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        if self._y is None:
            raise RuntimeError("Tanh.backward called before forward")
        d = self._y * self._y            # (N, D) y^2
        np.subtract(1.0, d, out=d)       # 1 - y^2 in place (a Python float keeps float32 arrays float32)
        d *= grad_out
        return d


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` without overflow: only ``e = exp(-|x|) <= 1`` is ever computed.

    For ``x >= 0`` the value is ``1 / (1 + e)``, for ``x < 0`` the same value written ``e / (1 + e)``; both keep
    full relative precision (``sigmoid(-40)`` is ``4.2e-18``, not 0 as ``1 - sigmoid(40)`` would give).
    """
    e = np.exp(-np.abs(x))               # (N, D) in (0, 1]
    s = 1.0 / (1.0 + e)                  # sigmoid(|x|)
    return np.where(x >= 0, s, e * s)


class Logistic(Activation):
    """``y = sigmoid(x)`` (scikit-learn's ``"logistic"``); ``dy/dx = y (1 - y)`` from the cached output."""

    def __init__(self):
        self._y = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = sigmoid(x)             # (N, D)
        return self._y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        if self._y is None:
            raise RuntimeError("Logistic.backward called before forward")
        d = 1.0 - self._y                # (N, D)
        d *= self._y                     # y (1 - y)
        d *= grad_out
        return d


class Identity(Activation):
    """``y = x`` (a linear bottleneck); backward passes the gradient through unchanged. Nothing is cached."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out


#: hidden-layer activations under scikit-learn's names (``MLPClassifier(activation=...)``)
ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "logistic": Logistic, "identity": Identity}
