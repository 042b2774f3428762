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


def test_dry_run_writes_nothing(tmp_path, capsys):
    out = tmp_path / "dry"
    assert main(["train", "mlp", "--backend", "torch", "--dry-run", "--out", str(out)]) == 0
    assert "dry run ok" in capsys.readouterr().out
    assert not out.exists()


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "nnlab", *args], capture_output=True, text=True, timeout=300, **kw)


@pytest.mark.parametrize("argv, needle", [
    (["--backend", "jax"], "valid: numpy, torch"),
    (["--dataset", "mnist"], "valid: moons, circles, cifar10"),
    (["--optimizer", "lbfgs"], "valid: sgd, adam, adamw, rmsprop"),
    (["--lr", "0"], "lr must be"),
    (["--lr", "-1"], "lr must be"),
    (["--lr", "abc"], "--lr must be a number"),
    (["--batch-size", "0"], "batch_size must be"),
    (["--epochs", "0"], "epochs must be"),
    (["--epochs", "2.5"], "--epochs must be an integer"),
    (["--hidden", "20,x"], "hidden"),
    (["--hidden", "0"], "hidden"),
    (["--hidden", "-3"], "hidden"),
    (["--recipe", "fastest"], "unknown recipe 'fastest'; valid: seed, best"),
    (["--device", "tpu"], "valid: auto, cpu, cuda, mps"),
])
def test_bad_input_clear_message(tmp_path, capsys, argv, needle):
    code = main(["train", "mlp", "--dry-run", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err and "Traceback" not in err


def test_bad_input_subprocess_exit_2_no_traceback():
    r = _cli("train", "mlp", "--backend", "jax", "--dry-run")
    assert r.returncode == 2 and "valid: numpy, torch" in r.stderr and "Traceback" not in r.stderr
    r = _cli("train", "mlp", "--no-such-flag")
    assert r.returncode == 2 and "Traceback" not in r.stderr


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
    thins the evaluations of an epoch-mode run (the CNN ``best`` recipe evaluates twice in 13 epochs)."""
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
