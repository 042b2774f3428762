"""``nnlab reproduce``: every experiment of the report, with its settings and ours, over seeds; then the report.

    nnlab reproduce --budget quick|full --out DIR [--data-dir D] [--progress auto|on|off]
    nnlab report DIR            # redraw DIR/report.md and DIR/report.html from saved files only

One reproduction is one folder ``DIR`` (its layout: ``nnlab.report.reproduce_report``): ``reproduce.json`` (budget,
recipes, version, commit, device, the status of each section), then one subfolder per section. This module runs the
sections; the report is drawn by :func:`nnlab.report.reproduce_report.write_report`, the same function ``nnlab report``
calls, from the saved files only, never a model.

Who decides what (each in one place): the recipes (``nnlab.experiments.recipes``: the settings of every run), the
budgets (:data:`BUDGETS`, from ``nnlab.experiments.budgets``: how many seeds, steps and images), the report's own
numbers (``nnlab.report.reference``).

Rerunning the same command continues an interrupted reproduction: a run folder holding ``summary.json`` is
reused as it is, an unfinished one holding ``checkpoint.pt`` is resumed (``experiments.common.run_or_reuse``),
anything else starts. A folder started with other recipes, another budget or another nnlab version is refused.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from .. import __version__
from .._io import check_progress, progress_bar
from ..errors import ConfigError, DataError, NnlabError
from ..report.reproduce_report import RECIPE_ORDER, REPRODUCE_JSON, SECTION_TITLES, SECTIONS, read_json, write_report
from .budgets import BUDGETS, LISTED_BUDGETS, Budget, get_budget
from .recipes import record as recipes_record

__all__ = ["BUDGETS", "LISTED_BUDGETS", "RECIPE_ORDER", "REPRODUCE_JSON", "SECTIONS", "SECTION_TITLES", "add_parser",
           "get_budget", "recipes_record", "reproduce", "run_cli", "write_report"]


# ------------------------------------------------------------------------------------- the folder
def _check_out(out: Path, budget_name: str, budget: Budget) -> dict | None:
    """Refuse an unusable or foreign ``--out``; return the stored reproduce.json of a reproduction to continue."""
    _check_writable(out)
    rj = out / REPRODUCE_JSON
    if not rj.exists():
        if any(not p.name.startswith(".") for p in out.iterdir()):
            raise ConfigError(f"--out {str(out)!r} is not empty and holds no {REPRODUCE_JSON}: it is not a reproduction "
                              "to continue; choose a new or empty folder")
        return None
    stored = read_json(rj)
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


def _check_writable(out: Path) -> None:
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


def _open_record(out: Path, stored: dict | None, budget_name: str, budget: Budget, data_dir) -> dict:
    """The record to continue (``stored``) or a new one, with this call's machine; written to reproduce.json."""
    from ..train.runfolder import write_json

    fresh = _new_record(budget_name, budget, data_dir)
    rec = stored or fresh
    for key in ("device", "torch", "platform", "python", "data_dir", "cpu"):  # this call's machine (summaries keep each run's)
        rec[key] = fresh[key]
    for name in SECTIONS:
        rec["sections"].setdefault(name, {"status": "pending"})
    write_json(out / REPRODUCE_JSON, rec)
    return rec


# ------------------------------------------------------------------------------------ the sections
def _run_part1(out: Path, budget: Budget, ctx: dict) -> None:
    from .part1 import run_part1

    for recipe in RECIPE_ORDER:  # the budget's train values over each recipe (and over its backend layers)
        run_part1(out / "part1" / recipe, budget.part1_seeds, recipe=recipe, progress=ctx["progress"],
                  overrides={"train": dict(budget.part1_train)})


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
    from .common import run_or_reuse

    for recipe in RECIPE_ORDER:
        over = budget.cifar[model][recipe]
        if over is None:  # not run in this budget (the report says so)
            continue
        data = {**budget.cifar_data, **over.get("data", {})}
        if ctx["data_dir"] is not None:
            data["data_dir"] = str(ctx["data_dir"])
        for seed in range(budget.cifar_seeds):
            rd = out / model / f"{recipe}-s{seed}"
            train = {**over.get("train", {}), "seed": seed, "progress": ctx["progress"]}
            run_or_reuse(rd, lambda resume: train_cifar(
                model, recipe_name=recipe, model_over=over.get("model"), data=data, optim=over.get("optim"),
                schedule=over.get("schedule"), train=train, out=rd, resume=resume))


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
        path = download_cifar10(data_dir, url=url or OFFICIAL_URL, md5=OFFICIAL_MD5, progress=progress)
    except DataError as e:
        print(f"nnlab: {e}; the CIFAR-10 sections are skipped (rerun to resume the download)", file=sys.stderr)
        return f"{missing} The download failed: {e}"
    print(f"nnlab: CIFAR-10 ready: {path}", file=sys.stderr)
    return _cifar_available(data_dir)


def _run_section(name: str, out: Path, rec: dict, budget: Budget, ctx: dict) -> bool:
    """Run one section, timing it and recording its status in reproduce.json; False when it failed (an NnlabError:
    a diverged run, unreadable data), so the other sections still run. Ctrl-C records ``interrupted`` and stops."""
    from ..train.runfolder import git_commit, write_json

    rj, sec = out / REPRODUCE_JSON, rec["sections"][name]
    sec.update(status="running", reason=None)
    rec["finished"] = None
    write_json(rj, rec)
    t0, ok = time.perf_counter(), True
    try:
        with _cpu_threads(name, rec["device"]):
            _RUNNERS[name](out, budget, ctx)
    except KeyboardInterrupt:
        spent = time.perf_counter() - t0
        sec.update(status="interrupted", elapsed_s=round(sec.get("elapsed_s", 0.0) + spent, 3))
        rec["elapsed_s"] = round(rec.get("elapsed_s", 0.0) + spent, 3)
        write_json(rj, rec)
        raise
    except NnlabError as e:
        sec.update(status="failed", reason=str(e).splitlines()[0] if str(e) else type(e).__name__)
        ok = False
    else:
        sec.update(status="done", finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), git_commit=git_commit())
    spent = time.perf_counter() - t0
    sec["elapsed_s"] = round(sec.get("elapsed_s", 0.0) + spent, 3)
    rec["elapsed_s"] = round(rec.get("elapsed_s", 0.0) + spent, 3)  # time in sections, over every call
    write_json(rj, rec)
    return ok


def _run_sections(out: Path, rec: dict, budget_name: str, budget: Budget, *, data_dir, progress: str, download: bool,
                  url: str | None) -> list[str]:
    """Every section not done yet, in order (the CIFAR-10 ones skipped, with the reason, when the data set is missing
    and cannot be downloaded); returns the names of those that failed."""
    from ..train.runfolder import write_json

    ctx = {"progress": progress, "data_dir": data_dir}
    missing_cifar = _cifar_available(data_dir)
    needs_cifar = any(rec["sections"][n].get("status") != "done" for n in ("mlp", "cnn"))
    if missing_cifar and needs_cifar:
        missing_cifar = _fetch_cifar(data_dir, missing_cifar, download=download, url=url, progress=progress)
    failed = []
    bar = progress_bar(SECTIONS, mode=progress, desc=f"reproduce ({budget_name})", unit="section")
    for name in bar:
        bar.set_postfix_str(SECTION_TITLES[name].split(":")[0])
        sec = rec["sections"][name]
        if sec.get("status") == "done":
            continue
        if name in ("mlp", "cnn") and missing_cifar:
            sec.update(status="skipped", reason=missing_cifar)
            write_json(out / REPRODUCE_JSON, rec)
            continue
        if not _run_section(name, out, rec, budget, ctx):
            failed.append(name)
    bar.close()
    return failed


def reproduce(out, budget_name: str = "quick", *, data_dir=None, progress: str = "auto", download: bool = True,
              url: str | None = None) -> dict:
    """Run (or continue) every section of the report into ``out``, then write the report; return reproduce.json."""
    from ..train.runfolder import RunDir, write_json

    budget = get_budget(budget_name)
    check_progress(progress)
    out = Path(out)
    stored = _check_out(out, budget_name, budget)
    lock = RunDir(out)  # one reproduce per folder at a time (its .lock); also re-checks writability
    try:
        rec = _open_record(out, stored, budget_name, budget, data_dir)
        failed = _run_sections(out, rec, budget_name, budget, data_dir=data_dir, progress=progress, download=download,
                               url=url)
        if rec.get("finished") is None and all(rec["sections"][n]["status"] in ("done", "skipped") for n in SECTIONS):
            rec["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_json(out / REPRODUCE_JSON, rec)
        write_report(out)
    finally:
        lock.release()
    if failed:
        raise NnlabError(f"section(s) {', '.join(failed)} failed (see {out / 'report.md'} and {out / REPRODUCE_JSON}); "
                         "the others are done; rerun the same command to retry")
    return rec


# -------------------------------------------------------------------------------------------- CLI
def add_parser(sub, name: str, help_: str):
    p = sub.add_parser(name, help=help_, description=help_)
    if name == "reproduce":
        p.add_argument("--budget", default="quick", help=f"{' | '.join(LISTED_BUDGETS)} (default quick: 2 CPU cores, "
                                                         "about 15 min; full: the whole protocol, about 2 h 40 min on 2 "
                                                         "CPU cores, resumable)")
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
    check_progress(args.progress)
    out = args.out or os.path.join("runs", f"reproduce-{args.budget}")
    rec = reproduce(out, args.budget, data_dir=args.data_dir, progress=args.progress, download=args.download,
                    url=args.url)
    secs = rec["sections"]
    print("sections: " + ", ".join(f"{n} {secs[n]['status']}" for n in SECTIONS))
    print(f"report: {Path(out) / 'report.md'}\nhtml:   {Path(out) / 'report.html'}")
    return 0
