"""The recipe registry (``nnlab.experiments.recipes``) and what the ``train`` commands make of it: one table, one
meaning of ``default``, ``--recipe`` honoured by every ``train`` command (toy data included), ``--print-config``
showing the resolved config without training. (``--help`` saying where a value comes from: train/test_flags.py.)"""

from __future__ import annotations

import json

import pytest

from nnlab.cli import main
from nnlab.errors import ConfigError
from nnlab.experiments import recipes
from nnlab.train.config import OptimConfig, ScheduleConfig, TrainConfig
from nnlab.train.flags import build

TASKS = ("mlp-toy", "mlp-cifar10", "cnn", "rnn")
CNN_BEST = recipes.RECIPES["cnn"]["best"]  # its values are tuned over time: the tests read them from the table


# ------------------------------------------------------------------------------------------ registry
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", ["seed", "best", "default"])
def test_every_task_and_name_resolves_to_valid_configs(task, name):
    r = recipes.resolve(task, name)
    assert set(r) <= {"model", "data", "optim", "schedule", "train", "rnn", "curriculum"}, r
    # every section's values are fields of its dataclass, and valid ones
    build(OptimConfig, r.get("optim"))
    build(ScheduleConfig, r.get("schedule"))
    build(TrainConfig, r.get("train"))


def test_the_table_holds_every_task_and_both_names():
    assert set(recipes.RECIPES) == set(TASKS) == set(recipes.TASKS)
    assert all(set(recipes.RECIPES[t]) == set(recipes.NAMES) == {"seed", "best"} for t in TASKS)


@pytest.mark.parametrize("task", TASKS)
def test_default_means_seed_for_every_task(task):
    assert recipes.DEFAULT == "seed"
    assert recipes.resolve(task, "default") == recipes.resolve(task, "seed")
    assert recipes.resolve(task) == recipes.resolve(task, "seed")


def test_unknown_name_or_task_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown recipe 'fastest'; valid: seed, best \(default: seed\)"):
        recipes.resolve("cnn", "fastest")
    with pytest.raises(ConfigError, match="unknown task 'gan'; valid: mlp-toy, mlp-cifar10, cnn, rnn"):
        recipes.resolve("gan", "seed")


def test_resolve_returns_a_copy():
    r = recipes.resolve("cnn", "best")
    r["optim"]["lr"] = 99.0
    assert recipes.resolve("cnn", "best")["optim"]["lr"] == CNN_BEST["optim"]["lr"] != 99.0


def test_part1_layers_per_backend_over_the_common_base():
    """Part I seed: the report's optimizers, NumPy plain SGD and PyTorch Adam, constant step; best: the base as is."""
    np_seed = recipes.resolve("mlp-toy", "seed", layer="numpy")
    torch_seed = recipes.resolve("mlp-toy", "seed", layer="torch")
    assert np_seed["optim"] == {"optimizer": "sgd", "lr": 0.05, "momentum": 0.0}
    assert torch_seed["optim"] == {"optimizer": "adam", "lr": 1e-3, "momentum": 0.0}
    assert np_seed["schedule"] == torch_seed["schedule"] == {"schedule": "constant"}
    assert np_seed["train"] == {"epochs": 60, "batch_size": 5}
    best = recipes.resolve("mlp-toy", "best", layer="numpy")
    assert best == recipes.resolve("mlp-toy", "best", layer="torch") == recipes.resolve("mlp-toy", "best")
    assert best == {**recipes.TOY_BASE, "train": {"epochs": 30, "batch_size": 5}}  # the epochs chosen on validation


def test_rnn_cell_layer():
    assert recipes.resolve("rnn", "best", layer="lstm")["rnn"] == {"init": "orthogonal", "hidden_dim": 64, "forget_bias": 3.0}
    assert recipes.resolve("rnn", "best", layer="vanilla")["rnn"] == {"init": "orthogonal", "hidden_dim": 128}
    assert "cells" not in recipes.resolve("rnn", "best")


def test_record_keeps_the_shape_reproduce_json_has_always_had():
    """A reproduction started before the registry existed must still be continued: same JSON, same shape."""
    rec = recipes.record()
    assert set(rec) == {"part1", "cifar", "rnn"} and set(rec["cifar"]) == {"mlp", "cnn"}
    assert rec["part1"]["best"] == {"train": {"epochs": 30}} and rec["part1"]["seed"]["torch"]["optim"]["optimizer"] == "adam"
    assert rec["cifar"]["mlp"]["seed"]["model"]["hidden"] == [256]  # tuples as JSON lists
    assert rec["rnn"]["best"]["cells"]["lstm"]["rnn"]["forget_bias"] == 3.0
    assert json.loads(json.dumps(rec)) == rec


def test_default_text_for_help():
    best_lr = CNN_BEST["optim"]["lr"]
    assert recipes.default_text({"cnn": "cnn"}, "optim", "lr", 0.1) == f"from --recipe: seed 0.0001, best {best_lr}"
    assert recipes.default_text({"cnn": "cnn"}, "train", "seed", 0) is None  # no recipe sets it: the dataclass default
    assert recipes.default_text({"rnn": "rnn"}, "rnn", "hidden_dim", 128) == "from --recipe: seed 128, best 128 (lstm: 64)"
    text = recipes.default_text({"moons/circles": "mlp-toy", "cifar10": "mlp-cifar10"}, "model", "hidden", (20,))
    assert text == "from --recipe: cifar10: seed 256, best 1024,1024; otherwise 20"


# --------------------------------------------------------------------------------- --print-config
def _print_config(capsys, *argv) -> dict:
    assert main(["train", *argv, "--print-config"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("backend, optimizer, momentum", [("numpy", "sgd", 0.0), ("torch", "adam", 0.0)])
def test_recipe_seed_on_moons_is_the_part1_seed_recipe(capsys, tmp_path, backend, optimizer, momentum):
    """``--recipe`` on toy data is honoured (it used to be checked, then ignored)."""
    out = tmp_path / "never"
    cfg = _print_config(capsys, "mlp", "--backend", backend, "--recipe", "seed", "--out", str(out))
    assert (cfg["optim"]["optimizer"], cfg["optim"]["momentum"], cfg["schedule"]["schedule"]) == (optimizer, momentum, "constant")
    assert cfg["recipe"] == "seed" and cfg["model"]["backend"] == backend and cfg["data"]["dataset"] == "moons"
    assert not out.exists()  # nothing trained, nothing written
    best = _print_config(capsys, "mlp", "--backend", backend, "--recipe", "best")
    assert (best["optim"]["optimizer"], best["optim"]["momentum"], best["schedule"]["schedule"]) == ("sgd", 0.9, "cosine")
    default = _print_config(capsys, "mlp", "--backend", backend)
    assert {k: v for k, v in default.items() if k != "recipe"} == {k: v for k, v in cfg.items() if k != "recipe"}


def test_flags_win_over_the_recipe(capsys):
    cfg = _print_config(capsys, "mlp", "--dataset", "circles", "--recipe", "seed", "--backend", "torch", "--lr", "0.02",
                        "--epochs", "3")
    assert cfg["optim"] == {**cfg["optim"], "optimizer": "adam", "lr": 0.02} and cfg["train"]["epochs"] == 3
    assert cfg["data"]["dataset"] == "circles"


def test_print_config_of_cifar_cnn_and_rnn_needs_no_data(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("NNLAB_DATA_DIR", str(tmp_path / "no-such-folder"))
    cnn = _print_config(capsys, "cnn", "--recipe", "best")
    assert (cnn["optim"]["optimizer"], cnn["optim"]["lr"], cnn["train"]["batch_size"]) == (
        "sgd", CNN_BEST["optim"]["lr"], CNN_BEST["train"]["batch_size"])
    assert cnn["kind"] == "cnn" and cnn["model"]["layers"][0] == 64
    seed = _print_config(capsys, "cnn")
    assert (seed["optim"]["optimizer"], seed["optim"]["lr"], seed["train"]["steps"], seed["recipe"]) == ("adam", 1e-4, 5000, "default")
    mlp = _print_config(capsys, "mlp", "--dataset", "cifar10", "--recipe", "best", "--hidden", "64")
    assert mlp["model"]["hidden"] == [64] and mlp["schedule"]["schedule"] == "onecycle"
    lstm = _print_config(capsys, "rnn", "--input-length", "7", "--cell", "lstm", "--recipe", "best")
    assert (lstm["model"]["hidden_dim"], lstm["model"]["forget_bias"], lstm["data"]["input_length"]) == (64, 3.0, 7)
    assert _print_config(capsys, "rnn", "--input-length", "7")["data"]["input_mode"] == "scalar"  # default = seed
    assert not (tmp_path / "runs").exists()


def test_print_config_refuses_a_bad_recipe(capsys):
    assert main(["train", "mlp", "--recipe", "fastest", "--print-config"]) == 2
    assert "unknown recipe 'fastest'; valid: seed, best" in capsys.readouterr().err


def test_recipe_seed_on_moons_trains_the_seed_recipe(tmp_path):
    """The run folder's config says what ran: the seed recipe's constant step and, for PyTorch, Adam."""
    out = tmp_path / "run"
    assert main(["train", "mlp", "--backend", "torch", "--recipe", "seed", "--epochs", "1", "--n-samples", "100",
                 "--hidden", "4", "--progress", "off", "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["optim"]["optimizer"], cfg["schedule"]["schedule"], cfg["recipe"]) == ("adam", "constant", "seed")
