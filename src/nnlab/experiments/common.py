"""Glue shared by the recipes: config records, run folders, device and distributed setup."""

from __future__ import annotations

import dataclasses
import os
import time

from ..train.runfolder import provenance


def config_record(kind: str, model_name: str, recipe: str | None, **sections) -> dict:
    """The resolved config written to ``config.json`` and stored in every checkpoint."""
    rec = {"kind": kind, "model_name": model_name, "recipe": recipe}
    for name, obj in sections.items():
        rec[name] = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj
    rec.update(provenance())
    rec["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return rec


def to_jsonable(obj):
    if isinstance(obj, tuple):
        return list(obj)
    return obj


def fit_in_run_folder(learner, data, train, rec: dict, *, out, resume: bool, dry_run: bool, dist, desc: str) -> dict:
    """``fit`` with the run folder owned (locked) by rank 0 for the run's duration; other ranks write nothing."""
    from ..train.loop import check_watchable, fit
    from ..train.runfolder import RunDir

    check_watchable(train, data)  # before the run folder exists: a refused run leaves nothing behind
    is_main = dist is None or dist.is_main
    run = RunDir(out) if (out is not None and not dry_run and is_main) else None
    try:
        return fit(learner, data, train, run=run, config_record=rec, resume=resume, dry_run=dry_run, is_main=is_main, desc=desc,
                   figures=draw_run_figures)
    finally:
        if run is not None:
            run.release()


def draw_run_figures(run, summary: dict, data) -> None:
    """A run folder's figures, drawn from its saved files (metrics.csv, the summary's confusion matrix)."""
    from ..report import plots

    if run.file("metrics.csv").exists():
        plots.plot_curves(run.file("metrics.csv"), run.file("curves.png"), title=summary.get("model"))
    if data.class_names is not None and len(data.class_names) > 2 and "confusion_matrix" in summary:
        plots.plot_confusion_matrix(summary["confusion_matrix"], list(data.class_names), run.file("confusion_matrix.png"))


def default_out(*parts) -> str:
    return os.path.join("runs", "-".join(str(p) for p in parts if p) + "-" + time.strftime("%Y%m%d-%H%M%S"))


def print_summary(s: dict, out: str | None):
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        return
    acc = s.get("test_accuracy")
    line = f"test accuracy {100 * acc:.2f}%  test loss {s.get('test_loss'):.4f}  ({s.get('steps')} steps, {s.get('wall_time_s')} s)"
    if out:
        line += f"\nrun folder: {out}"
    elif s.get("dry_run"):
        line = "dry run ok: " + line
    print(line)
