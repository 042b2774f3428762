"""The report of one ``nnlab reproduce`` folder: ``report.md``, ``report.html`` and ``headline.md``, drawn from its saved
files only (``reproduce.json``, each run's ``summary.json`` and ``metrics.csv``, the sections' JSON files), never from
a model: ``nnlab report DIR`` redraws it without retraining.

The folder's layout (written by ``nnlab.experiments.reproduce``):

    DIR/reproduce.json          budget (name and settings), version, commit, device, status of each section
    DIR/part1/{seed,best}/      Task 1.2: runs/<backend>-<data set>-s<k>/, table.md, results.json (Bayes accuracies)
    DIR/mlp/{seed,best}-s<k>/   Task 1.3: one CIFAR-10 run folder per recipe and seed
    DIR/cnn/{seed,best}-s<k>/   Part II:  the same for the VGG
    DIR/rnn/{seed,best}/runs/   Part III: the vanilla RNN over input lengths, per recipe
    DIR/rnn/lstm/runs/          Part III: the LSTM (``best`` recipe) beside it
    DIR/rnn/gradients/          Part III: gradient_norms.json (‖∂L/∂h_t‖ through time)
    DIR/figures/                the report's comparison figures (drawn here from the files above)

Every table puts the report's figure (``nnlab.report.reference``) beside ours with the report's settings (recipe
``seed``) and ours with our best recipe (``best``). One function per section; each appends its markdown lines and its
headline row.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .._io import atomic_write_text
from ..errors import ConfigError, DataError
from . import html, plots, tables
from .reference import (BAYES_TARGET_POINTS, CELLS, DOUBLE_SOFTMAX_FLOOR, REPORT_MLP_OVERALL, REPORT_MLP_PER_CLASS,
                        REPORT_PART1, REPORT_PART1_LOSS, REPORT_RNN, REPORT_RNN_TRAIN_LOSS)

#: the report's two columns of ours, in order: the report's settings, then our best recipe
RECIPE_ORDER = ("seed", "best")
SECTIONS = ("part1", "mlp", "cnn", "rnn")
SECTION_TITLES = {
    "part1": "Part I, Task 1.2: NumPy and PyTorch MLPs on moons and circles",
    "mlp": "Part I, Task 1.3: MLP on CIFAR-10",
    "cnn": "Part II: the VGG-style CNN on CIFAR-10",
    "rnn": "Part III: vanilla RNN (and LSTM) on palindromes",
}
REPRODUCE_JSON = "reproduce.json"
#: The Part I recipes as the report's table caption says them (recipe -> text; the values: nnlab.experiments.recipes).
PART1_RECIPE_TEXT = {
    "seed": ("the report's optimizers, batch 5, constant step size: NumPy plain SGD, PyTorch Adam (step sizes 0.05 and "
             "1e-3 and 60 epochs are ours: the report gives none)"),
    "best": ("ours for both backends, chosen on validation folds of the training points (SGD momentum 0.9, step size "
             "0.05, cosine schedule, 30 epochs, batch 5)"),
}
_HEADLINE_COLUMNS = ["experiment", "report", "ours, report's settings", "ours, best"]


# ----------------------------------------------------------------------------------- small helpers
def read_json(path: Path):
    """A JSON file's content, or a DataError naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"file not found: {path}") from None
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {path}: {e}") from None


def _summaries(pattern_dir: Path, glob: str = "*/summary.json") -> list[tuple[Path, dict]]:
    """(run folder, summary) of every finished run matching ``glob`` under ``pattern_dir``, sorted by name."""
    if not pattern_dir.is_dir():
        return []
    return [(p.parent, read_json(p)) for p in sorted(pattern_dir.glob(glob))]


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def _seed_list(seeds) -> str:
    seeds = sorted(set(int(s) for s in seeds))
    if not seeds:
        return "none"
    if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(str(s) for s in seeds)


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _img(path: Path | None, root: Path, alt: str) -> str:
    return f"![{alt}]({_rel(path, root)})" if path is not None else "–"


def _pct(values: list[float]) -> str:
    if not values:
        return "–"
    m, s = tables.mean_std(values)
    return tables.fmt_pct(m, s, len(values))


def _mean_of_means(groups: list[list[float]], what: str) -> str:
    """The mean over cells of each cell's mean, in % (a spread across different cells is not a seed spread)."""
    groups = [g for g in groups if g]
    if not groups:
        return "–"
    m = sum(sum(g) / len(g) for g in groups) / len(groups)
    return f"{100 * m:.1f} (mean of {len(groups)} {what}, {sum(map(len, groups))} runs)"


def _series(per_recipe: dict[str, list[list[float]]]) -> dict:
    """Bar-chart series of ours (recipe -> one list of accuracies per bar), in %, with the sample std as error bar."""
    series = {}
    for r, label in (("seed", "ours, report's settings"), ("best", "ours, best")):
        ms = [tables.mean_std(v) if v else (None, None) for v in per_recipe[r]]
        series[label] = ([None if m is None else 100 * m for m, _ in ms], [None if sd is None else 100 * sd for _, sd in ms])
    return series


# ------------------------------------------------------------------------------ section furniture
def _provenance_line(rec: dict, name: str, summaries: list[dict], extra: str = "") -> str:
    sec = rec.get("sections", {}).get(name, {})
    devices = sorted({str(s.get("device")) for s in summaries if s.get("device")}) or [rec.get("device", "?")]
    commits = sorted({str(s.get("git_commit")) for s in summaries if s.get("git_commit")})
    versions = sorted({str(s.get("nnlab_version")) for s in summaries if s.get("nnlab_version")}) or [rec.get("nnlab_version")]
    train_s = sum(float(s.get("wall_time_s") or 0) for s in summaries)
    parts = [f"nnlab {', '.join(map(str, versions))}",
             f"commit {', '.join(commits) if commits else rec.get('git_commit') or 'unknown'}",
             f"budget {rec.get('budget')}",
             f"seeds {_seed_list(s.get('seed', 0) for s in summaries)}",
             f"device {', '.join(devices)}",
             f"{len(summaries)} runs, training wall time {_fmt_duration(train_s)} (sum over runs)",
             f"section time {_fmt_duration(sec.get('elapsed_s'))}",
             f"status {sec.get('status', 'not run')}"]
    return "*Provenance:* " + " · ".join(parts) + (f" · {extra}" if extra else "") + "."


def _section_status_note(rec: dict, name: str) -> list[str]:
    sec = rec.get("sections", {}).get(name, {})
    st = sec.get("status", "pending")
    if st == "skipped":
        return ["> **Not run: CIFAR-10 was not found.** " + (sec.get("reason") or "").replace("\n", " ")
                + " — Get it with `nnlab data download cifar10` (it goes to `./data`, or to `--data-dir DIR` / "
                "`$NNLAB_DATA_DIR`), then rerun the same `nnlab reproduce` command: the finished sections are reused.", ""]
    if st == "failed":
        return [f"> **This section failed:** {sec.get('reason')}. Rerun the same command to retry; the finished runs "
                "are reused.", ""]
    if st in ("pending", "running", "interrupted"):
        return [f"> **Incomplete ({st}).** The tables below show the runs finished so far; rerun the same "
                "`nnlab reproduce` command to continue.", ""]
    return []


def _section_head(rec: dict, name: str, summaries: list[dict], extra: str = "") -> list[str]:
    """The section's title, its status note (when not done) and its provenance line."""
    return [f"## {SECTION_TITLES[name]}", "", *_section_status_note(rec, name), _provenance_line(rec, name, summaries, extra), ""]


# ------------------------------------------------------------------------------- Part I, Task 1.2
def _part1_bayes(root: Path) -> dict[tuple[str, int], float]:
    """(data set, seed) -> the Bayes-optimal classifier's accuracy on that test split, as ``part1.run_part1`` saved it
    in ``part1/<recipe>/results.json`` (both recipes use the same splits); empty where none was saved."""
    bayes = {}
    for recipe in RECIPE_ORDER:
        rj = root / "part1" / recipe / "results.json"
        for key, cell in (read_json(rj) if rj.exists() else {}).items():
            for r in cell.get("runs", []) if isinstance(cell, dict) else []:
                if r.get("bayes_accuracy") is not None:
                    bayes[(key.split("/")[-1], int(r["seed"]))] = r["bayes_accuracy"]
    return bayes


def _part1_runs(root: Path) -> tuple[dict, list[dict]]:
    """(recipe -> (backend, data set) -> [(run folder, summary)], every summary in folder order), from
    ``part1/<recipe>/runs/<backend>-<data set>-s<k>``."""
    by, allsum = {r: {} for r in RECIPE_ORDER}, []
    for recipe in RECIPE_ORDER:
        for rd, s in _summaries(root / "part1" / recipe / "runs"):
            m = re.match(r"^(numpy|torch)-(moons|circles)-s(\d+)$", rd.name)
            if m:
                by[recipe].setdefault((m.group(1), m.group(2)), []).append((rd, s))
                allsum.append(s)
    return by, allsum


def _part1_table(root: Path, by: dict, lines: list[str], headline: list) -> dict:
    """The Task 1.2 table and its headline row; returns the mean Bayes-optimal accuracy (%) per cell."""
    bayes = _part1_bayes(root)
    rows, acc, bayes_mean = [], {r: [] for r in RECIPE_ORDER}, {}  # acc: recipe -> [accuracies of each cell]
    for i, (b, d) in enumerate(CELLS, 1):
        accs = {r: [s["test_accuracy"] for _, s in by[r].get((b, d), [])] for r in RECIPE_ORDER}
        seeds = sorted({int(s.get("seed", 0)) for r in RECIPE_ORDER for _, s in by[r].get((b, d), [])})
        bayes_accs = [bayes[(d, k)] for k in seeds if (d, k) in bayes]
        bayes_mean[(b, d)] = 100 * sum(bayes_accs) / len(bayes_accs) if bayes_accs else None
        losses = [s["test_loss"] for _, s in by["best"].get((b, d), [])]
        for r in RECIPE_ORDER:
            acc[r].append(accs[r])
        loss = "–"
        if losses:
            lm, ls = tables.mean_std(losses)
            loss = f"{lm:.3f} ± {ls:.3f}" if len(losses) > 1 else f"{lm:.3f}"
        rows.append([i, "NumPy" if b == "numpy" else "PyTorch", d, f"{REPORT_PART1[(b, d)]:.1f}",
                     _pct(accs["seed"]), _pct(accs["best"]), _pct(bayes_accs), f"{REPORT_PART1_LOSS[(b, d)]:.2f}", loss])
    lines += [tables.markdown_table(["id", "implementation", "data set", "report acc.", "ours, report's settings",
                                     "ours, best", "Bayes-optimal, same splits", "report loss", "ours loss (best)"], rows), ""]
    lines += ["*Inconsistency in the report:* its test losses 54–85 are not a mean cross-entropy (two classes at chance "
              "give ln 2 ≈ 0.69, and a 97%-accurate classifier is far lower); they are probably sums over the test "
              "points, so only its accuracies are compared.", ""]
    headline.append(["Task 1.2: toy MLPs, mean of the 4 cells", f"{sum(REPORT_PART1.values()) / 4:.1f}",
                     _mean_of_means(acc["seed"], "cells"), _mean_of_means(acc["best"], "cells")])
    return bayes_mean


def _part1_bars(root: Path, by: dict, bayes_mean: dict, lines: list[str]) -> None:
    keys = [(b, d) for b, d in CELLS if any(by[r].get((b, d)) for r in RECIPE_ORDER)]
    if not keys:
        return
    series = {"report (1 run)": ([REPORT_PART1[k] for k in keys], None),
              **_series({r: [[s["test_accuracy"] for _, s in by[r].get(k, [])] for k in keys] for r in RECIPE_ORDER})}
    marks = [bayes_mean.get(k) for k in keys]
    fig = plots.plot_bar_compare([f"{'NumPy' if b == 'numpy' else 'PyTorch'}\n{d}" for b, d in keys], series,
                                 root / "figures" / "part1_accuracy.png", ylabel="test accuracy (%)",
                                 markers={"Bayes-optimal, same splits": marks} if any(m is not None for m in marks) else None)
    lines += [f"![Task 1.2 accuracy: report and ours]({_rel(fig, root)})", ""]


def _part1_grids(root: Path, by: dict, lines: list[str]) -> None:
    """Decision boundaries and curves of the best recipe's first seed, one 2 x 2 grid each."""
    for kind, label in (("boundary", "Decision boundaries"), ("curves", "Loss and accuracy curves")):
        cells, seeds = {}, set()
        for b, d in CELLS:
            runs = by["best"].get((b, d), [])
            if runs:
                rd, s = runs[0]
                cells[(b, d)] = plots.draw_run_figures(rd, s, only_missing=True).get(kind)
                seeds.add(s.get("seed", 0))
        if any(cells.values()):
            lines += [f"{label} (best recipe, seed {_seed_list(seeds)}):", ""]
            body = [[name] + [_img(cells.get((b, d)), root, f"{name} {d}") for d in ("moons", "circles")]
                    for b, name in (("numpy", "NumPy"), ("torch", "PyTorch"))]
            lines += [tables.markdown_table(["", "moons", "circles"], body), ""]


def _part1_section(root: Path, rec: dict, lines: list[str], headline: list) -> None:
    by, allsum = _part1_runs(root)
    lines += _section_head(rec, "part1", allsum)
    lines += ["Test accuracy in % on the 200 held-out points. Report: one run each. Ours: mean ± sample std over "
              f"seeds (n). *Report's settings* (`seed`): {PART1_RECIPE_TEXT['seed']}; *best*: {PART1_RECIPE_TEXT['best']}. "
              "*Bayes-optimal*: the classifier that knows the generating process (no training), on the same test "
              f"splits; the target is each backend at most {BAYES_TARGET_POINTS} points below it (the per-split "
              "differences: `part1/<recipe>/table.md`). Test loss: mean per-sample cross-entropy, best recipe.", ""]
    bayes_mean = _part1_table(root, by, lines, headline)
    _part1_bars(root, by, bayes_mean, lines)
    _part1_grids(root, by, lines)


# ------------------------------------------------------------------------ Task 1.3 and Part II
_CIFAR_CAPTION = {
    "mlp": ("Test accuracy in %, overall and per class. Report: one run (one hidden layer of 256, SGD). "
            "Ours: mean ± sample std over seeds (n); *report's settings* = recipe `seed`, *best* = recipe `best` "
            "(chosen on the validation split)."),
    "cnn": ("Test accuracy in %, overall and per class. The report prints no accuracy for its CNN (its results "
            "figure is not in the text). *Report's settings* = recipe `seed` (Adam 1e-4, batch 32, no augmentation, "
            "5,000 steps), computed in bf16 autocast with channels_last where the hardware has native bf16 (a "
            "deviation: same accuracy within the seed-to-seed spread, benchmarks/RESULTS.md; each run's precision "
            "is in its summary.json); *best* = recipe `best` (the same network; batch 128, Nesterov SGD, one-cycle, "
            "label smoothing 0.2, flips and 2-pixel translations, test-time views of the image, its mirror and "
            "1-pixel shifts; each choice made on the validation split, the runs behind them with their validation "
            "and test figures in benchmarks/RESULTS.md)."),
}


def _cifar_table(model: str, runs: dict, names: list[str], lines: list[str]) -> dict:
    """The overall + per-class table; returns recipe -> class -> accuracies."""
    overall = {r: [s["test_accuracy"] for _, s in runs[r]] for r in RECIPE_ORDER}
    rows = [["overall", f"{REPORT_MLP_OVERALL:.0f}" if model == "mlp" else "–",
             _pct(overall["seed"]), _pct(overall["best"])]]
    per = {r: {c: [s["per_class_accuracy"][c] for _, s in runs[r] if c in s.get("per_class_accuracy", {})] for c in names}
           for r in RECIPE_ORDER}
    for i, c in enumerate(names):
        ref = f"{REPORT_MLP_PER_CLASS[i]:.1f}" if model == "mlp" and i < len(REPORT_MLP_PER_CLASS) else "–"
        rows.append([c, ref, _pct(per["seed"][c]), _pct(per["best"][c])])
    lines += [tables.markdown_table(["class", "report", "ours, report's settings", "ours, best"], rows), ""]
    return per


def _cifar_figures(model: str, root: Path, runs: dict, names: list[str], per: dict, lines: list[str]) -> None:
    """The per-class bar chart, the first seed's curves of each recipe and one confusion matrix."""
    if names:
        series = {"report (1 run)": (list(REPORT_MLP_PER_CLASS[: len(names)]), None)} if model == "mlp" else {}
        series.update(_series({r: [per[r][c] for c in names] for r in RECIPE_ORDER}))
        fig = plots.plot_bar_compare(names, series, root / "figures" / f"{model}_per_class.png", ylabel="test accuracy (%)")
        lines += [f"![per-class accuracy]({_rel(fig, root)})", ""]
    figs = {r: plots.draw_run_figures(*runs[r][0], only_missing=True) if runs[r] else {} for r in RECIPE_ORDER}
    cm_of = "the best recipe" if figs["best"].get("confusion") else "the report's settings"
    lines += [f"Curves (first seed of each recipe) and the confusion matrix of {cm_of} (rows: true class):", ""]
    lines += [tables.markdown_table(["report's settings: curves", "best: curves"],
                                    [[_img(figs["seed"].get("curves"), root, "curves, report's settings"),
                                      _img(figs["best"].get("curves"), root, "curves, best")]]), ""]
    cm = figs["best"].get("confusion") or figs["seed"].get("confusion")
    if cm is not None:
        lines += [f"![confusion matrix]({_rel(cm, root)})", ""]


def _cifar_section(model: str, root: Path, rec: dict, lines: list[str], headline: list) -> None:
    runs = {r: _summaries(root / model, f"{r}-s*/summary.json") for r in RECIPE_ORDER}
    allsum = [s for r in RECIPE_ORDER for _, s in runs[r]]
    n_test = sorted({int(s.get("data_n_test", 0)) for s in allsum})
    n_train = sorted({int(s.get("data_n_train", 0)) for s in allsum})
    extra = (f"{'/'.join(map(str, n_train))} training and {'/'.join(map(str, n_test))} test images" if allsum else "")
    lines += _section_head(rec, model, allsum, extra)
    lines += [_CIFAR_CAPTION[model], ""]
    label = "Task 1.3: CIFAR-10 MLP (overall)" if model == "mlp" else "Part II: CIFAR-10 CNN (overall)"
    report_overall = f"{REPORT_MLP_OVERALL:.0f}" if model == "mlp" else "–"
    if not allsum:
        lines += ["No finished run yet.", ""]
        headline.append([label, report_overall, "–", "–"])
        return
    names = next((list(s["per_class_accuracy"]) for s in allsum if s.get("per_class_accuracy")), [])
    per = _cifar_table(model, runs, names, lines)
    headline.append([label, report_overall, *(_pct([s["test_accuracy"] for _, s in runs[r]]) for r in RECIPE_ORDER)])
    _cifar_figures(model, root, runs, names, per, lines)


# -------------------------------------------------------------------------------------- Part III
def _rnn_runs(root: Path) -> dict[str, list[tuple[Path, dict]]]:
    return {key: _summaries(root / "rnn" / key / "runs") for key in ("seed", "best", "lstm")}


def _at(runs: list[tuple[Path, dict]], T: int) -> list[dict]:
    """The summaries of the runs at input length ``T``."""
    return [s for _, s in runs if int(s.get("data_input_length", -1)) == T]


def _rnn_table(runs: dict, allsum: list[dict], lines: list[str], headline: list) -> None:
    def acc(key, T):
        return [s["test_accuracy"] for s in _at(runs[key], T)]

    lengths = sorted({int(s["data_input_length"]) for s in allsum if "data_input_length" in s} | set(REPORT_RNN))
    rows = []
    for T in lengths:
        tl = [s["train_loss"] for s in _at(runs["seed"], T) if s.get("train_loss") is not None]
        rows.append([T, f"{100 * REPORT_RNN[T]:.0f}" if T in REPORT_RNN else "–",
                     f"{REPORT_RNN_TRAIN_LOSS[T]:.2f}" if T in REPORT_RNN_TRAIN_LOSS else "–",
                     _pct(acc("seed", T)), f"{sum(tl) / len(tl):.3f}" if tl else "–", _pct(acc("best", T)), _pct(acc("lstm", T))])
    lines += [tables.markdown_table(["T", "report acc.", "report train loss", "ours, report's settings",
                                     "ours train loss (report's settings)", "ours, best", "LSTM, best"], rows), ""]
    lines += [f"*Inconsistency in the report:* it ends at 100% accuracy with a loss of 1.50, which shows a double "
              f"softmax (softmax in the model, then `CrossEntropyLoss`, which applies log-softmax again): that loss "
              f"cannot go below ln(1 + 9/e) ≈ {DOUBLE_SOFTMAX_FLOOR:.2f}, so its losses are not comparable with ours "
              "(a plain cross-entropy). Its single runs also put T = 12 at 20% next to T = 15 at 100%: seed noise, "
              "which the spread over our seeds measures.", ""]
    headline.append(["Part III: vanilla RNN, mean over the report's lengths", f"{100 * sum(REPORT_RNN.values()) / len(REPORT_RNN):.0f}",
                     *(_mean_of_means([acc(k, T) for T in sorted(REPORT_RNN)], "lengths") for k in RECIPE_ORDER)])


def _rnn_length_figure(root: Path, runs: dict, lines: list[str]) -> None:
    fig_rows = []
    for key, cell in (("seed", "vanilla, report's settings"), ("best", "vanilla, best"), ("lstm", "LSTM, best")):
        for T in sorted({int(s["data_input_length"]) for _, s in runs[key]}):
            m, sd = tables.mean_std([s["test_accuracy"] for s in _at(runs[key], T)])
            fig_rows.append({"cell": cell, "T": T, "mean": m, "std": sd})
    if fig_rows:
        fig = plots.plot_accuracy_vs_length(fig_rows, root / "figures" / "rnn_accuracy_vs_length.png", reference=REPORT_RNN)
        lines += [f"![accuracy against input length]({_rel(fig, root)})", ""]


def _rnn_gradients(root: Path, rec: dict, lines: list[str]) -> None:
    gd = root / "rnn" / "gradients"
    gj = gd / "gradient_norms.json"
    if not gj.exists():
        return
    g = read_json(gj)
    png = gd / "gradient_norms.png"
    if not png.exists():
        plots.plot_gradient_norms(g["norms"], png, title=f"‖∂L/∂h_t‖ through time, T={g.get('input_length')}")
    norms = g["norms"]
    first = {k: v[0] for k, v in norms.items() if v}
    ratio = {k: (v[0] / v[-1] if v and v[-1] else float("nan")) for k, v in norms.items()}
    lines += [f"Gradient flow through time: the gradient of the loss with respect to each hidden state, ‖∂L/∂h_t‖, for "
              f"T = {g.get('input_length')} ({g.get('recipe', 'best')} recipe, at initialisation and after "
              f"{g.get('steps', rec.get('budget_settings', {}).get('grad_steps', '?'))} training steps). The loss is computed at the "
              "last step, so ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ says how much of the signal reaches the first digits: "
              + ", ".join(f"{k}: {r:.2g}" for k, r in ratio.items() if k in first) + ".", "",
              f"![gradient norms through time]({_rel(png, root)})", ""]


def _rnn_curves(root: Path, runs: dict, lines: list[str]) -> None:
    curves = []
    for T in sorted(REPORT_RNN):
        rs = [(rd, s) for rd, s in runs["seed"] if int(s.get("data_input_length", -1)) == T]
        if rs:
            curves.append((T, plots.draw_run_figures(*rs[0], only_missing=True).get("curves")))
    if curves:
        lines += ["Curves with the report's settings at its input lengths (first seed), as in its appendix:", ""]
        lines += [tables.markdown_table([f"T = {T}" for T, _ in curves], [[_img(p, root, f"curves T={T}") for T, p in curves]]), ""]


def _rnn_section(root: Path, rec: dict, lines: list[str], headline: list) -> None:
    runs = _rnn_runs(root)
    allsum = [s for v in runs.values() for _, s in v]
    lines += _section_head(rec, "rnn", allsum)
    lines += ["Test accuracy in % on held-out palindromes, by input length T. Report: one run of the vanilla RNN each "
              "(its accuracies read from its figures). *Report's settings* = recipe `seed` (scalar digits, Xavier, "
              "RMSprop 1e-3, exponential decay, clipping); *best* = recipe `best` (one-hot digits, orthogonal init, "
              "clipping at 1, cosine schedule, no curriculum; LSTM 64 units, forget-gate bias 3). Ours: mean ± sample std over seeds (n).", ""]
    _rnn_table(runs, allsum, lines, headline)
    _rnn_length_figure(root, runs, lines)
    _rnn_gradients(root, rec, lines)
    _rnn_curves(root, runs, lines)


# ---------------------------------------------------------------------------------- the whole page
def _budget_rows(settings: dict) -> list[list[str]]:
    """One row per setting; the per-model and per-recipe overrides one row each, so the table stays narrow."""
    rows = []
    for key, value in settings.items():
        if key in ("summary", "listed"):
            continue
        if key == "cifar" and isinstance(value, dict):
            rows += [[f"cifar: {model}, {recipe}", "not run in this budget" if over is None else f"`{json.dumps(over)}`"]
                     for model, per in value.items() for recipe, over in per.items()]
        elif key == "rnn" and isinstance(value, dict):
            rows += [[f"rnn: {recipe}", f"`{json.dumps(over)}`"] for recipe, over in value.items()]
        else:
            rows.append([key, f"`{json.dumps(value)}`"])
    return rows


def _report_head(rec: dict, headline: list) -> list[str]:
    """Title, the budget line, the provenance table and the headline table."""
    budget_name = rec.get("budget", "?")
    bs = rec.get("budget_settings") or {}
    summary = bs.get("summary") or f"{budget_name} (its settings were not recorded)"  # as it was when the runs were made
    secs = rec.get("sections", {})
    head = ["# Reproducing the CS324 Assignment 2 report: MLP, CNN and RNN", ""]
    head += [f"> **Budget {summary}**" if budget_name != "full" else f"> Budget {summary}", ""]
    head += ["Every table puts the report's figure beside ours with the report's settings (recipe `seed`) and ours "
             "with our best recipe (`best`), as mean ± sample standard deviation over n seeds. Accuracies are in %.", ""]
    head += ["| provenance | |", "| --- | --- |",
             f"| nnlab version | {rec.get('nnlab_version')} |", f"| commit | {rec.get('git_commit') or 'unknown'} |",
             f"| budget | {budget_name} |", f"| device | {rec.get('device')} (torch {rec.get('torch')}) |",
             f"| python, platform | {rec.get('python')}, {rec.get('platform')} |",
             f"| started | {rec.get('started')} |", f"| finished | {rec.get('finished') or 'not yet'} |",
             f"| time in sections (all `reproduce` calls) | {_fmt_duration(rec.get('elapsed_s'))} |",
             "| sections | " + ", ".join(f"{n}: {secs.get(n, {}).get('status', 'pending')}" for n in SECTIONS) + " |", ""]
    return head + ["## Headline", "", tables.markdown_table(_HEADLINE_COLUMNS, headline), ""]


def _report_tail(rec: dict, root: Path) -> list[str]:
    budget_name = rec.get("budget", "?")
    return ["## Budget settings", "",
            f"`{budget_name}` (from `nnlab.experiments.reproduce.BUDGETS`; every other setting is the recipe's):", "",
            tables.markdown_table(["setting", "value"], _budget_rows(rec.get("budget_settings") or {})),
            "", f"Redraw this report from the saved files: `nnlab report {root}`. Continue or extend the runs: rerun the "
            f"same `nnlab reproduce --budget {budget_name} --out {root}` command.", ""]


def _reproduce_record(root: Path) -> dict:
    """``root/reproduce.json``, or a ConfigError saying ``root`` is not a reproduce folder."""
    if not root.is_dir():
        raise ConfigError(f"{str(root)!r} is not a folder; give the --out folder of `nnlab reproduce`")
    if not (root / REPRODUCE_JSON).exists():
        raise ConfigError(f"{str(root)!r} holds no {REPRODUCE_JSON}: it is not a reproduce folder "
                          "(make one with `nnlab reproduce --budget quick --out DIR`)")
    return read_json(root / REPRODUCE_JSON)


def write_report(out) -> Path:
    """Draw ``out/report.md``, the self-contained ``out/report.html`` and ``out/headline.md`` from the saved files
    in ``out`` only; return the path of report.md."""
    root = Path(out)
    rec = _reproduce_record(root)
    (root / "figures").mkdir(exist_ok=True)
    body: list[str] = []
    headline: list[list] = []
    _part1_section(root, rec, body, headline)
    _cifar_section("mlp", root, rec, body, headline)
    _cifar_section("cnn", root, rec, body, headline)
    _rnn_section(root, rec, body, headline)
    md = "\n".join(_report_head(rec, headline) + body + _report_tail(rec, root))
    md_path = root / "report.md"
    atomic_write_text(md_path, md)
    atomic_write_text(root / "headline.md", _headline_block(rec, headline))
    html.write_html(md_path, root / "report.html")
    return md_path


def _headline_block(rec: dict, headline: list) -> str:
    """The headline table with its provenance in one paragraph: what README.md quotes, generated, never typed.

    The commit is the one each section ran at (``-dirty`` when the tree had uncommitted changes); sections run at
    different commits are named one by one, so a table from a mixed or changed tree cannot pass for a clean one."""
    secs = rec.get("sections", {})
    commits = {n: secs[n].get("git_commit") for n in SECTIONS if secs.get(n, {}).get("status") == "done"}
    distinct = sorted({c for c in commits.values() if c})
    commit = distinct[0] if len(distinct) == 1 else ("; ".join(f"{n} at {c}" for n, c in commits.items()) or "unknown")
    prov = (f"From `nnlab reproduce --budget {rec.get('budget')}` ({rec.get('started', '?')} to {rec.get('finished') or 'not finished'}, "
            f"commit {commit}, nnlab {rec.get('nnlab_version')}, torch {rec.get('torch')} on {rec.get('device')}"
            f"{', ' + rec['cpu'] if rec.get('cpu') else ''}; {_fmt_duration(rec.get('elapsed_s'))} in sections). "
            "Ours: mean ± sample std over seeds (n runs).")
    return prov + "\n\n" + tables.markdown_table(_HEADLINE_COLUMNS, headline) + "\n"
