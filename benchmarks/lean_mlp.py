"""How much of a digits fit is the engine's own overhead: nnlab.numpy_nn.MLPClassifier against a lean loop.

The lean loop is ONE flat function that issues the NumPy/BLAS calls of the estimator's training step, in the same
order, on the same buffers: no layer objects, no method dispatch, no input validation, no bookkeeping. It is not a
product: it knows one architecture (one hidden ReLU layer, softmax output, no sample weights) and one data set. It
is the floor for this arithmetic in Python + NumPy, the "lean NumPy loop" that issue 12 measures scikit-learn against.

First it checks that it IS the same arithmetic: from scikit-learn's initialisation (the estimator's ``random_state``
draws, in its order) and the same shuffles, the lean loop's per-epoch losses and final weights must equal the
estimator's (``fit`` with ``tol=0, n_iter_no_change=inf``) to 1e-12; the script stops otherwise.

Then it times, side by side in one process (``_common.interleaved``: rotated order, medians, paired ratios):
  (a) fit     the estimator's ``fit`` (validation, initialisation, every epoch) against the lean loop's whole fit
              (its labels, ``[X, 1]`` and buffers, initialisation and every epoch), on the first fold of ``bench_sklearn.py``'s digits CV (1,437 rows),
              ``--epochs`` epochs, solver "sgd" and "adam";
  (b) epoch   one epoch of steps only: the engine's ``train_batches`` (what ``fit`` runs per epoch) against the lean
              loop's epoch, on the same data and shuffles.
The figures are ours / lean (1.00 = no overhead). Then the step's five matrix products alone, at their shapes, in
µs and GFLOP/s, beside a 256 x 256 x 256 product (near the core's peak): what no engine can go below with this
arithmetic. One BLAS thread (threadpoolctl), as in ``bench_sklearn.py``.

Usage: python benchmarks/lean_mlp.py [--repeats 15 --warmup 2 --epochs 50 --out lean.json] [--quick]
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold

from _common import add_common_args, emit, interleaved, machine_info, median, paired_ratio, print_table, stats

from nnlab.numpy_nn import MLPClassifier
from nnlab.numpy_nn.mlp import train_batches, with_ones_column

HIDDEN, BATCH, ALPHA, LR, MOMENTUM = 100, 200, 1e-4, 1e-3, 0.9   # scikit-learn's defaults
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


class LeanFit:
    """One fit of the lean loop: scikit-learn's initialisation from ``RandomState(seed)``, then ``epochs`` epochs."""

    def __init__(self, X: np.ndarray, y: np.ndarray, solver: str):
        self.X1 = with_ones_column(X, np.float64)            # (N, D + 1) [X, 1], as the estimator builds it
        self.classes, self.t = np.unique(y, return_inverse=True)   # labels 0..C-1, as the estimator's argmax
        self.t = self.t.astype(np.intp)
        self.solver = solver
        n, d = X.shape
        c = len(self.classes)
        self.shapes = (d, HIDDEN, c)
        nb = min(BATCH, n)
        self.buf, self.hb, self.mk = np.empty((nb, d + 1)), np.empty((nb, HIDDEN)), np.empty((nb, HIDDEN))
        self.gh, self.ones, self.rows = np.empty((nb, HIDDEN)), np.ones(nb), np.arange(nb)
        P = (d + 1) * HIDDEN + (HIDDEN + 1) * c
        self.p, self.g = np.empty(P), np.zeros(P)            # every W, b in one vector; their gradients
        self.mask = np.zeros(P)                              # 1 on the weights, 0 on the biases (the L2 penalty)
        self.mask[:d * HIDDEN] = 1
        self.mask[(d + 1) * HIDDEN:(d + 1) * HIDDEN + HIDDEN * c] = 1
        self.scale, self.scr = np.empty(P), np.empty(P)
        self.s1, self.s2, self.tmp = np.zeros(P), np.zeros(P), np.empty(P)   # velocity or Adam's m, v; scratch

    def views(self):
        d, h, c = self.shapes
        k = (d + 1) * h
        Wb = self.p[:k].reshape(d + 1, h)
        W2b = self.p[k:].reshape(h + 1, c)
        dWb = self.g[:k].reshape(d + 1, h)
        dW2b = self.g[k:].reshape(h + 1, c)
        return Wb, W2b[:h], W2b[h], dWb, dW2b[:h], dW2b[h]

    def fit(self, epochs: int, seed: int) -> list[float]:
        rs = np.random.RandomState(seed)
        d, h, c = self.shapes
        Wb, W2, b2, _, _, _ = self.views()
        for W, b in ((Wb[:d], Wb[d]), (W2, b2)):           # Glorot uniform for weights and biases, layer by layer
            a = np.sqrt(6.0 / (W.shape[0] + W.shape[1]))
            W[...] = rs.uniform(-a, a, W.shape)
            b[...] = rs.uniform(-a, a, b.shape)
        self.s1[...] = 0
        self.s2[...] = 0
        order = np.arange(self.X1.shape[0])
        step, curve = 0, []
        for _ in range(epochs):
            rs.shuffle(order)
            loss, step = self.epoch(order, step)
            curve.append(loss)
        return curve

    def epoch(self, order: np.ndarray, step: int) -> tuple[float, int]:
        """One pass in mini-batches: the estimator's calls, in its order, on the same kinds of buffers."""
        X1, t, n_all = self.X1, self.t, self.X1.shape[0]
        Wb, W2, b2, dWb, dW2, db2 = self.views()
        p, g, mask, scale, scr = self.p, self.g, self.mask, self.scale, self.scr
        s1, s2, tmp = self.s1, self.s2, self.tmp
        total = 0.0
        for start in range(0, n_all, BATCH):
            stop = min(start + BATCH, n_all)
            n, idx = stop - start, order[start:stop]
            x = X1.take(idx, axis=0, out=self.buf[:n], mode="wrap")
            y = t[idx]
            hid, mk = np.matmul(x, Wb, out=self.hb[:n]), self.mk[:n]      # forward: [x, 1] @ [W; b]
            np.greater(hid, 0.0, out=mk)
            np.multiply(hid, mk, out=hid)                                 # ReLU, its 1/0 mask kept
            z = hid @ W2
            z += b2                                                       # logits
            e = z.copy(order="F")                                         # softmax cross-entropy (its fused form)
            e -= e.max(axis=1, keepdims=True)
            at = np.multiply(y, n, dtype=np.intp)
            at += self.rows[:n] if n == len(self.rows) else np.arange(n)
            z_y = e.reshape(-1, order="F").take(at)
            np.exp(e, out=e)
            s = e.sum(axis=1, keepdims=True)
            loss = (np.log(s).sum() - z_y.sum()) / n
            e /= s
            gz = np.multiply(e, 1.0 / n, order="F")                       # dL/dz = (p - onehot) / n
            gz.reshape(-1, order="F")[at] -= 1.0 / n
            np.matmul(hid.T, gz, out=dW2)                                 # backward
            np.dot(self.ones[:n] if n == len(self.ones) else np.ones(n), gz, out=db2)
            gh = np.matmul(gz, W2.T, out=self.gh[:n])
            np.multiply(gh, mk, out=gh)
            np.matmul(x.T, gh, out=dWb)                                   # [dW; db] of the first layer
            np.multiply(mask, ALPHA / n, out=scale)                       # L2: alpha / n on the weights
            l2 = np.multiply(p, scale, out=scr)
            np.add(g, l2, out=g)
            loss += 0.5 * float(np.dot(l2, p))
            step += 1
            if self.solver == "sgd":                                      # scikit-learn's Nesterov velocity form
                np.multiply(s1, MOMENTUM, out=s1)
                np.multiply(g, -LR, out=tmp)
                np.add(s1, tmp, out=s1)                                   # v = mu v - lr g
                np.multiply(g, -LR, out=tmp)
                np.add(p, tmp, out=p)
                np.multiply(s1, MOMENTUM, out=tmp)
                np.add(p, tmp, out=p)                                     # p += mu v - lr g
            else:                                                         # Adam, eps on sqrt(v) (scikit-learn's)
                size = LR * math.sqrt(1.0 - BETA2 ** step) / (1.0 - BETA1 ** step)
                np.multiply(s1, BETA1, out=s1)
                np.multiply(g, 1.0 - BETA1, out=tmp)
                np.add(s1, tmp, out=s1)                                   # m = b1 m + (1 - b1) g
                np.multiply(g, g, out=tmp)
                np.multiply(s2, BETA2, out=s2)
                np.multiply(tmp, 1.0 - BETA2, out=tmp)
                np.add(s2, tmp, out=s2)                                   # v = b2 v + (1 - b2) g^2
                np.sqrt(s2, out=tmp)
                np.add(tmp, EPS, out=tmp)
                np.divide(s1, tmp, out=tmp)
                np.multiply(tmp, -size, out=tmp)
                np.add(p, tmp, out=p)                                     # p -= size m / (sqrt(v) + eps)
            total += loss * n
        return total / n_all, step


def products(lean: "LeanFit", repeats: int) -> dict:
    """The step's matrix products at their shapes (a full batch), each the best of ``repeats`` timings of 200 calls,
    in µs and GFLOP/s; and a 256 x 256 x 256 product, a size where BLAS runs near the core's peak, for reference."""
    import timeit

    rng = np.random.default_rng(0)
    Wb, W2, _, dWb, dW2, _ = lean.views()
    nb = lean.buf.shape[0]
    x, hid = rng.standard_normal(lean.buf.shape), rng.standard_normal(lean.hb.shape)
    gz, gh = rng.standard_normal((nb, W2.shape[1])), rng.standard_normal(lean.gh.shape)
    a, b, c = (rng.standard_normal((256, 256)) for _ in range(3))
    cases = {"[x,1] @ [W;b]": (lambda: np.matmul(x, Wb, out=lean.hb), x.shape[0] * x.shape[1] * Wb.shape[1]),
             "h @ W2": (lambda: hid @ W2, hid.size * W2.shape[1]),
             "h.T @ dz": (lambda: np.matmul(hid.T, gz, out=dW2), hid.size * gz.shape[1]),
             "dz @ W2.T": (lambda: np.matmul(gz, W2.T, out=lean.gh), gz.size * W2.shape[0]),
             "[x,1].T @ dh": (lambda: np.matmul(x.T, gh, out=dWb), x.size * gh.shape[1]),
             "256^3 reference": (lambda: np.matmul(a, b, out=c), 256 ** 3)}
    out = {}
    for name, (fn, macs) in cases.items():
        us = min(timeit.repeat(fn, number=200, repeat=repeats)) / 200 * 1e6
        out[name] = {"us": round(us, 2), "gflops": round(2 * macs / us / 1e3, 1)}
    return out


def estimator(solver: str, epochs: int, seed: int) -> MLPClassifier:
    return MLPClassifier(solver=solver, max_iter=epochs, tol=0.0, n_iter_no_change=np.inf, random_state=seed)


def check_same_arithmetic(X, y, solver: str, epochs: int, seed: int) -> float:
    """The largest difference between the lean loop's and the estimator's losses and weights; exits above 1e-12."""
    ours = estimator(solver, epochs, seed).fit(X, y)
    lean = LeanFit(X, y, solver)
    curve = lean.fit(epochs, seed)
    Wb, W2, b2, _, _, _ = lean.views()
    d = X.shape[1]
    diffs = [np.abs(np.subtract(curve, ours.loss_curve_)).max()]
    diffs += [np.abs(a - b).max() for a, b in zip((Wb[:d], W2, Wb[d], b2), (*ours.coefs_, *ours.intercepts_))]
    worst = float(max(diffs))
    if not worst <= 1e-12:
        sys.exit(f"{solver}: the lean loop does not reproduce the estimator (largest difference {worst:.3g}); "
                 "it no longer issues the same arithmetic, so its timings would mean nothing")
    return worst


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap, repeats=15, warmup=2)
    ap.add_argument("--epochs", type=int, default=50, help="epochs per fit (default 50, as bench_sklearn's digits-cv)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="2 epochs, 2 rounds: checks that the script runs")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup, args.epochs = 2, 0, 2
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    threadpool_limits(limits=1)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)   # fixed epoch budgets
    np.seterr(over="raise", invalid="raise", divide="raise")   # a non-finite value would time another computation
    info = machine_info()
    X, y = load_digits(return_X_y=True)
    tr, _ = next(StratifiedKFold(5, shuffle=True, random_state=args.seed).split(X, y))
    X, y = X[tr], y[tr]
    rounds = dict(repeats=args.repeats, warmup=args.warmup)
    results, rows = {}, []
    for solver in ("sgd", "adam"):
        worst = check_same_arithmetic(X, y, solver, min(args.epochs, 5), args.seed)
        lean = LeanFit(X, y, solver)
        lean.fit(1, args.seed)                       # initialised and one epoch in, as ``clf`` below, for (b)
        fits = {"ours": lambda s=solver: estimator(s, args.epochs, args.seed).fit(X, y),
                "lean": lambda s=solver: LeanFit(X, y, s).fit(args.epochs, args.seed)}   # its buffers included
        # (b): the engine's epoch on a fitted estimator's model, loss and optimizer (the state keeps moving)
        clf = estimator(solver, 1, args.seed).fit(X, y)
        net, loss_fn, opt = clf._net, clf._loss(), clf._make_optimizer(False)
        X1, T, order = with_ones_column(X, net.dtype), np.unique(y, return_inverse=True)[1], np.arange(len(y))
        rs, state = np.random.RandomState(args.seed), {"step": 0}

        def ours_epoch():
            rs.shuffle(order)
            train_batches(net, loss_fn, opt, X1, T, batch_size=BATCH, alpha=ALPHA, order=order, ones_column=True)

        def lean_epoch():
            rs.shuffle(order)
            state["step"] = lean.epoch(order, state["step"])[1]

        for case, fns in (("fit", fits), ("epoch", {"ours": ours_epoch, "lean": lean_epoch})):
            t = interleaved(fns, **rounds)
            ratio = median(t["ours"]) / median(t["lean"])
            paired = paired_ratio(t["ours"], t["lean"])
            key = f"{case}/{solver}"
            results[key] = {"unit": "ms", "ours": stats(t["ours"], 1e3), "lean": stats(t["lean"], 1e3), "ratio_ours_over_lean": round(ratio, 3),
                            "paired_ratio": paired, "same_arithmetic_max_diff": worst}
            rows.append([key, 1e3 * median(t["ours"]), 1e3 * median(t["lean"]), ratio,
                         f"{paired['q1']:.3f}-{paired['q3']:.3f}"])
    print(f"nnlab MLPClassifier vs the lean loop of its NumPy calls, digits (1,437 rows), {args.epochs} epochs, "
          f"1 BLAS thread; median of {args.repeats} interleaved rounds after {args.warmup} warm-up"
          f"{' (QUICK: not figures)' if args.quick else ''}")
    print(f"machine: {info['cpu']}, {info['cores']} cores, load {info.get('loadavg_1min_at_start')}; "
          f"numpy {info['numpy']}; same arithmetic checked (losses and weights to 1e-12)")
    print_table(["case", "ours ms", "lean ms", "ours/lean", "paired q1-q3"], rows)
    prods = products(LeanFit(X, y, "sgd"), 3 if args.quick else 7)
    print("The step's matrix products (best of the timings, one full batch):")
    print_table(["product", "us", "GFLOP/s"], [[k, v["us"], v["gflops"]] for k, v in prods.items()])
    result = {"bench": "lean_mlp", "quick": args.quick, "epochs": args.epochs, "seed": args.seed,
              "repeats": args.repeats, "warmup": args.warmup, "results": results, "products": prods, "machine": info}
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
