"""The shared training loop through the CLI: run-folder contract, exact resume after kill -9, bad input."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from nnlab.cli import main
from nnlab.train.checkpoint import load_checkpoint

FAST = ["--epochs", "3", "--progress", "off"]


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_run_folder_contract(tmp_path, backend):
    out = tmp_path / "run"
    assert main(["train", "mlp", "--backend", backend, "--dataset", "moons", "--recipe", "best", *FAST, "--seed", "1",
                 "--out", str(out)]) == 0
    for name in ("config.json", "metrics.csv", "summary.json", "curves.png", "decision_boundary.png",
                 "decision_grid.npz", "checkpoint.pt"):
        assert (out / name).stat().st_size > 0, name
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["train"]["seed"] == 1 and cfg["nnlab_version"] and cfg["model"]["backend"] == backend
    rows = _rows(out / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert set(["epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds"]) <= set(rows[0])
    s = json.loads((out / "summary.json").read_text())
    for k in ("test_accuracy", "train_accuracy", "test_loss", "train_loss", "wall_time_s", "seed", "backend", "dataset"):
        assert k in s, k
    assert s["backend"] == backend and s["dataset"] == "moons" and s["seed"] == 1
    assert 0.0 <= s["test_accuracy"] <= 1.0 and s["test_accuracy"] > 0.9
    assert float(rows[-1]["test_accuracy"]) == pytest.approx(s["test_accuracy"])
    st = load_checkpoint(out / "checkpoint.pt")
    assert st["step"] == 3 * 160 and len(st["rows"]) == 3


def test_moons_accuracy_floor_short_training(tmp_path):
    """A few seconds of training reach >= 95% test accuracy on moons (both backends)."""
    for backend in ("numpy", "torch"):
        out = tmp_path / backend
        assert main(["train", "mlp", "--backend", backend, "--recipe", "best", "--epochs", "10", "--progress", "off",
                     "--out", str(out)]) == 0
        assert json.loads((out / "summary.json").read_text())["test_accuracy"] >= 0.95


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_activation_flag_builds_that_activation_and_is_recorded(tmp_path, backend):
    """``--activation tanh``: the model's hidden layers are tanh on both backends, config.json says so, and the run
    evaluates its checkpoint again with that activation (``nnlab evaluate`` rebuilds the model from the record)."""
    from nnlab.experiments.mlp import build_mlp_learner, toy_configs

    cfg = toy_configs("best", model={"backend": backend, "activation": "tanh"}, train={"progress": "off"})
    learner = build_mlp_learner(cfg["model"], 2, 2, cfg["optim"], cfg["schedule"], cfg["train"], total_steps=10)
    assert [type(layer).__name__ for layer in learner.model.layers] == ["Linear", "Tanh", "Linear"]
    out = tmp_path / "run"
    assert main(["train", "mlp", "--backend", backend, "--dataset", "moons", "--activation", "tanh", *FAST,
                 "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["model"]["activation"] == "tanh"
    acc = json.loads((out / "summary.json").read_text())["test_accuracy"]
    from nnlab.experiments.evaluate import evaluate_checkpoint, learner_from_checkpoint
    assert evaluate_checkpoint(out / "checkpoint.pt")["test_accuracy"] == pytest.approx(acc)
    rebuilt = learner_from_checkpoint(out / "checkpoint.pt")[0]
    assert "Tanh" in [type(layer).__name__ for layer in rebuilt.model.layers]


def test_dry_run_writes_nothing(tmp_path, capsys):
    out = tmp_path / "dry"
    assert main(["train", "mlp", "--backend", "torch", "--dry-run", "--out", str(out)]) == 0
    assert "dry run ok" in capsys.readouterr().out
    assert not out.exists()


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "nnlab", *args], capture_output=True, text=True, timeout=300, **kw)


def test_existing_run_needs_resume_and_incompatible_resume_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "mlp", "--epochs", "1", "--progress", "off", "--out", str(out)]) == 0
    before = (out / "metrics.csv").read_bytes()
    assert main(["train", "mlp", "--epochs", "1", "--progress", "off", "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "mlp", "--epochs", "2", "--hidden", "30", "--progress", "off", "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "different run" in err and "hidden" in err
    assert (out / "metrics.csv").read_bytes() == before  # nothing already written is lost


def test_nan_loss_stops_with_clear_message(tmp_path, capsys):
    out = tmp_path / "nan"
    code = main(["train", "mlp", "--backend", "torch", "--recipe", "best", "--lr", "1e30", "--momentum", "0", "--epochs", "2",
                 "--progress", "off", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "NaN" in err and "Traceback" not in err
    assert (out / "config.json").exists()


def test_second_process_on_same_out_is_refused(tmp_path, capsys):
    from nnlab.train.runfolder import RunDir

    out = tmp_path / "locked"
    with RunDir(out):
        assert main(["train", "mlp", "--epochs", "1", "--progress", "off", "--out", str(out)]) == 2
    assert "another nnlab process" in capsys.readouterr().err


def _weights(path):
    return load_checkpoint(path)["learner"]["model"]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_resume_after_kill_9_is_exact(tmp_path, backend):
    """Kill the training with SIGKILL at random moments, resume, and end with identical weights/metrics."""
    args = ["train", "mlp", "--backend", backend, "--epochs", "6", "--progress", "off", "--checkpoint-every", "37",
            "--seed", "3"]
    ref = tmp_path / "ref"
    assert main([*args, "--out", str(ref)]) == 0
    out = tmp_path / "killed"
    rng = __import__("random").Random(0)
    kills = 0
    for attempt in range(3):
        p = subprocess.Popen([sys.executable, "-m", "nnlab", *args, "--out", str(out), *(["--resume"] if attempt else [])],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # wait until it has made progress (a checkpoint exists), then kill at a random moment
        t_end = time.time() + 60
        while time.time() < t_end and p.poll() is None and not (out / "checkpoint.pt").exists():
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.4))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
    assert kills >= 1
    r = _cli(*args, "--out", str(out), "--resume")
    assert r.returncode == 0, r.stderr
    wa, wb = _weights(ref / "checkpoint.pt"), _weights(out / "checkpoint.pt")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    ra, rb = _rows(ref / "metrics.csv"), _rows(out / "metrics.csv")
    assert len(ra) == len(rb) == 6
    for x, y in zip(ra, rb):
        x.pop("seconds"), y.pop("seconds")
        assert x == y
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


def test_cli_import_is_lazy():
    code = "import sys, nnlab.cli; sys.exit(1 if 'torch' in sys.modules or 'matplotlib' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_final_test_evaluation_is_not_repeated_and_eval_every_applies_to_epochs(tmp_path, monkeypatch):
    """The last period's test evaluation is the summary's (no second pass over the test set), and ``--eval-every``
    thins the evaluations of an epoch-mode run (the CNN ``best`` recipe evaluates once, at the end of its 14 epochs)."""
    from nnlab.train import learners

    calls = []
    real = learners.NumpyLearner.evaluate
    monkeypatch.setattr(learners.NumpyLearner, "evaluate", lambda self, ev, bs: calls.append(len(ev)) or real(self, ev, bs))
    out = tmp_path / "run"
    # moons: 800 training points at batch 5 = 160 steps per epoch; 3 epochs = 480 steps; evaluate every 200 steps
    assert main(["train", "mlp", "--backend", "numpy", "--dataset", "moons", *FAST, "--eval-every", "200",
                 "--out", str(out)]) == 0
    rows = _rows(out / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [200, 400, 480]  # every 200 steps, and the last step
    assert len(calls) == len(rows)  # one test evaluation per row (no validation split here), none after
    s = json.loads((out / "summary.json").read_text())
    assert s["test_accuracy"] == pytest.approx(float(rows[-1]["test_accuracy"]))


def test_fit_writes_no_figure_and_its_caller_draws_them(tmp_path):
    """``fit`` writes metrics, checkpoints and data only; ``fit_in_run_folder`` draws the figures from those files."""
    import inspect

    from nnlab.experiments.common import config_record, fit_in_run_folder
    from nnlab.experiments.mlp import setup_toy, toy_configs
    from nnlab.train.loop import fit
    from nnlab.train.runfolder import RunDir

    assert "figures" not in inspect.signature(fit).parameters
    cfg = toy_configs("best", model={"backend": "numpy"}, train={"epochs": 1, "progress": "off"})
    rec = config_record("mlp", "mlp-numpy", "best", **cfg)
    learner, data, _ = setup_toy(cfg["model"], cfg["data"], cfg["optim"], cfg["schedule"], cfg["train"])
    with RunDir(tmp_path / "bare") as run:
        fit(learner, data, cfg["train"], run=run, config_record=rec)
    bare = {p.name for p in (tmp_path / "bare").iterdir()}
    assert {"config.json", "metrics.csv", "checkpoint.pt", "decision_grid.npz", "summary.json"} <= bare
    assert not [n for n in bare if n.endswith(".png")], bare
    learner, data, _ = setup_toy(cfg["model"], cfg["data"], cfg["optim"], cfg["schedule"], cfg["train"])
    fit_in_run_folder(learner, data, cfg["train"], rec, out=tmp_path / "run", resume=False, dry_run=False, dist=None,
                      desc="t")
    assert {"curves.png", "decision_boundary.png"} <= {p.name for p in (tmp_path / "run").iterdir()}
    assert not (tmp_path / "run" / "confusion_matrix.png").exists()  # two classes: no confusion matrix figure


def test_run_or_reuse_redraws_missing_figures_of_a_finished_run_without_training(tmp_path, monkeypatch):
    """A finished run (summary.json) killed before its figures, or whose figures were deleted, gets them back
    from its saved files when reused; the training function is not called, and a figure present is not redrawn."""
    import numpy as np

    from nnlab.experiments.common import run_or_reuse
    from nnlab.report import plots
    from nnlab.train.runfolder import write_json, write_metrics_csv

    rd = tmp_path / "run"
    rd.mkdir()
    write_metrics_csv(rd / "metrics.csv", [
        {"epoch": e, "step": 10 * e, "train_loss": 1.0 / e, "train_accuracy": 0.5 + 0.1 * e, "test_loss": 1.2 / e,
         "test_accuracy": 0.45 + 0.1 * e, "lr": 0.01, "seconds": 1.5} for e in (1, 2, 3)])
    g = np.linspace(-2, 2, 20)
    xx, yy = np.meshgrid(g, g)
    X = np.random.default_rng(0).normal(size=(30, 2))
    np.savez(rd / "decision_grid.npz", xx=xx, yy=yy, proba=1 / (1 + np.exp(-(xx + yy))), X=X, y=(X.sum(1) > 0).astype(int))
    summary = {"model": "m", "test_accuracy": 0.75, "test_loss": 0.4, "steps": 30,
               "per_class_accuracy": {"cat": 0.8, "dog": 0.7, "frog": 0.75},
               "confusion_matrix": [[8, 1, 1], [2, 7, 1], [1, 1, 8]]}
    write_json(rd / "summary.json", summary)
    assert set(plots.draw_run_figures(rd, summary)) == {"curves", "confusion", "boundary"}
    (rd / "curves.png").unlink()
    (rd / "confusion_matrix.png").unlink()
    boundary = (rd / "decision_boundary.png").read_bytes()
    drawn = []
    for name in ("plot_curves", "plot_confusion_matrix", "plot_decision_boundary"):
        real = getattr(plots, name)
        monkeypatch.setattr(plots, name, lambda *a, _n=name, _r=real, **k: drawn.append(_n) or _r(*a, **k))

    def train(resume):
        raise AssertionError("a finished run was retrained")

    assert run_or_reuse(rd, train) == summary
    assert sorted(drawn) == ["plot_confusion_matrix", "plot_curves"]  # only the missing ones
    for name in ("curves.png", "confusion_matrix.png"):
        assert (rd / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert (rd / "decision_boundary.png").read_bytes() == boundary
    drawn.clear()
    assert run_or_reuse(rd, train) == summary and drawn == []  # all there: nothing drawn
