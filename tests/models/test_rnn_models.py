"""Hand-written VanillaRNN/LSTM: PyTorch's nn.RNN/nn.LSTM are the oracle (same weights -> same logits and
gradients), the fused autograd Functions pass gradcheck in float64, the per-step states give the total
dL/dh_t, configs are validated, and a short training run clears an accuracy floor."""

from __future__ import annotations

import dataclasses
import io
import math
import tokenize
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import nnlab.models.rnn as rnn_mod
from nnlab.data.palindrome import INPUT_MODES as DATA_INPUT_MODES
from nnlab.data.palindrome import encode, make_test_set, palindrome_batch
from nnlab.errors import ConfigError
from nnlab.models.rnn import INITS, INPUT_MODES, LSTM, RNNConfig, VanillaRNN, build_rnn

TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}


def inputs(B=6, T=9, D=10, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, D, generator=g, dtype=dtype).requires_grad_()
    y = torch.randint(0, 7, (B,), generator=g)
    return x, y


# ---------------------------------------------------------------- parameters
def test_vanilla_parameter_names_and_shapes():
    m = VanillaRNN(10, 16, 7)
    shapes = {n: tuple(p.shape) for n, p in m.named_parameters()}
    assert shapes == {"W_hx": (16, 10), "W_hh": (16, 16), "b_h": (16,), "W_ph": (7, 16), "b_o": (7,)}
    assert all(isinstance(p, nn.Parameter) for p in m.parameters())


def test_lstm_parameter_names_shapes_and_gate_blocks():
    m = LSTM(10, 16, 7)
    shapes = {n: tuple(p.shape) for n, p in m.named_parameters()}
    assert shapes == {"W_x": (64, 10), "W_h": (64, 16), "b": (64,), "W_ph": (7, 16), "b_o": (7,)}
    assert LSTM.GATES == ("i", "f", "g", "o")
    assert torch.equal(m.gate("f", "b"), m.b[16:32])
    assert torch.equal(m.gate("o", "h"), m.W_h[48:64])


# ---------------------------------------------------------------- oracle: torch.nn.RNN / nn.LSTM
def copy_from_torch(ours, core: nn.Module, head: nn.Linear):
    with torch.no_grad():
        W_x, W_h = (ours.W_hx, ours.W_hh) if isinstance(ours, VanillaRNN) else (ours.W_x, ours.W_h)
        b = ours.b_h if isinstance(ours, VanillaRNN) else ours.b
        W_x.copy_(core.weight_ih_l0)
        W_h.copy_(core.weight_hh_l0)
        b.copy_(core.bias_ih_l0 + core.bias_hh_l0)  # one bias is enough: they are only ever summed
        ours.W_ph.copy_(head.weight)
        ours.b_o.copy_(head.bias)


def torch_pair(cell, D, H, C, dtype):
    torch.manual_seed(0)
    core = nn.RNN(D, H, nonlinearity="tanh", batch_first=True) if cell == "vanilla" else nn.LSTM(D, H, batch_first=True)
    head = nn.Linear(H, C)
    ours = VanillaRNN(D, H, C) if cell == "vanilla" else LSTM(D, H, C)
    core, head, ours = core.to(dtype), head.to(dtype), ours.to(dtype)
    copy_from_torch(ours, core, head)
    return core, head, ours


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cell", ["vanilla", "lstm"])
@pytest.mark.parametrize("return_states", [False, True])  # fused Function / plain autograd loop
@pytest.mark.parametrize("T", [1, 9])
def test_matches_torch_recurrent_module(cell, dtype, return_states, T):
    D, H, C = 10, 24, 7
    core, head, ours = torch_pair(cell, D, H, C, dtype)
    x, y = inputs(T=T, D=D, dtype=dtype)
    x_ref = x.detach().clone().requires_grad_()

    out, _ = core(x_ref)
    ref_logits = head(out[:, -1])
    F.cross_entropy(ref_logits, y).backward()

    logits = ours(x, return_states=True)[0] if return_states else ours(x)
    F.cross_entropy(logits, y).backward()

    tol = TOL[dtype]
    torch.testing.assert_close(logits, ref_logits, **tol)
    torch.testing.assert_close(x.grad, x_ref.grad, **tol)
    W_x, W_h, b = (ours.W_hx, ours.W_hh, ours.b_h) if cell == "vanilla" else (ours.W_x, ours.W_h, ours.b)
    torch.testing.assert_close(W_x.grad, core.weight_ih_l0.grad, **tol)
    torch.testing.assert_close(W_h.grad, core.weight_hh_l0.grad, **tol)
    torch.testing.assert_close(b.grad, core.bias_ih_l0.grad, **tol)
    torch.testing.assert_close(b.grad, core.bias_hh_l0.grad, **tol)
    torch.testing.assert_close(ours.W_ph.grad, head.weight.grad, **tol)
    torch.testing.assert_close(ours.b_o.grad, head.bias.grad, **tol)


@pytest.mark.parametrize("cls", [VanillaRNN, LSTM])
def test_fused_and_autograd_paths_agree_at_benchmark_size(cls):
    """The full-size case (T=20, H=128, B=128, one-hot) in float32, where rounding has most room to grow."""
    m = cls(10, 128, 10, seed=1)
    digits, y = palindrome_batch(20, 128, generator=torch.Generator().manual_seed(0))
    x = encode(digits)
    g_fused = torch.autograd.grad(F.cross_entropy(m(x), y), list(m.parameters()))
    g_ref = torch.autograd.grad(F.cross_entropy(m(x, return_states=True)[0], y), list(m.parameters()))
    for a, b in zip(g_fused, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cls", [VanillaRNN, LSTM])
def test_fused_path_on_cuda_matches_cpu(cls, dtype):
    m = cls(10, 32, 7, seed=0).to(dtype)
    x, y = inputs(T=7, D=10, dtype=dtype)
    m_cuda = cls(10, 32, 7, seed=0).to(device="cuda", dtype=dtype)
    x_cuda = x.detach().cuda().requires_grad_()
    F.cross_entropy(m(x), y).backward()
    F.cross_entropy(m_cuda(x_cuda), y.cuda()).backward()
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else TOL[dtype]  # TF32 is off by default for mm
    torch.testing.assert_close(x_cuda.grad.cpu(), x.grad, **tol)
    for p, q in zip(m.parameters(), m_cuda.parameters()):
        torch.testing.assert_close(q.grad.cpu(), p.grad, **tol)


@pytest.mark.parametrize("cls", [VanillaRNN, LSTM])
def test_frozen_parameters_get_no_grad_and_others_stay_right(cls):
    m = cls(5, 8, 3, seed=0).double()
    x, y = inputs(B=4, T=5, D=5, dtype=torch.float64)
    W_h = m.W_hh if cls is VanillaRNN else m.W_h
    W_h.requires_grad_(False)
    F.cross_entropy(m(x), y % 3).backward()
    assert W_h.grad is None
    grads = {n: p.grad.clone() for n, p in m.named_parameters() if p.requires_grad}
    m.zero_grad()
    F.cross_entropy(m(x, return_states=True)[0], y % 3).backward()
    for n, p in m.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(p.grad, grads[n], **TOL[torch.float64])


# ---------------------------------------------------------------- gradcheck (float64)
@pytest.mark.parametrize("fn, gates", [(rnn_mod._TanhRecurrence, 1), (rnn_mod._LSTMRecurrence, 4)])
@pytest.mark.parametrize("T", [1, 2, 5])
def test_gradcheck_fused_functions(fn, gates, T):
    g = torch.Generator().manual_seed(T)
    B, D, H = 3, 4, 5
    args = (
        torch.randn(B, T, D, generator=g, dtype=torch.float64),
        torch.randn(gates * H, D, generator=g, dtype=torch.float64),
        0.5 * torch.randn(gates * H, H, generator=g, dtype=torch.float64),
        torch.randn(gates * H, generator=g, dtype=torch.float64),
    )
    args = tuple(a.requires_grad_() for a in args)
    assert torch.autograd.gradcheck(fn.apply, args)


@pytest.mark.parametrize("cls", [VanillaRNN, LSTM])
def test_gradcheck_whole_model(cls):
    m = cls(3, 4, 2, init="pytorch", seed=0).double()
    x = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    names = [n for n, _ in m.named_parameters()]
    params = [p.detach().requires_grad_() for p in m.parameters()]

    def f(inp, *ps):
        return torch.func.functional_call(m, dict(zip(names, ps)), (inp,))

    assert torch.autograd.gradcheck(f, (x, *params))


# ---------------------------------------------------------------- states for the gradient-norm analysis
@pytest.mark.parametrize("cls", [VanillaRNN, LSTM])
def test_return_states_list_and_hidden_states(cls):
    m = cls(10, 8, 4, seed=0)
    x, _ = inputs(B=3, T=6, D=10)
    logits, states = m(x, return_states=True)
    assert isinstance(states, list) and len(states) == 6
    assert all(h.shape == (3, 8) for h in states)
    torch.testing.assert_close(logits, m(x))
    torch.testing.assert_close(logits, states[-1] @ m.W_ph.T + m.b_o)
    hs = m.hidden_states(x)
    for a, b in zip(hs, states):
        torch.testing.assert_close(a, b)


def test_state_gradients_are_total_derivatives_vanilla():
    """autograd.grad on the returned states gives dL/dh_t through all later steps: check BPTT by hand."""
    m = VanillaRNN(10, 8, 4, seed=0).double()
    x, y = inputs(B=3, T=6, D=10, dtype=torch.float64)
    logits, states = m(x, return_states=True)
    loss = F.cross_entropy(logits, y % 4)
    dh = torch.autograd.grad(loss, states, retain_graph=True)
    p = torch.softmax(logits, 1)
    dlogits = (p - F.one_hot(y % 4, 4).double()) / 3  # fused softmax-CE gradient, mean over the batch
    torch.testing.assert_close(dh[-1], dlogits @ m.W_ph, **TOL[torch.float64])
    for t in range(5, 0, -1):  # dh_(t-1) = (dh_t * (1 - h_t^2)) W_hh
        torch.testing.assert_close(dh[t - 1], (dh[t] * (1 - states[t] ** 2)) @ m.W_hh, **TOL[torch.float64])
    # the gradient of an early state is not the zero "direct" part: it travelled back through the recurrence
    assert float(dh[0].norm()) > 0


def test_state_retain_grad_works():
    m = LSTM(10, 8, 4, seed=0)
    x, y = inputs(B=3, T=6, D=10)
    logits, states = m(x, return_states=True)
    for h in states:
        h.retain_grad()
    F.cross_entropy(logits, y % 4).backward()
    norms = [float(h.grad.norm()) for h in states]
    assert all(math.isfinite(v) and v > 0 for v in norms)


# ---------------------------------------------------------------- misc behaviour
def test_eval_no_grad_and_dtype_follow_model():
    m = VanillaRNN(10, 8, 4, seed=0)
    x, _ = inputs(B=3, T=6, D=10)
    with torch.no_grad():
        a = m(x)
    assert not a.requires_grad
    m64 = VanillaRNN(10, 8, 4, seed=0).double()
    assert m64(x).dtype == torch.float64  # float32 input follows the model's dtype


@pytest.mark.parametrize("cls", [VanillaRNN, LSTM])
def test_bad_inputs(cls):
    m = cls(10, 8, 4)
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, 10\) with T >= 1, got \(3, 5, 9\)"):
        m(torch.zeros(3, 5, 9))
    with pytest.raises(ValueError, match=r"got \(3, 10\)"):
        m(torch.zeros(3, 10))
    with pytest.raises(TypeError, match="float tensor"):
        m(torch.zeros(3, 5, 10, dtype=torch.int64))


def test_seeded_init_is_reproducible_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b, c = VanillaRNN(10, 8, 4, seed=3), VanillaRNN(10, 8, 4, seed=3), VanillaRNN(10, 8, 4, seed=4)
    assert torch.equal(state, torch.random.get_rng_state())
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.W_hh, c.W_hh)


def test_init_schemes():
    eye = torch.eye(16)
    assert torch.equal(VanillaRNN(10, 16, 4, init="identity", seed=0).W_hh.detach(), eye)
    W = VanillaRNN(10, 16, 4, init="orthogonal", seed=0).W_hh.detach()
    torch.testing.assert_close(W @ W.T, eye, atol=1e-5, rtol=0)
    m = VanillaRNN(10, 16, 4, init="pytorch", seed=0)
    # U(-1/sqrt(16), 1/sqrt(16)) for weights and biases alike
    assert float(m.W_hh.detach().abs().max()) <= 1 / 4 and float(m.b_h.detach().abs().max()) > 0
    lstm = LSTM(10, 16, 4, init="orthogonal", forget_bias=2.0, seed=0)
    for k in range(4):
        blk = lstm.W_h.detach()[16 * k : 16 * (k + 1)]
        torch.testing.assert_close(blk @ blk.T, eye, atol=1e-5, rtol=0)
    assert torch.equal(lstm.gate("f", "b").detach(), torch.full((16,), 2.0))
    for name in ("i", "g", "o"):
        assert torch.equal(lstm.gate(name, "b").detach(), torch.zeros(16))


# ---------------------------------------------------------------- config and build
def test_input_modes_agree_with_data_module():
    assert INPUT_MODES == DATA_INPUT_MODES


def test_build_rnn():
    assert isinstance(build_rnn(RNNConfig(), 10, 10), VanillaRNN)
    m = build_rnn(RNNConfig(cell="lstm", hidden_dim=32, init="orthogonal", forget_bias=0.5), 1, 10, seed=0)
    assert isinstance(m, LSTM) and m.hidden_dim == 32 and m.init == "orthogonal" and m.forget_bias == 0.5
    assert m.W_x.shape == (128, 1)
    with pytest.raises(TypeError, match="config must be an RNNConfig"):
        build_rnn({"cell": "lstm"}, 10, 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        RNNConfig().hidden_dim = 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(cell="gru"), "unknown cell 'gru'; valid: vanilla, lstm"),
        (dict(hidden_dim=0), "hidden_dim must be a positive integer, got 0"),
        (dict(hidden_dim=12.5), "hidden_dim must be a positive integer, got 12.5"),
        (dict(init="he"), "unknown init for cell 'vanilla' 'he'; valid: xavier, orthogonal, identity, pytorch"),
        (dict(cell="lstm", init="identity"),
         "unknown init for cell 'lstm' 'identity'; valid: xavier, orthogonal, pytorch"),
        (dict(forget_bias=float("nan")), "forget_bias must be a finite number, got nan"),
        (dict(input_mode="bits"), "unknown input_mode 'bits'; valid: onehot, scalar"),
    ],
)
def test_rnn_config_bad_values(kwargs, message):
    with pytest.raises(ConfigError) as err:
        RNNConfig(**kwargs)
    assert message in str(err.value)


def test_rnn_config_lists_every_problem():
    with pytest.raises(ConfigError) as err:
        RNNConfig(cell="lstm", hidden_dim=-1, init="identity")
    text = str(err.value)
    assert "hidden_dim" in text and "init" in text


@pytest.mark.parametrize("cls", [VanillaRNN, LSTM])
def test_model_constructor_validation(cls):
    with pytest.raises(ConfigError, match="hidden_dim must be a positive integer, got 0"):
        cls(10, 0, 4)
    with pytest.raises(ConfigError, match="input_dim must be a positive integer"):
        cls(0, 8, 4)
    with pytest.raises(ConfigError, match="unknown init"):
        cls(10, 8, 4, init="zeros")
    with pytest.raises(ConfigError, match="seed must be an integer >= 0, got -1"):
        cls(10, 8, 4, seed=-1)
    assert set(INITS) == {"vanilla", "lstm"}


@pytest.mark.parametrize("cell", ["vanilla", "lstm"])
def test_a_generator_or_a_seed_draws_the_same_weights_without_the_global_rng(cell):
    """Like every model in nnlab.models, the RNNs take a torch.Generator; seed=s is generator=Generator().manual_seed(s)."""
    cfg = RNNConfig(cell=cell, hidden_dim=8)
    state = torch.random.get_rng_state()
    a = build_rnn(cfg, 10, 4, seed=3)
    b = build_rnn(cfg, 10, 4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG was not touched
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    cls = LSTM if cell == "lstm" else VanillaRNN
    with pytest.raises(ConfigError, match="give seed or generator, not both"):
        cls(10, 8, 4, seed=3, generator=torch.Generator())
    with pytest.raises(ConfigError, match="generator must be a torch.Generator or None, got int"):
        cls(10, 8, 4, generator=3)


# ---------------------------------------------------------------- source: no torch recurrent modules
FORBIDDEN_NAMES = {"RNNCell", "LSTMCell", "GRU", "GRUCell", "RNNBase", "_VF", "rnn_tanh", "rnn_tanh_cell",
                   "lstm_cell", "_thnn_fused_lstm_cell"}


def forbidden_uses(src: str) -> list[str]:
    """Uses of torch's recurrent modules/kernels in code tokens (docstrings and comments may name nn.LSTM when
    they explain the gate order)."""
    toks = [t for t in tokenize.generate_tokens(io.StringIO(src).readline)
            if t.type in (tokenize.NAME, tokenize.OP)]
    names = [t.string for t in toks]
    found = [f"{n} (line {t.start[0]})" for n, t in zip(names, toks) if n in FORBIDDEN_NAMES]
    for k, tok in enumerate(names):
        if tok in ("RNN", "LSTM", "lstm", "rnn") and k > 0 and names[k - 1] == ".":
            found.append(f".{tok} (line {toks[k].start[0]})")
        if tok in ("RNN", "LSTM") and "import" in names[max(0, k - 8) : k]:
            found.append(f"import of {tok} (line {toks[k].start[0]})")
    return found


def test_models_source_uses_no_torch_recurrent_module():
    assert forbidden_uses(Path(rnn_mod.__file__).read_text()) == []


@pytest.mark.parametrize("snippet", [
    "core = nn.LSTM(3, 4)", "core = torch.nn.RNN(3, 4)", "from torch.nn import LSTM", "from torch.nn import RNN as R",
    "cell = nn.RNNCell(3, 4)", "c = LSTMCell(3, 4)", "h = torch._VF.rnn_tanh(x)",
])
def test_source_check_catches_forbidden_uses(snippet):
    assert forbidden_uses(snippet + "\n")


def test_source_check_allows_mentions_in_text():
    assert forbidden_uses('"""Same gate order as torch.nn.LSTM."""\n# unlike nn.RNNCell\nclass LSTM: pass\n') == []


# ---------------------------------------------------------------- training floor
@pytest.mark.parametrize("cls", [VanillaRNN, LSTM])
def test_learns_short_palindromes(cls):
    """T=5, one-hot: >= 99% on all 1000 palindromes after 200 Adam steps (~1 s on one CPU core)."""
    torch.manual_seed(0)
    T = 5
    m = cls(10, 32, 10, seed=0)
    g = torch.Generator().manual_seed(0)
    x_test, y_test = make_test_set(T, 1000, seed=123)
    x_test = encode(x_test)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(200):
        digits, y = palindrome_batch(T, 128, generator=g)
        loss = F.cross_entropy(m(encode(digits)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        acc = (m(x_test).argmax(1) == y_test).float().mean().item()
    assert acc >= 0.99, f"{cls.__name__} test accuracy {acc:.3f} < 0.99"
