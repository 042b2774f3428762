"""A markdown table of finished run folders, grouped, with mean ± sample std: how RESULTS.md's run tables are made.

Each argument is ``LABEL=GLOB[,GLOB...]``: the run folders (holding ``summary.json`` and ``config.json``) matching ``GLOB``
form one row. The row gives n, the seeds, test and validation accuracy (mean ± sample std over the runs), the
wall time per run (mean, min-max), the precision that ran, and the commit(s) the runs were made at.

    python benchmarks/runs_table.py "seed, bf16=runs/cnn-seed-bf16-s*" "seed, fp32=runs/cnn-seed-fp32-s*"
"""

from __future__ import annotations

import glob
import json
import statistics
import sys
from pathlib import Path


def _mean_std(xs: list[float]) -> str:
    if not xs:
        return "–"
    m = 100 * statistics.mean(xs)
    return f"{m:.2f} ± {100 * statistics.stdev(xs):.2f}" if len(xs) > 1 else f"{m:.2f}"


def row(label: str, pattern: str) -> list[str]:
    runs = []
    for d in sorted(d for pat in pattern.split(",") for d in glob.glob(pat)):
        p = Path(d)
        if (p / "summary.json").is_file():
            s = json.loads((p / "summary.json").read_text())
            c = json.loads((p / "config.json").read_text()) if (p / "config.json").is_file() else {}
            runs.append((s, c))
    if not runs:
        return [label, "0", "–", "–", "–", "–", "–", "–"]
    wall = [s["wall_time_s"] / 60 for s, _ in runs]
    commits = sorted({str(c.get("git_commit")) for _, c in runs})
    return [label, str(len(runs)), ", ".join(str(s["seed"]) for s, _ in runs),
            _mean_std([s["test_accuracy"] for s, _ in runs]),
            _mean_std([s["val_accuracy"] for s, _ in runs if s.get("val_accuracy") is not None]),
            f"{statistics.mean(wall):.1f} ({min(wall):.1f}–{max(wall):.1f})",
            ", ".join(sorted({str(s.get("precision")) for s, _ in runs})), ", ".join(commits)]


def main(argv: list[str]) -> None:
    if not argv or any("=" not in a for a in argv):
        sys.exit(__doc__)
    head = ["runs", "n", "seeds", "test acc. %", "val acc. %", "wall min/run (range)", "precision", "commit"]
    rows = [row(*a.split("=", 1)) for a in argv]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
