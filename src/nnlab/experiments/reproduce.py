"""``nnlab reproduce``: every experiment of the report, with its settings and ours, over seeds; then the report.

    nnlab reproduce --budget quick|full --out DIR [--data-dir D] [--progress auto|on|off]
    nnlab report DIR            # redraw DIR/report.md and DIR/report.html from saved files only

One reproduction is one folder ``DIR``:

    DIR/reproduce.json          budget (name and settings), version, commit, device, status of each section
    DIR/part1/{seed,best}/      Task 1.2: ``part1.run_part1`` (runs/<backend>-<data set>-s<k>/, table.md, ...)
    DIR/mlp/{seed,best}-s<k>/   Task 1.3: one CIFAR-10 run folder per recipe and seed
    DIR/cnn/{seed,best}-s<k>/   Part II:  the same for the VGG
    DIR/rnn/{seed,best}/        Part III: ``rnn.run_sweep`` of the vanilla RNN over input lengths, per recipe
    DIR/rnn/lstm/               Part III: the LSTM (``best`` recipe) beside it
    DIR/rnn/gradients/          Part III: ``rnn.analyze_gradients`` (‖∂L/∂h_t‖ through time)
    DIR/figures/                the report's comparison figures (drawn from the files above)
    DIR/report.md, report.html  the report (the page is self-contained: figures embedded, opens offline)

Rerunning the same command continues an interrupted reproduction: a run folder holding ``summary.json`` is
reused as it is, an unfinished one holding ``checkpoint.pt`` is resumed (``resume=True``), anything else
starts. ``reproduce`` = run the sections, then :func:`write_report`, the same function ``nnlab report``
calls; the report reads ``summary.json``/``metrics.csv``/JSON files only, never a model.

Budgets (:data:`BUDGETS`, the one table of how much is run): ``quick`` fits 2 CPU cores in about a quarter
of an hour (fewer seeds and steps, a CIFAR-10 subset, and the report says so at its top); ``full`` is the
whole protocol, meant for a GPU. A third budget, ``smoke``, is for the tests only: it is accepted on the
command line but not listed, it accepts small CIFAR-10 archives (``allow_partial``), its numbers mean nothing,
and its report says exactly that at the top.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import ConfigError, DataError, NnlabError

RECIPE_ORDER = ("seed", "best")
SECTIONS = ("part1", "mlp", "cnn", "rnn")
SECTION_TITLES = {
    "part1": "Part I, Task 1.2: NumPy and PyTorch MLPs on moons and circles",
    "mlp": "Part I, Task 1.3: MLP on CIFAR-10",
    "cnn": "Part II: the VGG-style CNN on CIFAR-10",
    "rnn": "Part III: vanilla RNN (and LSTM) on palindromes",
}
REPRODUCE_JSON = "reproduce.json"

#: Part I recipes, as overrides of ``mlp.TOY_DEFAULTS`` for ``part1.run_part1`` (common sections, then a layer
#: per backend). The report (Part I, Tasks 1.1-1.3) gives the data (1000 points, 80/20 split, noise 0.2 and
#: 0.05), batch 5 and the optimizers: the PyTorch MLP of Task 1.2 trained with Adam ("the optimizer Adam used in
#: task 2"), the NumPy MLP is its assignment-1 engine, plain SGD (its eq. (2), no momentum). It gives no step
#: size for either (its 3e-5 is the CIFAR-10 MLP's, its 1e-4 the CNN's), no epochs and no schedule. So "seed" =
#: those optimizers with a constant step size; ours: Adam at PyTorch's default 1e-3, SGD at TOY_DEFAULTS' 0.05,
#: TOY_DEFAULTS' 60 epochs. "best" = ``TOY_DEFAULTS`` as they are (SGD momentum 0.9, cosine) for both backends.
#: The backend layers set ``optim`` only: a budget's ``train`` values go into the common layer and must still win.
PART1_RECIPES = {
    "seed": {"schedule": {"schedule": "constant"},
             "numpy": {"optim": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.0}},
             "torch": {"optim": {"optimizer": "adam", "lr": 1e-3, "momentum": 0.0}}},
    "best": {},
}
#: The Part I settings as the report's table captions say them (recipe -> text).
PART1_RECIPE_TEXT = {
    "seed": ("the report's optimizers, batch 5, constant step size: NumPy plain SGD, PyTorch Adam (step sizes 0.05 and "
             "1e-3 and 60 epochs are ours: the report gives none)"),
    "best": "our defaults for both backends (SGD momentum 0.9, step size 0.05, cosine schedule, 60 epochs, batch 5)",
}

#: The report's Task 1.2 "final test loss" column (not a mean cross-entropy: see the report's note).
REPORT_PART1_LOSS = {("numpy", "moons"): 73.04, ("numpy", "circles"): 84.60, ("torch", "moons"): 54.85, ("torch", "circles"): 56.23}
#: The report's CIFAR-10 MLP (Task 1.3): overall and per-class test accuracy in %, class order of batches.meta
#: (its names: plane, car, bird, cat, deer, dog, frog, horse, ship, truck).
REPORT_MLP_OVERALL = 43.0
REPORT_MLP_PER_CLASS = (44.8, 53.0, 19.7, 33.6, 37.9, 37.5, 42.9, 55.1, 62.9, 51.3)
#: The report's Part III final train losses by input length (its table), for the double-softmax note.
REPORT_RNN_TRAIN_LOSS = {8: 1.55, 10: 1.56, 12: 2.25, 15: 1.50, 20: 2.31}
#: The lowest loss of softmax followed by CrossEntropyLoss (a second log-softmax) over 10 classes: the
#: probabilities are at best one-hot, so the loss is at least log(e + 9) - 1 = ln(1 + 9/e).
DOUBLE_SOFTMAX_FLOOR = math.log(1 + 9 / math.e)


# ------------------------------------------------------------------------------------------- budgets
@dataclass(frozen=True)
class Budget:
    """How much of the protocol one reproduction runs. Every override is a dict of config-field values laid
    over a recipe (recipe < budget), so a setting not named here is the recipe's own."""

    summary: str = field(metadata={"help": "one line for the top of the report"})
    part1_seeds: int = field(metadata={"help": "seeds per (backend, data set) cell and recipe (runs, count)"})
    part1_train: dict = field(metadata={"help": "TrainConfig overrides of every Part I run ({} = the defaults)"})
    cifar_seeds: int = field(metadata={"help": "seeds per CIFAR-10 model (MLP, CNN) and recipe (runs, count)"})
    #: {"mlp"|"cnn": {"seed"|"best": {"model"|"train"|"optim"|"schedule"|"data": {field: value}} or None (not run)}}
    cifar: dict = field(metadata={"help": "per model and recipe, config overrides (sections model, train, optim, schedule, data)"})
    cifar_data: dict = field(metadata={"help": "CifarDataConfig overrides of every CIFAR-10 run (subsets: images)"})
    rnn_seeds: int = field(metadata={"help": "seeds per (cell, input length, recipe) (runs, count)"})
    rnn_lengths: tuple = field(metadata={"help": "input lengths T of the vanilla RNN, both recipes (digits)"})
    lstm_lengths: tuple = field(metadata={"help": "input lengths T of the LSTM, best recipe (digits)"})
    rnn: dict = field(metadata={"help": "per recipe, config overrides of every RNN run (sections train, optim, ...)"})
    grad_length: int = field(metadata={"help": "T of the gradient-flow figure (digits)"})
    grad_steps: int = field(metadata={"help": "training steps before its 'trained' curves (optimizer steps)"})
    listed: bool = field(default=True, metadata={"help": "offered in --help (False: the test-only smoke budget)"})

    def settings(self) -> dict:
        """The budget as plain JSON data (tuples as lists), as stored in reproduce.json and compared on rerun."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


_VANILLA_FULL = (5, 8, 10, 12, 15, 20, 25, 30)

BUDGETS: dict[str, Budget] = {
    # <= 15 min on an idle 2-core CPU with native bf16 (benchmarks/RESULTS.md, "quick budget"): Part II trains the
    # report's settings (`seed`) on all 45,000 training images for their full 5,000 steps (~11-13 min of the 15) and
    # is evaluated on the whole validation and test sets; the CNN `best` recipe needs 14 epochs (~28 min) and is not
    # run (cut to the ~2 minutes left, its compressed one-cycle reached 31% in a measured run: no figure worth
    # showing); the other sections are cut short.
    "quick": Budget(
        summary=("quick: fits 15 minutes on 2 CPU cores — Part II trains the report's CNN settings on all 45,000 "
                 "training images for their full 5,000 steps; the CNN `best` recipe (14 epochs, about 28 minutes on "
                 "2 cores) is not run (`nnlab train cnn --recipe best`, or the `full` budget); 2 seeds in Part I, 1 seed "
                 "elsewhere, fewer epochs and steps in Part I, the CIFAR-10 MLP (10,000 training images) and Part III. "
                 "Run `nnlab reproduce --budget full` for the complete protocol."),
        part1_seeds=2, part1_train={"epochs": 20},
        cifar_seeds=1,
        cifar={"mlp": {"seed": {"train": {"epochs": 4}, "data": {"train_subset": 10000}},
                       "best": {"train": {"epochs": 4}, "data": {"train_subset": 10000}}},
               # Evaluations are what a figure needs (they cost ~15 s each on 2 cores): the seed recipe at its
               # middle and end.
               "cnn": {"seed": {"train": {"eval_every": 2500}}, "best": None}},
        cifar_data={},
        rnn_seeds=1, rnn_lengths=(8, 10, 12, 15, 20), lstm_lengths=(10, 20),
        rnn={"seed": {"train": {"steps": 500}}, "best": {"train": {"steps": 500}}},
        grad_length=20, grad_steps=200,
    ),
    # The whole protocol: 10 seeds in Part I, 3 per CIFAR-10 recipe at full length, 5 per RNN cell and length.
    "full": Budget(
        summary=("full: the complete protocol — 10 seeds per Part I cell, 3 seeds per CIFAR-10 recipe at its full "
                 "length on all 50,000/10,000 images, 5 seeds per RNN cell and input length."),
        part1_seeds=10, part1_train={},
        cifar_seeds=3, cifar={"mlp": {"seed": {}, "best": {}}, "cnn": {"seed": {}, "best": {}}}, cifar_data={},
        rnn_seeds=5, rnn_lengths=_VANILLA_FULL, lstm_lengths=_VANILLA_FULL + (40, 50, 60, 80, 100),
        rnn={"seed": {}, "best": {}},
        grad_length=20, grad_steps=1500,
    ),
    # Tests only (tests/test_reproduce.py): every section on tiny settings in well under a minute on a CPU,
    # on a small fake CIFAR-10 (allow_partial, 40 validation images). Its numbers mean nothing.
    "smoke": Budget(
        summary=("smoke: a test of the pipeline on tiny settings (1-epoch MLPs, 2-step CNNs, 20-step RNNs, small "
                 "or fake CIFAR-10 archives accepted). None of its numbers is a result."),
        part1_seeds=1, part1_train={"epochs": 1},
        cifar_seeds=1,
        cifar={"mlp": {"seed": {"train": {"epochs": 1}}, "best": {"train": {"epochs": 1}}},
               "cnn": {"seed": {"train": {"steps": 2, "eval_every": 2, "batch_size": 16}},
                       "best": {"train": {"steps": 2, "eval_every": 2, "batch_size": 16}}}},
        cifar_data={"allow_partial": True, "val_size": 40},
        rnn_seeds=1, rnn_lengths=(8,), lstm_lengths=(8,),
        rnn={"seed": {"train": {"steps": 20, "eval_every": 10}}, "best": {"train": {"steps": 20, "eval_every": 10}}},
        grad_length=5, grad_steps=10, listed=False,
    ),
}
LISTED_BUDGETS = tuple(name for name, b in BUDGETS.items() if b.listed)


def get_budget(name: str) -> Budget:
    if name not in BUDGETS:
        raise ConfigError(f"unknown budget {name!r}; valid: {', '.join(LISTED_BUDGETS)}")
    return BUDGETS[name]


# ----------------------------------------------------------------------------------- small helpers
def _read_json(path: Path):
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
    return [(p.parent, _read_json(p)) for p in sorted(pattern_dir.glob(glob))]


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


def _progress_enabled(progress: str) -> bool:
    return progress == "on" or (progress == "auto" and sys.stderr.isatty())


# ------------------------------------------------------------------------------------- the folder
def _check_out(out: Path, budget_name: str, budget: Budget) -> dict | None:
    """Refuse an unusable or foreign ``--out``; return the stored reproduce.json of a reproduction to continue."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file, not a folder; choose a new or empty folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create --out {str(out)!r}: {e.strerror or e}") from None
    try:  # os.access says yes to root on a read-only mount: write a probe file to be sure
        fd, probe = tempfile.mkstemp(prefix=".nnlab-probe-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ConfigError(f"--out {str(out)!r} is not writable: {e.strerror or e}") from None
    rj = out / REPRODUCE_JSON
    if not rj.exists():
        if any(not p.name.startswith(".") for p in out.iterdir()):
            raise ConfigError(f"--out {str(out)!r} is not empty and holds no {REPRODUCE_JSON}: it is not a reproduction "
                              "to continue; choose a new or empty folder")
        return None
    stored = _read_json(rj)
    if not isinstance(stored, dict):
        raise DataError(f"{rj} is not a reproduce record (a JSON object)")
    if stored.get("nnlab_version") != __version__:
        raise ConfigError(f"--out {str(out)!r} holds a reproduction made by nnlab {stored.get('nnlab_version')}, this is "
                          f"nnlab {__version__}: its runs cannot be mixed with new ones; choose another --out "
                          f"(`nnlab report {out}` still redraws its report)")
    if stored.get("budget") != budget_name:
        raise ConfigError(f"--out {str(out)!r} holds a {stored.get('budget')!r}-budget reproduction, not {budget_name!r}: "
                          f"rerun with --budget {stored.get('budget')} to continue it, or choose another --out")
    if stored.get("budget_settings") != budget.settings():
        raise ConfigError(f"the {budget_name!r} budget changed since {str(out)!r} was started (commit "
                          f"{stored.get('git_commit')}): its runs would mix two settings; choose another --out")
    if stored.get("recipes") != recipes_record():
        raise ConfigError(f"the recipes changed since {str(out)!r} was started (commit {stored.get('git_commit')}): "
                          "its runs would mix two settings; choose another --out")
    return stored


def recipes_record() -> dict:
    """Every recipe a reproduction trains (Part I, CIFAR-10, RNN) as plain JSON data, stored in reproduce.json so that
    continuing a folder never mixes runs of changed recipes (the budget alone does not hold them)."""
    from .cifar import RECIPES as CIFAR_RECIPES
    from .rnn import RECIPES as RNN_RECIPES

    return json.loads(json.dumps({"part1": PART1_RECIPES, "cifar": CIFAR_RECIPES, "rnn": RNN_RECIPES}, default=str))


def _cpu_name() -> str:
    """"<model name>, <n> logical cores" (provenance of the timings); /proc/cpuinfo where there is one."""
    import platform

    name = ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            name = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return f"{name or platform.processor() or 'CPU'}, {os.cpu_count()} logical cores"


def _new_record(budget_name: str, budget: Budget, data_dir) -> dict:
    import platform

    import torch

    from ..train.learners import resolve_device
    from ..train.runfolder import provenance

    return {
        "budget": budget_name, "budget_settings": budget.settings(), "recipes": recipes_record(), **provenance(),
        "torch": torch.__version__, "platform": platform.platform(), "device": str(resolve_device("auto")),
        "cpu": _cpu_name(),
        "data_dir": None if data_dir is None else str(data_dir),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "finished": None, "elapsed_s": 0.0,
        "sections": {name: {"status": "pending"} for name in SECTIONS},
    }


# ------------------------------------------------------------------------------------ the sections
def _run_part1(out: Path, budget: Budget, ctx: dict) -> None:
    from .part1 import run_part1

    for recipe in RECIPE_ORDER:
        over = {k: dict(v) for k, v in PART1_RECIPES[recipe].items()}
        over["train"] = {**over.get("train", {}), **budget.part1_train}
        run_part1(out / "part1" / recipe, budget.part1_seeds, progress=ctx["progress"], overrides=over)


def _cifar_available(data_dir) -> str | None:
    """None when CIFAR-10 is found, else the reason and how to get it."""
    from ..data.cifar10 import find_cifar10

    try:
        find_cifar10(data_dir)
    except DataError as e:
        return str(e)
    return None


def _run_cifar(model: str, out: Path, budget: Budget, ctx: dict) -> None:
    from .cifar import train_cifar

    for recipe in RECIPE_ORDER:
        over = budget.cifar[model][recipe]
        if over is None:  # not run in this budget (the report says so)
            continue
        for seed in range(budget.cifar_seeds):
            rd = out / model / f"{recipe}-s{seed}"
            if (rd / "summary.json").exists():
                continue  # finished: reused as it is
            data = {**budget.cifar_data, **over.get("data", {})}
            if ctx["data_dir"] is not None:
                data["data_dir"] = str(ctx["data_dir"])
            train_cifar(model, recipe_name=recipe, model_over=over.get("model"), data=data, optim=over.get("optim"),
                        schedule=over.get("schedule"),
                        train={**over.get("train", {}), "seed": seed, "progress": ctx["progress"]},
                        out=rd, resume=(rd / "checkpoint.pt").exists())


def _run_rnn(out: Path, budget: Budget, ctx: dict) -> None:
    from .rnn import analyze_gradients, run_sweep

    for recipe in RECIPE_ORDER:
        run_sweep(out / "rnn" / recipe, ["vanilla"], list(budget.rnn_lengths), budget.rnn_seeds, recipe,
                  progress=ctx["progress"], over=budget.rnn[recipe])
    if budget.lstm_lengths:
        run_sweep(out / "rnn" / "lstm", ["lstm"], list(budget.lstm_lengths), budget.rnn_seeds, "best",
                  progress=ctx["progress"], over=budget.rnn["best"])
    gd = out / "rnn" / "gradients"
    T = budget.grad_length
    done = (gd / "gradient_norms.json").exists() and all((gd / f"{c}-T{T}" / "summary.json").exists() for c in ("vanilla", "lstm"))
    if not done:
        analyze_gradients(T, gd, steps=budget.grad_steps, progress=ctx["progress"])


_RUNNERS = {"part1": _run_part1, "mlp": lambda o, b, c: _run_cifar("mlp", o, b, c),
            "cnn": lambda o, b, c: _run_cifar("cnn", o, b, c), "rnn": _run_rnn}
#: Sections whose tensor ops are too small for intra-op threads (2-20-2 MLPs at batch 5, 128-unit RNN steps): on a
#: CPU they run on one thread, which measured as fast or faster than two, and much faster on a busy machine.
ONE_THREAD_ON_CPU = ("part1", "rnn")


@contextlib.contextmanager
def _cpu_threads(section: str, device: str):
    import torch

    if device != "cpu" or section not in ONE_THREAD_ON_CPU:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fetch_cifar(data_dir, missing: str, *, download: bool, url: str | None, progress: str) -> str | None:
    """Download CIFAR-10 when it is missing (like ``download=True`` elsewhere); None once it is there, else why not.

    The archive goes to ``<data>/cifar-10-python.tar.gz.part`` and is renamed into place only after its md5
    matches, so a failed or interrupted download never leaves a file that a later run would take for the data set
    (a rerun resumes the ``.part``)."""
    if not download:
        return missing + " (--no-download: not downloaded)"
    from ..data.download import OFFICIAL_MD5, OFFICIAL_URL, download_cifar10

    print(f"nnlab: CIFAR-10 not found; downloading it ({url or OFFICIAL_URL}, about 163 MB, md5 verified)", file=sys.stderr)
    try:
        path = download_cifar10(data_dir, url=url or OFFICIAL_URL, md5=OFFICIAL_MD5, progress=progress != "off")
    except DataError as e:
        print(f"nnlab: {e}; the CIFAR-10 sections are skipped (rerun to resume the download)", file=sys.stderr)
        return f"{missing} The download failed: {e}"
    print(f"nnlab: CIFAR-10 ready: {path}", file=sys.stderr)
    return _cifar_available(data_dir)


def reproduce(out, budget_name: str = "quick", *, data_dir=None, progress: str = "auto", download: bool = True,
              url: str | None = None) -> dict:
    """Run (or continue) every section of the report into ``out``, then write the report; return reproduce.json."""
    from tqdm import tqdm

    from ..train.runfolder import RunDir, git_commit, write_json

    budget = get_budget(budget_name)
    if progress not in ("auto", "on", "off"):
        raise ConfigError(f"unknown --progress {progress!r}; valid: auto, on, off")
    out = Path(out)
    stored = _check_out(out, budget_name, budget)
    lock = RunDir(out)  # one reproduce per folder at a time (its .lock); also re-checks writability
    try:
        fresh = _new_record(budget_name, budget, data_dir)
        rec = stored or fresh
        for key in ("device", "torch", "platform", "python", "data_dir", "cpu"):  # this call's machine (summaries keep each run's)
            rec[key] = fresh[key]
        for name in SECTIONS:
            rec["sections"].setdefault(name, {"status": "pending"})
        rj = out / REPRODUCE_JSON
        write_json(rj, rec)
        ctx = {"progress": progress, "data_dir": data_dir}
        missing_cifar = _cifar_available(data_dir)
        needs_cifar = any(rec["sections"][n].get("status") != "done" for n in ("mlp", "cnn"))
        if missing_cifar and needs_cifar:
            missing_cifar = _fetch_cifar(data_dir, missing_cifar, download=download, url=url, progress=progress)
        failed = []
        bar = tqdm(SECTIONS, desc=f"reproduce ({budget_name})", unit="section", disable=not _progress_enabled(progress))
        for name in bar:
            bar.set_postfix_str(SECTION_TITLES[name].split(":")[0])
            sec = rec["sections"][name]
            if sec.get("status") == "done":
                continue
            if name in ("mlp", "cnn") and missing_cifar:
                sec.update(status="skipped", reason=missing_cifar)
                write_json(rj, rec)
                continue
            sec.update(status="running", reason=None)
            rec["finished"] = None
            write_json(rj, rec)
            t0 = time.perf_counter()
            try:
                with _cpu_threads(name, rec["device"]):
                    _RUNNERS[name](out, budget, ctx)
            except KeyboardInterrupt:
                spent = time.perf_counter() - t0
                sec.update(status="interrupted", elapsed_s=round(sec.get("elapsed_s", 0.0) + spent, 3))
                rec["elapsed_s"] = round(rec.get("elapsed_s", 0.0) + spent, 3)
                write_json(rj, rec)
                raise
            except NnlabError as e:  # a diverged run, unreadable data: record it, go on with the other sections
                sec.update(status="failed", reason=str(e).splitlines()[0] if str(e) else type(e).__name__)
                failed.append(name)
            else:
                sec.update(status="done", finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), git_commit=git_commit())
            spent = time.perf_counter() - t0
            sec["elapsed_s"] = round(sec.get("elapsed_s", 0.0) + spent, 3)
            rec["elapsed_s"] = round(rec.get("elapsed_s", 0.0) + spent, 3)  # time in sections, over every call
            write_json(rj, rec)
        bar.close()
        if rec.get("finished") is None and all(rec["sections"][n]["status"] in ("done", "skipped") for n in SECTIONS):
            rec["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_json(rj, rec)
        write_report(out)
    finally:
        lock.release()
    if failed:
        raise NnlabError(f"section(s) {', '.join(failed)} failed (see {out / 'report.md'} and {rj}); "
                         "the others are done; rerun the same command to retry")
    return rec


# --------------------------------------------------------------------------------------- the report
def _ensure_run_figures(rd: Path, summary: dict) -> dict[str, Path]:
    """The figures of one run folder, redrawn from its saved files when missing (e.g. killed before them)."""
    from ..report import plots

    figs = {}
    curves, metrics = rd / "curves.png", rd / "metrics.csv"
    if not curves.exists() and metrics.exists():
        plots.plot_curves(metrics, curves, title=summary.get("model"))
    if curves.exists():
        figs["curves"] = curves
    cm = rd / "confusion_matrix.png"
    if not cm.exists() and summary.get("confusion_matrix") and summary.get("per_class_accuracy"):
        plots.plot_confusion_matrix(summary["confusion_matrix"], list(summary["per_class_accuracy"]), cm)
    if cm.exists():
        figs["confusion"] = cm
    db, grid = rd / "decision_boundary.png", rd / "decision_grid.npz"
    if not db.exists() and grid.exists():
        plots.plot_decision_boundary(grid, db)
    if db.exists():
        figs["boundary"] = db
    return figs


def _img(path: Path | None, root: Path, alt: str) -> str:
    return f"![{alt}]({_rel(path, root)})" if path is not None else "–"


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


def _pct(values: list[float]) -> str:
    from ..report import tables

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


def _part1_bayes(root: Path) -> dict[tuple[str, int], float]:
    """(data set, seed) -> the Bayes-optimal classifier's accuracy on that test split, as ``part1.run_part1`` saved it
    in ``part1/<recipe>/results.json`` (both recipes use the same splits); empty where none was saved."""
    bayes = {}
    for recipe in RECIPE_ORDER:
        rj = root / "part1" / recipe / "results.json"
        for key, cell in (_read_json(rj) if rj.exists() else {}).items():
            for r in cell.get("runs", []) if isinstance(cell, dict) else []:
                if r.get("bayes_accuracy") is not None:
                    bayes[(key.split("/")[-1], int(r["seed"]))] = r["bayes_accuracy"]
    return bayes


def _part1_section(root: Path, rec: dict, lines: list[str], headline: list) -> None:
    from ..report import plots, tables
    from .part1 import BAYES_TARGET_POINTS, CELLS, REPORT_PART1

    by = {r: {} for r in RECIPE_ORDER}  # recipe -> (backend, dataset) -> [(run folder, summary)]
    allsum = []
    for recipe in RECIPE_ORDER:
        for rd, s in _summaries(root / "part1" / recipe / "runs"):
            m = re.match(r"^(numpy|torch)-(moons|circles)-s(\d+)$", rd.name)
            if m:
                by[recipe].setdefault((m.group(1), m.group(2)), []).append((rd, s))
                allsum.append(s)
    lines += [f"## {SECTION_TITLES['part1']}", ""]
    lines += _section_status_note(rec, "part1")
    lines += [_provenance_line(rec, "part1", allsum), "",
              "Test accuracy in % on the 200 held-out points. Report: one run each. Ours: mean ± sample std over "
              f"seeds (n). *Report's settings* (`seed`): {PART1_RECIPE_TEXT['seed']}; *best*: {PART1_RECIPE_TEXT['best']}. "
              "*Bayes-optimal*: the classifier that knows the generating process (no training), on the same test "
              f"splits; the target is each backend at most {BAYES_TARGET_POINTS} points below it (the per-split "
              "differences: `part1/<recipe>/table.md`). Test loss: mean per-sample cross-entropy, best recipe.", ""]
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
    keys = [(b, d) for b, d in CELLS if any(by[r].get((b, d)) for r in RECIPE_ORDER)]
    if keys:
        series = {"report (1 run)": ([REPORT_PART1[k] for k in keys], None)}
        for r, label in (("seed", "ours, report's settings"), ("best", "ours, best")):
            ms = [tables.mean_std([s["test_accuracy"] for _, s in by[r][k]]) if by[r].get(k) else (None, None) for k in keys]
            series[label] = ([None if m is None else 100 * m for m, _ in ms], [None if sd is None else 100 * sd for _, sd in ms])
        marks = [bayes_mean.get(k) for k in keys]
        fig = plots.plot_bar_compare([f"{'NumPy' if b == 'numpy' else 'PyTorch'}\n{d}" for b, d in keys], series,
                                     root / "figures" / "part1_accuracy.png", ylabel="test accuracy (%)",
                                     markers={"Bayes-optimal, same splits": marks} if any(m is not None for m in marks) else None)
        lines += [f"![Task 1.2 accuracy: report and ours]({_rel(fig, root)})", ""]
    grid = []
    for kind, label in (("boundary", "Decision boundaries"), ("curves", "Loss and accuracy curves")):
        cells, seeds = {}, set()
        for b, d in CELLS:
            runs = by["best"].get((b, d), [])
            if runs:
                rd, s = runs[0]
                cells[(b, d)] = _ensure_run_figures(rd, s).get(kind)
                seeds.add(s.get("seed", 0))
        if any(cells.values()):
            grid += [f"{label} (best recipe, seed {_seed_list(seeds)}):", ""]
            hdr = ["", "moons", "circles"]
            body = [[name] + [_img(cells.get((b, d)), root, f"{name} {d}") for d in ("moons", "circles")]
                    for b, name in (("numpy", "NumPy"), ("torch", "PyTorch"))]
            grid += [tables.markdown_table(hdr, body), ""]
    lines += grid


def _cifar_section(model: str, root: Path, rec: dict, lines: list[str], headline: list) -> None:
    from ..report import plots, tables

    runs = {r: _summaries(root / model, f"{r}-s*/summary.json") for r in RECIPE_ORDER}
    allsum = [s for r in RECIPE_ORDER for _, s in runs[r]]
    lines += [f"## {SECTION_TITLES[model]}", ""]
    lines += _section_status_note(rec, model)
    n_test = sorted({int(s.get("data_n_test", 0)) for s in allsum})
    n_train = sorted({int(s.get("data_n_train", 0)) for s in allsum})
    extra = (f"{'/'.join(map(str, n_train))} training and {'/'.join(map(str, n_test))} test images" if allsum else "")
    lines += [_provenance_line(rec, model, allsum, extra), ""]
    if model == "mlp":
        lines += ["Test accuracy in %, overall and per class. Report: one run (one hidden layer of 256, SGD). "
                  "Ours: mean ± sample std over seeds (n); *report's settings* = recipe `seed`, *best* = recipe `best` "
                  "(chosen on the validation split).", ""]
    else:
        lines += ["Test accuracy in %, overall and per class. The report prints no accuracy for its CNN (its results "
                  "figure is not in the text). *Report's settings* = recipe `seed` (Adam 1e-4, batch 32, no augmentation, "
                  "5,000 steps), computed in bf16 autocast with channels_last where the hardware has native bf16 (a "
                  "deviation: same accuracy within the seed-to-seed spread, benchmarks/RESULTS.md; each run's precision "
                  "is in its summary.json); *best* = recipe `best` (the same network; batch 256, Nesterov SGD, one-cycle, "
                  "label smoothing 0.2, flips and 2-pixel translations, flip test-time augmentation; one variant run to "
                  "the end so far, its validation and test figures in benchmarks/RESULTS.md).", ""]
    label = "Task 1.3: CIFAR-10 MLP (overall)" if model == "mlp" else "Part II: CIFAR-10 CNN (overall)"
    report_overall = f"{REPORT_MLP_OVERALL:.0f}" if model == "mlp" else "–"
    if not allsum:
        lines += ["No finished run yet.", ""]
        headline.append([label, report_overall, "–", "–"])
        return
    names = next((list(s["per_class_accuracy"]) for s in allsum if s.get("per_class_accuracy")), [])
    overall = {r: [s["test_accuracy"] for _, s in runs[r]] for r in RECIPE_ORDER}
    rows = [["overall", f"{REPORT_MLP_OVERALL:.0f}" if model == "mlp" else "–",
             _pct(overall["seed"]), _pct(overall["best"])]]
    per = {r: {c: [s["per_class_accuracy"][c] for _, s in runs[r] if c in s.get("per_class_accuracy", {})] for c in names}
           for r in RECIPE_ORDER}
    for i, c in enumerate(names):
        ref = f"{REPORT_MLP_PER_CLASS[i]:.1f}" if model == "mlp" and i < len(REPORT_MLP_PER_CLASS) else "–"
        rows.append([c, ref, _pct(per["seed"][c]), _pct(per["best"][c])])
    lines += [tables.markdown_table(["class", "report", "ours, report's settings", "ours, best"], rows), ""]
    headline.append([label, report_overall, _pct(overall["seed"]), _pct(overall["best"])])
    if names:
        series = {}
        if model == "mlp":
            series["report (1 run)"] = (list(REPORT_MLP_PER_CLASS[: len(names)]), None)
        for r, lab in (("seed", "ours, report's settings"), ("best", "ours, best")):
            ms = [tables.mean_std(per[r][c]) if per[r][c] else (None, None) for c in names]
            series[lab] = ([None if m is None else 100 * m for m, _ in ms], [None if sd is None else 100 * sd for _, sd in ms])
        fig = plots.plot_bar_compare(names, series, root / "figures" / f"{model}_per_class.png", ylabel="test accuracy (%)")
        lines += [f"![per-class accuracy]({_rel(fig, root)})", ""]
    figs = {r: _ensure_run_figures(*runs[r][0]) if runs[r] else {} for r in RECIPE_ORDER}
    cm_of = "the best recipe" if figs["best"].get("confusion") else "the report's settings"
    lines += [f"Curves (first seed of each recipe) and the confusion matrix of {cm_of} (rows: true class):", ""]
    lines += [tables.markdown_table(["report's settings: curves", "best: curves"],
                                    [[_img(figs["seed"].get("curves"), root, "curves, report's settings"),
                                      _img(figs["best"].get("curves"), root, "curves, best")]]), ""]
    cm = figs["best"].get("confusion") or figs["seed"].get("confusion")
    if cm is not None:
        lines += [f"![confusion matrix]({_rel(cm, root)})", ""]


def _rnn_runs(root: Path) -> dict[str, list[tuple[Path, dict]]]:
    out = {}
    for key in ("seed", "best", "lstm"):
        out[key] = _summaries(root / "rnn" / key / "runs")
    return out


def _rnn_section(root: Path, rec: dict, lines: list[str], headline: list) -> None:
    from ..report import plots, tables
    from .rnn import REPORT_RNN

    runs = _rnn_runs(root)
    allsum = [s for v in runs.values() for _, s in v]
    lines += [f"## {SECTION_TITLES['rnn']}", ""]
    lines += _section_status_note(rec, "rnn")
    lines += [_provenance_line(rec, "rnn", allsum), "",
              "Test accuracy in % on held-out palindromes, by input length T. Report: one run of the vanilla RNN each "
              "(its accuracies read from its figures). *Report's settings* = recipe `seed` (scalar digits, Xavier, "
              "RMSprop 1e-3, exponential decay, clipping); *best* = recipe `best` (one-hot digits, orthogonal init, "
              "clipping at 1, cosine schedule, no curriculum; LSTM 64 units, forget-gate bias 3). Ours: mean ± sample std over seeds (n).", ""]

    def acc(key, T):
        return [s["test_accuracy"] for _, s in runs[key] if int(s.get("data_input_length", -1)) == T]

    def train_loss(key, T):
        return [s["train_loss"] for _, s in runs[key] if int(s.get("data_input_length", -1)) == T and s.get("train_loss") is not None]

    lengths = sorted({int(s["data_input_length"]) for s in allsum if "data_input_length" in s} | set(REPORT_RNN))
    rows = []
    for T in lengths:
        tl = train_loss("seed", T)
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
    fig_rows = []
    for key, cell in (("seed", "vanilla, report's settings"), ("best", "vanilla, best"), ("lstm", "LSTM, best")):
        for T in sorted({int(s["data_input_length"]) for _, s in runs[key]}):
            a = acc(key, T)
            m, sd = tables.mean_std(a)
            fig_rows.append({"cell": cell, "T": T, "mean": m, "std": sd})
    if fig_rows:
        fig = plots.plot_accuracy_vs_length(fig_rows, root / "figures" / "rnn_accuracy_vs_length.png", reference=REPORT_RNN)
        lines += [f"![accuracy against input length]({_rel(fig, root)})", ""]
    gd = root / "rnn" / "gradients"
    gj = gd / "gradient_norms.json"
    if gj.exists():
        g = _read_json(gj)
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
    curves = []
    for T in sorted(REPORT_RNN):
        rs = [(rd, s) for rd, s in runs["seed"] if int(s.get("data_input_length", -1)) == T]
        if rs:
            curves.append((T, _ensure_run_figures(*rs[0]).get("curves")))
    if curves:
        lines += ["Curves with the report's settings at its input lengths (first seed), as in its appendix:", ""]
        lines += [tables.markdown_table([f"T = {T}" for T, _ in curves], [[_img(p, root, f"curves T={T}") for T, p in curves]]), ""]


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


def write_report(out) -> Path:
    """Draw ``out/report.md`` and the self-contained ``out/report.html`` from the saved files in ``out`` only."""
    from ..report import html, tables
    from ..train.runfolder import atomic_write_text

    root = Path(out)
    rj = root / REPRODUCE_JSON
    if not root.is_dir():
        raise ConfigError(f"{str(root)!r} is not a folder; give the --out folder of `nnlab reproduce`")
    if not rj.exists():
        raise ConfigError(f"{str(root)!r} holds no {REPRODUCE_JSON}: it is not a reproduce folder "
                          "(make one with `nnlab reproduce --budget quick --out DIR`)")
    rec = _read_json(rj)
    (root / "figures").mkdir(exist_ok=True)
    budget_name = rec.get("budget", "?")
    bs = rec.get("budget_settings") or {}
    summary = bs.get("summary") or f"{budget_name} (its settings were not recorded)"  # as it was when the runs were made
    body: list[str] = []
    headline: list[list] = []
    _part1_section(root, rec, body, headline)
    _cifar_section("mlp", root, rec, body, headline)
    _cifar_section("cnn", root, rec, body, headline)
    _rnn_section(root, rec, body, headline)

    secs = rec.get("sections", {})
    head = ["# Reproducing the CS324 Assignment 2 report: MLP, CNN and RNN", ""]
    if budget_name != "full":
        head += [f"> **Budget {summary}**", ""]
    else:
        head += [f"> Budget {summary}", ""]
    head += ["Every table puts the report's figure beside ours with the report's settings (recipe `seed`) and ours "
             "with our best recipe (`best`), as mean ± sample standard deviation over n seeds. Accuracies are in %.", ""]
    head += ["| provenance | |", "| --- | --- |",
             f"| nnlab version | {rec.get('nnlab_version')} |", f"| commit | {rec.get('git_commit') or 'unknown'} |",
             f"| budget | {budget_name} |", f"| device | {rec.get('device')} (torch {rec.get('torch')}) |",
             f"| python, platform | {rec.get('python')}, {rec.get('platform')} |",
             f"| started | {rec.get('started')} |", f"| finished | {rec.get('finished') or 'not yet'} |",
             f"| time in sections (all `reproduce` calls) | {_fmt_duration(rec.get('elapsed_s'))} |",
             "| sections | " + ", ".join(f"{n}: {secs.get(n, {}).get('status', 'pending')}" for n in SECTIONS) + " |", ""]
    head += ["## Headline", "", tables.markdown_table(["experiment", "report", "ours, report's settings", "ours, best"], headline), ""]
    tail = ["## Budget settings", "",
            f"`{budget_name}` (from `nnlab.experiments.reproduce.BUDGETS`; every other setting is the recipe's):", "",
            tables.markdown_table(["setting", "value"], _budget_rows(bs)),
            "", f"Redraw this report from the saved files: `nnlab report {root}`. Continue or extend the runs: rerun the "
            f"same `nnlab reproduce --budget {budget_name} --out {root}` command.", ""]
    md = "\n".join(head + body + tail)
    md_path = root / "report.md"
    atomic_write_text(md_path, md)
    atomic_write_text(root / "headline.md", _headline_block(rec, headline))
    html.write_html(md_path, root / "report.html")
    return md_path


def _headline_block(rec: dict, headline: list) -> str:
    """The headline table with its provenance in one paragraph: what README.md quotes, generated, never typed.

    The commit is the one each section ran at (``-dirty`` when the tree had uncommitted changes); sections run at
    different commits are named one by one, so a table from a mixed or changed tree cannot pass for a clean one."""
    from ..report import tables

    secs = rec.get("sections", {})
    commits = {n: secs[n].get("git_commit") for n in SECTIONS if secs.get(n, {}).get("status") == "done"}
    distinct = sorted({c for c in commits.values() if c})
    commit = distinct[0] if len(distinct) == 1 else ("; ".join(f"{n} at {c}" for n, c in commits.items()) or "unknown")
    prov = (f"From `nnlab reproduce --budget {rec.get('budget')}` ({rec.get('started', '?')} to {rec.get('finished') or 'not finished'}, "
            f"commit {commit}, nnlab {rec.get('nnlab_version')}, torch {rec.get('torch')} on {rec.get('device')}"
            f"{', ' + rec['cpu'] if rec.get('cpu') else ''}; {_fmt_duration(rec.get('elapsed_s'))} in sections). "
            "Ours: mean ± sample std over seeds (n runs).")
    table = tables.markdown_table(["experiment", "report", "ours, report's settings", "ours, best"], headline)
    return prov + "\n\n" + table + "\n"


# -------------------------------------------------------------------------------------------- CLI
def add_parser(sub, name: str, help_: str):
    p = sub.add_parser(name, help=help_, description=help_)
    if name == "reproduce":
        p.add_argument("--budget", default="quick", help=f"{' | '.join(LISTED_BUDGETS)} (default quick: 2 CPU cores, "
                                                         "about 15 min; full: the whole protocol, for a GPU)")
        p.add_argument("--out", default=None, help="reproduction folder (default: runs/reproduce-<budget>); rerun to continue")
        p.add_argument("--data-dir", default=None, help="CIFAR-10 folder (default: $NNLAB_DATA_DIR, else ./data)")
        p.add_argument("--progress", default="auto", help="progress bars: auto (on a terminal) | on | off")
        p.add_argument("--no-download", dest="download", action="store_false",
                       help="do not download CIFAR-10 when it is missing (the CIFAR-10 sections are then skipped); "
                            "by default the official archive is downloaded and its md5 verified")
        p.add_argument("--url", default=None, help="where to download cifar-10-python.tar.gz from (default: the official "
                                                   "address); the official md5 is checked either way")
    else:
        p.add_argument("dir", help="the --out folder of a `nnlab reproduce` run")


def run_cli(args) -> int:
    if args.command == "report":
        md = write_report(args.dir)
        print(f"report: {md}\nhtml:   {md.with_suffix('.html')}\nheadline (for README.md): {md.parent / 'headline.md'}")
        return 0
    get_budget(args.budget)
    if args.progress not in ("auto", "on", "off"):
        raise ConfigError(f"unknown --progress {args.progress!r}; valid: auto, on, off")
    out = args.out or os.path.join("runs", f"reproduce-{args.budget}")
    rec = reproduce(out, args.budget, data_dir=args.data_dir, progress=args.progress, download=args.download,
                    url=args.url)
    secs = rec["sections"]
    print("sections: " + ", ".join(f"{n} {secs[n]['status']}" for n in SECTIONS))
    print(f"report: {Path(out) / 'report.md'}\nhtml:   {Path(out) / 'report.html'}")
    return 0
