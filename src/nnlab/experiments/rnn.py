"""Part III: the hand-written vanilla RNN and LSTM on palindromes — train, sweep, gradient analysis.

Its recipes are the task ``rnn`` of ``nnlab.experiments.recipes``: ``seed`` = the report's settings (scalar digits,
Xavier, RMSprop 1e-3, exponential decay, clipping); ``best`` = what makes long inputs learnable, chosen on validation
data (a held-out set drawn with another seed than the test set), with a layer per cell (the LSTM's).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .._io import atomic_write_text, check_progress, progress_bar
from .._validate import in_range, nonneg_int, parse_int_list
from ..errors import ConfigError, check
from ..report.reference import REPORT_RNN
from ..train.config import OptimConfig, ScheduleConfig, TrainConfig, from_record
from ..train.flags import add_dataclass_flags, build
from ..train.loop import TaskData
from ..train.runfolder import RunDir, write_json
from ..train.sources import EvalSet, StreamSource
from .common import config_record, fit_in_run_folder, resolved_config, run_or_reuse
from .recipes import recipe_name as _recipe_name
from .recipes import resolve


@dataclass(frozen=True)
class CurriculumConfig:
    curriculum_start: int = field(default=0, metadata={"help": "curriculum: first training length (0 = off: always T)"})
    curriculum_fraction: float = field(default=0.5, metadata={"help": "curriculum: fraction of steps to grow the length to T"})

    def __post_init__(self):
        check([p for p in (nonneg_int("curriculum_start", self.curriculum_start),
                           in_range("curriculum_fraction", self.curriculum_fraction, 0, 1, lo_open=True)) if p], "curriculum config")

    def length_at(self, step: int, total: int, T: int) -> int:
        if not self.curriculum_start or self.curriculum_start >= T:
            return T
        ramp = max(1, int(self.curriculum_fraction * total))
        return min(T, self.curriculum_start + (T - self.curriculum_start) * step // ramp)


def setup_rnn(rnn_cfg, data_cfg, optim, sched, train, cur: CurriculumConfig, *, val_size: int = 1000):
    """(learner, task data, dist) for one (cell, T) run."""
    import torch

    from ..data.palindrome import encode, make_test_set, num_palindromes, palindrome_batch
    from ..models.rnn import build_rnn
    from ..train.distributed import init_from_env
    from ..train.learners import TorchLearner, resolve_device

    device = resolve_device(train.device)
    dist = init_from_env(device.type)
    T = data_cfg.input_length
    total = train.steps or train.epochs * 100

    def make(batch_size: int, seed: int, step: int):
        g = torch.Generator(device=device).manual_seed(seed)
        x, y = palindrome_batch(cur.length_at(step, total, T), batch_size, generator=g, device=device)
        return encode(x, data_cfg.input_mode), y  # (B, T', D), (B,)

    src = StreamSource(make, train.batch_size, train.seed, steps_per_epoch=100, **({"dist": dist} if dist.enabled else {}))
    tx, ty = data_cfg.test_set(device)
    vx, vy = make_test_set(T, val_size, data_cfg.test_seed + 1, device=device)
    task = TaskData(train=src, test=EvalSet(encode(tx, data_cfg.input_mode), ty), val=EvalSet(encode(vx, data_cfg.input_mode), vy),
                    class_names=None, info={"dataset": "palindrome", "input_length": T, "num_palindromes": num_palindromes(T),
                                             "n_test": int(len(ty))})
    model = build_rnn(rnn_cfg, data_cfg.input_dim, 10, seed=train.seed)
    learner = TorchLearner(model, optim, sched, train, total_steps=total, device=device, num_classes=10,
                           **({"dist": dist} if dist.enabled else {}))
    return learner, task, dist


def _configs(recipe_name: str, args=None, **over):
    """The six configs of one run: dataclass defaults < recipe < the recipe's layer for the cell < ``over`` < flags."""
    from ..data.palindrome import PalindromeConfig
    from ..models.rnn import RNNConfig

    cell = (getattr(args, "rnn_cell", None) or (over.get("rnn") or {}).get("cell")
            or resolve("rnn", recipe_name)["rnn"].get("cell", "vanilla"))
    r = resolve("rnn", recipe_name, layer=cell)  # an unknown cell gets no layer; RNNConfig then names the valid ones
    data_cfg = build(PalindromeConfig, r.get("data"), over.get("data"), prefix="data_", args=args)
    rnn_cfg = build(RNNConfig, r.get("rnn"), {"input_mode": data_cfg.input_mode}, over.get("rnn"), prefix="rnn_", args=args)
    optim = build(OptimConfig, r.get("optim"), over.get("optim"), prefix="optim_", args=args)
    sched = build(ScheduleConfig, r.get("schedule"), over.get("schedule"), prefix="sched_", args=args)
    train = build(TrainConfig, r.get("train"), over.get("train"), prefix="train_", args=args)
    cur = build(CurriculumConfig, r.get("curriculum"), over.get("curriculum"), prefix="cur_", args=args)
    if train.steps < 1:  # the palindrome stream has no epochs: the run length is counted in optimizer steps
        raise ConfigError(f"steps must be a positive integer for an RNN run (it trains for a number of optimizer steps), "
                          f"got {train.steps!r}")
    return rnn_cfg, data_cfg, optim, sched, train, cur


def _record(recipe_name: str, configs, *, provenance: bool = True) -> dict:
    """config.json of one run from its six configs (``provenance=False``: what ``--print-config`` prints)."""
    rnn_cfg, data_cfg, optim, sched, train, cur = configs
    return (config_record if provenance else resolved_config)(
        "rnn", f"rnn-{rnn_cfg.cell}", recipe_name, model=rnn_cfg, data=data_cfg, optim=optim, schedule=sched, train=train,
        curriculum=cur)


def train_rnn(recipe_name: str = "default", *, args=None, out=None, resume=False, dry_run=False, **over) -> dict:
    """Train one RNN: the recipe < its cell's layer < ``over`` (``{section: {field: value}}``) < flags (``args``)."""
    recipe_name = _recipe_name(recipe_name)
    configs = _configs(recipe_name, args, **over)
    rnn_cfg, data_cfg, optim, sched, train, cur = configs
    learner, task, dist = setup_rnn(rnn_cfg, data_cfg, optim, sched, train, cur)
    return fit_in_run_folder(learner, task, train, _record(recipe_name, configs), out=out, resume=resume, dry_run=dry_run,
                             dist=dist, desc=f"rnn/{rnn_cfg.cell}/T={data_cfg.input_length}")


def setup_from_record(rec: dict, train: TrainConfig):
    """Rebuild (learner, task) from a run's config record (for ``nnlab evaluate``)."""
    from ..data.palindrome import PalindromeConfig
    from ..models.rnn import RNNConfig

    learner, task, _ = setup_rnn(from_record(RNNConfig, rec["model"]), from_record(PalindromeConfig, rec["data"]),
                                 from_record(OptimConfig, rec["optim"]), from_record(ScheduleConfig, rec["schedule"]),
                                 train, from_record(CurriculumConfig, rec.get("curriculum", {})))
    return learner, task


# -- sweep -----------------------------------------------------------------------------------------
def run_sweep(out, cells, lengths, seeds: int, recipe_name: str = "best", *, progress: str = "auto", over: dict | None = None) -> dict:
    """cells x lengths x seeds; a finished run (summary.json) is reused, an interrupted one resumed from its
    checkpoint; writes table.md, results.json and accuracy_vs_length.png.

    The sweep folder's lock is held for the whole sweep, so a second sweep on the same folder is refused
    (each run folder under ``runs/`` also has its own lock, held while it trains)."""
    out = Path(out)
    with RunDir(out):
        return _sweep_locked(out, cells, lengths, seeds, recipe_name, progress=progress, over=over or {})


def _sweep_locked(out: Path, cells, lengths, seeds: int, recipe_name: str, *, progress: str, over: dict) -> dict:
    (out / "runs").mkdir(parents=True, exist_ok=True)
    jobs = [(c, T, s) for c in cells for T in lengths for s in range(seeds)]
    bar = progress_bar(jobs, mode=progress, desc=f"sweep rnn ({recipe_name})", unit="run")
    results = []
    for cell, T, seed in bar:
        bar.set_postfix_str(f"{cell} T={T} seed={seed}")
        rd = out / "runs" / f"{recipe_name}-{cell}-T{T}-s{seed}"
        o = {k: dict(v) for k, v in over.items()}
        o.setdefault("rnn", {})["cell"] = cell
        o.setdefault("data", {})["input_length"] = T
        o.setdefault("train", {}).update(seed=seed, progress="off")
        # train_rnn looked up at call time: the fault tests replace it
        s = run_or_reuse(rd, lambda resume, o=o, rd=rd: train_rnn(recipe_name, out=rd, resume=resume, **o))
        results.append({"cell": cell, "T": T, "seed": seed, "test_accuracy": s["test_accuracy"], "test_loss": s["test_loss"],
                        "steps_to_target": s.get("steps_to_target"), "steps": s["steps"], "wall_time_s": s["wall_time_s"]})
    return write_sweep_outputs(out, results, recipe_name)


def write_sweep_outputs(out: Path, results: list, recipe_name: str) -> dict:
    from ..report import plots, tables

    agg, rows, fig_rows = {}, [], []
    for cell in dict.fromkeys(r["cell"] for r in results):
        for T in sorted({r["T"] for r in results if r["cell"] == cell}):
            rs = [r for r in results if r["cell"] == cell and r["T"] == T]
            accs = [r["test_accuracy"] for r in rs]
            m, s = tables.mean_std(accs)
            solved = [r["steps_to_target"] for r in rs if r["steps_to_target"] is not None]
            sm, ss = tables.mean_std(solved) if solved else (None, None)
            n99 = sum(a >= 0.99 for a in accs)
            wall = sum(r["wall_time_s"] for r in rs)
            agg[f"{cell}/T={T}"] = {"cell": cell, "T": T, "mean_accuracy": m, "std_accuracy": s, "n": len(accs),
                                    "n_at_least_99": n99, "steps_to_solve_mean": sm, "steps_to_solve_std": ss,
                                    "n_solved": len(solved), "wall_time_s": round(wall, 3), "runs": rs}
            ref = REPORT_RNN.get(T)
            rows.append([cell, T, f"{100 * ref:.0f}" if ref is not None and cell == "vanilla" else "–",
                         tables.fmt_pct(m, s, len(accs)), f"{n99}/{len(accs)}",
                         f"{sm:.0f} ± {ss:.0f} ({len(solved)} solved)" if solved else "never",
                         f"{wall / len(rs):.1f}"])
            fig_rows.append({"cell": cell, "T": T, "mean": m, "std": s})
    total = sum(r["wall_time_s"] for r in results)
    md = [f"# Part III: palindrome accuracy by input length ({recipe_name} recipe)", "",
          "Test accuracy in % (mean ± sample std over seeds). Report: one run of the vanilla RNN each.",
          "Steps to solve: optimizer steps until the validation accuracy first reached the early-stop target.",
          "Time: training wall time per run (evaluations included), in seconds.", "",
          tables.markdown_table(["cell", "T", "report", "ours", "runs ≥ 99%", "steps to solve", "s / run"], rows).rstrip("\n"), "",
          f"{len(results)} runs, {total / 60:.1f} min of training in all.", "",
          "![accuracy vs length](accuracy_vs_length.png)", ""]
    atomic_write_text(out / "table.md", "\n".join(md))
    write_json(out / "results.json", {"recipe": recipe_name, "cells": agg})
    plots.plot_accuracy_vs_length(fig_rows, out / "accuracy_vs_length.png", reference=REPORT_RNN)
    return agg


# -- gradient analysis -----------------------------------------------------------------------------
def gradient_norms(model, x, y) -> list[float]:
    """‖∂ℓ/∂h_t‖ for t = 1..T: the norm of one sequence's TOTAL gradient (through every later step) w.r.t. its
    hidden state h_t, ℓ its own cross-entropy, averaged over the batch. Summing the loss over the batch (rather
    than averaging) makes each row of ∂L/∂h_t exactly one sample's gradient, independent of the batch size."""
    import torch

    logits, states = model(x, return_states=True)  # (B, C), T x (B, H)
    loss = torch.nn.functional.cross_entropy(logits, y, reduction="sum")
    grads = torch.autograd.grad(loss, states)
    return [float(g.norm(dim=1).mean()) for g in grads]


def analyze_gradients(T: int, out, *, steps: int = 1500, seed: int = 0, recipe_name: str = "best",
                      progress: str = "auto") -> dict:
    """Gradient norms through time for the vanilla RNN and the LSTM, at init and after ``steps`` steps of the
    recipe (early stopping off, so both cells get the same number of updates)."""
    from ..data.palindrome import encode, make_test_set
    from ..report import plots

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = {}
    for cell in ("vanilla", "lstm"):
        o = {"rnn": {"cell": cell}, "data": {"input_length": T},
             "train": {"steps": steps, "seed": seed, "progress": progress, "early_stop_accuracy": 0.0}}
        rnn_cfg, data_cfg, optim, sched, train, cur = _configs(recipe_name, **o)
        learner, task, _ = setup_rnn(rnn_cfg, data_cfg, optim, sched, train, cur)
        x, y = make_test_set(T, 256, 7, device=learner.device)
        xe = encode(x, data_cfg.input_mode)
        data[f"{cell} at init"] = gradient_norms(learner.model, xe, y)
        rd = out / f"{cell}-T{T}"
        if (rd / "checkpoint.pt").exists() and (rd / "summary.json").exists():
            from ..train.checkpoint import load_checkpoint

            learner.load_state_dict(load_checkpoint(rd / "checkpoint.pt")["learner"])
            plots.draw_run_figures(rd, json.loads((rd / "summary.json").read_text()), only_missing=True)  # a reused run
        else:
            rec = _record(recipe_name, (rnn_cfg, data_cfg, optim, sched, train, cur))
            fit_in_run_folder(learner, task, train, rec, out=rd, resume=(rd / "checkpoint.pt").exists(), dry_run=False,
                              dist=None, desc=f"{cell} T={T}")
        data[f"{cell} trained"] = gradient_norms(learner.model, xe, y)
    write_json(out / "gradient_norms.json", {"input_length": T, "recipe": recipe_name, "steps": steps, "seed": seed,
                                             "quantity": "mean over 256 held-out sequences of ||d loss_i / d h_t||",
                                             "norms": data})
    plots.plot_gradient_norms(data, out / "gradient_norms.png", title=f"‖∂L/∂h_t‖ through time, T={T}")
    return data


# -- CLI -------------------------------------------------------------------------------------------
def add_flags(p):
    from ..data.palindrome import PalindromeConfig
    from ..models.rnn import RNNConfig

    add_dataclass_flags(p, RNNConfig, prefix="rnn_", exclude=("input_mode",))
    add_dataclass_flags(p, PalindromeConfig, prefix="data_")
    add_dataclass_flags(p, CurriculumConfig, prefix="cur_")


def _one_int(name: str, text, *, minimum: int = 1) -> int:
    """One integer flag (``--steps``, ``--seeds``, ``--input-length``, ``--seed``) >= ``minimum``, or a ConfigError."""
    try:
        v = int(str(text).strip())
    except ValueError:
        v = None
    if v is None or v < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"{name} must be {kind}, got {text!r}")
    return v


def cli_train_rnn(args) -> int:
    """``nnlab train rnn``: the recipe (``--recipe``) < its cell's layer < flags."""
    from .common import default_out, print_config, print_summary

    recipe_name = _recipe_name(args.recipe)
    if not hasattr(args, "data_input_length"):
        raise ConfigError("--input-length is required (the T of the palindromes, an integer >= 1)")
    if args.print_config:
        print_config(_record(recipe_name, _configs(recipe_name, args), provenance=False))
        return 0
    out = args.out or default_out("rnn", getattr(args, "rnn_cell", "vanilla"), f"T{args.data_input_length}")
    s = train_rnn(args.recipe, args=args, out=out, resume=args.resume, dry_run=args.dry_run)
    print_summary(s, None if args.dry_run else out)
    return 0


def add_parser(sub, name: str, help_: str):
    p = sub.add_parser(name, help=help_, description=help_)
    if name == "sweep":
        p.add_argument("what", help="rnn")
        p.add_argument("--cell", default="vanilla,lstm",
                       help="comma-separated cells: vanilla, lstm (default: vanilla,lstm)")
        p.add_argument("--lengths", default="5,8,10,12,15,20,25,30",
                       help="comma-separated input lengths T (default: 5,8,10,12,15,20,25,30)")
        p.add_argument("--seeds", default="5", help="seeds per (cell, T) (default: 5)")
        p.add_argument("--recipe", default="best", help="seed (the report's settings) | best (ours; the default here); "
                                                         "values: nnlab.experiments.recipes, task rnn")
        p.add_argument("--steps", default=None, help="override the recipe's training steps (default: the recipe's)")
        p.add_argument("--out", default=None, help="sweep folder (default: runs/sweep-rnn-<recipe>)")
        p.add_argument("--progress", default="auto", help="auto | on | off (default: auto)")
    else:
        p.add_argument("what", help="rnn-gradients")
        p.add_argument("--input-length", default="20", help="T (default 20)")
        p.add_argument("--steps", default="1500", help="training steps before the 'trained' curve (default: 1500)")
        p.add_argument("--seed", default="0", help="training seed of both models (default 0)")
        p.add_argument("--recipe", default="best", help="seed | best (the default here): the settings both cells are "
                                                         "trained with (nnlab.experiments.recipes, task rnn)")
        p.add_argument("--out", default=None, help="output folder (default: runs/rnn-gradients-T<T>)")
        p.add_argument("--progress", default="auto", help="auto | on | off (default: auto)")


def run_cli(args) -> int:
    check_progress(args.progress)
    if args.command == "sweep":
        if args.what != "rnn":
            raise ConfigError(f"unknown sweep {args.what!r}; valid: rnn")
        from ..models.rnn import CELLS

        cells = [c.strip() for c in args.cell.split(",") if c.strip()]
        bad = [c for c in cells if c not in CELLS]
        if bad or not cells:
            raise ConfigError(f"unknown cell {', '.join(bad) or repr(args.cell)}; valid: {', '.join(CELLS)}")
        lengths = parse_int_list("--lengths", args.lengths)
        seeds = _one_int("--seeds", args.seeds)
        _recipe_name(args.recipe)
        over = {}
        if args.steps is not None:
            over["train"] = {"steps": _one_int("--steps", args.steps)}
        out = args.out or f"runs/sweep-rnn-{args.recipe}"
        run_sweep(out, cells, lengths, seeds, args.recipe, progress=args.progress, over=over)
        print(Path(out, "table.md").read_text())
        print(f"table: {Path(out) / 'table.md'}\nfigure: {Path(out) / 'accuracy_vs_length.png'}")
        return 0
    if args.what != "rnn-gradients":
        raise ConfigError(f"unknown analysis {args.what!r}; valid: rnn-gradients")
    T = _one_int("--input-length", args.input_length)
    steps = _one_int("--steps", args.steps)
    seed = _one_int("--seed", args.seed, minimum=0)
    _recipe_name(args.recipe)
    out = args.out or f"runs/rnn-gradients-T{T}"
    analyze_gradients(T, out, steps=steps, seed=seed, recipe_name=args.recipe, progress=args.progress)
    print(f"figure: {Path(out) / 'gradient_norms.png'}\ndata: {Path(out) / 'gradient_norms.json'}")
    return 0
