"""Training-step speed of the hand-written recurrent models against the obvious alternatives, side by side.

One process, one fixed batch (encoding and data generation excluded), every model timed in the same rounds:
  ours        nnlab.models.rnn.VanillaRNN (fused forward/BPTT autograd.Function)
  naive       the report's style: a Python loop doing x_t @ W_hx.T + h @ W_hh.T + b_h, tanh, autograd through it
              (the head is applied to h_T only, so the naive module is not charged for per-step outputs)
  nn.RNN      torch.nn.RNN(tanh, batch_first) + nn.Linear head on the last step
  lstm ours   nnlab.models.rnn.LSTM (fused)            (bonus)
  nn.LSTM     torch.nn.LSTM(batch_first) + nn.Linear   (bonus)
A step is: zero_grad, forward, cross-entropy, backward, RMSprop(lr=1e-3) update. Each round runs ``--steps``
steps of every model in turn (warm-up rounds first, not recorded); the figure per model is the median over
rounds of ms/step, so a burst of load from other processes hits every model alike.

Prints a table, then ONE JSON object on the last line. Threads: torch's default unless ``--threads``.
Usage: python benchmarks/bench_rnn.py [--T 20 --hidden 128 --batch 128 --steps 20 --repeats 15 --out f.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F

from nnlab.data.palindrome import encode, palindrome_batch
from nnlab.models.rnn import LSTM, VanillaRNN


class NaiveRNN(nn.Module):
    """The report's vanilla RNN: per-step matmuls in a Python loop, autograd records every op."""

    def __init__(self, input_dim: int, hidden_dim: int, num_classes: int):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.W_hx = nn.Parameter(nn.init.xavier_uniform_(torch.empty(hidden_dim, input_dim)))
        self.W_hh = nn.Parameter(nn.init.xavier_uniform_(torch.empty(hidden_dim, hidden_dim)))
        self.b_h = nn.Parameter(torch.zeros(hidden_dim))
        self.W_ph = nn.Parameter(nn.init.xavier_uniform_(torch.empty(num_classes, hidden_dim)))
        self.b_o = nn.Parameter(torch.zeros(num_classes))

    def forward(self, x):  # x (B, T, D)
        h = torch.zeros(x.shape[0], self.hidden_dim, dtype=x.dtype)
        for t in range(x.shape[1]):
            h = torch.tanh(x[:, t] @ self.W_hx.T + h @ self.W_hh.T + self.b_h)  # (B, H)
        return h @ self.W_ph.T + self.b_o  # (B, C)


class TorchRecurrent(nn.Module):
    """torch.nn.RNN / nn.LSTM (batch_first) + a Linear head on the last hidden state."""

    def __init__(self, core: nn.Module, hidden_dim: int, num_classes: int):
        super().__init__()
        self.core = core
        self.head = nn.Linear(hidden_dim, num_classes)

    def forward(self, x):
        out, _ = self.core(x)  # (B, T, H)
        return self.head(out[:, -1])


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, default=20, help="input length (digits seen)")
    ap.add_argument("--hidden", type=int, default=128, help="hidden units H")
    ap.add_argument("--batch", type=int, default=128, help="batch size B")
    ap.add_argument("--steps", type=int, default=20, help="training steps per model per round")
    ap.add_argument("--repeats", type=int, default=15, help="timed rounds (median taken)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--no-lstm", action="store_true", help="skip the LSTM pair")
    ap.add_argument("--out", default=None, help="also write the JSON object to this file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    T, H, B, D, C = args.T, args.hidden, args.batch, 10, 10
    digits, y = palindrome_batch(T, B, generator=torch.Generator().manual_seed(0), device="cpu")
    x = encode(digits, "onehot")  # (B, T, 10) float32

    models = {
        "ours": VanillaRNN(D, H, C, seed=0),
        "naive": NaiveRNN(D, H, C),
        "nn.RNN": TorchRecurrent(nn.RNN(D, H, nonlinearity="tanh", batch_first=True), H, C),
    }
    if not args.no_lstm:
        models["lstm_ours"] = LSTM(D, H, C, seed=0)
        models["nn.LSTM"] = TorchRecurrent(nn.LSTM(D, H, batch_first=True), H, C)
    steps = {name: make_step(m, x, y) for name, m in models.items()}

    times: dict[str, list[float]] = {name: [] for name in models}
    load_before = os.getloadavg()[0]  # other processes on a shared box skew everything; keep it with the figures
    for r in range(args.warmup + args.repeats):
        for name, step in steps.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            ms = (time.perf_counter() - t0) * 1e3 / args.steps
            if r >= args.warmup:
                times[name].append(ms)

    med = {name: statistics.median(v) for name, v in times.items()}
    result = {
        "bench": "rnn_train_step",
        "T": T, "hidden": H, "batch": B, "input": "onehot10", "optimizer": "RMSprop",
        "threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.machine(),
        "steps_per_round": args.steps, "rounds": args.repeats,
        "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "ms_per_step": {k: round(v, 3) for k, v in med.items()},
        "ms_per_step_min": {k: round(min(v), 3) for k, v in times.items()},
        "ratio_naive_over_ours": round(med["naive"] / med["ours"], 2),
        "ratio_nnRNN_over_ours": round(med["nn.RNN"] / med["ours"], 2),
    }
    if not args.no_lstm:
        result["ratio_nnLSTM_over_lstm_ours"] = round(med["nn.LSTM"] / med["lstm_ours"], 2)

    print(f"RNN training step, T={T} H={H} B={B} one-hot {D}, RMSprop, {torch.get_num_threads()} threads, "
          f"median of {args.repeats} rounds x {args.steps} steps")
    print(f"{'model':<12}{'ms/step':>10}{'min':>10}{'x ours':>10}")
    for name in models:
        ref = med["lstm_ours"] if name in ("lstm_ours", "nn.LSTM") else med["ours"]
        print(f"{name:<12}{med[name]:>10.3f}{min(times[name]):>10.3f}{med[name] / ref:>10.2f}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=2)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
