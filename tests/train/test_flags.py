"""nnlab.train.flags: argparse flags generated from the config dataclasses (each default written once, in the
dataclass), the precedence dataclass < recipe layers < explicit flags, and bad values as one clear ConfigError;
through the CLI, exit status 2 without a traceback, and ``--help`` showing the recipes' values."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from nnlab.cli import main
from nnlab.errors import ConfigError
from nnlab.experiments import recipes
from nnlab.train.config import OptimConfig, ScheduleConfig, TrainConfig
from nnlab.train.flags import add_dataclass_flags, build

CNN_BEST = recipes.RECIPES["cnn"]["best"]  # its values are tuned over time: the tests read them from the table


@dataclass(frozen=True)
class Demo:
    """Every kind of field the flags handle."""
    hidden_sizes: tuple[int, ...] = field(default=(20, 10), metadata={"help": "widths"})
    lr: float = field(default=0.1, metadata={"help": "step size"})
    n_steps: int = field(default=5, metadata={"help": "how many"})
    name: str = field(default="a", metadata={"help": "a name"})
    use_bias: bool = field(default=True, metadata={"help": "bias or not"})
    limit: int | None = field(default=None, metadata={"help": "optional cap"})

    def __post_init__(self):
        if self.lr <= 0:
            raise ConfigError(f"invalid demo config: lr must be > 0, got {self.lr!r}")


def _parser(**kw) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="demo")
    add_dataclass_flags(p, Demo, **kw)
    return p


def test_one_flag_per_field_dashed_with_prefixed_dest_and_nothing_set_by_default():
    p = _parser(prefix="d_")
    flags = {a.option_strings[0]: a for a in p._actions if a.option_strings and a.dest != "help"}
    assert set(flags) == {"--hidden-sizes", "--lr", "--n-steps", "--name", "--use-bias", "--limit"}
    assert {a.dest for a in flags.values()} == {"d_" + f.name for f in dataclasses.fields(Demo)}
    assert vars(p.parse_args([])) == {}  # "not given" is absent, so a recipe's value is not overwritten by a default
    assert "--no-use-bias" in flags["--use-bias"].option_strings  # booleans: --x / --no-x
    args = p.parse_args(["--lr", "0.5", "--no-use-bias"])
    assert vars(args) == {"d_lr": "0.5", "d_use_bias": False}  # values stay text until build() converts them


def test_only_and_exclude():
    assert {a.dest for a in _parser(only=("lr", "name"))._actions} == {"help", "lr", "name"}
    assert "name" not in {a.dest for a in _parser(exclude=("name",))._actions}


def test_help_shows_the_dataclass_default_and_metadata():
    text = " ".join(_parser().format_help().split())
    assert "--hidden-sizes HIDDEN_SIZES widths (default: 20,10)" in text  # tuples as the flag would take them
    assert "--lr LR step size (default: 0.1)" in text
    assert "--use-bias, --no-use-bias bias or not (default: True)" in text
    assert "--limit LIMIT optional cap (default: None)" in text


def test_build_layers_dataclass_then_recipe_layers_then_flags():
    assert build(Demo) == Demo()
    assert build(Demo, {"lr": 0.2, "n_steps": 7}, {"n_steps": 8}) == Demo(lr=0.2, n_steps=8)  # later layers win
    args = _parser().parse_args(["--n-steps", "9", "--hidden-sizes", "64, 32", "--no-use-bias", "--limit", "none"])
    got = build(Demo, {"lr": 0.2, "n_steps": 7, "limit": 3}, args=args)
    assert got == Demo(hidden_sizes=(64, 32), lr=0.2, n_steps=9, use_bias=False, limit=None)  # flags win over layers
    assert build(Demo, args=_parser().parse_args(["--limit", "4", "--lr", "1e-3"])) == Demo(limit=4, lr=1e-3)
    # a prefix reads only its own dests
    ns = argparse.Namespace(d_lr="0.3", lr="999")
    assert build(Demo, prefix="d_", args=ns) == Demo(lr=0.3)


def test_build_with_the_real_configs():
    p = argparse.ArgumentParser()
    add_dataclass_flags(p, OptimConfig, prefix="optim_")
    add_dataclass_flags(p, TrainConfig, prefix="train_")
    args = p.parse_args(["--lr", "0.01", "--nesterov", "--epochs", "4"])
    assert build(OptimConfig, {"optimizer": "sgd", "momentum": 0.9}, prefix="optim_", args=args) == OptimConfig(
        optimizer="sgd", lr=0.01, momentum=0.9, nesterov=True)
    assert build(TrainConfig, prefix="train_", args=args).epochs == 4


@pytest.mark.parametrize("argv, message", [
    (["--n-steps", "2.5"], "--n-steps must be an integer, got '2.5'"),
    (["--n-steps", "many"], "--n-steps must be an integer, got 'many'"),
    (["--lr", "abc"], "--lr must be a number, got 'abc'"),
    (["--limit", "x"], "--limit must be an integer, got 'x'"),
    (["--hidden-sizes", "20,x"], "hidden_sizes must be comma-separated positive integers, got '20,x' ('x' is not an integer)"),
    (["--hidden-sizes", "0"], "hidden_sizes must be comma-separated positive integers, got '0' (0 is not > 0)"),
    (["--lr", "-1"], "invalid demo config: lr must be > 0, got -1.0"),  # the dataclass's own check
])
def test_bad_values_raise_one_config_error(argv, message):
    with pytest.raises(ConfigError) as e:
        build(Demo, args=_parser().parse_args(argv))
    assert str(e.value) == message


def test_unknown_layer_key_lists_the_fields():
    with pytest.raises(ConfigError, match=r"unknown ScheduleConfig field 'lr'; valid: decay_every, final_lr_fraction, "
                                          r"gamma, schedule, warmup"):
        build(ScheduleConfig, {"schedule": "cosine"}, {"lr": 0.1})


# ------------------------------------------------------------------------------------ through the CLI
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
    (["--schedule", "linear"], "unknown schedule 'linear'; valid: constant, exponential, step, cosine, onecycle"),
])
def test_bad_input_clear_message(tmp_path, capsys, argv, needle):
    code = main(["train", "mlp", "--dry-run", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err and "Traceback" not in err


def test_help_shows_where_values_come_from():
    r = subprocess.run([sys.executable, "-m", "nnlab", "train", "cnn", "--help"], capture_output=True, text=True, timeout=300)
    text = " ".join(r.stdout.split())  # argparse wraps lines
    assert r.returncode == 0
    assert f"--lr LR peak learning rate (per step) (default: from --recipe: seed 0.0001, best {CNN_BEST['optim']['lr']})" in text
    assert "(default: from --recipe: seed adam, best sgd)" in text
    assert "default: 0.1)" not in text and "default: sgd)" not in text  # the dataclass defaults do not run
    assert "--print-config" in text and "nnlab.experiments.recipes" in text and "`default` means `seed`" in text
    assert "--seed SEED" in text and "(default: 0)" in text  # a field no recipe sets keeps its dataclass default
