"""Recurrent classifiers written by hand: a vanilla (Elman, tanh) RNN and an LSTM, with fused BPTT.

Both read a sequence ``x (B, T, D)`` and classify it from the last hidden state (the report's Part III):

    vanilla:  h_t = tanh(W_hx x_t + W_hh h_(t-1) + b_h)                 h_0 = 0
    LSTM:     [i; f; g; o]_t = [sigmoid; sigmoid; tanh; sigmoid](W_x x_t + W_h h_(t-1) + b)
              c_t = f_t * c_(t-1) + i_t * g_t,   h_t = o_t * tanh(c_t)    h_0 = c_0 = 0
    head:     o = W_ph h_T + b_o   (logits; softmax lives in the loss)

The LSTM stacks its four gates in the order i, f, g, o (input, forget, candidate, output) along the first
axis of ``W_x (4H, D)``, ``W_h (4H, H)`` and ``b (4H,)`` -- the same order as ``torch.nn.LSTM``, so its
weights copy over block for block (``b = b_ih + b_hh``).

Speed. A training step runs through a custom ``torch.autograd.Function`` per cell:
  * forward: the input projections of all T steps are ONE matmul ``(T*B, D) @ (D, H)``; the recurrence then
    runs in place in a preallocated ``(T+1, B, H)`` buffer (one ``addmm_`` + activations per step) without
    building an autograd graph. tanh is computed as ``2 sigmoid(2a) - 1`` (see ``_tanh_from_sigmoid_``);
  * backward: BPTT walks the stored states in reverse with preallocated buffers (one elementwise op and one
    matmul per step for the vanilla cell), and the weight gradients are ONE matmul each over all steps:
    ``dW_hh = dPre^T @ H_prev``, ``dW_hx = dPre^T @ X`` with ``(T*B)`` rows, ``db_h = dPre.sum(0)``.
  No step reads a value back to the host, so the same code is asynchronous on CUDA. Gradients flow to the
  input ``x`` as well. float32 and float64 are supported (gradcheck runs in float64). Double backward is not
  (``once_differentiable``). ``benchmarks/bench_rnn.py`` measures the step against the report-style loop and
  ``torch.nn.RNN``/``nn.LSTM``.

Gradient-norm analysis. ``forward(x, return_states=True)`` (and ``hidden_states(x)``) use a plain autograd
loop instead and return the list ``[h_1, ..., h_T]`` of the very tensors the recurrence used, so
``h_t.retain_grad()`` or ``torch.autograd.grad(loss, states)`` give the TOTAL ``dL/dh_t`` (through every later
step). Stacking the list into one tensor first would not: the stack is a new node outside the recurrence.

No ``torch.nn`` recurrent module or cell is used here (the assignment forbids them; a test checks the source).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .._validate import nonneg_int, one_of, positive_int
from ..errors import ConfigError, check

__all__ = ["CELLS", "INITS", "INPUT_MODES", "LSTM", "RNNConfig", "RecurrentClassifier", "VanillaRNN", "build_rnn"]

CELLS = ("vanilla", "lstm")
# Initialisation schemes per cell (biases start at 0 unless said otherwise):
#   xavier     -- Glorot & Bengio (2010) uniform on every weight matrix (per gate block for the LSTM);
#                 the report's choice.
#   orthogonal -- recurrent matrix orthogonal (Saxe et al. 2014; per gate block for the LSTM), input/head xavier.
#   identity   -- IRNN (Le, Jaitly & Hinton 2015): W_hh = I, W_hx ~ N(0, 0.001^2), head xavier. Vanilla only.
#   pytorch    -- U(-1/sqrt(H), 1/sqrt(H)) on every weight and bias, like torch.nn.RNN/LSTM and a Linear(H, C) head.
INITS = {
    "vanilla": ("xavier", "orthogonal", "identity", "pytorch"),
    "lstm": ("xavier", "orthogonal", "pytorch"),
}
# How digits are fed (mirrors nnlab.data.palindrome.INPUT_MODES; models/ may not import data/, a test checks
# the two agree): "onehot" -> input_dim 10, "scalar" -> input_dim 1.
INPUT_MODES = ("onehot", "scalar")


# --------------------------------------------------------------------------------------------------------------
# Fused recurrences
# --------------------------------------------------------------------------------------------------------------
def _time_major(x: torch.Tensor) -> torch.Tensor:
    """(B, T, D) -> contiguous (T*B, D): row t*B + b is x[b, t]."""
    B, T, D = x.shape
    return x.transpose(0, 1).reshape(T * B, D)


def _mm_t(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(a @ b)^T`` as a view. Why: when one side of a product is thin (D = 10 input features), MKL's sgemm is
    much faster when the thin dimension is the ROW count of the result (timings: benchmarks/RESULTS.md,
    "Development timing notes moved from code comments")."""
    return torch.mm(a, b).t()


def _consts(ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """0-d ``(1, 2)`` on ``ref``'s device and dtype. Why: in the hot loop a 0-d tensor operand dispatches faster
    than a Python scalar (timings: benchmarks/RESULTS.md)."""
    return ref.new_ones(()), ref.new_full((), 2.0)


def _tanh_from_sigmoid_(s: torch.Tensor, one: torch.Tensor, two: torch.Tensor) -> torch.Tensor:
    """In place: s = sigmoid(2a) -> tanh(a) = 2 sigmoid(2a) - 1.

    Why: on the CPUs this was tuned on (AVX2 builds of torch 2.x), ``torch.tanh`` on float32 runs slower than
    ``torch.sigmoid`` (timings: benchmarks/RESULTS.md), and the tanh in the recurrence is on the critical path
    of every step. Doubling a float is exact, so the only extra rounding is in ``2s - 1``: absolute error
    <= ~2 ulp(1) (~2.4e-7 in float32, ~4.4e-16 in float64), well inside the 1e-5 / 1e-10 agreement the tests
    ask of nn.RNN/nn.LSTM.
    """
    return s.mul_(two).sub_(one)


class _TanhRecurrence(torch.autograd.Function):
    """h_T of the vanilla recurrence; inputs (x (B,T,D), W_hx (H,D), W_hh (H,H), b_h (H,))."""

    @staticmethod
    def forward(ctx, x, W_hx, W_hh, b_h):
        B, T, D = x.shape
        H = W_hh.shape[0]
        x_tm = _time_major(x)  # (T*B, D)
        states = x.new_empty(T + 1, B, H)  # h_0 .. h_T
        states[0].zero_()
        # All input projections in one matmul, doubled for the sigmoid form of tanh (doubling is exact; doubling
        # the small weights is cheaper than beta/alpha scaling of the (T*B, H) result):
        # states[t+1] <- 2 (x_t W_hx^T + b_h)
        one, two = _consts(x)
        torch.addmm(b_h * two, x_tm, (W_hx * two).t(), out=states[1:].view(T * B, H))
        W_hh_T = W_hh.t()
        for t in range(T):
            a2 = states[t + 1]  # (B, H), 2 (x_t W_hx^T + b_h)
            if t > 0:  # h_0 = 0 contributes nothing
                a2.addmm_(states[t], W_hh_T, alpha=2)  # 2 a_t = 2 (x_t W_hx^T + b_h + h_(t-1) W_hh^T)
            _tanh_from_sigmoid_(a2.sigmoid_(), one, two)  # h_t = tanh(a_t)
        ctx.save_for_backward(x_tm, W_hx, W_hh, states)
        return states[T].clone()  # (B, H)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h):
        x_tm, W_hx, W_hh, states = ctx.saved_tensors
        T = states.shape[0] - 1
        B, H = states.shape[1], states.shape[2]
        D = x_tm.shape[1]
        # dPre[t] = dL/d(pre-activation at t) = dh_t * tanh'(.) with tanh' = 1 - h_t^2, all steps at once
        dpre = torch.addcmul(states.new_ones(()), states[1:], states[1:], value=-1)  # (T, B, H) = 1 - h_t^2
        dh = grad_h
        dh_buf = torch.empty_like(states[0])  # (B, H)
        for t in range(T - 1, -1, -1):
            dpre[t].mul_(dh)  # dPre_t = dh_t * (1 - h_t^2)
            if t > 0:
                dh = torch.mm(dpre[t], W_hh, out=dh_buf)  # dh_(t-1) = dPre_t W_hh
        dPre = dpre.view(T * B, H)
        need_x, need_hx, need_hh, need_b = ctx.needs_input_grad
        dx = dW_hx = dW_hh = db_h = None
        if need_x:
            dx = _mm_t(W_hx.t(), dPre.t()).view(T, B, D).transpose(0, 1)  # (B, T, D) = (dPre W_hx) per step
        if need_hx:
            dW_hx = _mm_t(x_tm.t(), dPre).contiguous()  # (H, D) = dPre^T X summed over all T*B rows
        if need_hh:
            # (H, H) = sum_t dPre_t^T h_(t-1); h_0 = 0, so rows of step 0 are skipped
            dW_hh = torch.mm(dpre[1:].view((T - 1) * B, H).t(), states[1:T].reshape((T - 1) * B, H))
        if need_b:
            db_h = dPre.sum(0)  # (H,)
        return dx, dW_hx, dW_hh, db_h


class _LSTMRecurrence(torch.autograd.Function):
    """h_T of the LSTM recurrence; inputs (x (B,T,D), W_x (4H,D), W_h (4H,H), b (4H,)), gates i, f, g, o."""

    @staticmethod
    def forward(ctx, x, W_x, W_h, b):
        B, T, D = x.shape
        H = W_h.shape[1]
        x_tm = _time_major(x)  # (T*B, D)
        # The g rows are doubled (exact) so that ONE sigmoid over all 4H pre-activations gives i, f, o and
        # sigmoid(2 z_g), from which g = tanh(z_g) = 2 sigmoid(2 z_g) - 1 (see _tanh_from_sigmoid_).
        one, two = _consts(x)
        scale = W_x.new_ones(4 * H, 1)
        scale[2 * H : 3 * H] = 2
        W_x2, W_h2_T, b2 = W_x * scale, (W_h * scale).t(), b * scale[:, 0]
        gates = x.new_empty(T, B, 4 * H)  # pre-activations, turned into activations [i f g o] in place
        torch.addmm(b2, x_tm, W_x2.t(), out=gates.view(T * B, 4 * H))  # all input projections at once
        hs = x.new_empty(T + 1, B, H)  # h_0 .. h_T
        cs = x.new_empty(T + 1, B, H)  # c_0 .. c_T
        tanh_c = x.new_empty(T, B, H)  # tanh(c_1) .. tanh(c_T)
        hs[0].zero_()
        cs[0].zero_()
        for t in range(T):
            a = gates[t]  # (B, 4H)
            if t > 0:  # h_0 = 0 contributes nothing
                a.addmm_(hs[t], W_h2_T)
            a.sigmoid_()  # i, f, o; and sigmoid(2 z_g) in the g block
            i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
            _tanh_from_sigmoid_(g, one, two)  # g = tanh(z_g)
            c = torch.mul(f, cs[t], out=cs[t + 1]).addcmul_(i, g)  # c_t = f c_(t-1) + i g
            tc = _tanh_from_sigmoid_(torch.mul(c, two, out=tanh_c[t]).sigmoid_(), one, two)  # tanh(c_t)
            torch.mul(o, tc, out=hs[t + 1])  # h_t = o tanh(c_t)
        ctx.save_for_backward(x_tm, W_x, W_h, gates, hs, cs, tanh_c)
        return hs[T].clone()  # (B, H)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_h):
        x_tm, W_x, W_h, gates, hs, cs, tanh_c = ctx.saved_tensors
        T, B, H4 = gates.shape
        H = H4 // 4
        D = x_tm.shape[1]
        i, f, g, o = (gates[..., k * H : (k + 1) * H] for k in range(4))  # each (T, B, H)
        # Step-independent factors, computed for all t at once (sigmoid' = s(1-s), tanh' = 1-y^2):
        #   dZ_i = dc_t * g_t i_t(1-i_t),  dZ_f = dc_t * c_(t-1) f_t(1-f_t),  dZ_g = dc_t * i_t (1-g_t^2)
        #   dZ_o = dh_t * tanh(c_t) o_t(1-o_t),  and dc_t gets dh_t * o_t (1 - tanh(c_t)^2)
        one = gates.new_ones(())

        def dsigmoid(s):  # s (1 - s) in one op
            return torch.addcmul(s, s, s, value=-1)

        def dtanh(y):  # 1 - y^2 in one op
            return torch.addcmul(one, y, y, value=-1)

        m_ifg = gates.new_empty(T, B, 3, H)
        torch.mul(g, dsigmoid(i), out=m_ifg[:, :, 0])
        torch.mul(cs[:T], dsigmoid(f), out=m_ifg[:, :, 1])
        torch.mul(i, dtanh(g), out=m_ifg[:, :, 2])
        k_o = dsigmoid(o).mul_(tanh_c)  # (T, B, H)
        k_c = dtanh(tanh_c).mul_(o)  # (T, B, H)
        dZ = gates.new_empty(T, B, H4)  # dL/d(pre-activations), gate order i, f, g, o
        dc = gates.new_zeros(B, H)
        dh = grad_h
        dh_buf = gates.new_empty(B, H)
        for t in range(T - 1, -1, -1):
            dc.addcmul_(dh, k_c[t])  # dc_t += dh_t o_t (1 - tanh(c_t)^2)
            torch.mul(m_ifg[t], dc.unsqueeze(1), out=dZ[t, :, : 3 * H].view(B, 3, H))  # dZ_i, dZ_f, dZ_g
            torch.mul(dh, k_o[t], out=dZ[t, :, 3 * H :])  # dZ_o
            if t > 0:
                dc.mul_(f[t])  # dc_(t-1) (carry through the forget gate)
                dh = torch.mm(dZ[t], W_h, out=dh_buf)  # dh_(t-1) = dZ_t W_h
        dZ2 = dZ.view(T * B, H4)
        need_x, need_wx, need_wh, need_b = ctx.needs_input_grad
        dx = dW_x = dW_h = db = None
        if need_x:
            dx = _mm_t(W_x.t(), dZ2.t()).view(T, B, D).transpose(0, 1)  # (B, T, D) = (dZ W_x) per step
        if need_wx:
            dW_x = _mm_t(x_tm.t(), dZ2).contiguous()  # (4H, D) = dZ^T X
        if need_wh:
            # (4H, H) = sum_t dZ_t^T h_(t-1); h_0 = 0, so rows of step 0 are skipped
            dW_h = torch.mm(dZ[1:].view((T - 1) * B, H4).t(), hs[1:T].reshape((T - 1) * B, H))
        if need_b:
            db = dZ2.sum(0)  # (4H,)
        return dx, dW_x, dW_h, db


# --------------------------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------------------------
def _check_sizes(cell: str, input_dim, hidden_dim, num_classes, init, seed, generator) -> None:
    problems = [
        positive_int("input_dim", input_dim),
        positive_int("hidden_dim", hidden_dim),
        positive_int("num_classes", num_classes),
        one_of(f"init for cell {cell!r}", init, INITS[cell]),
        None if seed is None else nonneg_int("seed", seed),
        _generator_problem(seed, generator),
    ]
    check([p for p in problems if p], f"{cell} RNN")


def _generator_problem(seed, generator) -> str | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        return f"generator must be a torch.Generator or None, got {type(generator).__name__}"
    if generator is not None and seed is not None:
        return "give seed or generator, not both (seed=s means generator=torch.Generator().manual_seed(s))"
    return None


class RecurrentClassifier(nn.Module):
    """Base of VanillaRNN and LSTM: input checks, the linear head ``o = W_ph h_T + b_o`` and the switch between
    the fused Function (training, evaluation) and the plain autograd loop (``return_states=True``)."""

    _fused: type[torch.autograd.Function]

    def __init__(self, input_dim: int, hidden_dim: int, num_classes: int):
        super().__init__()
        self.input_dim = int(input_dim)
        self.hidden_dim = int(hidden_dim)
        self.num_classes = int(num_classes)
        self.W_ph = nn.Parameter(torch.empty(num_classes, hidden_dim))  # (C, H)
        self.b_o = nn.Parameter(torch.empty(num_classes))  # (C,)

    def _recurrent_params(self) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def _states_autograd(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[2] != self.input_dim or x.shape[1] < 1:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must have shape (B, T, {self.input_dim}) with T >= 1, got {got}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a float tensor (encode digits first), got {x.dtype}")
        return x.to(self.W_ph.dtype)  # no-op (same tensor) when the dtypes already agree

    def forward(self, x: torch.Tensor, return_states: bool = False):
        """Logits ``(B, C)``; with ``return_states=True`` also the list ``[h_1, ..., h_T]`` (each ``(B, H)``)."""
        x = self._check_input(x)  # (B, T, D)
        if return_states:
            states = self._states_autograd(x)
            h_T = states[-1]
        else:
            h_T = self._fused.apply(x, *self._recurrent_params())  # (B, H)
        logits = torch.addmm(self.b_o, h_T, self.W_ph.t())  # (B, C) = h_T W_ph^T + b_o
        return (logits, states) if return_states else logits

    def hidden_states(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[h_1, ..., h_T]`` as graph nodes of the recurrence (see the module docstring)."""
        return self.forward(x, return_states=True)[1]

    def _init_head(self, init: str, gen: torch.Generator | None) -> None:
        if init == "pytorch":
            bound = 1.0 / math.sqrt(self.hidden_dim)  # nn.Linear(H, C) default
            self.W_ph.uniform_(-bound, bound, generator=gen)
            self.b_o.uniform_(-bound, bound, generator=gen)
        else:
            nn.init.xavier_uniform_(self.W_ph, generator=gen)
            self.b_o.zero_()


def _generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator | None:
    """The generator the initialisation draws from: ``generator``, else a fresh one seeded with ``seed``, else None
    (torch's global RNG)."""
    if generator is not None:
        return generator
    return None if seed is None else torch.Generator().manual_seed(int(seed))


class VanillaRNN(RecurrentClassifier):
    """Elman RNN with tanh, classifying from h_T. Parameters: W_hx (H, D), W_hh (H, H), b_h (H,), W_ph (C, H), b_o (C,).

    ``init``: one of ``INITS["vanilla"]`` (see there). The initialisation draws from ``generator`` (a
    ``torch.Generator``, as every model in ``nnlab.models`` takes) or from a fresh generator seeded with ``seed``,
    never touching the global RNG; with neither it draws from the global RNG.
    """

    _fused = _TanhRecurrence

    def __init__(self, input_dim: int, hidden_dim: int, num_classes: int, *, init: str = "xavier",
                 seed: int | None = None, generator: torch.Generator | None = None):
        _check_sizes("vanilla", input_dim, hidden_dim, num_classes, init, seed, generator)
        super().__init__(input_dim, hidden_dim, num_classes)
        self.init = init
        self.W_hx = nn.Parameter(torch.empty(hidden_dim, input_dim))  # (H, D)
        self.W_hh = nn.Parameter(torch.empty(hidden_dim, hidden_dim))  # (H, H)
        self.b_h = nn.Parameter(torch.empty(hidden_dim))  # (H,)
        self.reset_parameters(seed, generator=generator)

    @torch.no_grad()
    def reset_parameters(self, seed: int | None = None, *, generator: torch.Generator | None = None) -> None:
        gen = _generator(seed, generator)
        init = self.init
        if init == "pytorch":
            bound = 1.0 / math.sqrt(self.hidden_dim)
            for p in (self.W_hx, self.W_hh, self.b_h):
                p.uniform_(-bound, bound, generator=gen)
        else:
            if init == "identity":
                self.W_hx.normal_(0.0, 0.001, generator=gen)
                nn.init.eye_(self.W_hh)
            else:
                nn.init.xavier_uniform_(self.W_hx, generator=gen)
                if init == "orthogonal":
                    nn.init.orthogonal_(self.W_hh, generator=gen)
                else:
                    nn.init.xavier_uniform_(self.W_hh, generator=gen)
            self.b_h.zero_()
        self._init_head(init, gen)

    def _recurrent_params(self):
        return self.W_hx, self.W_hh, self.b_h

    def _states_autograd(self, x):
        B, T, _ = x.shape
        P = torch.matmul(x, self.W_hx.t()) + self.b_h  # (B, T, H) input projections
        h = x.new_zeros(B, self.hidden_dim)  # h_0
        states = []
        for t in range(T):
            h = torch.tanh(P[:, t] + h @ self.W_hh.t())  # (B, H)
            states.append(h)
        return states

    def extra_repr(self) -> str:
        return (f"input_dim={self.input_dim}, hidden_dim={self.hidden_dim}, num_classes={self.num_classes}, "
                f"init={self.init!r}")


class LSTM(RecurrentClassifier):
    """LSTM classifying from h_T. Parameters: W_x (4H, D), W_h (4H, H), b (4H,) with gate blocks in the order
    i, f, g, o (``GATES``), and the head W_ph (C, H), b_o (C,).

    ``forget_bias`` is added to the forget-gate block of ``b`` after initialisation (1.0 by default, after
    Gers et al. 2000 / Jozefowicz et al. 2015: the cell starts by remembering). ``init``: one of ``INITS["lstm"]``.
    """

    GATES = ("i", "f", "g", "o")
    _fused = _LSTMRecurrence

    def __init__(self, input_dim: int, hidden_dim: int, num_classes: int, *, init: str = "xavier",
                 forget_bias: float = 1.0, seed: int | None = None, generator: torch.Generator | None = None):
        _check_sizes("lstm", input_dim, hidden_dim, num_classes, init, seed, generator)
        if isinstance(forget_bias, bool) or not isinstance(forget_bias, (int, float)) or not math.isfinite(forget_bias):
            raise ConfigError(f"forget_bias must be a finite number, got {forget_bias!r}")
        super().__init__(input_dim, hidden_dim, num_classes)
        self.init = init
        self.forget_bias = float(forget_bias)
        self.W_x = nn.Parameter(torch.empty(4 * hidden_dim, input_dim))  # (4H, D)
        self.W_h = nn.Parameter(torch.empty(4 * hidden_dim, hidden_dim))  # (4H, H)
        self.b = nn.Parameter(torch.empty(4 * hidden_dim))  # (4H,)
        self.reset_parameters(seed, generator=generator)

    def gate(self, name: str, which: str = "x") -> torch.Tensor:
        """The block of gate ``name`` (a view): ``(H, D)`` of ``W_x`` (which="x"), ``(H, H)`` of ``W_h`` ("h") or
        ``(H,)`` of ``b`` ("b")."""
        k = self.GATES.index(name)
        H = self.hidden_dim
        return {"x": self.W_x, "h": self.W_h, "b": self.b}[which][k * H : (k + 1) * H]

    @torch.no_grad()
    def reset_parameters(self, seed: int | None = None, *, generator: torch.Generator | None = None) -> None:
        gen = _generator(seed, generator)
        H = self.hidden_dim
        if self.init == "pytorch":
            bound = 1.0 / math.sqrt(H)
            for p in (self.W_x, self.W_h, self.b):
                p.uniform_(-bound, bound, generator=gen)
        else:
            for k in range(4):  # per gate block, so each block's fan-out is H (not 4H)
                nn.init.xavier_uniform_(self.W_x[k * H : (k + 1) * H], generator=gen)
                if self.init == "orthogonal":
                    nn.init.orthogonal_(self.W_h[k * H : (k + 1) * H], generator=gen)
                else:
                    nn.init.xavier_uniform_(self.W_h[k * H : (k + 1) * H], generator=gen)
            self.b.zero_()
        self.b[H : 2 * H] += self.forget_bias
        self._init_head(self.init, gen)

    def _recurrent_params(self):
        return self.W_x, self.W_h, self.b

    def _states_autograd(self, x):
        B, T, _ = x.shape
        H = self.hidden_dim
        P = torch.matmul(x, self.W_x.t()) + self.b  # (B, T, 4H)
        h = x.new_zeros(B, H)
        c = x.new_zeros(B, H)
        states = []
        for t in range(T):
            z = P[:, t] + h @ self.W_h.t()  # (B, 4H)
            i, f = torch.sigmoid(z[:, :H]), torch.sigmoid(z[:, H : 2 * H])
            g, o = torch.tanh(z[:, 2 * H : 3 * H]), torch.sigmoid(z[:, 3 * H :])
            c = f * c + i * g
            h = o * torch.tanh(c)  # (B, H)
            states.append(h)
        return states

    def extra_repr(self) -> str:
        return (f"input_dim={self.input_dim}, hidden_dim={self.hidden_dim}, num_classes={self.num_classes}, "
                f"init={self.init!r}, forget_bias={self.forget_bias}")


# --------------------------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RNNConfig:
    """Which recurrent classifier to build."""

    cell: str = field(default="vanilla", metadata={"help": "recurrent cell: vanilla (tanh Elman RNN) | lstm"})
    hidden_dim: int = field(default=128, metadata={"help": "H: hidden units"})
    init: str = field(default="xavier", metadata={
        "help": "weight init: xavier | orthogonal | pytorch, and identity (IRNN) for the vanilla cell"})
    forget_bias: float = field(default=1.0, metadata={
        "help": "added to the LSTM forget-gate bias at init (ignored by the vanilla cell)"})
    input_mode: str = field(default="onehot", metadata={
        "help": "how digits are fed: onehot (D=10) | scalar (D=1, the report's); encoding is done by the data side"})

    def __post_init__(self):
        problems = [one_of("cell", self.cell, CELLS), positive_int("hidden_dim", self.hidden_dim),
                    one_of("input_mode", self.input_mode, INPUT_MODES)]
        if self.cell in INITS:
            problems.append(one_of(f"init for cell {self.cell!r}", self.init, INITS[self.cell]))
        fb = self.forget_bias
        if isinstance(fb, bool) or not isinstance(fb, (int, float)) or not math.isfinite(fb):
            problems.append(f"forget_bias must be a finite number, got {fb!r}")
        check([p for p in problems if p], "rnn config")


def build_rnn(config: RNNConfig, input_dim: int, num_classes: int, *, seed: int | None = None,
              generator: torch.Generator | None = None) -> RecurrentClassifier:
    """The model ``config`` describes, for inputs with ``input_dim`` features and ``num_classes`` classes; its
    initialisation draws from ``generator`` (or a fresh one seeded with ``seed``)."""
    if not isinstance(config, RNNConfig):
        raise TypeError(f"config must be an RNNConfig, got {type(config).__name__}")
    if config.cell == "lstm":
        return LSTM(input_dim, config.hidden_dim, num_classes, init=config.init,
                    forget_bias=config.forget_bias, seed=seed, generator=generator)
    return VanillaRNN(input_dim, config.hidden_dim, num_classes, init=config.init, seed=seed, generator=generator)
