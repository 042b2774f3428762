"""Numbers for the report: mean and spread over runs, percent strings, markdown tables, metrics.csv reading.

Accuracies are fractions in [0, 1] everywhere in nnlab (``metrics.csv``, ``summary.json``); they become
percent strings only here, at the last step.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import DataError

#: The columns of ``metrics.csv`` (docs/ARCHITECTURE.md, "Run folder contract").
METRICS_COLUMNS = (
    "epoch", "step", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
    "test_loss", "test_accuracy", "lr", "seconds",
)


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``) of ``values``; the std of a single value is 0.0.

    The sample std is the usual spread reported over n independent seeds (airbench, most papers).
    """
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"mean_std needs a non-empty flat sequence of numbers, got shape {arr.shape}")
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return mean, std


def fmt_pct(mean: float, std: float | None, n: int, digits: int = 1) -> str:
    """Format accuracy fractions as percent: ``fmt_pct(0.973, 0.012, 10) -> "97.3 ± 1.2 (n=10)"``.

    With ``n == 1`` or ``std is None`` there is no spread to show: ``"97.3 (n=1)"``. Inputs must be
    fractions in [0, 1]; a value above 1 is almost always a percent passed twice, so it is refused.
    """
    problems = []
    if isinstance(mean, bool) or not isinstance(mean, (int, float, np.floating, np.integer)) \
            or not math.isfinite(mean) or not -1e-9 <= mean <= 1 + 1e-9:
        problems.append(f"mean must be a fraction in [0, 1], got {mean!r}")
    if std is not None and (not isinstance(std, (int, float, np.floating, np.integer))
                            or not math.isfinite(std) or not 0 <= std <= 1 + 1e-9):
        problems.append(f"std must be a fraction in [0, 1] or None, got {std!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        problems.append(f"n must be a positive integer, got {n!r}")
    if problems:
        raise ValueError("fmt_pct: " + "; ".join(problems))
    text = f"{100.0 * mean:.{digits}f}"
    if std is not None and n > 1:
        text += f" ± {100.0 * std:.{digits}f}"
    return f"{text} (n={n})"


def _cell(value) -> str:
    if value is None:
        return ""
    # A pipe would end the cell and a newline the row: escape the one, flatten the other.
    return str(value).replace("|", "\\|").replace("\r\n", " ").replace("\n", " ")


def markdown_table(headers: Sequence, rows: Iterable[Sequence]) -> str:
    """A GitHub-style pipe table (columns padded for plain-text reading), ending with a newline.

    Cells are ``str()``-ed as given (format numbers first, e.g. with ``fmt_pct``); ``None`` is an empty cell;
    ``|`` in a cell is escaped. Every row must have as many cells as ``headers``.
    """
    head = [_cell(h) for h in headers]
    if not head:
        raise ValueError("markdown_table needs at least one header")
    body = []
    for i, row in enumerate(rows):
        cells = [_cell(c) for c in row]
        if len(cells) != len(head):
            raise ValueError(f"markdown_table: row {i} has {len(cells)} cells, expected {len(head)} (one per header)")
        body.append(cells)
    widths = [max([3, len(h)] + [len(r[j]) for r in body]) for j, h in enumerate(head)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    out = [line(head), "| " + " | ".join("-" * w for w in widths) + " |"] + [line(r) for r in body]
    return "\n".join(out) + "\n"


def read_metrics_csv(path: str | os.PathLike) -> dict[str, list[float | None]]:
    """Read a run's ``metrics.csv`` into ``{column: [value per row]}``; an empty cell is ``None``.

    Every column of the header is returned, in file order (the usual ones are ``METRICS_COLUMNS``).
    Raises ``DataError`` for a missing file, a file without a header, or a cell that is not a number.
    """
    path = Path(path)
    try:
        fh = path.open(newline="", encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"metrics file not found: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot read metrics file {path}: {exc}") from None
    with fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise DataError(f"metrics file {path} has no header row; expected columns like {', '.join(METRICS_COLUMNS)}")
        header = [h.strip() for h in header]
        columns: dict[str, list[float | None]] = {h: [] for h in header}
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise DataError(f"{path}, line {lineno}: {len(row)} cells, header has {len(header)}")
            for name, cell in zip(header, row):
                cell = cell.strip()
                if cell == "":
                    columns[name].append(None)
                    continue
                try:
                    columns[name].append(float(cell))
                except ValueError:
                    raise DataError(f"{path}, line {lineno}, column {name!r}: not a number: {cell!r}") from None
    return columns
