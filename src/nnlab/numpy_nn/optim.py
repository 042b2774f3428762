"""SGD (momentum, Nesterov) and Adam that update NumPy arrays in place, with PyTorch's update rules.

``params`` is a list of ``(param, grad)`` pairs (``MLP.parameters()``): the optimizer reads ``grad`` and writes
``param`` in place. ``lr`` is a plain attribute, so a schedule may set it before every ``step()``.
``state_dict()``/``load_state_dict()`` carry the buffers and the step count, so training resumes exactly.

When the pairs are consecutive views of one parameter vector and one gradient vector (as the ``MLP`` lays
them out), the update runs once over the whole vector instead of once per array; the result is the same.

Their updates are NumPy calls into a scratch buffer, never a SciPy BLAS call: SciPy ships its own OpenBLAS, whose
thread pool and NumPy's then compete for the same cores. With both libraries at their default thread count on a
2-core machine, a SciPy ``daxpy`` in each step made a training epoch ~40x slower.
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import in_range, nonneg_float, one_of, positive_float
from ..errors import CheckpointError, ConfigError, check


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def _flat_base(arrays: list[np.ndarray]) -> np.ndarray | None:
    """The 1-D contiguous buffer that ``arrays`` tile exactly, in order, or None."""
    base = arrays[0].base
    if not isinstance(base, np.ndarray) or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    pos, item = _address(base), base.itemsize
    for a in arrays:
        if a.base is not base or not a.flags.c_contiguous or _address(a) != pos or a.dtype != base.dtype:
            return None
        pos += a.size * item
    return base if pos == _address(base) + base.size * item else None


def _check_params(params) -> list[tuple[np.ndarray, np.ndarray]]:
    try:
        pairs = [(p, g) for p, g in params]
    except (TypeError, ValueError):
        raise ConfigError(f"params must be a list of (param, grad) array pairs, got {type(params).__name__}") from None
    if not pairs:
        raise ConfigError("params is empty: the optimizer has nothing to update")
    for i, (p, g) in enumerate(pairs):
        if not isinstance(p, np.ndarray) or not isinstance(g, np.ndarray) or p.shape != g.shape:
            raise ConfigError(f"params[{i}] must be a (param, grad) pair of arrays of one shape, got "
                              f"({type(p).__name__}, {type(g).__name__}) with shapes "
                              f"{getattr(p, 'shape', None)} and {getattr(g, 'shape', None)}")
        if p.dtype.kind != "f" or not p.flags.writeable:
            raise ConfigError(f"params[{i}] must be a writeable float array, got dtype {p.dtype}")
    return pairs


class Optimizer:
    """Shared bookkeeping: the (param, grad) groups, per-param state views, the step count."""

    state_names: tuple[str, ...] = ()

    def __init__(self, params, lr: float):
        self.params = _check_params(params)
        self.lr = lr
        self.step_count = 0
        P = _flat_base([p for p, _ in self.params])
        G = _flat_base([g for _, g in self.params])
        # groups: what step() iterates over; one (P, G) pair when the params tile one buffer
        self._groups = [(P, G)] if P is not None and G is not None else list(self.params)
        # state[name][k] belongs to group k; state_views[name][i] is param i's view of it (for state_dict)
        self._state = {s: [np.zeros_like(p) for p, _ in self._groups] for s in self.state_names}
        self._views = {s: self._split(bufs) for s, bufs in self._state.items()}

    def _split(self, bufs: list[np.ndarray]) -> list[np.ndarray]:
        if len(self._groups) == len(self.params):
            return bufs
        flat, out, off = bufs[0], [], 0
        for p, _ in self.params:
            out.append(flat[off:off + p.size].reshape(p.shape))
            off += p.size
        return out

    def step(self) -> None:
        raise NotImplementedError

    def hyperparameters(self) -> dict:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Copies of the buffers (one array per parameter, in ``params`` order), the step count and hyperparameters."""
        return {"step": self.step_count, **self.hyperparameters(),
                "state": {s: [v.copy() for v in views] for s, views in self._views.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore buffers and step count in place (hyperparameters such as ``lr`` stay as constructed)."""
        try:
            step, bufs = int(state["step"]), state["state"]
            if set(bufs) != set(self.state_names):
                raise CheckpointError(f"optimizer state has buffers {sorted(bufs)}, expected {sorted(self.state_names)}")
            for s in self.state_names:
                if len(bufs[s]) != len(self.params):
                    raise CheckpointError(f"optimizer state {s!r} has {len(bufs[s])} arrays, expected {len(self.params)}")
                for i, (view, arr) in enumerate(zip(self._views[s], bufs[s])):
                    if np.shape(arr) != view.shape:
                        raise CheckpointError(f"optimizer state {s!r}[{i}] has shape {np.shape(arr)}, expected {view.shape}")
        except (KeyError, TypeError) as e:
            raise CheckpointError(f"malformed optimizer state (missing or wrong entry {e})") from None
        for s in self.state_names:
            for view, arr in zip(self._views[s], bufs[s]):
                view[...] = arr
        self.step_count = step


class SGD(Optimizer):
    """Stochastic gradient descent with momentum (Nesterov optional), in one of two equivalent forms.

    ``buffer="gradient"`` (default): PyTorch's ``torch.optim.SGD`` update (dampening 0)::

        g = grad + weight_decay * param            # L2 penalty folded into the gradient
        buf = momentum * buf + g                   # buf starts at 0, so buf_1 = g_1
        g = g + momentum * buf  if nesterov else buf    (plain g when momentum == 0)
        param -= lr * g

    ``buffer="step"``: the velocity form of Sutskever et al. 2013 that scikit-learn's MLP uses::

        v = momentum * v - lr * g                  # v starts at 0; it holds steps, lr already applied
        param += momentum * v - lr * g  if nesterov else v

    The two give the same parameters while ``lr`` is constant (``v = -lr * buf``). When a schedule changes
    ``lr``, "gradient" applies the new rate to the whole accumulated buffer at once, "step" only to new
    gradients. "step" allows ``momentum = 1`` (scikit-learn's range is [0, 1]).
    """

    BUFFERS = ("gradient", "step")

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, *, buffer: str = "gradient"):
        problems = [p for p in (positive_float("lr", lr), one_of("buffer", buffer, self.BUFFERS),
                                in_range("momentum", momentum, 0.0, 1.0, hi_open=buffer != "step"),
                                nonneg_float("weight_decay", weight_decay)) if p]
        if nesterov and not (isinstance(momentum, (int, float)) and momentum > 0):
            problems.append(f"nesterov=True needs momentum > 0, got momentum={momentum!r}")
        check(problems, "SGD settings")
        self.momentum, self.nesterov, self.weight_decay = float(momentum), bool(nesterov), float(weight_decay)
        self.buffer = buffer
        if self.momentum > 0:
            self.state_names = ("momentum_buffer",) if buffer == "gradient" else ("velocity",)
        super().__init__(params, lr)
        self._tmp = [np.empty_like(p) for p, _ in self._groups]   # scratch, so that a step allocates nothing

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov, "weight_decay": self.weight_decay,
                "buffer": self.buffer}

    def step(self) -> None:
        lr, mu, wd = self.lr, self.momentum, self.weight_decay   # Python floats keep float32 arrays float32
        bufs = self._state.get(self.state_names[0]) if self.state_names else None
        for k, (p, g) in enumerate(self._groups):
            if wd:
                g = g + wd * p
            tmp = self._tmp[k]
            if not mu:
                np.multiply(g, lr, out=tmp)
                p -= tmp                                  # p -= lr g
            elif self.buffer == "gradient":
                buf = bufs[k]
                buf *= mu
                buf += g                                  # buf = mu buf + g
                if self.nesterov:
                    np.multiply(buf, mu, out=tmp)
                    tmp += g
                    tmp *= lr
                    p -= tmp                              # p -= lr (g + mu buf)
                else:
                    np.multiply(buf, lr, out=tmp)
                    p -= tmp                              # p -= lr buf
            else:
                v = bufs[k]
                np.multiply(g, lr, out=tmp)               # lr g, once for both updates
                v *= mu
                v -= tmp                                  # v = mu v - lr g
                if self.nesterov:
                    p -= tmp
                    np.multiply(v, mu, out=tmp)
                    p += tmp                              # p += mu v - lr g
                else:
                    p += v
        self.step_count += 1


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with L2 weight decay folded into the gradient (not AdamW)::

        g = grad + weight_decay * param
        m = beta1 * m + (1 - beta1) * g ;  v = beta2 * v + (1 - beta2) * g**2      (t = step count, from 1)

    then, with ``eps_on="v_hat"`` (default; PyTorch's ``torch.optim.Adam``, the paper's Algorithm 1)::

        param -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    or, with ``eps_on="v"`` (the paper's reordering at the end of its section 2, used by scikit-learn)::

        param -= lr * sqrt(1 - beta2**t) / (1 - beta1**t) * m / (sqrt(v) + eps)

    The forms differ only in where ``eps`` enters: next to the bias-corrected ``sqrt(v_hat)`` or the raw ``sqrt(v)``.
    """

    state_names = ("exp_avg", "exp_avg_sq")
    EPS_ON = ("v_hat", "v")

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, *, eps_on: str = "v_hat"):
        problems = [positive_float("lr", lr), nonneg_float("eps", eps), nonneg_float("weight_decay", weight_decay),
                    one_of("eps_on", eps_on, self.EPS_ON)]
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            b1 = b2 = None
            problems.append(f"betas must be a pair (beta1, beta2), got {betas!r}")
        if b1 is not None:
            problems += [in_range("betas[0]", b1, 0.0, 1.0, hi_open=True), in_range("betas[1]", b2, 0.0, 1.0, hi_open=True)]
        check([p for p in problems if p], "Adam settings")
        self.betas, self.eps, self.weight_decay = (float(b1), float(b2)), float(eps), float(weight_decay)
        self.eps_on = eps_on
        super().__init__(params, lr)
        self._tmp = [np.empty_like(p) for p, _ in self._groups]   # scratch, so that a step allocates nothing

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay,
                "eps_on": self.eps_on}

    def step(self) -> None:
        self.step_count += 1
        t, (b1, b2), wd, eps = self.step_count, self.betas, self.weight_decay, self.eps
        sqrt_bc2 = math.sqrt(1.0 - b2 ** t)  # Python floats keep float32 arrays float32
        on_v_hat = self.eps_on == "v_hat"
        step_size = self.lr / (1.0 - b1 ** t) if on_v_hat else self.lr * sqrt_bc2 / (1.0 - b1 ** t)
        for k, (p, g) in enumerate(self._groups):
            if wd:
                g = g + wd * p
            m, v, tmp = self._state["exp_avg"][k], self._state["exp_avg_sq"][k], self._tmp[k]
            m *= b1
            np.multiply(g, 1.0 - b1, out=tmp)
            m += tmp                                  # m = b1 m + (1 - b1) g
            np.multiply(g, g, out=tmp)
            v *= b2
            tmp *= 1.0 - b2
            v += tmp                                  # v = b2 v + (1 - b2) g^2
            np.sqrt(v, out=tmp)
            if on_v_hat:
                tmp /= sqrt_bc2                       # sqrt(v_hat) = sqrt(v) / sqrt(1 - b2^t)
            tmp += eps
            np.divide(m, tmp, out=tmp)
            tmp *= step_size
            p -= tmp                                  # p -= step_size * m / (sqrt(.) + eps)
