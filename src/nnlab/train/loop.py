"""The one training loop, shared by the MLP (both backends), the CNN and the RNN.

    for step in range(start, total):            # a step is one optimizer update
        x, y = train.batch(epoch, index)        # pure function of (seed, epoch, index): exact resume
        learner.train_step(x, y, step)
        at each period end (an epoch, or eval_every steps): evaluate, append a metrics row,
            write metrics.csv and the checkpoint (atomically), check for NaN, maybe stop early
        every checkpoint_every steps: a mid-period checkpoint (accumulators included)

The checkpoint holds the learner state (model, optimizer, EMA, RNG), the next step and every metrics
row so far, so ``metrics.csv`` is rewritten whole from it: a resumed run can neither drop nor repeat rows.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import CheckpointError, ConfigError, TrainingDiverged
from .checkpoint import config_differences, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .runfolder import RunDir, write_json, write_metrics_csv

#: Config keys that may change between a run and its resume (they do not change the result).
RESUME_MAY_DIFFER = frozenset({"train.device", "train.progress", "data.data_dir", "resume", "out", "dry_run"})


@dataclass
class TaskData:
    """What the loop trains on: a batch source, evaluation splits and labels for the report."""

    train: Any  # ArraySource | StreamSource
    test: Any  # EvalSet
    val: Any = None  # EvalSet | None
    class_names: tuple[str, ...] | None = None
    info: dict = field(default_factory=dict)  # dataset facts for summary.json (name, sizes, ...)
    #: called after training on rank 0 with (learner, run_dir) to write task-specific files
    extra_outputs: Callable | None = None


def check_watchable(cfg: TrainConfig, data: TaskData) -> None:
    """Early stopping reads the validation split, never the test split: refuse it when there is none."""
    if cfg.early_stop_accuracy > 0 and data.val is None:
        raise ConfigError("--early-stop-accuracy watches the validation split, and this run has none "
                          "(a choice must never read the test set): give it one (--val-size > 0 on CIFAR-10, "
                          "--val-fraction > 0 on moons/circles) or turn early stopping off (--early-stop-accuracy 0)")


def _progress(cfg: TrainConfig, total: int, initial: int, desc: str):
    from tqdm import tqdm

    disable = cfg.progress == "off" or (cfg.progress == "auto" and not sys.stderr.isatty())
    return tqdm(total=total, initial=initial, desc=desc, unit="step", disable=disable, leave=False, dynamic_ncols=True)


def fit(learner, data: TaskData, cfg: TrainConfig, *, run: RunDir | None, config_record: dict,
        resume: bool = False, dry_run: bool = False, is_main: bool = True, desc: str = "train",
        figures: Callable | None = None) -> dict:
    """Train ``learner`` on ``data``; write the run folder (rank 0); return the summary dict.

    The loop writes metrics and checkpoints only; ``figures(run_dir, summary, data)``, given by the caller, draws
    the run's figures from the saved files just before ``summary.json`` marks the folder complete."""
    steps_per_epoch = data.train.steps_per_epoch
    if cfg.steps:
        total = cfg.steps
        period = cfg.eval_every or max(1, math.ceil(total / 20))
    else:
        total = cfg.epochs * steps_per_epoch
        period = cfg.eval_every or steps_per_epoch
    if dry_run:
        total, period = 1, 1
    check_watchable(cfg, data)
    start, rows, first_hit, streak = 0, [], None, 0
    elapsed_before, stopped_early = 0.0, False
    ckpt_path = run.file("checkpoint.pt") if run is not None else None

    if run is not None and not dry_run:
        if resume and ckpt_path.exists():
            st = load_checkpoint(ckpt_path)
            diffs = config_differences(st.get("config", {}), _strip(config_record), ignore=RESUME_MAY_DIFFER)
            if diffs:
                raise CheckpointError(f"cannot resume {str(run.path)!r}: it holds a different run:\n  - " + "\n  - ".join(diffs[:10]))
            try:
                learner.load_state_dict(st["learner"])
            except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as e:
                raise CheckpointError(f"cannot resume {str(run.path)!r}: checkpoint does not fit this model ({str(e).splitlines()[0][:200]})") from None
            start, rows = int(st["step"]), list(st["rows"])
            first_hit, streak = st.get("first_hit"), int(st.get("streak", 0))
            elapsed_before = float(st.get("elapsed", 0.0))
            stopped_early = bool(st.get("stopped_early", False))
        elif not resume and (ckpt_path.exists() or run.file("summary.json").exists()):
            raise ConfigError(f"{str(run.path)!r} already holds a run; pass --resume to continue it, or choose another --out")
        if is_main:
            write_json(run.file("config.json"), config_record)

    t0 = time.perf_counter() - elapsed_before

    def checkpoint(step: int, period_end: bool):
        if run is None or dry_run:
            return
        if is_main:
            save_checkpoint(ckpt_path, {
                "config": _strip(config_record), "learner": learner.state_dict(), "step": step, "rows": rows,
                "first_hit": first_hit, "streak": streak, "elapsed": time.perf_counter() - t0,
                "stopped_early": stopped_early, "total_steps": total,
            })

    def diverged(step_lo: int, step_hi: int):
        raise TrainingDiverged(
            f"the loss or a gradient became NaN/inf between steps {step_lo} and {step_hi} "
            f"(lr {learner.current_lr(max(0, step_hi - 1)):.3g}); training stopped. "
            + (f"The last good checkpoint in {str(run.path)!r} is kept and resumable. " if ckpt_path is not None and ckpt_path.exists()
               else "No checkpoint had been written yet. ")
            + "Lower --lr or set --clip-grad-norm.")

    bar = _progress(cfg, total, start, desc) if is_main else None
    step = start
    last_safe = start
    last_test = None  # the test EvalResult of the last period, reused when that period ended training
    try:
        while step < total and not stopped_early:
            epoch, index = divmod(step, steps_per_epoch)
            x, y = data.train.batch(epoch, index)
            learner.train_step(x, y, step)
            step += 1
            if bar is not None:
                bar.update(1)
            if step % period == 0 or step == total:
                tr_loss, tr_acc, finite = learner.train_stats()
                if not finite:
                    diverged(last_safe, step)
                learner.reset_train_stats()
                row = {"epoch": (step // steps_per_epoch) if not cfg.steps else len(rows) + 1, "step": step,
                       "train_loss": tr_loss, "train_accuracy": tr_acc, "lr": learner.current_lr(step - 1)}
                if data.val is not None:
                    ev = learner.evaluate(data.val, cfg.eval_batch_size)
                    row["val_loss"], row["val_accuracy"] = ev.loss, ev.accuracy
                ev = last_test = learner.evaluate(data.test, cfg.eval_batch_size)
                row["test_loss"], row["test_accuracy"] = ev.loss, ev.accuracy
                if not all(math.isfinite(row[k]) for k in ("val_loss", "test_loss") if k in row):
                    diverged(last_safe, step)  # the last update blew the weights up: no row, no checkpoint
                row["seconds"] = round(time.perf_counter() - t0, 3)
                rows.append(row)
                if cfg.early_stop_accuracy > 0:
                    if row["val_accuracy"] >= cfg.early_stop_accuracy:  # never the test split (checked above)
                        streak += 1
                        first_hit = step if first_hit is None else first_hit
                        stopped_early = streak >= cfg.early_stop_patience
                    else:
                        streak = 0
                if bar is not None:
                    bar.set_postfix(loss=f"{tr_loss:.3f}", acc=f"{row.get('val_accuracy', row['test_accuracy']):.3f}")
                if run is not None and is_main and not dry_run:
                    write_metrics_csv(run.file("metrics.csv"), rows)
                checkpoint(step, True)
                last_safe = step
            elif cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and run is not None:
                _, _, finite = learner.train_stats()
                if not finite:
                    diverged(last_safe, step)
                checkpoint(step, False)
                last_safe = step
    finally:
        if bar is not None:
            bar.close()

    wall = time.perf_counter() - t0
    ended_on_period = last_test is not None and rows and rows[-1]["step"] == step
    final_test = last_test if ended_on_period else learner.evaluate(data.test, cfg.eval_batch_size)
    last = rows[-1] if rows else {}
    summary = {
        "model": config_record.get("model_name"), "backend": learner.backend, "dataset": data.info.get("dataset"),
        "seed": cfg.seed, "test_accuracy": final_test.accuracy, "test_loss": final_test.loss,
        "train_accuracy": last.get("train_accuracy"), "train_loss": last.get("train_loss"),
        "val_accuracy": last.get("val_accuracy"), "val_loss": last.get("val_loss"),
        "steps": step, "epochs_completed": step / steps_per_epoch, "wall_time_s": round(wall, 3),
        "stopped_early": stopped_early, "steps_to_target": first_hit,
        "device": str(getattr(learner, "device", None) or "cpu"), "precision": getattr(learner, "precision", None),
        "cpu_threads": _cpu_threads(learner), "nnlab_version": config_record.get("nnlab_version"),
        "git_commit": config_record.get("git_commit"), "dry_run": dry_run, **{f"data_{k}": v for k, v in data.info.items()},
    }
    if data.class_names is not None and final_test.confusion is not None:
        cm = final_test.confusion
        summary["per_class_accuracy"] = {name: float(cm[i, i] / max(1, cm[i].sum())) for i, name in enumerate(data.class_names)}
        summary["confusion_matrix"] = cm.tolist()
    if run is not None and is_main and not dry_run:
        # summary.json last: its presence means the run folder is complete (a sweep reuses such a folder as is)
        if figures is not None:
            figures(run, summary, data)
        if data.extra_outputs is not None:
            data.extra_outputs(learner, run)
        write_json(run.file("summary.json"), summary)
    return summary


def _cpu_threads(learner) -> int | None:
    if learner.backend != "torch" or getattr(learner.device, "type", "cpu") != "cpu":
        return None
    import torch

    return torch.get_num_threads()


def _strip(config_record: dict) -> dict:
    """The part of the config record that defines the result (provenance and paths removed)."""
    return {k: v for k, v in config_record.items() if k not in ("nnlab_version", "git_commit", "python", "started")}
