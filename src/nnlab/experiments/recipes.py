"""Every recipe of every task, in one table: what runs when you type ``nnlab train ... --recipe NAME``.

A recipe is a set of plain overrides of the config dataclasses, one dict per config section (``model``, ``data``,
``optim``, ``schedule``, ``train``; the RNN also ``rnn`` and ``curriculum``), never code. Two names per task:

- ``seed``: the report's settings (where the report names none, ours, and the comment says which);
- ``best``: ours, for the same architecture, chosen on a validation split (never on the test set).

**``default`` means ``seed`` for every task** (:data:`DEFAULT`): a ``train`` command without ``--recipe`` runs the
report's settings; ``--recipe best`` runs ours. Commands that run a recipe of their own say so in their ``--help``
(``nnlab compare part1``, ``nnlab sweep rnn`` and ``nnlab analyze rnn-gradients`` run ``best``).

One resolution order for the CLI, ``nnlab reproduce`` and the tests, the later layer winning:

    dataclass defaults < the recipe < its layer for a backend (Part I) or cell (RNN) < the caller's overrides < flags

:func:`resolve` gives the recipe's part of it (up to the layer); ``nnlab train ... --print-config`` prints the whole
resolved config. ``nnlab reproduce`` stores :func:`record` in ``reproduce.json`` and refuses to continue a folder
whose recipes changed.
"""

from __future__ import annotations

import copy
import json

from ..errors import ConfigError

#: task -> what it trains (the ``nnlab train`` command that runs it)
TASKS = {
    "mlp-toy": "Part I, Task 1.2: the MLP on moons/circles (nnlab train mlp --dataset moons|circles)",
    "mlp-cifar10": "Part I, Task 1.3: the MLP on CIFAR-10 (nnlab train mlp --dataset cifar10)",
    "cnn": "Part II: the report's VGG on CIFAR-10 (nnlab train cnn)",
    "rnn": "Part III: the vanilla RNN or LSTM on palindromes (nnlab train rnn)",
}
NAMES = ("seed", "best")
#: what ``--recipe default`` (the flag's default) means, for every task
DEFAULT = "seed"

#: Part I (moons/circles): the values both recipes start from (chosen on validation splits, benchmarks/RESULTS.md).
#: Its recipes are layers over it: the common sections, then a layer per backend (``numpy``, ``torch``).
TOY_BASE = {
    "optim": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9},
    "schedule": {"schedule": "cosine"},
    "train": {"epochs": 60, "batch_size": 5},
}

#: optimizer steps in one epoch of the 45,000 CIFAR-10 training images at batch 128 (the last batch is partial)
_STEPS_PER_EPOCH_128 = -(-45_000 // 128)

RECIPES = {
    # The report (Part I, Tasks 1.1-1.3) gives the data (1000 points, 80/20 split, noise 0.2 and 0.05), batch 5 and the
    # optimizers: the PyTorch MLP of Task 1.2 trained with Adam ("the optimizer Adam used in task 2"), the NumPy MLP is
    # its assignment-1 engine, plain SGD (its eq. (2), no momentum). It gives no step size for either (its 3e-5 is the
    # CIFAR-10 MLP's, its 1e-4 the CNN's), no epochs and no schedule. So "seed" = those optimizers with a constant step
    # size; ours: Adam at PyTorch's default 1e-3, SGD at TOY_BASE's 0.05, TOY_BASE's 60 epochs. "best" = TOY_BASE (SGD
    # momentum 0.9, cosine) for both backends, with 30 epochs: chosen on validation folds of the training points over a
    # grid of 10 settings (benchmarks/tune_part1.py; benchmarks/RESULTS.md, "Part I: the best recipe chosen on
    # validation"). The backend layers set ``optim`` only: a budget's ``train`` values (nnlab reproduce) lie over them
    # and must still win.
    "mlp-toy": {
        "seed": {"schedule": {"schedule": "constant"},
                 "numpy": {"optim": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.0}},
                 "torch": {"optim": {"optimizer": "adam", "lr": 1e-3, "momentum": 0.0}}},
        "best": {"train": {"epochs": 30}},
    },
    "mlp-cifar10": {
        # The report: one hidden layer of 256, plain SGD, no augmentation. Its lr (3e-5) cannot give its own
        # 43%, and it names no schedule; we use lr 0.01 with momentum and a cosine decay (constant lr
        # overfits after ~6 epochs at ~48% on validation; cosine reaches ~54%: benchmarks/RESULTS.md).
        "seed": {"model": {"hidden": (256,)},
                 "optim": {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9},
                 "schedule": {"schedule": "cosine"},
                 "train": {"epochs": 20, "batch_size": 64}, "data": {"augment": False}},
        # Chosen on the validation split (benchmarks/RESULTS.md, "CIFAR-10 MLP recipes"): flips only (random
        # crops slow an MLP down: it has no translation invariance; crop+flip was at 45% val after 15 of 40
        # epochs), SGD + Nesterov with a one-cycle schedule, weight decay and label smoothing. Against AdamW
        # (1024-512-256, wd 0.05, cosine): val 59.7% vs 59.4% after 30 epochs.
        "best": {"model": {"hidden": (1024, 1024)},
                 "optim": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4},
                 "schedule": {"schedule": "onecycle", "warmup": 0.1},
                 "train": {"epochs": 30, "batch_size": 128, "label_smoothing": 0.1},
                 "data": {"augment": True, "crop_pad": 0}},
    },
    "cnn": {
        # The report's settings (Adam 1e-4, batch 32, no augmentation, 5,000 steps), computed in bf16 autocast
        # with channels_last where the device has native bf16 (else fp32): same accuracy within the seed-to-seed
        # spread, ~1.8x (batch 32) to ~2.1x (batch 128) the images/s of fp32 on a CPU with AVX512-BF16
        # (benchmarks/RESULTS.md, "Part II", throughput).
        "seed": {"optim": {"optimizer": "adam", "lr": 1e-4}, "schedule": {"schedule": "constant"},
                 "train": {"steps": 5000, "eval_every": 1000, "batch_size": 32, "amp": True, "channels_last": True},
                 "data": {"augment": False}},
        # The same architecture trained the way short CIFAR-10 schedules are trained (airbench, hlb-CIFAR10, Page's
        # ResNet posts): Nesterov SGD, one-cycle (linear warm-up over 20% of the steps, then linear decay to 0),
        # weight decay off BatchNorm and biases, label smoothing 0.2, per-image flips and 2-pixel translations, flip
        # test-time augmentation. Each choice made on the validation split (benchmarks/RESULTS.md, "Part II"): batch
        # 128, peak lr 0.10 (val 90.92% on seed 0 at 13 epochs) over batch 256, lr 0.15, 14 epochs (val 90.82%,
        # ~31.5 min); test-time views on the validation split of those runs' checkpoints (benchmarks/tune_tta.py):
        # flip + 1-pixel shifts; then 14 epochs over 13, chosen on seed 0's validation figure (+0.10 points), seeds 1
        # and 2 run after the choice (val 91.23% against 90.99%, 3 seeds each; 28.8-31.0 min a run on 2 CPU cores in
        # bf16 over 6 runs, against ~28.4). One evaluation, at the end (4,928 = 14 epochs of 352 steps: an
        # evaluation of 15,000 images with 6 views takes ~95 s on 2 cores), and a checkpoint half-way so that a crash
        # loses at most 7 epochs.
        "best": {"optim": {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
                           "no_decay_1d": True},
                 "schedule": {"schedule": "onecycle", "warmup": 0.2},
                 "train": {"epochs": 14, "eval_every": 14 * _STEPS_PER_EPOCH_128,
                           "checkpoint_every": 7 * _STEPS_PER_EPOCH_128, "batch_size": 128, "label_smoothing": 0.2,
                           "amp": True, "channels_last": True, "tta_flip": True, "tta_translate": 1},
                 "data": {"augment": True, "crop_pad": 2}},
    },
    # Each RNN recipe: one dict per config section, plus ``cells``: per-cell layers over them (applied before any
    # override). How ``best`` was chosen (on validation data only; commands and numbers): docs/RNN_TUNING.md.
    "rnn": {
        # The report's settings: digits fed as one scalar, Xavier init, RMSprop 1e-3, lr x0.98 every 100 steps, clipping
        # at 10. Early stopping (same target as ``best``) only saves time: a run stops once its validation set is solved.
        "seed": {
            "rnn": {"init": "xavier", "hidden_dim": 128},
            "data": {"input_mode": "scalar"},
            "optim": {"optimizer": "rmsprop", "lr": 1e-3},
            "schedule": {"schedule": "exponential", "gamma": 0.98, "decay_every": 100},
            "train": {"steps": 3000, "eval_every": 100, "batch_size": 128, "clip_grad_norm": 10.0,
                      "early_stop_accuracy": 0.995, "early_stop_patience": 2},
            "curriculum": {},
            "cells": {},
        },
        # What makes long inputs learnable: one-hot digits (the scalar digit 0..9 is a poor code for a class), an
        # orthogonal recurrent matrix (norm-preserving at init), clipping at 1. No curriculum: on this task it only
        # delayed solving (the validation set is at the full T). The LSTM gets forget-gate bias 3 (f ~ 0.95 at init;
        # with 1, T=100 never left chance level) and 64 units (more steps to solve than 128 at T = 30, ~550 against
        # ~350, but each step ~2.5x cheaper). Evaluation every 50 steps; a run stops once validation accuracy >= 99.5%
        # twice in a row (100 steps).
        "best": {
            "rnn": {"init": "orthogonal", "hidden_dim": 128},
            "data": {"input_mode": "onehot"},
            "optim": {"optimizer": "rmsprop", "lr": 1e-3},
            "schedule": {"schedule": "cosine", "warmup": 0.02},
            "train": {"steps": 4000, "eval_every": 50, "batch_size": 128, "clip_grad_norm": 1.0,
                      "early_stop_accuracy": 0.995, "early_stop_patience": 2},
            "curriculum": {},
            "cells": {"lstm": {"rnn": {"hidden_dim": 64, "forget_bias": 3.0}}},
        },
    },
}


def recipe_name(name: str) -> str:
    """The recipe ``name`` means (``default`` is :data:`DEFAULT`), or a ConfigError listing the valid names."""
    if name == "default":
        return DEFAULT
    if name not in NAMES:
        raise ConfigError(f"unknown recipe {name!r}; valid: {', '.join(NAMES)} (default: {DEFAULT})")
    return name


def _task(task: str) -> dict:
    if task not in RECIPES:
        raise ConfigError(f"unknown task {task!r}; valid: {', '.join(RECIPES)}")
    return RECIPES[task]


def _layers(task: str, recipe: dict) -> dict[str, dict]:
    """The recipe's layers by key: a backend's (Part I, keys at the top) or a cell's (RNN, under ``cells``)."""
    if task == "rnn":
        return recipe.get("cells", {})
    if task == "mlp-toy":
        return {k: v for k, v in recipe.items() if k in ("numpy", "torch")}
    return {}


def _merge(*layers: dict) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for layer in layers:
        for section, values in layer.items():
            out.setdefault(section, {}).update(copy.deepcopy(values))
    return out


def resolve(task: str, name: str = "default", *, layer: str | None = None) -> dict[str, dict]:
    """The recipe ``name`` of ``task`` as ``{section: {field: value}}`` (a fresh copy), with its layer for ``layer``
    (a backend of ``mlp-toy``, a cell of ``rnn``) applied; a key without a layer of its own gets the common sections.

    Unknown task or name: a ConfigError listing the valid ones."""
    recipes = _task(task)
    r = recipes[recipe_name(name)]
    layers = _layers(task, r)
    common = {k: v for k, v in r.items() if k != "cells" and k not in layers}
    base = TOY_BASE if task == "mlp-toy" else {}
    return _merge(base, common, layers.get(layer, {}) if layer is not None else {})


def record() -> dict:
    """Every recipe ``nnlab reproduce`` trains, as plain JSON data (stored in reproduce.json, compared on rerun).

    The shape is the one reproduce.json has always had, so that a reproduction started before this table existed can
    be continued: ``{"part1": {name: layers over TOY_BASE}, "cifar": {"mlp"|"cnn": {name: recipe}}, "rnn": {...}}``."""
    data = {"part1": RECIPES["mlp-toy"], "cifar": {"mlp": RECIPES["mlp-cifar10"], "cnn": RECIPES["cnn"]},
            "rnn": RECIPES["rnn"]}
    return json.loads(json.dumps(data, default=str))


# -- what --help says ------------------------------------------------------------------------------
def _show(v) -> str:
    return ",".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)


def _name_text(task: str, name: str, section: str, field: str, fallback) -> tuple[str, bool]:
    """("<name> <value>[ (<layer>: <value>)...]", whether the recipe or a layer of it sets the field)."""
    r = RECIPES[task][name]
    base = resolve(task, name).get(section, {})
    text = f"{name} {_show(base.get(field, fallback))}"
    sets = field in base
    for key in _layers(task, r):
        v = resolve(task, name, layer=key).get(section, {})
        if field in v:
            sets = True
            if v[field] != base.get(field, fallback):
                text += f" ({key}: {_show(v[field])})"
    return text, sets


def default_text(tasks: dict[str, str], section: str, field: str, fallback) -> str | None:
    """What a flag's ``--help`` says its default is when a recipe sets the field: ``from --recipe: seed X, best Y``
    (per task when ``tasks`` holds several, labelled by their keys; ``otherwise <fallback>`` for tasks whose recipes
    leave the field alone). None when no recipe of ``tasks`` sets it (the dataclass default is what runs)."""
    parts, unset = [], False
    for label, task in tasks.items():
        texts = [_name_text(task, n, section, field, fallback) for n in NAMES]
        if any(sets for _, sets in texts):
            body = ", ".join(t for t, _ in texts)
            parts.append(f"{label}: {body}" if len(tasks) > 1 else body)
        else:
            unset = True
    if not parts:
        return None
    return "from --recipe: " + "; ".join(parts) + (f"; otherwise {_show(fallback)}" if unset else "")
