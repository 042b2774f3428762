"""Part I against scikit-learn's strongest off-the-shelf learners, and both against the Bayes-optimal classifier.

How close to the Bayes-optimal classifier can a learner trained on 800 points get? This script answers it with
peers, on the very splits of ``nnlab compare part1 --seeds N`` (split seed s = 0..N-1, ``make_toy``: 1,000 points,
stratified 80/20):

  - ours        the `best` recipe of ``mlp-toy``, trained as ``compare part1`` trains it (``tune_part1.test_chosen``:
                ``setup_toy`` and the product's loop on the 800 training points), NumPy and/or PyTorch;
  - svc-rbf     ``sklearn.svm.SVC`` (RBF kernel), C and gamma chosen by 5-fold CV on the 800 training points;
  - knn         ``sklearn.neighbors.KNeighborsClassifier``, k chosen by 5-fold CV on the 800 training points.

No choice sees a test point: the peers' settings come from cross-validation on the training points, ours from
``benchmarks/tune_part1.py`` (validation folds of the training points). Two figures per learner and data set:

  - test − Bayes   mean over the splits of (test accuracy − the Bayes-optimal classifier's on the same 200 test
                   points), in points; the issue's Part I target is >= −0.5 over split seeds 0..9;
  - fresh − Bayes  the learner's expected accuracy on 20,000 fresh draws of the generating process (the posterior
                   known exactly, ``data.bayes``) minus the Bayes rate on those draws: its expected gap, without
                   the noise of which 200 points happen to be the test split.

Usage: python benchmarks/part1_peers.py [--seeds 10 --backends numpy,torch --out runs/part1-peers] [--quick]
``--quick``: 2 seeds, small grids, NumPy only: checks that the script runs (not figures).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from tune_part1 import DATASETS, _names, gap_summary, population, test_chosen

GRIDS = {  # parameter grids searched by 5-fold CV on the training points (wide enough that the choice is inside)
    "svc-rbf": {"C": [0.1, 0.3, 1, 3, 10, 30, 100], "gamma": [0.03, 0.1, 0.3, 1, 3, 10]},
    "knn": {"n_neighbors": [3, 5, 11, 21, 31, 51, 75]},
}
QUICK_GRIDS = {"svc-rbf": {"C": [1, 10], "gamma": [1]}, "knn": {"n_neighbors": [11, 31]}}


def peer(name: str, grid: dict):
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    base = SVC(kernel="rbf") if name == "svc-rbf" else KNeighborsClassifier()
    return GridSearchCV(base, grid, cv=5)


def run_peers(seeds: int, grids: dict) -> dict:
    """Per peer and data set: test − Bayes per split, fresh − Bayes rate per split, the CV's choices."""
    from nnlab.data.bayes import split_accuracy
    from nnlab.data.toy import ToyDataConfig, make_toy

    res = {}
    for d in DATASETS:
        cfg = ToyDataConfig(dataset=d)
        (X_pop, P_pop), rate = population(d)
        for name, grid in grids.items():
            accs, bayes, fresh, chosen = [], [], [], []
            for s in range(seeds):
                splits = make_toy(cfg, s)
                (X_tr, y_tr), (X_te, y_te) = splits.train, splits.test
                model = peer(name, grid).fit(X_tr, y_tr)
                accs.append(100 * model.score(X_te, y_te))
                bayes.append(100 * split_accuracy(cfg, s))
                fresh.append(100 * (P_pop[np.arange(len(X_pop)), model.predict(X_pop)].mean() - rate))
                chosen.append(model.best_params_)
            res[f"{name}/{d}"] = gap_summary(accs, bayes, fresh) | {"cv_choices": chosen,
                                                                "cv_choice_on_grid_edge": on_edge(chosen, grid)}
            r = res[f"{name}/{d}"]
            print(f"  {name}/{d}: test − Bayes {r['minus_bayes'][0]:+.2f}, fresh − Bayes rate "
                  f"{r['fresh_minus_bayes_rate'][0]:+.2f}; CV choice on a grid edge in {r['cv_choice_on_grid_edge']} "
                  f"of {seeds} splits", flush=True)
    return res


def on_edge(chosen: list[dict], grid: dict) -> int:
    """How many of the CV's choices sit on an end of a grid axis (the grid may then be too narrow there)."""
    return sum(any(c[k] in (min(v), max(v)) for k, v in grid.items() if len(v) > 1) for c in chosen)


def table(rows: dict, seeds: int) -> str:
    def cell(r, key):
        m, s = r[key]
        return f"{m:+.2f} ± {s:.2f}"

    lines = [f"| learner | data set | test acc. (mean, {seeds} splits) | test − Bayes (points, mean ± std) | "
             "≥ −0.5 | fresh − Bayes rate (points, mean ± std) |", "|---|---|---|---|---|---|"]
    for key, r in rows.items():
        learner, d = key.rsplit("/", 1)
        lines.append(f"| {learner} | {d} | {r['test'][0]:.2f} | {cell(r, 'minus_bayes')} | "
                     f"{'yes' if r['met'] else 'no'} | {cell(r, 'fresh_minus_bayes_rate')} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10, help="split seeds 0..N-1, those of compare part1 --seeds N")
    ap.add_argument("--backends", default="numpy,torch", help="our MLP's backends: numpy, torch or both")
    ap.add_argument("--out", default="runs/part1-peers", help="folder for peers.json and table.md")
    ap.add_argument("--quick", action="store_true", help="2 seeds, small grids, NumPy only (checks the script)")
    args = ap.parse_args(argv)
    if args.seeds < 1:
        sys.exit(f"--seeds must be >= 1, got {args.seeds}")
    backends = ["numpy"] if args.quick else _names(args.backends, ["numpy", "torch"], "backends")
    seeds = 2 if args.quick else args.seeds
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    ours = {f"ours-{k}": v for k, v in test_chosen("base", backends, seeds).items()}   # "ours-numpy/moons", ...
    rows = ours | run_peers(seeds, QUICK_GRIDS if args.quick else GRIDS)
    rows = {k: rows[k] for k in sorted(rows, key=lambda k: (k.rsplit("/", 1)[1], k))}   # grouped by data set
    md = table(rows, seeds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(md + "\n")
    result = {"bench": "part1_peers", "quick": args.quick, "seeds": seeds, "grids": QUICK_GRIDS if args.quick else GRIDS,
              "wall_s": round(time.perf_counter() - t0, 1), "rows": rows}
    (out / "peers.json").write_text(json.dumps(result, indent=1))
    print(md)
    return result


if __name__ == "__main__":
    main()
