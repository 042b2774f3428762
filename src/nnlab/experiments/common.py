"""Glue shared by the experiments and the commands: config records, run folders (fit, reuse or resume), output."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Callable

from ..train.runfolder import provenance


def resolved_config(kind: str, model_name: str, recipe: str | None, **sections) -> dict:
    """The resolved config of one run: its kind, model, the recipe it was asked for (``default`` included) and each
    config section as a dict (dataclasses converted). What ``--print-config`` prints."""
    rec = {"kind": kind, "model_name": model_name, "recipe": recipe}
    for name, obj in sections.items():
        rec[name] = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj
    return rec


def config_record(kind: str, model_name: str, recipe: str | None, **sections) -> dict:
    """:func:`resolved_config` plus provenance: what ``config.json`` holds and every checkpoint stores."""
    rec = resolved_config(kind, model_name, recipe, **sections)
    rec.update(provenance())
    rec["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return rec


def print_config(rec: dict) -> None:
    """``--print-config``: the resolved config as JSON on stdout (tuples as lists); nothing trains, nothing is written."""
    print(json.dumps(rec, indent=2, default=str))


def run_or_reuse(run_dir, train: Callable[[bool], dict]) -> dict:
    """The summary of the run in ``run_dir``: read as it is when the run finished (``summary.json``), else
    ``train(resume)``, with ``resume=True`` when an interrupted run left its ``checkpoint.pt``.

    A finished run gets back any figure it lacks, drawn from its saved files (``summary.json`` is written before
    the figures, so a run killed between the two is finished but has none); nothing is retrained.

    The one rule by which ``nnlab compare part1``, ``nnlab sweep rnn`` and ``nnlab reproduce`` continue where they
    stopped."""
    run_dir = Path(run_dir)
    summary = run_dir / "summary.json"
    if summary.exists():
        from ..report.plots import draw_run_figures

        s = json.loads(summary.read_text())
        draw_run_figures(run_dir, s, only_missing=True)
        return s
    return train((run_dir / "checkpoint.pt").exists())


def fit_in_run_folder(learner, data, train, rec: dict, *, out, resume: bool, dry_run: bool, dist, desc: str) -> dict:
    """``fit`` with the run folder owned (locked) by rank 0 for the run's duration; other ranks write nothing.

    ``fit`` writes metrics and checkpoints only; the run's figures are drawn here, from the saved files, after it
    returns (rank 0, a real run folder; a dry run writes nothing). Under torchrun each rank then takes its model out of
    the DDP wrapper and destroys its process group, all ranks together (after a successful fit only: a rank that failed
    must not wait on the others): exiting with gloo's worker threads still alive can abort the process at interpreter
    shutdown ("terminate called without an active exception"), which torchrun reports as a failed run."""
    from ..report.plots import draw_run_figures
    from ..train.distributed import shutdown
    from ..train.loop import check_watchable, fit
    from ..train.runfolder import RunDir

    check_watchable(train, data)  # before the run folder exists: a refused run leaves nothing behind
    is_main = dist is None or dist.is_main
    run = RunDir(out) if (out is not None and not dry_run and is_main) else None
    try:
        summary = fit(learner, data, train, run=run, config_record=rec, resume=resume, dry_run=dry_run, is_main=is_main,
                      desc=desc)
        if run is not None:
            draw_run_figures(run.path, summary)
        if dist is not None and dist.enabled:
            release = getattr(learner, "release_process_group", None)   # torch learners: out of their DDP wrapper
            if release is not None:
                release()
            shutdown()
        return summary
    finally:
        if run is not None:
            run.release()


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
