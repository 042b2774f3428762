"""Part I: choose the `best` recipe of the moons/circles MLP on validation points carved from the training points.

What `nnlab compare part1 --seeds 10` runs: for split seed s = 0..9, ``make_toy(ToyDataConfig(dataset), s)`` (1,000
points, stratified 80/20 split), an MLP trained on the 800 training points with the `best` recipe
(``experiments.recipes``, ``mlp-toy``/``best``; at commit b8e3f0b: 2-20-2 ReLU, He init, SGD lr 0.05 momentum 0.9,
cosine decay to 0, 60 epochs, batch 5, no weight decay) and tested on the 200 test points, beside the Bayes-optimal
classifier on those points. The target (issue 10): each backend's mean test accuracy at most 0.5 points below the
Bayes-optimal classifier's.

This script, per candidate setting (``GRID``: overrides laid over that recipe), backend, data set and split seed:

    X, y = make_toy(cfg, s).train          # the 800 training points; no test point is ever put in a task
    for fold in StratifiedKFold(5, shuffle, seed s + 1)[:folds]:         # 640 fit, 160 validation points
        learner = build_mlp_learner(...)   # the product's NumpyLearner (numpy_nn) / TorchLearner (models.mlp)
        fit(learner, TaskData(train=ArraySource(fit part), test=EvalSet(validation part)))   # no run folder
        record: validation accuracy, the Bayes-optimal classifier's on the same validation points

and picks the setting with the best mean validation accuracy over every (backend, data set, seed, fold) it ran: one
setting for both backends. Only with ``--test`` does it then train that ONE setting on all 800 training points
(``experiments.mlp.setup_toy`` and the loop: ``train_toy_mlp``, what ``compare part1`` calls, less its run folder) and
report test accuracy minus the Bayes-optimal classifier's on the same test splits (``data.bayes.split_accuracy``).

A diagnostic column, never used for the choice: each validation model's expected accuracy on fresh data of the
generating process (``data.bayes``: the mean over 20,000 fresh draws of P(model's class | x), the posterior known
exactly), minus the Bayes rate estimated on the same draws. It has no split noise, so it shows whether the
differences between settings on validation are real.

Every finished (setting, backend, data set, seed, fold) is appended to ``OUT/records.jsonl`` and reused by a later
call with the same setting values, so the grid can be run in stages (the cheap NumPy backend first, then PyTorch
on a few settings) and an interrupted run continues. Threads: one (a 2-20-2 net on 5-row batches gains nothing).

    python benchmarks/tune_part1.py --backends numpy                              # every setting, NumPy
    python benchmarks/tune_part1.py --backends numpy,torch --settings base,wd1e-3 # both backends, a few settings
    python benchmarks/tune_part1.py --backends numpy,torch --settings base,wd1e-3 --test   # + the chosen one on test
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

#: Candidate settings: overrides of the `best` recipe, in its sections (``optim``, ``schedule``, ``train`` as
#: ``part1.run_part1`` takes them; ``model``: ``MLPSpec`` fields, which ``toy_configs`` takes but a Part I recipe
#: does not set today). Once `best` changes, "base" is the new `best` and every setting lies over it.
GRID = {
    "base": {},                                                # the `best` recipe as it is
    "lr0.02": {"optim": {"lr": 0.02}},
    "lr0.1": {"optim": {"lr": 0.1}},
    "ep30": {"train": {"epochs": 30}},
    "ep120": {"train": {"epochs": 120}},
    "wd1e-4": {"optim": {"weight_decay": 1e-4}},               # L2 on every parameter, both backends alike
    "wd1e-3": {"optim": {"weight_decay": 1e-3}},
    "h64": {"model": {"hidden": (64,)}},
    "h64-wd1e-3": {"model": {"hidden": (64,)}, "optim": {"weight_decay": 1e-3}},
    "h32x32": {"model": {"hidden": (32, 32)}},
    "tanh": {"model": {"activation": "tanh"}},                 # smooth hidden units: a curved boundary, not a polygon
    "tanh-xavier": {"model": {"activation": "tanh", "init": "xavier"}},
    # stage 4: smoother or lower-variance fits (larger batches, Adam, a narrower net, a wider one with decay)
    "bs25-ep120": {"train": {"batch_size": 25, "epochs": 120}},
    "adam1e-2": {"optim": {"optimizer": "adam", "lr": 0.01, "momentum": 0.0}},
    "h10": {"model": {"hidden": (10,)}},
    "h40-wd1e-3": {"model": {"hidden": (40,)}, "optim": {"weight_decay": 1e-3}},
    "lr0.01-ep120": {"optim": {"lr": 0.01}, "train": {"epochs": 120}},
}
DATASETS = ("moons", "circles")
K_FOLDS = 5  # stratified folds of the 800 training points (160 validation points each); --folds uses the first ones
POP_DRAWS, POP_SEED = 20_000, 20_261_130  # fresh draws of the generating process, the diagnostic's (seed: fixed, arbitrary)


def resolve(setting: str, backend: str, seed: int):
    """(MLPSpec, OptimConfig, ScheduleConfig, TrainConfig) of a setting: the `best` recipe of ``mlp-toy`` with the
    backend's layer, resolved as ``compare part1`` resolves it (``experiments.mlp.toy_configs``), the setting over it."""
    from nnlab.experiments.mlp import toy_configs

    over = GRID[setting]
    train = {**over.get("train", {}), "progress": "off", "seed": seed, "device": "cpu"}
    cfg = toy_configs("best", model={"backend": backend, **over.get("model", {})}, optim=over.get("optim"),
                      schedule=over.get("schedule"), train=train)
    return cfg["model"], cfg["optim"], cfg["schedule"], cfg["train"]


def resolved_record(setting: str, backend: str) -> dict:
    """What a record was trained with (every config field but the seed): a record is reused only while it matches."""
    configs = dict(zip(("model", "optim", "schedule", "train"), resolve(setting, backend, 0)))
    rec = {k: dataclasses.asdict(v) for k, v in configs.items()}
    rec["train"].pop("seed")
    return _jsonable(rec)


def folds(y: np.ndarray, seed: int, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The first ``count`` of 5 stratified folds of the training points: (fit indices, validation indices)."""
    from sklearn.model_selection import StratifiedKFold

    kf = StratifiedKFold(n_splits=K_FOLDS, shuffle=True, random_state=seed + 1)
    return list(kf.split(np.zeros(len(y)), y))[:count]


def _as_backend(backend: str, X: np.ndarray, y: np.ndarray):
    if backend == "numpy":
        return X, y
    import torch

    return torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)


def _predict(learner, backend: str, X: np.ndarray) -> np.ndarray:
    p = learner.predict_proba(_as_backend(backend, X, np.zeros(len(X), dtype=np.int64))[0])  # (N, 2)
    return np.asarray(p if backend == "numpy" else p.cpu().numpy()).argmax(1)


def train_and_validate(setting: str, backend: str, seed: int, fit_part, val_part, pop) -> dict:
    """Train one setting on ``fit_part`` with the product's learner and loop; score it on ``val_part``."""
    from nnlab.experiments.mlp import build_mlp_learner
    from nnlab.train.loop import TaskData, fit
    from nnlab.train.sources import ArraySource, EvalSet

    spec, optim, schedule, train = resolve(setting, backend, seed)
    src = ArraySource(*_as_backend(backend, *fit_part), train.batch_size, seed)
    total = train.epochs * src.steps_per_epoch
    # one evaluation, at the end (the loop's "test" slot holds the VALIDATION points; no test point is in the task)
    train = dataclasses.replace(train, eval_every=total)
    device = None
    if backend == "torch":
        from nnlab.train.learners import resolve_device

        device = resolve_device("cpu")
    learner = build_mlp_learner(spec, 2, 2, optim, schedule, train, total, device)
    t0 = time.perf_counter()
    s = fit(learner, TaskData(train=src, test=EvalSet(*_as_backend(backend, *val_part))), train, run=None,
            config_record={"model_name": f"mlp-{backend}"})
    wall = time.perf_counter() - t0
    return {"val_accuracy": s["test_accuracy"], "val_n": len(val_part[1]), "steps": s["steps"],
            "population_accuracy": fresh_accuracy(learner, backend, pop), "wall_s": round(wall, 2)}


def population(dataset: str):
    """(X, P): fresh draws of the generating process and their exact posteriors; the Bayes rate on them."""
    from nnlab.data.bayes import mixture_for, posterior, sample
    from nnlab.data.toy import ToyDataConfig

    mix = mixture_for(ToyDataConfig(dataset=dataset))
    X, _ = sample(mix, POP_DRAWS, POP_SEED)
    P = posterior(mix, X)  # (M, 2)
    return (X, P), float(P.max(1).mean())


def _key(r: dict) -> tuple:
    return r["setting"], r["backend"], r["dataset"], r["seed"], r["fold"]


def load_records(path: Path) -> dict:
    """Finished cells whose resolved configs are those a setting gives now (a changed setting or recipe is rerun)."""
    done, current = {}, {}
    if path.exists():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            if r["setting"] not in GRID:
                continue
            k = (r["setting"], r["backend"])
            if k not in current:
                current[k] = resolved_record(*k)
            if r.get("config") == current[k]:
                done[_key(r)] = r
    return done


def _jsonable(over: dict) -> dict:
    return json.loads(json.dumps(over))


def requested_cells(args) -> list[tuple]:
    """Seed-major order: a run stopped early holds every setting on its first seeds (paired comparisons)."""
    return [(st, b, d, s, f) for s in range(args.seeds) for f in range(args.folds) for d in DATASETS
            for st in args.settings for b in args.backends]


def complete_seeds(args, done: dict) -> list[int]:
    """Seeds for which every requested cell is finished."""
    return [s for s in range(args.seeds) if all((st, b, d, s, f) in done for st in args.settings for b in args.backends
                                               for d in DATASETS for f in range(args.folds))]


def validate(args, out: Path) -> list[dict]:
    """Run (or reuse) every requested cell; returns their records (with ``--no-train``: the complete seeds')."""
    from nnlab.data.bayes import accuracy, mixture_for
    from nnlab.data.toy import ToyDataConfig, make_toy

    path = out / "records.jsonl"
    done = load_records(path)
    cells = requested_cells(args)
    if args.no_train:
        seeds = complete_seeds(args, done)
        print(f"--no-train: seeds {seeds} complete for every requested cell", flush=True)
        return [done[c] for c in cells if c[3] in seeds]
    pops = {d: population(d) for d in DATASETS}
    todo = [c for c in cells if c not in done]
    print(f"{len(cells)} cells, {len(cells) - len(todo)} reused, {len(todo)} to train", flush=True)
    t0 = time.perf_counter()
    for i, (setting, backend, dataset, seed, fold) in enumerate(todo, 1):
        cfg = ToyDataConfig(dataset=dataset)
        X, y = make_toy(cfg, seed).train  # (800, 2), (800,): the split compare part1 trains on
        fit_idx, val_idx = folds(y, seed, fold + 1)[fold]
        fit_part, val_part = (X[fit_idx], y[fit_idx]), (X[val_idx], y[val_idx])
        r = train_and_validate(setting, backend, seed, fit_part, val_part, pops[dataset][0])
        r.update(setting=setting, backend=backend, dataset=dataset, seed=seed, fold=fold,
                 overrides=_jsonable(GRID[setting]), config=resolved_record(setting, backend),
                 bayes_val_accuracy=accuracy(mixture_for(cfg), *val_part),
                 bayes_rate_draws=pops[dataset][1])
        done[_key(r)] = r
        with path.open("a") as fh:
            fh.write(json.dumps(r) + "\n")
        if i % 10 == 0 or i == len(todo):
            el = time.perf_counter() - t0
            print(f"  {i}/{len(todo)} trained, {el / 60:.1f} min, ~{el / i * (len(todo) - i) / 60:.1f} min left", flush=True)
    return [done[c] for c in cells]


def _mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def summarize(records: list[dict], settings: list[str], backends: list[str]) -> dict:
    """Per setting and (backend, data set): mean ± std over seeds (each seed: its folds pooled) in points (%)."""
    out = {}
    for st in settings:
        cells, per_seed_all = {}, {}
        for b in backends:
            for d in DATASETS:
                rs = [r for r in records if r["setting"] == st and r["backend"] == b and r["dataset"] == d]
                seeds = sorted({r["seed"] for r in rs})
                pooled = {s: [r for r in rs if r["seed"] == s] for s in seeds}
                val = [100 * statistics.mean(r["val_accuracy"] for r in pooled[s]) for s in seeds]
                gap = [100 * statistics.mean(r["val_accuracy"] - r["bayes_val_accuracy"] for r in pooled[s]) for s in seeds]
                pop = [100 * statistics.mean(r["population_accuracy"] - r["bayes_rate_draws"] for r in pooled[s]) for s in seeds]
                cells[f"{b}/{d}"] = {"val": _mean_std(val), "val_minus_bayes": _mean_std(gap),
                                     "pop_minus_bayes_rate": _mean_std(pop), "n_seeds": len(seeds),
                                     "n_fits": len(rs), "wall_s_per_fit": statistics.mean(r["wall_s"] for r in rs)}
                for s, v in zip(seeds, val):
                    per_seed_all.setdefault(s, []).append(v)
        score = [statistics.mean(v) for v in per_seed_all.values()]  # per seed: the mean over every cell
        out[st] = {"cells": cells, "score": _mean_std(score), "per_seed_score": score, "overrides": _jsonable(GRID[st])}
    return out


def choose(summary: dict) -> tuple[str, dict]:
    """The best mean validation accuracy; each setting's paired difference to it (mean ± standard error over seeds)."""
    best = max(summary, key=lambda st: (summary[st]["score"][0], st == "base"))  # a tie keeps the recipe as it is
    paired = {}
    for st, v in summary.items():
        d = [a - b for a, b in zip(v["per_seed_score"], summary[best]["per_seed_score"])]
        paired[st] = (statistics.mean(d), statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else 0.0)
    return best, paired


def validation_table(summary: dict, paired: dict, best: str, backends: list[str]) -> str:
    cols = [f"{b}/{d}" for b in backends for d in DATASETS]
    head = (["setting", "overrides of `best`"] + [f"{c} val. acc." for c in cols] + ["mean val. acc. (all cells)",
            f"− {best} (paired, ± s.e.)"] + [f"{c} val. − Bayes" for c in cols] + [f"{c} fresh − Bayes rate" for c in cols])
    rows = []
    for st, v in sorted(summary.items(), key=lambda kv: -kv[1]["score"][0]):
        c = v["cells"]
        row = [f"**{st}**" if st == best else st, json.dumps(v["overrides"]) if v["overrides"] else "–"]
        row += [f"{c[k]['val'][0]:.2f} ± {c[k]['val'][1]:.2f}" for k in cols]
        row += [f"{v['score'][0]:.2f} ± {v['score'][1]:.2f}", f"{paired[st][0]:+.2f} ± {paired[st][1]:.2f}"]
        row += [f"{c[k]['val_minus_bayes'][0]:+.2f}" for k in cols] + [f"{c[k]['pop_minus_bayes_rate'][0]:+.2f}" for k in cols]
        rows.append(row)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def plot_validation(summary: dict, backends: list[str], out_png: Path) -> None:
    """Validation accuracy minus the Bayes-optimal classifier's on the same validation points, per setting."""
    from nnlab.report import plots

    order = sorted(summary, key=lambda st: -summary[st]["score"][0])
    series = {}
    for b in backends:
        for d in DATASETS:
            k = f"{b}/{d}"
            n = [summary[st]["cells"][k]["n_seeds"] for st in order]
            series[k] = ([summary[st]["cells"][k]["val_minus_bayes"][0] for st in order],
                         [summary[st]["cells"][k]["val_minus_bayes"][1] / math.sqrt(max(1, m)) for st, m in zip(order, n)])
    plots.plot_bar_compare(order, series, out_png, ylabel="validation acc. − Bayes-optimal (points; ± s.e.)",
                           title="Part I settings on validation (never the test split)")
    fresh = {k: ([summary[st]["cells"][k]["pop_minus_bayes_rate"][0] for st in order],
                 [summary[st]["cells"][k]["pop_minus_bayes_rate"][1] / math.sqrt(max(1, summary[st]["cells"][k]["n_seeds"]))
                  for st in order]) for k in series}
    plots.plot_bar_compare(order, fresh, out_png.with_name("fresh.png"), ylabel="fresh-data acc. − Bayes rate (points; ± s.e.)",
                           title="Diagnostic, not used for the choice: the validation models on fresh draws")


def fresh_accuracy(learner, backend: str, pop) -> float:
    """Expected accuracy on fresh data: the mean over the draws of P(the model's class | x), the posterior exact."""
    X_pop, P_pop = pop  # (M, 2) fresh draws, (M, 2) their posteriors
    return float(P_pop[np.arange(len(X_pop)), _predict(learner, backend, X_pop)].mean())


def gap_summary(accs: list[float], bayes: list[float], fresh: list[float]) -> dict:
    """Test accuracies against the Bayes-optimal classifier's on the same splits (points), the target's verdict
    (mean gap >= -0.5) and the fresh-data gap."""
    diffs = [a - c for a, c in zip(accs, bayes)]
    # one test point is 0.5 points of a 200-point split, so the mean is a multiple of 0.05: compare rounded
    return {"test": _mean_std(accs), "bayes": _mean_std(bayes), "minus_bayes": _mean_std(diffs),
            "met": round(statistics.mean(diffs), 6) >= -0.5, "fresh_minus_bayes_rate": _mean_std(fresh),
            "per_seed_test": accs, "per_seed_bayes": bayes}


def test_chosen(setting: str, backends: list[str], seeds: int) -> dict:
    """The ONE chosen setting, trained as compare part1 trains it (``setup_toy`` and the loop on all 800 training
    points: ``train_toy_mlp`` without its run folder, so the model stays at hand for the fresh-data diagnostic)."""
    from nnlab.data.bayes import split_accuracy
    from nnlab.data.toy import ToyDataConfig
    from nnlab.experiments.mlp import setup_toy
    from nnlab.train.loop import fit

    res = {}
    for b in backends:
        for d in DATASETS:
            cfg, pop = ToyDataConfig(dataset=d), population(d)
            accs, bayes, fresh = [], [], []
            for s in range(seeds):
                spec, optim, schedule, train = resolve(setting, b, s)
                learner, data, _ = setup_toy(spec, cfg, optim, schedule, train)
                accs.append(100 * fit(learner, data, train, run=None, config_record={"model_name": f"mlp-{b}"})["test_accuracy"])
                bayes.append(100 * split_accuracy(cfg, s))
                fresh.append(100 * (fresh_accuracy(learner, b, pop[0]) - pop[1]))
            res[f"{b}/{d}"] = gap_summary(accs, bayes, fresh)
            r = res[f"{b}/{d}"]
            print(f"  test {b}/{d}: {r['test'][0]:.2f}, Bayes {r['bayes'][0]:.2f}, ours − Bayes {r['minus_bayes'][0]:+.2f} "
                  f"± {r['minus_bayes'][1]:.2f} ({'met' if r['met'] else 'MISSED'}); "
                  f"fresh − Bayes rate {r['fresh_minus_bayes_rate'][0]:+.2f}", flush=True)
    return res


def _names(text: str, valid, what: str) -> list[str]:
    names = [t for t in text.split(",") if t]
    bad = [n for n in names if n not in valid]
    if bad or not names:
        sys.exit(f"unknown {what} {bad or text!r}; valid: {', '.join(valid)}")
    return names


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", default=",".join(GRID), help="comma-separated names from GRID (default: all)")
    ap.add_argument("--backends", default="numpy,torch", help="numpy, torch or both, comma-separated")
    ap.add_argument("--seeds", type=int, default=10, help="split seeds 0..N-1, those of compare part1 --seeds N")
    ap.add_argument("--folds", type=int, default=2, help=f"validation folds per split, the first N of {K_FOLDS}")
    ap.add_argument("--no-train", action="store_true", help="only summarise the finished records (seeds complete for every cell)")
    ap.add_argument("--test", action="store_true", help="then train the chosen setting on all training points, test it once")
    ap.add_argument("--out", default="runs/tune-part1", help="records.jsonl, validation.{md,json,png}, fresh.png, test.json")
    args = ap.parse_args(argv)
    args.settings = _names(args.settings, list(GRID), "settings")
    args.backends = _names(args.backends, ["numpy", "torch"], "backends")
    if not (1 <= args.folds <= K_FOLDS and args.seeds >= 1):
        sys.exit(f"--folds must be in 1..{K_FOLDS} and --seeds >= 1, got {args.folds} and {args.seeds}")
    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = validate(args, out)
    if not records:
        sys.exit("no seed is complete for every requested cell yet")
    summary = summarize(records, args.settings, args.backends)
    best, paired = choose(summary)
    table = validation_table(summary, paired, best, args.backends)
    (out / "validation.md").write_text(table + "\n")
    (out / "validation.json").write_text(json.dumps({"args": vars(args), "chosen": best, "paired_vs_chosen": paired,
                                                     "summary": summary}, indent=1))
    plot_validation(summary, args.backends, out / "validation.png")
    print(table)
    print(f"chosen on validation: {best} {json.dumps(GRID[best])}")
    if args.test:
        res = test_chosen(best, args.backends, args.seeds)
        (out / "test.json").write_text(json.dumps({"chosen": best, "overrides": _jsonable(GRID[best]), "test": res}, indent=1))
    print(json.dumps({"chosen": best, "overrides": _jsonable(GRID[best]), "figures": str(out)}))


if __name__ == "__main__":
    main()
