"""CIFAR-10 training through the shared loop on small archives the tests build (and on the real set when
NNLAB_DATA_DIR points at it): run-folder contract, per-class table, evaluate, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fakes import MARKER, make_fake_cifar
from nnlab.cli import main


@pytest.fixture
def small_cifar(tmp_path, monkeypatch):
    monkeypatch.setenv("NNLAB_CACHE_DIR", str(tmp_path / "cache"))
    return make_fake_cifar(tmp_path, n_train_per_batch=40, n_test=40)


def _train(model, data_dir, out, *extra):
    return main(["train", model, "--data-dir", str(data_dir), "--allow-partial", "--val-size", "20",
                 "--batch-size", "16", "--progress", "off", "--out", str(out), *extra])


def test_cnn_run_folder_and_evaluate(small_cifar, tmp_path, capsys):
    out = tmp_path / "cnn"
    assert _train("cnn", small_cifar, out, "--steps", "6", "--eval-every", "3") == 0
    for name in ("config.json", "metrics.csv", "summary.json", "curves.png", "confusion_matrix.png", "checkpoint.pt"):
        assert (out / name).stat().st_size > 0, name
    s = json.loads((out / "summary.json").read_text())
    assert set(s["per_class_accuracy"]) == {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}
    assert sum(map(sum, s["confusion_matrix"])) == 40 and s["data_n_train"] == 180 and s["data_n_val"] == 20
    assert s["steps"] == 6 and len((out / "metrics.csv").read_text().splitlines()) == 3
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data-dir", str(small_cifar)]) == 0
    text = capsys.readouterr().out
    assert "Accuracy for class: airplane" in text
    assert f"{100 * s['test_accuracy']:.2f} %" in text


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_mlp_on_cifar_both_backends(small_cifar, tmp_path, backend):
    out = tmp_path / backend
    assert _train("mlp", small_cifar, out, "--dataset", "cifar10", "--backend", backend, "--hidden", "32",
                  "--epochs", "2", "--recipe", "seed") == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["backend"] == backend and len(s["per_class_accuracy"]) == 10
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["hidden"] == [32] and cfg["recipe"] == "seed"


def test_cnn_augmentation_and_best_recipe_dry_run(small_cifar, capsys):
    assert main(["train", "cnn", "--recipe", "best", "--data-dir", str(small_cifar), "--allow-partial", "--val-size", "20",
                 "--batch-size", "8", "--dry-run"]) == 0
    assert "dry run ok" in capsys.readouterr().out


def test_missing_data_names_folder_and_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NNLAB_DATA_DIR", raising=False)
    empty = tmp_path / "nothing"
    empty.mkdir()
    assert main(["train", "cnn", "--data-dir", str(empty), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "nnlab data download cifar10" in err and "Traceback" not in err


def test_hostile_pickle_refused_via_cli_nothing_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("NNLAB_CACHE_DIR", str(tmp_path / "cache"))
    d = make_fake_cifar(tmp_path, corrupt="unsafe_pickle")
    r = subprocess.run([sys.executable, "-m", "nnlab", "train", "cnn", "--data-dir", str(d), "--allow-partial", "--dry-run"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "refused" in r.stderr.lower() or "unsafe" in r.stderr.lower() or "not allowed" in r.stderr.lower()
    assert not (d / MARKER).exists()


def test_full_size_is_required_by_default(small_cifar, capsys):
    assert main(["train", "cnn", "--data-dir", str(small_cifar), "--dry-run"]) == 2
    assert "50000" in capsys.readouterr().err.replace(",", "")


def test_unknown_recipe_clear(small_cifar, capsys):
    assert main(["train", "cnn", "--recipe", "fastest", "--data-dir", str(small_cifar), "--dry-run"]) == 2
    assert "valid: seed, best" in capsys.readouterr().err


def test_evaluate_refuses_hostile_checkpoint(tmp_path, capsys):
    import pickle

    class Evil:
        def __reduce__(self):
            return (__import__("os").system, (f"touch {tmp_path / 'PWNED'}",))

    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(pickle.dumps({"format": "nnlab-checkpoint-v1", "x": Evil()}))
    assert main(["evaluate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nnlab: error: refused to load {str(bad)!r}: it is not a plain-tensor checkpoint"), err
    assert "nothing in it was executed" in err and "Traceback" not in err, err
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.cifar
def test_real_cifar_mlp_learns(cifar_data_dir, tmp_path, monkeypatch):
    """A short MLP training on the real set beats chance by far (floor 30% after one epoch on 10k images)."""
    monkeypatch.setenv("NNLAB_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "real"
    assert main(["train", "mlp", "--dataset", "cifar10", "--data-dir", str(cifar_data_dir), "--recipe", "seed",
                 "--epochs", "1", "--train-subset", "10000", "--progress", "off", "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["data_n_test"] == 10000 and s["test_accuracy"] >= 0.30
