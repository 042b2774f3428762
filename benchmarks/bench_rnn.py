"""Training-step speed of the hand-written recurrent models against the obvious alternatives, side by side.

One process, one fixed batch (encoding and data generation excluded), every model timed in the same rounds:
  ours        nnlab.models.rnn.VanillaRNN (fused forward/BPTT autograd.Function)
  naive       the report's style: a Python loop doing x_t @ W_hx.T + h @ W_hh.T + b_h, tanh, autograd through it
              (the head is applied to h_T only, so the naive module is not charged for per-step outputs)
  nn.RNN      torch.nn.RNN(tanh, batch_first) + nn.Linear head on the last step
  lstm ours   nnlab.models.rnn.LSTM (fused)            (bonus)
  nn.LSTM     torch.nn.LSTM(batch_first) + nn.Linear   (bonus)
A step is: zero_grad, forward, cross-entropy, backward, RMSprop(lr=1e-3) update (torch's default implementation
for every model: RMSprop has no fused kernel). Timing as in ``_common.interleaved``: round r runs ``--steps`` steps
of every model, in an order rotated by r, after untimed warm-up rounds; the figure per model is the median over
rounds of ms/step, and each ratio is also given per round (``paired_ratio``), so a burst of load from other
processes hits every model alike and shows up in the quartiles.

Prints a table, then ONE JSON object on the last line. Threads: ``--threads`` (default 1, like the other
benchmarks; 0 = torch's default), one setting for the process, so every model runs under the same one.
Usage: python benchmarks/bench_rnn.py [--T 20 --hidden 128 --batch 128 --steps 20 --repeats 15 --threads 1 --out f.json]
"""

from __future__ import annotations

import argparse
import os

import torch
from torch import nn
from torch.nn import functional as F

from _common import add_common_args, emit, interleaved, machine_info, median, paired_ratio, print_table, repeat_calls, stats

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
    add_common_args(ap, repeats=15, warmup=2)
    ap.add_argument("--T", type=int, default=20, help="input length (digits seen)")
    ap.add_argument("--hidden", type=int, default=128, help="hidden units H")
    ap.add_argument("--batch", type=int, default=128, help="batch size B")
    ap.add_argument("--steps", type=int, default=20, help="training steps per model per round")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for every model (default 1; 0: torch's default)")
    ap.add_argument("--no-lstm", action="store_true", help="skip the LSTM pair")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)  # one setting for the whole process: every contender runs under it
    info = machine_info()

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
    # round r runs --steps steps of every model, in an order rotated by r; the figure is the median round
    times = interleaved({name: repeat_calls(make_step(m, x, y), args.steps) for name, m in models.items()},
                        repeats=args.repeats, warmup=args.warmup)
    ms = {name: [t * 1e3 / args.steps for t in v] for name, v in times.items()}  # ms per step, per round
    med = {name: median(v) for name, v in ms.items()}
    pairs = [("naive", "ours"), ("nn.RNN", "ours")] + ([] if args.no_lstm else [("nn.LSTM", "lstm_ours")])
    result = {
        "bench": "rnn_train_step",
        "T": T, "hidden": H, "batch": B, "input": "onehot10", "optimizer": "RMSprop lr=1e-3 (torch's default implementation)",
        "threads": torch.get_num_threads(), "steps_per_round": args.steps, "rounds": args.repeats, "warmup": args.warmup,
        "ms_per_step": {k: stats(v, 1.0, 3) for k, v in ms.items()},
        **{f"ratio_{a.replace('.', '')}_over_{b.replace('.', '')}": round(med[a] / med[b], 2) for a, b in pairs},
        **{f"paired_ratio_{a.replace('.', '')}_over_{b.replace('.', '')}": paired_ratio(ms[a], ms[b], 2) for a, b in pairs},
        "loadavg_1min_at_end": round(os.getloadavg()[0], 2),
        "machine": info,
    }

    print(f"RNN training step, T={T} H={H} B={B} one-hot {D}, RMSprop, {torch.get_num_threads()} threads for every model, "
          f"median of {args.repeats} interleaved rounds x {args.steps} steps after {args.warmup} warm-up")
    print_table(["model", "ms/step", "min", "x ours"],
                [[name, med[name], min(ms[name]), med[name] / med["lstm_ours" if name in ("lstm_ours", "nn.LSTM") else "ours"]]
                 for name in models])
    for a, b in pairs:
        pr = result[f"paired_ratio_{a.replace('.', '')}_over_{b.replace('.', '')}"]
        print(f"{a} / {b} = {med[a] / med[b]:.2f}  (per-round ratio median {pr['median']:.2f}, "
              f"quartiles {pr['q1']:.2f}-{pr['q3']:.2f})")
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
