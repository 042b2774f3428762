"""Figures drawn from saved run files (or plain numbers), never from a model.

Every function builds a ``matplotlib.figure.Figure`` on an Agg canvas directly, without pyplot: no global
backend switch, no figure registry, so nothing is left open and it is safe in threads, notebooks and on
machines without a display. Each writes its PNG atomically (``nnlab._io.atomic_write_bytes``: a temporary
file in the same folder, then a rename), creates missing parent folders and returns the path it wrote.
Accuracies come in as fractions (0-1) and are shown as percent.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from .._io import atomic_write_bytes
from ..errors import DataError
from .tables import read_metrics_csv

#: Resolution of every PNG (dots per inch); 120 keeps a 10 x 4 in figure readable and under ~150 kB.
DPI = 120
#: One color per split, the same in every figure.
SPLIT_COLORS = {"train": "C0", "val": "C1", "test": "C2"}
SPLITS = ("train", "val", "test")


# --------------------------------------------------------------------------------------------- helpers
def _new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)  # render with Agg; the figure is not registered with pyplot
    return fig


def _save(fig: Figure, out_png: str | os.PathLike) -> Path:
    """Write ``fig`` as PNG to ``out_png`` atomically (``nnlab._io``); a reader never sees a half-written file."""
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=DPI)
    finally:
        fig.clear()  # drop the artists now; the figure itself is garbage once we return
    atomic_write_bytes(out, buf.getvalue())
    return out


def _present(values: Sequence[float | None] | None) -> bool:
    return values is not None and any(v is not None for v in values)


def _xy(x: Sequence[float | None], y: Sequence[float | None], scale: float = 1.0):
    pairs = [(a, b * scale) for a, b in zip(x, y) if a is not None and b is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


# ------------------------------------------------------------------------------------ training curves
def _fig_curves(metrics: Mapping[str, Sequence[float | None]], title: str | None) -> Figure:
    n_rows = max((len(v) for v in metrics.values()), default=0)
    if n_rows == 0:
        raise DataError("metrics have no rows to plot")
    if _present(metrics.get("epoch")):
        x, xlabel = metrics["epoch"], "epoch"
    elif _present(metrics.get("step")):
        x, xlabel = metrics["step"], "step"
    else:
        x, xlabel = list(range(1, n_rows + 1)), "evaluation"
    marker = "o" if n_rows <= 30 else None  # few points: show them; many: a plain line reads better

    fig = _new_figure((10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, kind, scale, ylabel in (
        (ax_loss, "loss", 1.0, "cross-entropy loss (mean per sample)"),
        (ax_acc, "accuracy", 100.0, "accuracy (%)"),
    ):
        drawn = False
        for split in SPLITS:
            col = metrics.get(f"{split}_{kind}")
            if not _present(col):
                continue  # e.g. no validation split: its columns are empty
            xs, ys = _xy(x, col, scale)
            ax.plot(xs, ys, marker=marker, markersize=3, color=SPLIT_COLORS[split], label=split)
            if n_rows == 1:  # one evaluation (e.g. only at the end): a lone dot says little, its value does
                ax.annotate(f"{split} {ys[0]:.2f}{'%' if kind == 'accuracy' else ''}", (xs[0], ys[0]),
                            xytext=(8, 0), textcoords="offset points", va="center", color=SPLIT_COLORS[split])
            drawn = True
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend()
        else:
            ax.text(0.5, 0.5, f"no {kind} columns", ha="center", va="center", transform=ax.transAxes)
    once = f" (one evaluation, at {xlabel} {x[0]:g})" if n_rows == 1 else ""
    ax_loss.set_title("loss" + once)
    ax_acc.set_title("accuracy" + once)
    if title:
        fig.suptitle(title)
    return fig


def plot_curves(metrics_csv: str | os.PathLike, out_png: str | os.PathLike, title: str | None = None) -> Path:
    """Loss and accuracy (%) against epoch (or step) from a run's ``metrics.csv``.

    One line per split (train / val / test) whose column has at least one value; empty columns are skipped.
    """
    return _save(_fig_curves(read_metrics_csv(metrics_csv), title), out_png)


# --------------------------------------------------------------------------------- decision boundary
def _load_grid(npz_path: str | os.PathLike) -> dict[str, np.ndarray]:
    path = Path(npz_path)
    if not path.is_file():
        raise DataError(f"decision grid file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read decision grid {path}: {exc}") from None
    missing = [k for k in ("xx", "yy", "proba", "X", "y") if k not in arrays]
    if missing:
        raise DataError(f"decision grid {path} lacks arrays {missing}; found {sorted(arrays)}")
    xx, yy, proba, X, y = (arrays[k] for k in ("xx", "yy", "proba", "X", "y"))
    problems = []
    if xx.ndim != 2 or xx.shape != yy.shape:
        problems.append(f"xx and yy must be 2-D meshgrids of one shape, got {xx.shape} and {yy.shape}")
    if proba.shape[:2] != xx.shape or proba.ndim not in (2, 3):
        problems.append(f"proba must be {xx.shape} or {xx.shape} + (C,), got {proba.shape}")
    if X.ndim != 2 or X.shape[1] != 2 or y.shape != (X.shape[0],):
        problems.append(f"X must be (N, 2) and y (N,), got {X.shape} and {y.shape}")
    if problems:
        raise DataError(f"malformed decision grid {path}: " + "; ".join(problems))
    return arrays


def _fig_decision_boundary(arrays: Mapping[str, np.ndarray], title: str | None) -> Figure:
    xx, yy, proba, X, y = (np.asarray(arrays[k]) for k in ("xx", "yy", "proba", "X", "y"))
    y = y.astype(np.int64)
    if proba.ndim == 3 and proba.shape[2] == 1:
        proba = proba[..., 0]
    fig = _new_figure((5.5, 4.5))
    ax = fig.subplots()
    if proba.ndim == 2:  # P(class 1) on the grid: a shaded probability map and the 0.5 contour
        n_classes = 2
        colors = ["#2166ac", "#b2182b"]
        cs = ax.contourf(xx, yy, proba, levels=np.linspace(0.0, 1.0, 21), cmap="RdBu_r", alpha=0.7)
        fig.colorbar(cs, ax=ax, label="P(class 1)", ticks=[0, 0.25, 0.5, 0.75, 1])
        ax.contour(xx, yy, proba, levels=[0.5], colors="k", linewidths=1.0)
    else:  # (H, W, C) class probabilities: colour each grid point by its predicted class
        n_classes = max(proba.shape[2], int(y.max(initial=0)) + 1)
        colors = [f"C{k % 10}" for k in range(n_classes)]
        cmap = ListedColormap(colors)
        pred = proba.argmax(axis=2)  # (H, W)
        ax.contourf(xx, yy, pred, levels=np.arange(n_classes + 1) - 0.5, cmap=cmap, alpha=0.3)
    for k in range(n_classes):
        pts = X[y == k]
        if len(pts):
            ax.scatter(pts[:, 0], pts[:, 1], s=12, color=colors[k], edgecolors="k", linewidths=0.4,
                       label=f"class {k}")
    ax.set_xlim(float(xx.min()), float(xx.max()))
    ax.set_ylim(float(yy.min()), float(yy.max()))
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.legend(loc="best", fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def plot_decision_boundary(npz_path: str | os.PathLike, out_png: str | os.PathLike, title: str | None = None) -> Path:
    """Decision regions and data points from ``decision_grid.npz`` (arrays ``xx, yy, proba, X, y``).

    ``proba`` of the grid's shape is P(class 1): shaded map plus the 0.5 contour. ``proba`` of shape
    ``(H, W, C)`` is coloured by its argmax class.
    """
    return _save(_fig_decision_boundary(_load_grid(npz_path), title), out_png)


# ---------------------------------------------------------------------------------- confusion matrix
def _fig_confusion(matrix, class_names: Sequence[str], title: str | None) -> Figure:
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"confusion matrix must be square (K, K), got shape {m.shape}")
    if len(class_names) != m.shape[0]:
        raise ValueError(f"got {len(class_names)} class names for a {m.shape[0]} x {m.shape[1]} confusion matrix")
    if not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError("confusion matrix counts must be finite and >= 0")
    k = m.shape[0]
    row_sums = m.sum(axis=1, keepdims=True)
    norm = np.divide(m, row_sums, out=np.zeros_like(m), where=row_sums > 0)  # rows = true class
    side = max(4.5, 0.55 * k + 2.5)
    fig = _new_figure((side + 1.5, side))
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, label="fraction of the true class", shrink=0.85)
    fontsize = 9 if k <= 10 else 6
    for i in range(k):
        for j in range(k):
            count = m[i, j]
            text = f"{int(count)}" if float(count).is_integer() else f"{count:.3g}"
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if norm[i, j] > 0.5 else "black")
    rotate = max(len(str(c)) for c in class_names) > 3
    ax.set_xticks(range(k), labels=[str(c) for c in class_names], rotation=45 if rotate else 0,
                  ha="right" if rotate else "center")
    ax.set_yticks(range(k), labels=[str(c) for c in class_names])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or "confusion matrix\n(shade: fraction of the true class; numbers: counts)", fontsize=10)
    return fig


def plot_confusion_matrix(matrix, class_names: Sequence[str], out_png: str | os.PathLike,
                          title: str | None = None) -> Path:
    """Confusion matrix (rows = true class) shaded by row fraction, each cell annotated with its count."""
    return _save(_fig_confusion(matrix, class_names, title), out_png)


# ---------------------------------------------------------------------------- accuracy vs seq length
def _fig_accuracy_vs_length(rows: Sequence[Mapping], reference: Mapping | None, title: str | None) -> Figure:
    cells: dict[str, list[tuple[float, float, float]]] = {}
    for i, row in enumerate(rows):
        missing = [k for k in ("cell", "T", "mean") if k not in row]
        if missing:
            raise ValueError(f"row {i} lacks keys {missing}; each row needs cell, T, mean (and std)")
        std = row.get("std")
        cells.setdefault(str(row["cell"]), []).append(
            (float(row["T"]), float(row["mean"]), 0.0 if std is None else float(std)))
    if not cells and not reference:
        raise ValueError("plot_accuracy_vs_length needs at least one row or a reference")
    fig = _new_figure((6.5, 4.2))
    ax = fig.subplots()
    all_t: set[float] = set()
    for k, (cell, points) in enumerate(cells.items()):
        t, mean, std = (np.array(v) for v in zip(*sorted(points)))
        all_t.update(t.tolist())
        color = f"C{k % 10}"
        ax.plot(t, 100 * mean, marker="o", color=color, label=f"{cell} (mean ± std)")
        ax.fill_between(t, np.clip(100 * (mean - std), 0, 100), np.clip(100 * (mean + std), 0, 100),
                        color=color, alpha=0.2, linewidth=0)
    if reference:
        ref = sorted((float(t), float(a)) for t, a in reference.items())
        all_t.update(t for t, _ in ref)
        ax.plot([t for t, _ in ref], [100 * a for _, a in ref], linestyle="none", marker="*", markersize=12,
                color="k", label="report (single run)")
    ax.set_xticks(sorted(all_t), labels=[f"{t:g}" for t in sorted(all_t)])
    ax.set_ylim(0, 105)
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def plot_accuracy_vs_length(rows: Sequence[Mapping], out_png: str | os.PathLike,
                            reference: Mapping[float, float] | None = None, title: str | None = None) -> Path:
    """Accuracy (%) against sequence length: one line per ``cell`` with a mean ± std band.

    ``rows``: dicts ``{cell, T, mean, std}`` (fractions; ``std`` may be missing or None for one run).
    ``reference``: ``{T: accuracy fraction}`` (e.g. the report's numbers) drawn as black stars labelled
    "report (single run)".
    """
    return _save(_fig_accuracy_vs_length(rows, reference, title), out_png)


# ------------------------------------------------------------------------------------ gradient norms
def _fig_gradient_norms(data: Mapping[str, Sequence[float]], title: str | None) -> Figure:
    if not data:
        raise ValueError("plot_gradient_norms needs at least one series")
    fig = _new_figure((6.5, 4.2))
    ax = fig.subplots()
    any_positive = False
    for k, (label, norms) in enumerate(data.items()):
        y = np.asarray(norms, dtype=np.float64).reshape(-1)
        any_positive |= bool(np.any(np.isfinite(y) & (y > 0)))
        ax.plot(np.arange(1, y.size + 1), y, marker="." if y.size <= 50 else None, color=f"C{k % 10}", label=str(label))
    if any_positive:  # zeros (vanished gradients) are masked, not an error
        ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel("time step $t$")
    ax.set_ylabel(r"$\|\partial L / \partial h_t\|$")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(title or "gradient norm of the loss w.r.t. each hidden state")
    return fig


def plot_gradient_norms(data: Mapping[str, Sequence[float]], out_png: str | os.PathLike,
                        title: str | None = None) -> Path:
    """``{label: [‖∂L/∂h_t‖ for t = 1..T]}`` as lines on a log y axis (one per label)."""
    return _save(_fig_gradient_norms(data, title), out_png)


# ------------------------------------------------------------------------------ grouped bar compare
def _as_floats(values, n: int, what: str) -> np.ndarray:
    values = list(values)
    if len(values) != n:
        raise ValueError(f"{what} has {len(values)} values, expected {n} (one per label)")
    return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)


def _fig_bar_compare(labels: Sequence[str], series: Mapping[str, tuple], ylabel: str, title: str | None,
                     markers: Mapping[str, Sequence] | None = None) -> Figure:
    labels = [str(label) for label in labels]
    if not labels or not series:
        raise ValueError("plot_bar_compare needs at least one label and one series")
    n, k = len(labels), len(series)
    width = 0.8 / k
    x = np.arange(n)
    fig = _new_figure((min(12.0, max(5.0, 1.2 * n * max(1, k) ** 0.5 + 2)), 4.2))  # capped: stays readable in a page
    ax = fig.subplots()
    for s, (name, pair) in enumerate(series.items()):
        try:
            means, stds = pair
        except (TypeError, ValueError):
            raise ValueError(f"series {name!r} must be a pair (means, stds or None), got {pair!r}") from None
        m = _as_floats(means, n, f"series {name!r} means")
        err = None if stds is None else np.nan_to_num(_as_floats(stds, n, f"series {name!r} stds"), nan=0.0)
        if err is not None:
            err[np.isnan(m)] = 0.0  # no bar, no error bar
        bars = ax.bar(x + (s - (k - 1) / 2) * width, np.nan_to_num(m, nan=0.0), width, yerr=err, capsize=3,
                      color=f"C{s % 10}", label=str(name))
        ax.bar_label(bars, labels=["" if math.isnan(v) else f"{v:.1f}" for v in m], padding=2, fontsize=7)
    for j, (name, values) in enumerate((markers or {}).items()):  # a dash across each whole group
        v = _as_floats(values, n, f"marker {name!r}")
        ok = ~np.isnan(v)
        ax.hlines(v[ok], x[ok] - 0.42, x[ok] + 0.42, colors="k", linestyles=("-", "--", ":")[j % 3], linewidth=1.5,
                  label=str(name))
    rotate = n > 4 or max(len(part) for label in labels for part in label.split("\n")) > 12
    ax.set_xticks(x, labels=labels, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    fig.legend(loc="outside upper center", ncols=min(k + len(markers or {}), 4), fontsize=8)  # above the axes: never over a bar
    return fig


def plot_bar_compare(labels: Sequence[str], series: Mapping[str, tuple], out_png: str | os.PathLike,
                     ylabel: str, title: str | None = None, markers: Mapping[str, Sequence] | None = None) -> Path:
    """Grouped bars with error bars, e.g. "report vs ours (mean ± std)".

    ``series``: ``{name: (means, stds or None)}``, each sequence with one value per label, in the unit
    of ``ylabel`` (values are drawn as given). A mean of ``None``/NaN leaves that bar out (e.g. a number
    the report does not give). ``markers``: ``{name: values}``, one value per label drawn as a black dash
    across that label's group (a reference level such as the Bayes-optimal accuracy); ``None``/NaN: no dash.
    """
    return _save(_fig_bar_compare(labels, series, ylabel, title, markers), out_png)


# ------------------------------------------------------------------------------- a run folder's figures
def draw_run_figures(run_dir: str | os.PathLike, summary: Mapping, *, only_missing: bool = False) -> dict[str, Path]:
    """The figures of one run folder, drawn from its saved files; returns ``{kind: path}`` of those it holds.

    ``curves``: ``curves.png`` from ``metrics.csv``; ``confusion``: ``confusion_matrix.png`` from ``summary``'s
    ``confusion_matrix`` when it has more than 2 classes (class names: the keys of its ``per_class_accuracy``, in
    order); ``boundary``: ``decision_boundary.png`` from ``decision_grid.npz``. ``only_missing``: draw only the
    figures not there yet (a finished run folder reused, e.g. one killed after ``summary.json``, before them)."""
    rd = Path(run_dir)
    names, matrix = list(summary.get("per_class_accuracy") or {}), summary.get("confusion_matrix")
    figures = {  # kind: (file, whether its source is there, how to draw it)
        "curves": ("curves.png", (rd / "metrics.csv").exists(),
                   lambda out: plot_curves(rd / "metrics.csv", out, title=summary.get("model"))),
        "confusion": ("confusion_matrix.png", matrix is not None and len(names) > 2 and len(matrix) == len(names),
                      lambda out: plot_confusion_matrix(matrix, names, out)),
        "boundary": ("decision_boundary.png", (rd / "decision_grid.npz").exists(),
                     lambda out: plot_decision_boundary(rd / "decision_grid.npz", out)),
    }
    held = {}
    for kind, (png, source, draw) in figures.items():
        out = rd / png
        if source and not (only_missing and out.exists()):
            draw(out)
        if out.exists():
            held[kind] = out
    return held
