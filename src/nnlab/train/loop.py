"""The one training loop, shared by the MLP (both backends), the CNN and the RNN.

    for step in range(start, total):            # a step is one optimizer update
        x, y = train.batch(epoch, index)        # pure function of (seed, epoch, index): exact resume
        learner.train_step(x, y, step)
        at each period end (an epoch, or eval_every steps): evaluate, append a metrics row,
            write metrics.csv and the checkpoint (atomically), check for NaN, maybe stop early
        every checkpoint_every steps: a mid-period checkpoint (accumulators included)
    summary.json last (its presence marks the run folder complete)

``fit`` reads in that order: ``_resume``, the step loop, ``_evaluate_period``, ``_summary``, ``_finish``. The loop
writes metrics and checkpoints only; figures are drawn by the caller from the saved files.

The checkpoint holds the learner state (model, optimizer, EMA, RNG), the next step and every metrics
row so far, so ``metrics.csv`` is rewritten whole from it: a resumed run can neither drop nor repeat rows.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .._io import progress_bar
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
    #: called after training on rank 0 with (learner, run_dir) to write task-specific data files (not figures)
    extra_outputs: Callable | None = None


def check_watchable(cfg: TrainConfig, data: TaskData) -> None:
    """Early stopping reads the validation split, never the test split: refuse it when there is none."""
    if cfg.early_stop_accuracy > 0 and data.val is None:
        raise ConfigError("--early-stop-accuracy watches the validation split, and this run has none "
                          "(a choice must never read the test set): give it one (--val-size > 0 on CIFAR-10, "
                          "--val-fraction > 0 on moons/circles) or turn early stopping off (--early-stop-accuracy 0)")


@dataclass
class _LoopState:
    """Where the loop stands: all a checkpoint holds besides the learner, so that a resume is exact."""

    step: int = 0  # optimizer updates done
    rows: list = field(default_factory=list)  # metrics rows so far, one per period (metrics.csv is rewritten from them)
    first_hit: int | None = None  # the step at which validation accuracy first reached the early-stop target
    streak: int = 0  # periods in a row at or above that target
    elapsed: float = 0.0  # seconds of training before this process started (a resumed run)
    stopped_early: bool = False


def fit(learner, data: TaskData, cfg: TrainConfig, *, run: RunDir | None, config_record: dict,
        resume: bool = False, dry_run: bool = False, is_main: bool = True, desc: str = "train") -> dict:
    """Train ``learner`` on ``data``; write the run folder (rank 0); return the summary dict.

    Writes ``config.json``, ``metrics.csv`` and ``checkpoint.pt`` as it goes and ``summary.json`` last (its presence
    marks the folder complete); a dry run writes nothing. It draws no figure: the caller draws them from the saved
    files (``nnlab.experiments.common.fit_in_run_folder``).
    """
    check_watchable(cfg, data)
    per_epoch = data.train.steps_per_epoch
    total, period = _length(cfg, per_epoch, dry_run)
    out = run if run is not None and not dry_run else None  # the folder this run writes (None: it writes nothing)
    st = _resume(learner, out, config_record, resume) if out is not None else _LoopState()
    if out is not None and is_main:
        write_json(out.file("config.json"), config_record)
    t0 = time.perf_counter() - st.elapsed
    bar = progress_bar(mode=cfg.progress, total=total, initial=st.step, desc=desc, unit="step", leave=False,
                       dynamic_ncols=True) if is_main else None
    last_safe = st.step  # the last step whose state is known finite (divergence is reported since then)
    last_test = None  # the test EvalResult of the last period, reused by the summary when that period ended training
    try:
        while st.step < total and not st.stopped_early:
            epoch, index = divmod(st.step, per_epoch)
            x, y = data.train.batch(epoch, index)
            learner.train_step(x, y, st.step)
            st.step += 1
            if bar is not None:
                bar.update(1)
            if st.step % period == 0 or st.step == total:
                last_test = _evaluate_period(learner, data, cfg, st, t0, last_safe, run)
                if bar is not None:
                    row = st.rows[-1]
                    bar.set_postfix(loss=f"{row['train_loss']:.3f}", acc=f"{row.get('val_accuracy', row['test_accuracy']):.3f}")
                if out is not None and is_main:
                    write_metrics_csv(out.file("metrics.csv"), st.rows)
                    _checkpoint(out, learner, st, config_record, t0, total)
                last_safe = st.step
            elif cfg.checkpoint_every and st.step % cfg.checkpoint_every == 0 and out is not None:
                _train_stats(learner, run, last_safe, st.step)  # a mid-period checkpoint (accumulators included)
                if is_main:
                    _checkpoint(out, learner, st, config_record, t0, total)
                last_safe = st.step
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - t0
    ended_on_period = last_test is not None and st.rows and st.rows[-1]["step"] == st.step
    final_test = last_test if ended_on_period else learner.evaluate(data.test, cfg.eval_batch_size)
    summary = _summary(learner, data, cfg, config_record, st, final_test, wall, dry_run)
    if out is not None and is_main:
        _finish(out, learner, data, summary)
    return summary


def _length(cfg: TrainConfig, steps_per_epoch: int, dry_run: bool) -> tuple[int, int]:
    """(total optimizer steps, steps per evaluation period): epochs or ``--steps``; a dry run is one step."""
    if dry_run:
        return 1, 1
    if cfg.steps:
        return cfg.steps, cfg.eval_every or max(1, math.ceil(cfg.steps / 20))
    return cfg.epochs * steps_per_epoch, cfg.eval_every or steps_per_epoch


def _resume(learner, run: RunDir, config_record: dict, resume: bool) -> _LoopState:
    """The state to start from: the checkpoint's with ``resume`` (the learner loaded from it), else a fresh one.
    Refuses a checkpoint of another run, and, without ``resume``, a folder that already holds a run."""
    ckpt = run.file("checkpoint.pt")
    if not resume:
        if ckpt.exists() or run.file("summary.json").exists():
            raise ConfigError(f"{str(run.path)!r} already holds a run; pass --resume to continue it, or choose another --out")
        return _LoopState()
    if not ckpt.exists():
        return _LoopState()
    saved = load_checkpoint(ckpt)
    diffs = config_differences(saved.get("config", {}), _strip(config_record), ignore=RESUME_MAY_DIFFER)
    if diffs:
        raise CheckpointError(f"cannot resume {str(run.path)!r}: it holds a different run:\n  - " + "\n  - ".join(diffs[:10]))
    try:
        learner.load_state_dict(saved["learner"])
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as e:
        raise CheckpointError(f"cannot resume {str(run.path)!r}: checkpoint does not fit this model "
                              f"({str(e).splitlines()[0][:200]})") from None
    return _LoopState(step=int(saved["step"]), rows=list(saved["rows"]), first_hit=saved.get("first_hit"),
                      streak=int(saved.get("streak", 0)), elapsed=float(saved.get("elapsed", 0.0)),
                      stopped_early=bool(saved.get("stopped_early", False)))


def _evaluate_period(learner, data: TaskData, cfg: TrainConfig, st: _LoopState, t0: float, last_safe: int, run) -> Any:
    """The end of a period: the training stats, validation and test evaluation, one metrics row appended to
    ``st.rows``, early stopping updated. Returns the test EvalResult. Raises ``TrainingDiverged`` (and appends
    nothing) when the period's losses are not finite."""
    tr_loss, tr_acc = _train_stats(learner, run, last_safe, st.step)
    learner.reset_train_stats()
    row = {"epoch": len(st.rows) + 1 if cfg.steps else st.step // data.train.steps_per_epoch, "step": st.step,
           "train_loss": tr_loss, "train_accuracy": tr_acc, "lr": learner.current_lr(st.step - 1)}
    if data.val is not None:
        val = learner.evaluate(data.val, cfg.eval_batch_size)
        row["val_loss"], row["val_accuracy"] = val.loss, val.accuracy
    test = learner.evaluate(data.test, cfg.eval_batch_size)
    row["test_loss"], row["test_accuracy"] = test.loss, test.accuracy
    if not all(math.isfinite(row[k]) for k in ("val_loss", "test_loss") if k in row):
        raise _diverged(learner, run, last_safe, st.step)  # the last update blew the weights up: no row, no checkpoint
    row["seconds"] = round(time.perf_counter() - t0, 3)
    st.rows.append(row)
    if cfg.early_stop_accuracy > 0:
        if row["val_accuracy"] >= cfg.early_stop_accuracy:  # never the test split (check_watchable)
            st.streak += 1
            st.first_hit = st.step if st.first_hit is None else st.first_hit
            st.stopped_early = st.streak >= cfg.early_stop_patience
        else:
            st.streak = 0
    return test


def _train_stats(learner, run, last_safe: int, step: int) -> tuple[float, float]:
    """(mean training loss, accuracy) since the last reset; ``TrainingDiverged`` if a loss or gradient was NaN/inf."""
    loss, accuracy, finite = learner.train_stats()
    if not finite:
        raise _diverged(learner, run, last_safe, step)
    return loss, accuracy


def _diverged(learner, run, step_lo: int, step_hi: int) -> TrainingDiverged:
    ckpt = run.file("checkpoint.pt") if run is not None else None
    return TrainingDiverged(
        f"the loss or a gradient became NaN/inf between steps {step_lo} and {step_hi} "
        f"(lr {learner.current_lr(max(0, step_hi - 1)):.3g}); training stopped. "
        + (f"The last good checkpoint in {str(run.path)!r} is kept and resumable. " if ckpt is not None and ckpt.exists()
           else "No checkpoint had been written yet. ")
        + "Lower --lr or set --clip-grad-norm.")


def _checkpoint(run: RunDir, learner, st: _LoopState, config_record: dict, t0: float, total: int) -> None:
    """The whole resumable state, atomically (format: ``nnlab.train.checkpoint``)."""
    save_checkpoint(run.file("checkpoint.pt"), {
        "config": _strip(config_record), "learner": learner.state_dict(), "step": st.step, "rows": st.rows,
        "first_hit": st.first_hit, "streak": st.streak, "elapsed": time.perf_counter() - t0,
        "stopped_early": st.stopped_early, "total_steps": total,
    })


def _summary(learner, data: TaskData, cfg: TrainConfig, config_record: dict, st: _LoopState, final_test, wall: float,
             dry_run: bool) -> dict:
    """``summary.json``: the final test evaluation, the last row's train/val figures, provenance and data facts."""
    last = st.rows[-1] if st.rows else {}
    summary = {
        "model": config_record.get("model_name"), "backend": learner.backend, "dataset": data.info.get("dataset"),
        "seed": cfg.seed, "test_accuracy": final_test.accuracy, "test_loss": final_test.loss,
        "train_accuracy": last.get("train_accuracy"), "train_loss": last.get("train_loss"),
        "val_accuracy": last.get("val_accuracy"), "val_loss": last.get("val_loss"),
        "steps": st.step, "epochs_completed": st.step / data.train.steps_per_epoch, "wall_time_s": round(wall, 3),
        "stopped_early": st.stopped_early, "steps_to_target": st.first_hit,
        "device": str(getattr(learner, "device", None) or "cpu"), "precision": getattr(learner, "precision", None),
        "cpu_threads": _cpu_threads(learner), "nnlab_version": config_record.get("nnlab_version"),
        "git_commit": config_record.get("git_commit"), "dry_run": dry_run, **{f"data_{k}": v for k, v in data.info.items()},
    }
    if data.class_names is not None and final_test.confusion is not None:
        cm = final_test.confusion
        summary["per_class_accuracy"] = {name: float(cm[i, i] / max(1, cm[i].sum())) for i, name in enumerate(data.class_names)}
        summary["confusion_matrix"] = cm.tolist()
    return summary


def _finish(run: RunDir, learner, data: TaskData, summary: dict) -> None:
    """Rank 0's last writes: the task's extra files (``TaskData.extra_outputs``), then ``summary.json``, whose
    presence means the run folder is complete (a sweep reuses such a folder as is)."""
    if data.extra_outputs is not None:
        data.extra_outputs(learner, run)
    write_json(run.file("summary.json"), summary)


def _cpu_threads(learner) -> int | None:
    if learner.backend != "torch" or getattr(learner.device, "type", "cpu") != "cpu":
        return None
    import torch

    return torch.get_num_threads()


def _strip(config_record: dict) -> dict:
    """The part of the config record that defines the result (provenance and paths removed)."""
    return {k: v for k, v in config_record.items() if k not in ("nnlab_version", "git_commit", "python", "started")}
