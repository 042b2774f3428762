"""The ``nnlab`` command line. Subcommands import their modules lazily, so ``nnlab --help`` is instant.

Bad input (a flag, a config, a file) ends with one message on stderr and exit status 2, never a
traceback; see ``nnlab.errors``.
"""

from __future__ import annotations

import argparse
import os
import sys


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's own convention), no traceback
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


#: ``nnlab train MODEL``: what it trains, and the recipe tasks (``nnlab.experiments.recipes``) its flags draw on
_TRAIN = {
    "mlp": ("multilayer perceptron (numpy or torch) on moons, circles or cifar10",
            {"moons/circles": "mlp-toy", "cifar10": "mlp-cifar10"}),
    "cnn": ("the report's reduced VGG on CIFAR-10", {"cnn": "cnn"}),
    "rnn": ("hand-written vanilla RNN or LSTM on palindromes", {"rnn": "rnn"}),
}
_WHERE_VALUES_COME_FROM = (
    "Where each value comes from, the later winning: the config dataclass < the recipe (--recipe; `default` means "
    "`seed`, the report's settings, for every command; `best` is ours; the table: nnlab.experiments.recipes) < the "
    "flags given. A flag whose help says 'default: from --recipe' takes the recipe's value unless given. "
    "--print-config prints the whole resolved config as JSON without training.")


def _common_run_flags(p, tasks: str):
    p.add_argument("--out", help="run folder (default: runs/<name>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--dry-run", action="store_true", help="one training step and one evaluation; write nothing")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config (recipe < flags) as JSON and exit; trains nothing, writes nothing")
    p.add_argument("--recipe", default="default",
                   help=f"settings preset: seed (the report's settings) | best (ours, chosen on validation data) | "
                        f"default (= seed); values: nnlab.experiments.recipes, task {tasks}")


def _flag_sets(model: str) -> list[tuple]:
    """The config dataclasses behind ``nnlab train MODEL``'s flags: (class, flag dest prefix, recipe section, the recipe
    tasks whose runs use it as ``{label: task}``, fields without a flag)."""
    from .data.toy import ToyDataConfig
    from .experiments.cifar import CifarDataConfig
    from .experiments.mlp import MLPSpec
    from .train.config import OptimConfig, ScheduleConfig, TrainConfig

    tasks = _TRAIN[model][1]
    common = [(OptimConfig, "optim_", "optim", tasks, ()), (ScheduleConfig, "sched_", "schedule", tasks, ()),
              (TrainConfig, "train_", "train", tasks, ())]
    if model == "mlp":
        return [(MLPSpec, "", "model", tasks, ()), (ToyDataConfig, "data_", "data", {"moons/circles": "mlp-toy"}, ("dataset",)),
                *common, (CifarDataConfig, "data_", "data", {"cifar10": "mlp-cifar10"}, ("data_dir",))]
    if model == "cnn":
        return [*common, (CifarDataConfig, "data_", "data", tasks, ())]
    from .data.palindrome import PalindromeConfig
    from .experiments.rnn import CurriculumConfig
    from .models.rnn import RNNConfig

    return [*common, (RNNConfig, "rnn_", "rnn", tasks, ("input_mode",)), (PalindromeConfig, "data_", "data", tasks, ()),
            (CurriculumConfig, "cur_", "curriculum", tasks, ())]


def _say_recipe_defaults(p, flag_sets) -> None:
    """A flag whose field a recipe sets says so in --help, with the recipes' values, instead of the dataclass default
    (which is not what runs: ``train cnn --lr`` is 1e-4 in ``seed``, not the dataclass's 0.1)."""
    import dataclasses

    from .experiments.recipes import default_text

    actions = {a.dest: a for a in p._actions}
    for cls, prefix, section, tasks, _ in flag_sets:
        for f in dataclasses.fields(cls):
            a = actions.get(prefix + f.name)
            text = a is not None and default_text(tasks, section, f.name, None if f.default is dataclasses.MISSING else f.default)
            if text:
                a.help = a.help.rsplit(" (default: ", 1)[0] + f" (default: {text})"


def _add_train(sub):
    from .train.flags import add_dataclass_flags

    tr = sub.add_parser("train", help="train one model (writes a run folder)")
    tsub = tr.add_subparsers(dest="model", metavar="MODEL", parser_class=_Parser)
    tsub.required = True
    for name, (help_, tasks) in _TRAIN.items():
        p = tsub.add_parser(name, help=help_, description=f"{help_}. {_WHERE_VALUES_COME_FROM}")
        _common_run_flags(p, " or ".join(tasks.values()))
        if name == "mlp":
            p.add_argument("--dataset", default="moons", help="moons | circles | cifar10 (default: moons)")
            p.add_argument("--data-dir", dest="data_data_dir", default=argparse.SUPPRESS, metavar="DATA_DIR",
                           help="CIFAR-10 folder (default: $NNLAB_DATA_DIR, else ./data)")
        flag_sets = _flag_sets(name)
        for cls, prefix, _, _, exclude in flag_sets:
            add_dataclass_flags(p, cls, prefix=prefix, exclude=exclude)
        _say_recipe_defaults(p, flag_sets)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    ap = _Parser(prog="nnlab", description="MLP, CNN and RNN baselines: train, measure, compare, reproduce the report.")
    ap.add_argument("--version", action="version", version=f"nnlab {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    # Subcommand parsers are built only for the command asked for (lazy imports keep --help fast).
    return ap, sub


COMMANDS = {
    "train": "train one model: nnlab train mlp|cnn|rnn ...",
    "evaluate": "evaluate a run folder or checkpoint on the test set, with the per-class table",
    "compare": "nnlab compare part1: the report's Task 1.2 table over seeds",
    "data": "nnlab data download cifar10: fetch and verify the data set",
    "sweep": "nnlab sweep rnn: cells x input lengths x seeds, resumable",
    "analyze": "nnlab analyze rnn-gradients: why the vanilla RNN fails on long inputs",
    "reproduce": "rebuild the whole report (the main job)",
    "report": "redraw a reproduce folder's report from its saved metrics",
}


def _add_subcommand(sub, name: str):
    if name == "train":
        _add_train(sub)
    elif name == "compare":
        p = sub.add_parser("compare", help=COMMANDS[name],
                           description=COMMANDS[name] + "; every run with the `best` recipe (nnlab.experiments.recipes, "
                                                        "task mlp-toy)")
        p.add_argument("what", help="part1")
        p.add_argument("--seeds", default="10", help="number of seeds (default 10)")
        p.add_argument("--out", default=None, help="output folder (default: runs/compare-part1-<time>)")
        p.add_argument("--epochs", default=None, help="override epochs for every run")
        p.add_argument("--progress", default="auto", help="auto | on | off (default: auto)")
    elif name == "evaluate":
        p = sub.add_parser("evaluate", help=COMMANDS[name])
        p.add_argument("path", help="run folder or checkpoint.pt")
        p.add_argument("--data-dir", help="CIFAR-10 folder (default: $NNLAB_DATA_DIR, else ./data)")
        p.add_argument("--device", default="auto",
                       help="auto | cpu | cuda | mps (default: auto: cuda, else mps, else cpu)")
    elif name == "data":
        p = sub.add_parser("data", help=COMMANDS[name])
        p.add_argument("action", help="download")
        p.add_argument("dataset", help="cifar10")
        p.add_argument("--data-dir", help="destination folder (default: $NNLAB_DATA_DIR, else ./data)")
        p.add_argument("--url", default=None, help="mirror URL of cifar-10-python.tar.gz")
        p.add_argument("--md5", default=None, help="expected md5 (default: the official one)")
    else:
        mod = _module_for(name)
        mod.add_parser(sub, name, COMMANDS[name])


def _module_for(name: str):
    import importlib

    return importlib.import_module({"sweep": ".experiments.rnn", "analyze": ".experiments.rnn",
                                    "reproduce": ".experiments.reproduce", "report": ".experiments.reproduce"}[name], __package__)


def _dispatch(args) -> int:
    c = args.command
    if c == "train":
        return _dispatch_train(args)
    if c == "compare":
        from .experiments.part1 import cli_compare

        return cli_compare(args)
    if c == "evaluate":
        from .experiments.evaluate import cli_evaluate

        return cli_evaluate(args)
    if c == "data":
        from .experiments.cifar import cli_data

        return cli_data(args)
    return _module_for(c).run_cli(args)


def _dispatch_train(args) -> int:
    from .experiments import cifar, mlp, rnn

    if args.model == "rnn":
        return rnn.cli_train_rnn(args)
    if args.model == "cnn":
        return cifar.cli_train(args, "cnn")
    from ._validate import one_of
    from .errors import check

    check([p for p in [one_of("dataset", args.dataset, ("moons", "circles", "cifar10"))] if p])
    return cifar.cli_train(args, "mlp") if args.dataset == "cifar10" else mlp.cli_train_toy(args)


def _trains_large_models(argv: list[str], first: str | None) -> bool:
    """The CNN (``train cnn``, and ``reproduce``, whose small-op sections run on one thread) keeps OpenMP's default
    wait policy: its threads spin briefly between the many ops of a step, which measured ~15% faster at batch 32 on 2
    idle cores than sleeping at once (a bare bf16 step: 242 against 179-210 img/s with PASSIVE)."""
    words = [a for a in argv if not a.startswith("-")]
    return first == "reproduce" or words[:2] == ["train", "cnn"]


def main(argv: list[str] | None = None) -> int:
    from .errors import NnlabError

    argv = list(sys.argv[1:] if argv is None else argv)
    # Idle OpenMP threads sleep instead of spinning: spinning threads slowed small-op training 5-15x on a
    # busy 2-core CPU (measured with nnlab reproduce). libgomp reads this when torch is first imported,
    # which happens below (building a subcommand's flags); a user's own setting wins.
    first = next((a for a in argv if not a.startswith("-")), None)
    if not _trains_large_models(argv, first):
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    ap, sub = build_parser()
    if first in COMMANDS:
        _add_subcommand(sub, first)
    else:
        for name, help_ in COMMANDS.items():
            sub.add_parser(name, help=help_)
    args = ap.parse_args(argv)
    try:
        return _dispatch(args) or 0
    except NnlabError as e:
        print(f"nnlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nnlab: interrupted; finished work and the last checkpoint are kept (rerun with --resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except MemoryError as e:
        print(f"nnlab: error: out of memory ({e or 'MemoryError'}); use smaller sizes (--hidden, --batch-size, ...)", file=sys.stderr)
        return 2
    except RuntimeError as e:  # torch's allocators raise RuntimeError (CPU) or its subclass OutOfMemoryError (GPU)
        if type(e).__name__ == "OutOfMemoryError" or "can't allocate memory" in str(e):
            first = str(e).strip().splitlines()[0][:300]
            print(f"nnlab: error: out of memory ({first}); use smaller sizes (--hidden, --batch-size, ...)", file=sys.stderr)
            return 2
        raise
    except OSError as e:
        # ENOSPC, EACCES, EROFS, EDQUOT, or any error about a named file (EISDIR, ENOTDIR, ...): report, keep what is written
        if e.errno in (28, 13, 30, 122) or e.filename is not None:
            print(f"nnlab: error: {e.strerror or e}: {e.filename or ''} (finished work and the last checkpoint are kept)", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
