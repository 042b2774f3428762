"""``nnlab reproduce`` and ``nnlab report``: every section on the test-only ``smoke`` budget, then resume and
reuse, the redraw from saved files, and each kind of bad input.

``smoke`` (see ``nnlab.experiments.reproduce.BUDGETS``) is a real budget of the CLI, hidden from ``--help``: every
section with tiny settings (1-epoch MLPs, 2-step CNNs, 20-step RNNs) on a fake CIFAR-10 of 200 + 40 images
(``allow_partial``). Its numbers mean nothing and its report says so; these tests check the pipeline, not results.

One reproduction is built in three calls (module fixture ``smoke``):
  1. without CIFAR-10: Part I and III run, the CIFAR-10 sections say how to get the data;
  2. with the fake CIFAR-10: only the CIFAR-10 sections train, Part I and III are reused;
  3. the same command again: nothing trains, the report is redrawn (with the progress bar on).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from fakes import make_fake_cifar
from nnlab import __version__
from nnlab.cli import main
from nnlab.experiments import reproduce as rp

REPORT_FIGURES = ("97.5", "96.0", "97.0", "98.5",  # Task 1.2
                  "44.8", "53.0", "19.7", "33.6", "37.9", "37.5", "42.9", "55.1", "62.9", "51.3")  # Task 1.3


def _snapshot(out: Path) -> SimpleNamespace:
    """What a later call may not change: mtimes of every summary.json and checkpoint.pt, plus the texts."""
    def mtimes(name):
        return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob(name)}

    return SimpleNamespace(summaries=mtimes("summary.json"), checkpoints=mtimes("checkpoint.pt"),
                           record=json.loads((out / "reproduce.json").read_text()),
                           md=(out / "report.md").read_text(), html=(out / "report.html").read_text())


def _reproduce(out, data_dir, *extra) -> int:
    return main(["reproduce", "--budget", "smoke", "--out", str(out), "--data-dir", str(data_dir), "--progress", "off", *extra])


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("reproduce")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NNLAB_CACHE_DIR", str(root / "cache"))
        mp.delenv("NNLAB_DATA_DIR", raising=False)
        out, empty = root / "repro", root / "no-data"
        empty.mkdir()
        data = make_fake_cifar(root, n_train_per_batch=40, n_test=40)
        t0 = time.perf_counter()
        # CIFAR-10 is missing and its download fails (nothing listens on the discard port): those sections are skipped
        assert _reproduce(out, empty, "--url", "http://127.0.0.1:9/cifar-10-python.tar.gz") == 0
        first = _snapshot(out)
        assert _reproduce(out, data) == 0
        seconds = time.perf_counter() - t0  # every section once (not asserted: tests do not time; see the log)
        second = _snapshot(out)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert main(["reproduce", "--budget", "smoke", "--out", str(out), "--data-dir", str(data), "--progress", "on"]) == 0
        third = _snapshot(out)
        print(f"smoke reproduction, all sections: {seconds:.1f} s")
        yield SimpleNamespace(root=root, out=out, data=data, empty=empty, first=first, second=second, third=third,
                              progress=err.getvalue(), seconds=seconds)


def _images(md: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", md)


# ------------------------------------------------------------------------------------------ the report
def test_report_has_every_table_with_the_reports_figures(smoke):
    md = smoke.third.md
    assert md.startswith("# ")
    top = md[:600]
    assert "Budget smoke" in top and "None of its numbers is a result" in top  # the budget is said at the top
    for title in rp.SECTION_TITLES.values():
        assert f"## {title}" in md
    assert "## Headline" in md and "## Budget settings" in md
    for fig in REPORT_FIGURES:
        assert f"| {fig}" in md, fig
    rnn_table = md.split(f"## {rp.SECTION_TITLES['rnn']}")[1]
    for T, acc in ((8, 92), (10, 88), (12, 20), (15, 100), (20, 10)):
        assert re.search(rf"\| {T} +\| {acc} +\|", rnn_table), (T, acc)
    assert "| overall    | 43 " in md  # Task 1.3 overall
    # Part II: the report prints no CNN figure, so its column is empty (no unsourced expectation in its place)
    assert "expected" not in md.split("## Headline")[1].split("\n## ")[0] and "≈75" not in md
    assert re.search(r"\| Part II: CIFAR-10 CNN \(overall\) +\| – +\|", md)
    # report's figure | ours with the report's settings (mean ± std, n) | ours with best
    assert md.count("ours, report's settings") >= 5 and "ours, best" in md
    assert re.search(r"\| \d+\.\d \(n=1\) +\| \d+\.\d \(n=1\) +\|", md)  # ours: mean (n), both recipes
    # the report's inconsistencies, one line each
    assert "54–85 are not a mean cross-entropy" in md
    assert "ln(1 + 9/e) ≈ 1.46" in md


def test_each_section_states_its_provenance(smoke):
    md = smoke.third.md
    lines = [line for line in md.splitlines() if line.startswith("*Provenance:*")]
    assert len(lines) == len(rp.SECTIONS)
    for line in lines:
        assert f"nnlab {__version__}" in line and "commit " in line and "budget smoke" in line
        assert "seeds " in line and "device cpu" in line and "training wall time" in line and "status done" in line
    assert f"| nnlab version | {__version__} |" in md and "| budget | smoke |" in md


def test_figures_are_relative_files_under_the_folder_and_embedded(smoke):
    out, md, page = smoke.out, smoke.third.md, smoke.third.html
    images = _images(md)
    needed = ("decision_boundary.png", "curves.png", "confusion_matrix.png", "part1_accuracy.png",
              "mlp_per_class.png", "cnn_per_class.png", "rnn_accuracy_vs_length.png", "gradient_norms.png")
    for name in needed:
        assert any(i.endswith(name) for i in images), name
    for src in images:
        assert not os.path.isabs(src) and ".." not in Path(src).parts, src
        assert (out / src).resolve().is_relative_to(out.resolve()) and (out / src).is_file(), src
    assert page.count('<img src="data:image/png;base64,') == len(images)
    assert 'class="missing-image"' not in page and 'src="http' not in page and 'src="file:' not in page


def test_without_cifar_the_cifar_sections_say_how_to_get_it(smoke):
    rec, md = smoke.first.record, smoke.first.md
    status = {n: s["status"] for n, s in rec["sections"].items()}
    assert status == {"part1": "done", "mlp": "skipped", "cnn": "skipped", "rnn": "done"}
    for model in ("mlp", "cnn"):
        section = md.split(f"## {rp.SECTION_TITLES[model]}")[1].split("\n## ")[0]
        assert "CIFAR-10 was not found" in section
        assert "nnlab data download cifar10" in section and "--data-dir" in section and "NNLAB_DATA_DIR" in section
        assert "No finished run yet." in section
        assert "download failed" in rec["sections"][model]["reason"]  # it tried, and says why it could not
    assert rec["finished"] is not None  # skipped sections do not block the rest
    assert not [k for k in smoke.first.summaries if k.startswith(("mlp", "cnn"))]


def test_second_call_trains_only_what_is_missing(smoke):
    first, second = smoke.first, smoke.second
    assert all(second.summaries[k] == v for k, v in first.summaries.items())  # Part I and III reused untouched
    new = set(second.summaries) - set(first.summaries)
    assert {k.split("/")[0] for k in new} == {"mlp", "cnn"}
    assert len(new) == 2 * 2 * rp.BUDGETS["smoke"].cifar_seeds
    assert all(s["status"] == "done" for s in second.record["sections"].values())


def test_third_call_reuses_every_run(smoke):
    assert smoke.third.summaries == smoke.second.summaries  # no run trained again...
    assert smoke.third.checkpoints == smoke.second.checkpoints  # ...or was even resumed
    assert smoke.third.md == smoke.second.md
    rec = smoke.third.record
    assert rec["budget"] == "smoke" and rec["budget_settings"] == rp.BUDGETS["smoke"].settings()
    assert rec["nnlab_version"] == __version__ and "git_commit" in rec and rec["device"] == "cpu"
    assert set(rec["sections"]) == set(rp.SECTIONS)


def test_progress_bar_over_the_sections(smoke):
    assert "reproduce (smoke)" in smoke.progress and f"{len(rp.SECTIONS)}/{len(rp.SECTIONS)}" in smoke.progress


def test_every_run_of_the_budget_exists(smoke):
    b, out = rp.BUDGETS["smoke"], smoke.out
    n_part1 = 2 * 4 * b.part1_seeds
    n_rnn = 2 * len(b.rnn_lengths) * b.rnn_seeds + len(b.lstm_lengths) * b.rnn_seeds + 2  # + gradient-flow runs
    counts = {k: sum(1 for s in smoke.third.summaries if s.startswith(k)) for k in ("part1", "mlp", "cnn", "rnn")}
    assert counts == {"part1": n_part1, "mlp": 2 * b.cifar_seeds, "cnn": 2 * b.cifar_seeds, "rnn": n_rnn}
    for p in ("part1/seed/table.md", "part1/best/results.json", "rnn/seed/results.json", "rnn/lstm/table.md",
              "rnn/gradients/gradient_norms.json", "mlp/best-s0/metrics.csv", "cnn/seed-s0/config.json"):
        assert (out / p).is_file(), p
    cfg = json.loads((out / "mlp/seed-s0/config.json").read_text())
    assert cfg["recipe"] == "seed" and cfg["data"]["allow_partial"] is True


# ---------------------------------------------------------------------------------------- nnlab report
def test_report_command_redraws_from_saved_files_without_training(smoke, tmp_path):
    """`nnlab report DIR` (the real entry point, in a fresh interpreter) rebuilds report.md/html and the missing
    figures from the saved files; it never builds a model, so it cannot train."""
    copy = tmp_path / "copy"
    shutil.copytree(smoke.out, copy)
    for name in ("report.md", "report.html"):
        (copy / name).unlink()
    shutil.rmtree(copy / "figures")
    for p in [copy / "part1/best/runs/numpy-moons-s0/curves.png", copy / "mlp/best-s0/confusion_matrix.png",
              copy / "rnn/gradients/gradient_norms.png"]:
        p.unlink()  # e.g. a run killed after summary.json, before its figures: redrawn from the saved files
    before = {p: p.stat().st_mtime_ns for p in copy.rglob("summary.json")}
    code = ("import sys; from nnlab.cli import main; rc = main(['report', sys.argv[1]]); "
            "print('models imported:', any(m.startswith('nnlab.models') for m in sys.modules)); sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code, str(copy)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "report:" in res.stdout and "models imported: False" in res.stdout
    md = (copy / "report.md").read_text()
    assert md == smoke.third.md.replace(str(smoke.out), str(copy))
    assert (copy / "mlp/best-s0/confusion_matrix.png").is_file() and (copy / "rnn/gradients/gradient_norms.png").is_file()
    assert (copy / "report.html").read_text().count("data:image/png;base64,") == len(_images(md))
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("summary.json")} == before


# ------------------------------------------------------------------------------ interruption and resume
def _set_status(out: Path, **status):
    rj = out / "reproduce.json"
    rec = json.loads(rj.read_text())
    for name, st in status.items():
        rec["sections"][name]["status"] = st
    rec["finished"] = None
    rj.write_text(json.dumps(rec))


def test_interrupted_reproduction_continues_where_it_stopped(smoke, tmp_path, monkeypatch, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(smoke.out, copy)
    shutil.rmtree(copy / "mlp")  # as if the MLP section had not started yet
    _set_status(copy, mlp="pending")
    import nnlab.experiments.cifar as cifar

    real, calls = cifar.train_cifar, []

    def interrupted_on_second_run(*a, **k):
        calls.append(k["out"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(cifar, "train_cifar", interrupted_on_second_run)
    assert _reproduce(copy, smoke.data) == 130  # the CLI's status for an interruption
    assert "interrupted" in capsys.readouterr().err
    rec = json.loads((copy / "reproduce.json").read_text())
    assert rec["sections"]["mlp"]["status"] == "interrupted" and rec["finished"] is None
    first_run = copy / "mlp/seed-s0/summary.json"
    assert first_run.is_file() and not (copy / "mlp/best-s0/summary.json").exists()
    mtime = first_run.stat().st_mtime_ns
    others = {p: p.stat().st_mtime_ns for p in copy.rglob("summary.json") if "mlp" not in p.parts}

    monkeypatch.setattr(cifar, "train_cifar", real)
    assert _reproduce(copy, smoke.data) == 0
    rec = json.loads((copy / "reproduce.json").read_text())
    assert all(s["status"] == "done" for s in rec["sections"].values()) and rec["finished"]
    assert first_run.stat().st_mtime_ns == mtime  # the finished run was reused
    assert (copy / "mlp/best-s0/summary.json").is_file()  # the interrupted one was run
    assert {p: p.stat().st_mtime_ns for p in others} == others


def test_unfinished_run_is_resumed_from_its_checkpoint(smoke, tmp_path):
    """A run folder with checkpoint.pt but no summary.json (killed after its last checkpoint) is resumed:
    resume=True keeps its metrics rows (a restart would refuse the folder or write new timings)."""
    copy = tmp_path / "copy"
    shutil.copytree(smoke.out, copy)
    runs = [copy / "rnn/best/runs/best-vanilla-T8-s0", copy / "cnn/seed-s0"]
    metrics = {}
    for rd in runs:
        assert (rd / "checkpoint.pt").is_file()
        (rd / "summary.json").unlink()
        metrics[rd] = (rd / "metrics.csv").read_text()
    _set_status(copy, rnn="interrupted", cnn="interrupted")
    assert _reproduce(copy, smoke.data) == 0
    for rd in runs:
        assert (rd / "summary.json").is_file()
        assert (rd / "metrics.csv").read_text() == metrics[rd]
    rec = json.loads((copy / "reproduce.json").read_text())
    assert all(s["status"] == "done" for s in rec["sections"].values())


# ------------------------------------------------------------------------------------------ bad input
def _fails(capsys, argv, *fragments) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("nnlab: error: ") and "Traceback" not in err, err
    for f in fragments:
        assert f in err, (f, err)
    return err


def test_unknown_budget(tmp_path, capsys):
    out = tmp_path / "r"
    _fails(capsys, ["reproduce", "--budget", "huge", "--out", str(out)], "unknown budget 'huge'", "valid: quick, full")
    assert not out.exists()  # refused before anything was written


def test_unknown_progress(tmp_path, capsys):
    _fails(capsys, ["reproduce", "--budget", "smoke", "--out", str(tmp_path / "r"), "--progress", "loud"],
           "unknown --progress 'loud'", "auto, on, off")


def test_out_that_cannot_be_written(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    _fails(capsys, ["reproduce", "--budget", "smoke", "--out", str(blocker)], "is a file")
    _fails(capsys, ["reproduce", "--budget", "smoke", "--out", str(blocker / "sub")], "cannot create --out")


def test_out_on_a_read_only_file_system(tmp_path, capsys, monkeypatch):
    """Root passes os.access on a read-only mount: the folder is probed by writing a file into it."""
    import errno
    import tempfile

    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    _fails(capsys, ["reproduce", "--budget", "smoke", "--out", str(tmp_path / "r")], "not writable", "Read-only file system")


def _foreign(tmp_path, **rec) -> Path:
    out = tmp_path / "old"
    out.mkdir()
    base = {"budget": "smoke", "budget_settings": rp.BUDGETS["smoke"].settings(), "nnlab_version": __version__,
            "git_commit": "0123abc", "sections": {n: {"status": "done"} for n in rp.SECTIONS}, "recipes": rp.recipes_record()}
    (out / "reproduce.json").write_text(json.dumps({**base, **rec}))
    return out


def test_folder_of_another_version(tmp_path, capsys):
    out = _foreign(tmp_path, nnlab_version="0.0.1")
    _fails(capsys, ["reproduce", "--budget", "smoke", "--out", str(out)], "nnlab 0.0.1", f"nnlab {__version__}",
           "choose another --out")


def test_folder_of_another_budget(tmp_path, capsys):
    out = _foreign(tmp_path, budget="quick", budget_settings=rp.BUDGETS["quick"].settings())
    _fails(capsys, ["reproduce", "--budget", "smoke", "--out", str(out)], "'quick'-budget", "--budget quick")


def test_folder_of_a_changed_budget(tmp_path, capsys):
    out = _foreign(tmp_path, budget_settings={**rp.BUDGETS["smoke"].settings(), "part1_seeds": 7})
    _fails(capsys, ["reproduce", "--budget", "smoke", "--out", str(out)], "budget changed")


def test_folder_that_is_not_a_reproduction(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    _fails(capsys, ["reproduce", "--budget", "smoke", "--out", str(tmp_path)], "not empty", "reproduce.json")
    _fails(capsys, ["report", str(tmp_path)], "holds no reproduce.json")
    _fails(capsys, ["report", str(tmp_path / "absent")], "is not a folder")


def test_cli_exit_status_and_help(tmp_path):
    """The real entry point: status 2 and one line, no traceback; --help offers quick and full only."""
    res = subprocess.run([sys.executable, "-m", "nnlab", "reproduce", "--budget", "nope", "--out", str(tmp_path / "r")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.startswith("nnlab: error: unknown budget 'nope'") and "Traceback" not in res.stderr
    res = subprocess.run([sys.executable, "-m", "nnlab", "reproduce", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "quick | full" in res.stdout and "smoke" not in res.stdout
    assert "--data-dir" in res.stdout and "--progress" in res.stdout


# ------------------------------------------------------------------------------------------- budgets
def test_budget_table():
    assert set(rp.BUDGETS) == {"quick", "full", "smoke"} and rp.LISTED_BUDGETS == ("quick", "full")
    full, quick = rp.BUDGETS["full"], rp.BUDGETS["quick"]
    # full = the complete protocol: recipe lengths untouched, all images
    assert full.part1_seeds >= 10 and full.part1_train == {} and full.cifar_seeds >= 3
    assert all(o == {} for m in full.cifar.values() for o in m.values()) and full.cifar_data == {}
    assert full.rnn_seeds == 5 and full.rnn_lengths == (5, 8, 10, 12, 15, 20, 25, 30) and max(full.lstm_lengths) == 100
    assert all(o == {} for o in full.rnn.values())
    # quick: fewer seeds and steps; the CNN on all training images, the report's settings at their full length
    assert quick.part1_seeds < full.part1_seeds and quick.cifar_seeds < full.cifar_seeds
    assert "data" not in quick.cifar["cnn"]["seed"] and quick.cifar_data == {}
    assert set(quick.cifar["cnn"]["seed"]["train"]) == {"eval_every"}  # the seed recipe's own 5,000 steps
    assert quick.cifar["cnn"]["best"] is None  # not run: its 14 epochs do not fit the quick budget
    assert set(quick.rnn_lengths) >= {8, 10, 12, 15, 20}
    for b in rp.BUDGETS.values():
        assert set(b.cifar) == {"mlp", "cnn"} and all(set(m) == set(rp.RECIPE_ORDER) for m in b.cifar.values())
        assert set(b.rnn) == set(rp.RECIPE_ORDER)
        assert json.loads(json.dumps(b.settings())) == b.settings()


def test_headline_for_the_readme_is_generated_with_its_commit(smoke, tmp_path):
    """README's results table is copied from headline.md, which names the commit (``-dirty`` included) it ran at."""
    block = (smoke.out / "headline.md").read_text()
    rec = json.loads((smoke.out / "reproduce.json").read_text())
    commits = {s["git_commit"] for s in rec["sections"].values() if s.get("status") == "done"}
    assert len(commits) == 1 and f"commit {commits.pop()}" in block
    assert "nnlab reproduce --budget smoke" in block and "| experiment " in block
    assert block.split("\n\n", 1)[1] in smoke.third.md  # the same table as the report's headline
    # sections run at different commits are named one by one
    copy = tmp_path / "copy"
    shutil.copytree(smoke.out, copy)
    rec["sections"]["rnn"]["git_commit"] = "abc123-dirty"
    (copy / "reproduce.json").write_text(json.dumps(rec))
    rp.write_report(copy)
    assert "rnn at abc123-dirty" in (copy / "headline.md").read_text()


def test_part1_seed_recipe_is_the_reports_optimizer_per_backend(smoke):
    """Report's settings in Part I: NumPy plain SGD, PyTorch Adam (Task 1.2), batch 5, constant step; `best` is
    SGD with momentum for both. The report's Part I table has the Bayes-optimal column from results.json."""
    out = smoke.out
    for backend, (opt, momentum) in (("numpy", ("sgd", 0.0)), ("torch", ("adam", 0.0))):
        cfg = json.loads((out / f"part1/seed/runs/{backend}-moons-s0/config.json").read_text())
        assert (cfg["optim"]["optimizer"], cfg["optim"]["momentum"]) == (opt, momentum), backend
        assert cfg["schedule"]["schedule"] == "constant" and cfg["train"]["batch_size"] == 5
        assert cfg["train"]["epochs"] == rp.BUDGETS["smoke"].part1_train["epochs"]  # the budget still wins
        best = json.loads((out / f"part1/best/runs/{backend}-moons-s0/config.json").read_text())
        assert best["optim"]["optimizer"] == "sgd" and best["optim"]["momentum"] == 0.9
    section = smoke.third.md.split(f"## {rp.SECTION_TITLES['part1']}")[1].split("\n## ")[0]
    assert "Bayes-optimal, same splits" in section and "PyTorch Adam" in section and "ours: the report gives none" in section
    from nnlab.data.bayes import split_accuracy
    from nnlab.data.toy import ToyDataConfig

    moons = f"{100 * split_accuracy(ToyDataConfig(dataset='moons'), 0):.1f} (n=1)"
    assert re.search(rf"\| NumPy +\| moons +\|.*\| {re.escape(moons)} +\|", section), moons


def test_part1_overrides_layer_per_backend():
    from nnlab.errors import ConfigError
    from nnlab.experiments.part1 import resolve_overrides
    from nnlab.experiments.recipes import RECIPES

    seed = RECIPES["mlp-toy"]["seed"]
    assert resolve_overrides(seed, "torch")["optim"] == {"optimizer": "adam", "lr": 1e-3, "momentum": 0.0}
    assert resolve_overrides(seed, "numpy")["optim"] == {"optimizer": "sgd", "lr": 0.05, "momentum": 0.0}
    assert resolve_overrides(seed, "numpy")["schedule"] == resolve_overrides(seed, "torch")["schedule"] == {"schedule": "constant"}
    best = resolve_overrides(RECIPES["mlp-toy"]["best"], "torch")  # the base, but 30 epochs (chosen on validation)
    assert best["train"] == {"epochs": 30} and best["optim"] == best["schedule"] == {}
    both = {"train": {"epochs": 3, "batch_size": 5}, "torch": {"train": {"epochs": 5}}}  # the backend's layer on top
    assert resolve_overrides(both, "torch")["train"] == {"epochs": 5, "batch_size": 5}
    assert resolve_overrides(both, "numpy")["train"] == {"epochs": 3, "batch_size": 5}
    with pytest.raises(ConfigError, match="unknown override key 'jax'; valid: optim, schedule, train, numpy, torch"):
        resolve_overrides({"jax": {}}, "torch")
    with pytest.raises(ConfigError, match=r"unknown override key torch\.'model'; valid: optim, schedule, train"):
        resolve_overrides({"torch": {"model": {}}}, "torch")


def test_folder_of_changed_recipes(tmp_path, capsys):
    """A folder started with other recipes (e.g. before a recipe changed) is not continued: its runs would mix."""
    recipes = rp.recipes_record()
    recipes["part1"]["seed"] = {"schedule": {"schedule": "cosine"}}
    out = _foreign(tmp_path, budget_settings=rp.BUDGETS["smoke"].settings(), recipes=recipes)
    _fails(capsys, ["reproduce", "--budget", "smoke", "--out", str(out)], "recipes changed", "choose another --out")


def test_every_section_and_the_download_get_the_users_progress_setting(tmp_path, monkeypatch):
    """``--progress on`` reaches every section's runs and the CIFAR-10 download as ``on`` (the one rule,
    ``nnlab._io.progress_enabled``, decides there), not as a boolean that turns ``on`` into ``auto``. Nothing
    trains: the functions the sections call are replaced by recorders."""
    import nnlab.data.download as download
    import nnlab.experiments.cifar as cifar
    import nnlab.experiments.part1 as part1
    import nnlab.experiments.rnn as rnn

    got = []
    monkeypatch.setattr(part1, "run_part1", lambda *a, progress, **k: got.append(("part1", progress)))
    monkeypatch.setattr(cifar, "train_cifar", lambda model, **k: got.append((model, k["train"]["progress"])) or {})
    monkeypatch.setattr(rnn, "run_sweep", lambda *a, progress, **k: got.append(("sweep", progress)))
    monkeypatch.setattr(rnn, "analyze_gradients", lambda *a, progress, **k: got.append(("gradients", progress)))
    fetched = []
    monkeypatch.setattr(rp, "_cifar_available", lambda data_dir: None if fetched else "CIFAR-10 not found")
    monkeypatch.setattr(download, "download_cifar10", lambda data_dir, *, progress, **k: fetched.append(progress) or data_dir)
    rec = {"device": "cpu", "finished": None, "sections": {n: {"status": "pending"} for n in rp.SECTIONS}}
    failed = rp._run_sections(tmp_path, rec, "smoke", rp.BUDGETS["smoke"], data_dir=tmp_path, progress="on",
                              download=True, url=None)
    assert failed == [] and fetched == ["on"]
    assert {name for name, _ in got} == {"part1", "mlp", "cnn", "sweep", "gradients"}
    assert {p for _, p in got} == {"on"}, got
