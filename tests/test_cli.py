"""nnlab.cli: ``--version``, ``--help`` naming every command (and importing nothing heavy), bad commands and flags as
one ``error:`` line with exit status 2 and no traceback, and ``--print-config`` printing JSON without writing."""

from __future__ import annotations

import json
import subprocess
import sys

from nnlab import __version__
from nnlab.cli import COMMANDS, main


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "nnlab", *args], capture_output=True, text=True, timeout=300, **kw)


def _exit_code(argv) -> int:
    """argparse ends --version, --help and usage errors with SystemExit; main returns the code otherwise."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def _assert_one_error_line(err: str, prog: str, needle: str):
    """What argparse prints: the usage, then exactly one ``PROG: error: ...`` line, last; never a traceback."""
    lines = err.strip("\n").splitlines()
    assert lines[0].startswith("usage: ") and lines[-1].startswith(f"{prog}: error: ") and needle in lines[-1], err
    assert sum("error:" in line for line in lines) == 1 and "Traceback" not in err, err


def test_version(capsys):
    assert _exit_code(["--version"]) == 0
    assert capsys.readouterr().out == f"nnlab {__version__}\n"


def test_help_lists_every_command(capsys):
    assert set(COMMANDS) == {"train", "evaluate", "compare", "data", "sweep", "analyze", "reproduce", "report"}
    assert _exit_code(["--help"]) == 0
    out = capsys.readouterr().out
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("    ") and line.split()}
    assert set(COMMANDS) <= listed, out
    for name, help_ in COMMANDS.items():
        assert " ".join(help_.split()[:3]) in " ".join(out.split()), name  # each with its one-line description


def test_help_is_instant_it_imports_no_torch():
    """The promise of cli.py: subcommands import their modules lazily, so ``nnlab --help`` imports no torch."""
    code = ("import sys, contextlib, io\nfrom nnlab.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('torch', 'matplotlib', 'sklearn') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_no_command_is_a_usage_error(capsys):
    assert _exit_code([]) == 2
    _assert_one_error_line(capsys.readouterr().err, "nnlab", "the following arguments are required: COMMAND")


def test_unknown_command_exit_2_one_error_line(capsys):
    assert _exit_code(["frobnicate"]) == 2
    _assert_one_error_line(capsys.readouterr().err, "nnlab", "invalid choice: 'frobnicate'")


def test_unknown_model_and_unknown_flag_exit_2_one_error_line(capsys):
    assert _exit_code(["train", "gan"]) == 2
    _assert_one_error_line(capsys.readouterr().err, "nnlab train", "invalid choice: 'gan'")
    assert _exit_code(["train", "mlp", "--no-such-flag"]) == 2
    _assert_one_error_line(capsys.readouterr().err, "nnlab", "unrecognized arguments: --no-such-flag")  # the top parser reports


def test_bad_input_subprocess_exit_2_no_traceback():
    r = _cli("train", "mlp", "--backend", "jax", "--dry-run")
    assert r.returncode == 2 and "valid: numpy, torch" in r.stderr and "Traceback" not in r.stderr
    r = _cli("train", "mlp", "--no-such-flag")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_print_config_prints_json_and_writes_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default run folder would be ./runs/...
    assert main(["train", "mlp", "--dataset", "moons", "--print-config"]) == 0
    cap = capsys.readouterr()
    cfg = json.loads(cap.out)  # the whole of stdout is one JSON document
    assert cfg["data"]["dataset"] == "moons" and cfg["recipe"] == "default"
    assert {"model", "data", "optim", "schedule", "train"} <= set(cfg)
    assert list(tmp_path.iterdir()) == []  # trained nothing, wrote nothing
