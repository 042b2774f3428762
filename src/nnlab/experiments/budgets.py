"""How much of the protocol one ``nnlab reproduce`` runs: :data:`BUDGETS`, the one table of budgets.

``quick`` fits 2 CPU cores in about a quarter of an hour (fewer seeds and steps, a CIFAR-10 subset, and the report
says so at its top); ``full`` is the whole protocol (2 h 40 min measured on 2 CPU cores; docs/REPRODUCE.md). A third
budget, ``smoke``, is for the tests only: it is accepted on the command line but not listed, it accepts small CIFAR-10
archives (``allow_partial``), its numbers mean nothing, and its report says exactly that at the top.

A budget only shortens or repeats runs: every value it sets is laid over a recipe (``nnlab.experiments.recipes``),
so a setting not named here is the recipe's own.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from ..errors import ConfigError


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
    # is evaluated on the whole validation and test sets; the CNN `best` recipe needs 14 epochs (28-31 min) and is not
    # run (cut to the ~2 minutes left, its compressed one-cycle reached 31% in a measured run: no figure worth
    # showing); the other sections are cut short.
    "quick": Budget(
        summary=("quick: fits 15 minutes on 2 CPU cores — Part II trains the report's CNN settings on all 45,000 "
                 "training images for their full 5,000 steps; the CNN `best` recipe (14 epochs, 29 to 31 minutes on "
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
                 "length (45,000 training, 5,000 validation and 10,000 test images), 5 seeds per RNN cell and input length."),
        part1_seeds=10, part1_train={},
        cifar_seeds=3, cifar={"mlp": {"seed": {}, "best": {}}, "cnn": {"seed": {}, "best": {}}}, cifar_data={},
        rnn_seeds=5, rnn_lengths=_VANILLA_FULL, lstm_lengths=_VANILLA_FULL + (40, 50, 60, 80, 100),
        rnn={"seed": {}, "best": {}},
        grad_length=20, grad_steps=1500,
    ),
    # Tests only (tests/experiments/test_reproduce.py): every section on tiny settings in well under a minute on a CPU,
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

