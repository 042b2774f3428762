"""``nnlab compare part1``: the report's Task 1.2 table (NumPy/PyTorch x moons/circles) over seeds.

Each cell is a full run folder under ``OUT/runs``; a finished run (its ``summary.json`` exists) is reused,
so an interrupted comparison continues where it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError
from ..train.runfolder import write_json

#: The report's single-run final test accuracies (Part I, Task 1.2 table), in %.
REPORT_PART1 = {("numpy", "moons"): 97.5, ("numpy", "circles"): 96.0, ("torch", "moons"): 97.0, ("torch", "circles"): 98.5}
CELLS = [("numpy", "moons"), ("numpy", "circles"), ("torch", "moons"), ("torch", "circles")]


def run_part1(out, seeds: int, *, epochs: int | None = None, progress: str = "auto", overrides: dict | None = None) -> dict:
    """Run (or reuse) every cell x seed; write table.md, results.json and part1_accuracy.png into ``out``."""
    from tqdm import tqdm

    from ..data.toy import ToyDataConfig
    from ..train.config import OptimConfig, ScheduleConfig, TrainConfig
    from ..train.flags import build
    from .mlp import TOY_DEFAULTS, MLPSpec, train_toy_mlp

    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    overrides = overrides or {}
    jobs = [(b, d, s) for (b, d) in CELLS for s in range(seeds)]
    import sys

    bar = tqdm(jobs, desc="part1", unit="run", disable=progress == "off" or (progress == "auto" and not sys.stderr.isatty()))
    results: dict = {}
    for backend, dataset, seed in bar:
        bar.set_postfix_str(f"{backend}/{dataset}/seed {seed}")
        rd = out / "runs" / f"{backend}-{dataset}-s{seed}"
        summ = rd / "summary.json"
        if summ.exists():
            s = json.loads(summ.read_text())
        else:
            train_over = dict(TOY_DEFAULTS["train"], seed=seed, progress="off", **overrides.get("train", {}))
            if epochs:
                train_over["epochs"] = epochs
            s = train_toy_mlp(
                MLPSpec(backend=backend), ToyDataConfig(dataset=dataset),
                build(OptimConfig, TOY_DEFAULTS["optim"], overrides.get("optim", {})),
                build(ScheduleConfig, TOY_DEFAULTS["schedule"], overrides.get("schedule", {})),
                build(TrainConfig, train_over), out=rd, resume=(rd / "checkpoint.pt").exists(), recipe="default")
        results.setdefault(f"{backend}/{dataset}", []).append(
            {"seed": seed, "test_accuracy": s["test_accuracy"], "test_loss": s["test_loss"], "wall_time_s": s["wall_time_s"]})
    return write_part1_outputs(out, results)


def write_part1_outputs(out: Path, results: dict) -> dict:
    from ..report import plots, tables

    rows, summary = [], {}
    for i, (backend, dataset) in enumerate(CELLS, 1):
        runs = results.get(f"{backend}/{dataset}", [])
        if not runs:
            continue
        accs = [r["test_accuracy"] for r in runs]
        losses = [r["test_loss"] for r in runs]
        m, s = tables.mean_std(accs)
        lm, ls = tables.mean_std(losses)
        summary[f"{backend}/{dataset}"] = {"report_accuracy": REPORT_PART1[(backend, dataset)] / 100, "mean_accuracy": m,
                                           "std_accuracy": s, "mean_loss": lm, "std_loss": ls, "n": len(accs), "runs": runs}
        rows.append([i, "NumPy" if backend == "numpy" else "PyTorch", dataset, f"{REPORT_PART1[(backend, dataset)]:.1f}",
                     tables.fmt_pct(m, s, len(accs)), f"{lm:.4f} ± {ls:.4f}"])
    md = ["# Part I, Task 1.2: NumPy and PyTorch MLPs on moons and circles", "",
          "Test accuracy in %. Report: one run each. Ours: mean ± sample std over seeds (n), default settings.",
          "Our loss is the mean per-sample cross-entropy; the report's loss column (54–85) is not on that scale.", "",
          tables.markdown_table(["id", "implementation", "dataset", "report acc.", "ours acc. (mean ± std)", "ours test loss"], rows),
          "", "![accuracy](part1_accuracy.png)", ""]
    (out / "table.md").write_text("\n".join(md))
    write_json(out / "results.json", summary)
    labels = [f"{'NumPy' if b == 'numpy' else 'PyTorch'}\n{d}" for b, d in CELLS if f"{b}/{d}" in summary]
    keys = [f"{b}/{d}" for b, d in CELLS if f"{b}/{d}" in summary]
    plots.plot_bar_compare(labels, {
        "report (1 run)": ([100 * summary[k]["report_accuracy"] for k in keys], None),
        "nnlab (mean ± std)": ([100 * summary[k]["mean_accuracy"] for k in keys], [100 * summary[k]["std_accuracy"] for k in keys]),
    }, out / "part1_accuracy.png", ylabel="test accuracy (%)")
    return summary


def cli_compare(args) -> int:
    if args.what != "part1":
        raise ConfigError(f"unknown comparison {args.what!r}; valid: part1")
    try:
        seeds = int(args.seeds)
    except ValueError:
        raise ConfigError(f"--seeds must be a positive integer, got {args.seeds!r}") from None
    if seeds <= 0:
        raise ConfigError(f"--seeds must be a positive integer, got {args.seeds!r}")
    epochs = None
    if args.epochs is not None:
        try:
            epochs = int(args.epochs)
        except ValueError:
            epochs = -1
        if epochs <= 0:
            raise ConfigError(f"--epochs must be a positive integer, got {args.epochs!r}")
    if args.progress not in ("auto", "on", "off"):
        raise ConfigError(f"unknown --progress {args.progress!r}; valid: auto, on, off")
    import os
    import time

    out = args.out or os.path.join("runs", "compare-part1-" + time.strftime("%Y%m%d-%H%M%S"))
    run_part1(out, seeds, epochs=epochs, progress=args.progress)
    print((Path(out) / "table.md").read_text())
    print(f"table: {Path(out) / 'table.md'}\nfigure: {Path(out) / 'part1_accuracy.png'}\njson: {Path(out) / 'results.json'}")
    return 0
