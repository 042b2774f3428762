"""nnlab.numpy_nn.MLPClassifier against scikit-learn's MLPClassifier: same parameters, same data, side by side.

Both estimators run with scikit-learn's defaults (hidden (100,), ReLU, alpha 1e-4, batch "auto" = min(200, n),
float64), the same ``random_state``, and the same thread setting (threadpoolctl limits OpenBLAS/OpenMP to
``--threads``, default 1, on both sides; ``--threads 0`` leaves every library at its own default, as a user's
session is: one thread is the steadier figure, the default the one a user sees). Given the same seed the two follow the same trajectory to rounding
error, so the work done is the same and the accuracies agree.

  (a) digits-cv    ``fit`` in 5-fold CV on ``load_digits`` (1,437 training rows per fold), solver "sgd" and
                   "adam", ``max_iter`` epochs each with ``tol=0, n_iter_no_change=inf`` so that both run exactly
                   ``max_iter`` epochs; one round = the 5 fits of one contender; test accuracy of both sides.
                   Target: sklearn / ours >= 2.
  (b) epoch-50k    ``make_classification(n_samples=50_000, n_features=100, n_classes=5, n_informative=10,
                   random_state=0)``, one hidden layer of 100, one epoch = one ``partial_fit`` call (initialised
                   outside the timed region; input validation of the 50,000 rows is inside, on both sides),
                   solver "sgd" and "adam". Target: sklearn / ours >= 1.3.
  (c) digits-lbfgs ``fit(solver="lbfgs")`` (default max_iter 200) on one 80 % split of ``load_digits``; the
                   figure is the whole fit, and the time per L-BFGS iteration is shown too (rounding may make
                   the two runs take a different number of iterations). Target: sklearn / ours >= 1 (no slower).

Timing follows ``_common``: untimed warm-up rounds, then rounds in rotated order, medians, and per-round paired
ratios. Evaluation (accuracy) is outside the timed region. The headline is wall time; each call's process CPU time
is recorded too ("cpu ratio"): with one BLAS thread it is the work done, so on a loaded machine, where the wall
time of a call also counts the time it waited for a core, it is the steadier figure of the two.
``--quick`` runs tiny sizes to check the script.
Usage: python benchmarks/bench_sklearn.py [--repeats 7 --warmup 1 --threads 1 --out sklearn.json] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.neural_network import MLPClassifier as SkMLP

from _common import add_common_args, emit, interleaved, machine_info, median, paired_ratio, print_table, stats

from nnlab.numpy_nn import MLPClassifier as OurMLP

TARGETS = {"digits-cv": 2.0, "epoch-50k": 1.3, "digits-lbfgs": 1.0}   # sklearn time / our time
CONTENDERS = {"ours": OurMLP, "sklearn": SkMLP}


def with_cpu_time(fns: dict, cpu: dict[str, list[float]]) -> dict:
    """The contenders, each also appending its process CPU time per call to ``cpu[name]`` (warm-up calls too)."""
    def wrap(name, fn):
        def run():
            t0 = time.process_time()
            fn()
            cpu[name].append(time.process_time() - t0)
        return run
    return {name: wrap(name, fn) for name, fn in fns.items()}


def timed(fns: dict, rounds: dict) -> tuple[dict, dict]:
    """``interleaved`` wall times, and the CPU times of the same calls (warm-up calls dropped)."""
    cpu = {name: [] for name in fns}
    wall = interleaved(with_cpu_time(fns, cpu), **rounds)
    return wall, {name: t[rounds["warmup"]:] for name, t in cpu.items()}


def digits_cv(solver: str, epochs: int, folds: int, seed: int):
    """Per contender, a callable that fits one model per fold; and an accuracy function run after timing."""
    X, y = load_digits(return_X_y=True)
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y))
    params = dict(solver=solver, max_iter=epochs, tol=0.0, n_iter_no_change=np.inf, random_state=seed)
    fitted: dict[str, list] = {name: [] for name in CONTENDERS}

    def make(name):
        def run():
            fitted[name] = [CONTENDERS[name](**params).fit(X[tr], y[tr]) for tr, _ in splits]
        return run

    def accuracy(name) -> float:
        return float(np.mean([m.score(X[te], y[te]) for m, (_, te) in zip(fitted[name], splits)]))

    return {name: make(name) for name in CONTENDERS}, accuracy


def epoch_50k(solver: str, n_samples: int, seed: int):
    X, y = make_classification(n_samples=n_samples, n_features=100, n_classes=5, n_informative=10, random_state=0)
    classes = np.unique(y)
    models = {}
    for name, cls in CONTENDERS.items():
        models[name] = cls(hidden_layer_sizes=(100,), solver=solver, random_state=seed)
        models[name].partial_fit(X[:200], y[:200], classes=classes)   # initialised outside the timed region
    return {name: (lambda m=m: m.partial_fit(X, y)) for name, m in models.items()}, \
        (lambda name: float(models[name].score(X, y)))


def digits_lbfgs(max_iter: int, seed: int):
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)
    fitted = {}

    def make(name):
        def run():
            fitted[name] = CONTENDERS[name](solver="lbfgs", max_iter=max_iter, random_state=seed).fit(X_tr, y_tr)
        return run

    def accuracy(name) -> float:
        return float(fitted[name].score(X_te, y_te))

    return {name: make(name) for name in CONTENDERS}, accuracy, lambda name: int(fitted[name].n_iter_)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap, repeats=7, warmup=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS/OpenMP threads on both sides (default 1; 0: each library's own default)")
    ap.add_argument("--epochs", type=int, default=50, help="epochs per fit in digits-cv (default 50)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes and one round: checks that the script runs")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup, args.epochs = 1, 0, 2
    folds, n_50k, lbfgs_iter = (2, 2_000, 10) if args.quick else (5, 50_000, 200)
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    if args.threads:
        threadpool_limits(limits=args.threads)  # the same BLAS/OpenMP setting for both contenders
    warnings.filterwarnings("ignore", category=ConvergenceWarning)   # fixed epoch budgets warn on both sides
    info = machine_info()
    rounds = dict(repeats=args.repeats, warmup=args.warmup)

    results, rows = {}, []
    for solver in ("sgd", "adam"):
        fns, acc = digits_cv(solver, args.epochs, folds, args.seed)
        times, cpu = timed(fns, rounds)
        results[f"digits-cv/{solver}"] = dict(times=times, cpu=cpu, accuracy={n: acc(n) for n in CONTENDERS},
                                              target=TARGETS["digits-cv"], unit=f"s per {folds}-fold CV fit")
    for solver in ("sgd", "adam"):
        fns, acc = epoch_50k(solver, n_50k, args.seed)
        times, cpu = timed(fns, rounds)
        results[f"epoch-50k/{solver}"] = dict(times=times, cpu=cpu, accuracy={n: acc(n) for n in CONTENDERS},
                                              target=TARGETS["epoch-50k"], unit="s per epoch")
    fns, acc, n_iter = digits_lbfgs(lbfgs_iter, args.seed)
    times, cpu = timed(fns, rounds)
    results["digits-lbfgs"] = dict(times=times, cpu=cpu, accuracy={n: acc(n) for n in CONTENDERS},
                                   n_iter={n: n_iter(n) for n in CONTENDERS}, target=TARGETS["digits-lbfgs"],
                                   unit="s per fit")

    threads = f"{args.threads} BLAS thread(s)" if args.threads else "the libraries' default threads"
    print(f"nnlab vs scikit-learn MLPClassifier, default parameters, float64, {threads}; "
          f"median of {args.repeats} interleaved rounds after {args.warmup} warm-up"
          f"{' (QUICK: tiny sizes, not figures)' if args.quick else ''}")
    print(f"machine: {info['cpu']}, {info['cores']} cores, load {info.get('loadavg_1min_at_start')}; "
          f"numpy {info['numpy']}, sklearn {info['sklearn']}")
    record = {}
    for key, r in results.items():
        t, c = r["times"], r["cpu"]
        ratio = median(t["sklearn"]) / median(t["ours"])
        cpu_ratio = median(c["sklearn"]) / median(c["ours"])
        paired = paired_ratio(t["sklearn"], t["ours"])
        record[key] = {"unit": r["unit"], "ours": stats(t["ours"]), "sklearn": stats(t["sklearn"]),
                       "ratio_sklearn_over_ours": round(ratio, 3), "paired_ratio": paired,
                       "cpu": {"ours": stats(c["ours"]), "sklearn": stats(c["sklearn"]),
                               "ratio_sklearn_over_ours": round(cpu_ratio, 3),
                               "paired_ratio": paired_ratio(c["sklearn"], c["ours"])}, "target": r["target"],
                       "met": bool(ratio >= r["target"]), "accuracy": r["accuracy"], **({"n_iter": r["n_iter"]}
                                                                                      if "n_iter" in r else {})}
        extra = f"  n_iter {r['n_iter']['ours']}/{r['n_iter']['sklearn']}" if "n_iter" in r else ""
        verdict = f">= {r['target']:g} {'met' if ratio >= r['target'] else 'MISSED'}"
        rows.append([key, median(t["ours"]), median(t["sklearn"]), ratio, f"{paired['q1']:.2f}-{paired['q3']:.2f}",
                     cpu_ratio, verdict, f"{r['accuracy']['ours']:.4f} / {r['accuracy']['sklearn']:.4f}{extra}"])
    print_table(["case", "ours s", "sklearn s", "sklearn/ours", "paired q1-q3", "cpu ratio", "target",
                 "accuracy ours / sklearn"], rows)
    result = {"bench": "sklearn_mlp", "quick": args.quick, "threads": args.threads, "seed": args.seed,
              "digits_cv": {"epochs": args.epochs, "folds": folds}, "epoch_50k": {"n_samples": n_50k},
              "digits_lbfgs": {"max_iter": lbfgs_iter}, "repeats": args.repeats, "warmup": args.warmup,
              "results": record, "machine": info}
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
