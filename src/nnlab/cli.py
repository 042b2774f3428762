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


def _common_run_flags(p):
    p.add_argument("--out", help="run folder (default: runs/<name>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--dry-run", action="store_true", help="one training step and one evaluation; write nothing")
    p.add_argument("--recipe", default="default", help="settings preset (train mlp/cnn/rnn: see each command)")


def _add_train(sub):
    from .data.toy import ToyDataConfig
    from .experiments.mlp import MLPSpec
    from .train.config import OptimConfig, ScheduleConfig, TrainConfig
    from .train.flags import add_dataclass_flags

    tr = sub.add_parser("train", help="train one model (writes a run folder)")
    tsub = tr.add_subparsers(dest="model", metavar="MODEL", parser_class=_Parser)
    tsub.required = True
    specs = {
        "mlp": "multilayer perceptron (numpy or torch) on moons, circles or cifar10",
        "cnn": "the report's reduced VGG on CIFAR-10",
        "rnn": "hand-written vanilla RNN or LSTM on palindromes",
    }
    parsers = {}
    for name, help_ in specs.items():
        p = tsub.add_parser(name, help=help_, description=help_)
        _common_run_flags(p)
        parsers[name] = p
    mlp = parsers["mlp"]
    mlp.add_argument("--dataset", default="moons", help="moons | circles | cifar10 (default: moons)")
    mlp.add_argument("--data-dir", dest="data_data_dir", default=argparse.SUPPRESS,
                     help="CIFAR-10 folder (default: $NNLAB_DATA_DIR, else ./data)")
    add_dataclass_flags(mlp, MLPSpec)
    add_dataclass_flags(mlp, ToyDataConfig, exclude=("dataset",), prefix="data_")
    for p in parsers.values():
        add_dataclass_flags(p, OptimConfig, prefix="optim_")
        add_dataclass_flags(p, ScheduleConfig, prefix="sched_")
        add_dataclass_flags(p, TrainConfig, prefix="train_")
    try:
        from .experiments import cifar as _c  # noqa: F401  (flags of the CNN/CIFAR commands)

        _c.add_flags(parsers["cnn"], parsers["mlp"])
    except ImportError:
        pass
    try:
        from .experiments import rnn as _r

        _r.add_flags(parsers["rnn"])
    except ImportError:
        pass


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
        p = sub.add_parser("compare", help=COMMANDS[name])
        p.add_argument("what", help="part1")
        p.add_argument("--seeds", default="10", help="number of seeds (default 10)")
        p.add_argument("--out", default=None, help="output folder (default: runs/compare-part1-<time>)")
        p.add_argument("--epochs", default=None, help="override epochs for every run")
        p.add_argument("--progress", default="auto", help="auto | on | off")
    elif name == "evaluate":
        p = sub.add_parser("evaluate", help=COMMANDS[name])
        p.add_argument("path", help="run folder or checkpoint.pt")
        p.add_argument("--data-dir", help="CIFAR-10 folder (default: $NNLAB_DATA_DIR, else ./data)")
        p.add_argument("--device", default="auto")
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
        if args.model == "mlp":
            return _train_mlp(args)
        if args.model == "cnn":
            from .experiments import cifar

            return cifar.cli_train_cnn(args)
        from .experiments import rnn

        return rnn.cli_train_rnn(args)
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


def _train_mlp(args) -> int:
    from ._validate import one_of
    from .data.toy import ToyDataConfig
    from .errors import check
    from .experiments.common import default_out, print_summary
    from .experiments.mlp import TOY_DEFAULTS, MLPSpec, train_toy_mlp
    from .train.config import OptimConfig, ScheduleConfig, TrainConfig
    from .train.flags import build

    check([p for p in [one_of("dataset", args.dataset, ("moons", "circles", "cifar10"))] if p])
    if args.dataset == "cifar10":
        from .experiments import cifar

        return cifar.cli_train_mlp(args)
    if args.recipe not in ("default", "seed", "best"):
        check([f"unknown recipe {args.recipe!r}; valid: default, seed, best"])
    # On toy data the report's settings ("seed") and ours coincide apart from the schedule.
    spec = build(MLPSpec, args=args)
    data_cfg = build(ToyDataConfig, {"dataset": args.dataset}, prefix="data_", args=args)
    optim = build(OptimConfig, TOY_DEFAULTS["optim"], prefix="optim_", args=args)
    sched = build(ScheduleConfig, TOY_DEFAULTS["schedule"], prefix="sched_", args=args)
    train = build(TrainConfig, TOY_DEFAULTS["train"], prefix="train_", args=args)
    out = args.out or default_out("mlp", spec.backend, args.dataset, f"s{train.seed}")
    s = train_toy_mlp(spec, data_cfg, optim, sched, train, out=out, resume=args.resume, dry_run=args.dry_run, recipe=args.recipe)
    print_summary(s, None if args.dry_run else out)
    return 0


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
