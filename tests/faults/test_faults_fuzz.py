"""Fuzzed input (issue #6, case 4): random flags and values, valid and invalid, for ``nnlab train mlp`` and
``nnlab train rnn`` (always ``--dry-run``), and random damage to a checkpoint file. Every outcome is either
success or one clear message with exit status 2 ("nnlab: error: ..." or argparse's usage error): never a
traceback, never another exception.

Sizes stay small on purpose (hidden <= 64, RNN batch <= 512, T <= 8): the fuzzer must not make the shared
test machine allocate gigabytes. Absurd sizes are tried once each, with values no allocator can satisfy
(they fail at once instead of swapping), in ``test_found_by_fuzzing``.
"""

from __future__ import annotations

import contextlib
import io
import os
import random

import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from nnlab.cli import main

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                                          HealthCheck.too_slow])


def _run(argv: list[str]) -> tuple[int, str]:
    """``nnlab.cli.main(argv)`` in-process: (exit status, stderr). SystemExit (argparse) counts as its status."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return code, err.getvalue()


def _assert_clear(argv, code, err):
    assert "Traceback" not in err, (argv, err)
    assert code in (0, 2), (argv, code, err)
    if code == 2:  # ours ("nnlab: error: ...", first line) or argparse's (usage, then "nnlab ...: error: ...")
        lines = err.strip().splitlines()
        assert lines and (lines[0].startswith("nnlab: error: ") or
                          (lines[0].startswith("usage: nnlab") and lines[-1].startswith("nnlab") and ": error: " in lines[-1])), (argv, err)


# -- value strategies: a mix of valid and invalid texts ----------------------------------------------
def _num(valid):  # valid three times in four (ranges include invalid numbers too), else junk text
    junk = st.sampled_from(["", "abc", "nan", "inf", "-inf", "1e400", "-1", "0", "1,2", "0x10", " 1", "1_0", "١", "None", "--"])
    return st.one_of(valid, valid, valid, junk)


def _floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False).map(lambda v: f"{v:.6g}")


def _ints(lo, hi):
    return st.integers(lo, hi).map(str)


HIDDEN = st.one_of(st.lists(st.integers(-2, 64), min_size=0, max_size=3).map(lambda v: ",".join(map(str, v))),
                   st.sampled_from(["20,x", ",", "1,,2", "0", "-3", "3.5", " 8 , 4 "]))
SEEDS = st.one_of(_ints(0, 2**32 - 1), _ints(2**32, 2**70), st.sampled_from(["-1", "x", "1.5", "2e3"]))

COMMON = {
    "--lr": _num(_floats(1e-6, 10.0)),
    "--epochs": _num(_ints(-1, 3)),
    "--steps": _num(_ints(-1, 5)),
    "--eval-every": _num(_ints(-1, 3)),
    "--checkpoint-every": _num(_ints(-1, 3)),
    "--batch-size": _num(_ints(-1, 64)),
    "--eval-batch-size": _num(st.sampled_from(["1", "7", "1000", "1000000000000"])),
    "--optimizer": st.sampled_from(["sgd", "adam", "adamw", "rmsprop", "SGD", "lbfgs", ""]),
    "--schedule": st.sampled_from(["constant", "exponential", "step", "cosine", "onecycle", "linear", ""]),
    "--gamma": _num(_floats(0.0, 1.5)),
    "--decay-every": _num(_ints(-1, 5)),
    "--warmup": _num(_floats(0.0, 1.2)),
    "--final-lr-fraction": _num(_floats(0.0, 1.2)),
    "--momentum": _num(_floats(0.0, 1.1)),
    "--weight-decay": _num(_floats(0.0, 1.0)),
    "--beta1": _num(_floats(0.0, 1.1)),
    "--eps": _num(_floats(0.0, 1.0)),
    "--label-smoothing": _num(_floats(0.0, 1.1)),
    "--clip-grad-norm": _num(_floats(0.0, 5.0)),
    "--ema-decay": _num(_floats(0.0, 1.0)),
    "--early-stop-accuracy": _num(_floats(0.0, 1.2)),
    "--early-stop-patience": _num(_ints(-1, 3)),
    "--device": st.sampled_from(["auto", "cpu", "cuda", "mps", "tpu", "CPU", ""]),
    "--seed": SEEDS,
    "--progress": st.sampled_from(["auto", "on", "off", "sometimes"]),
    "--recipe": st.sampled_from(["default", "seed", "best", "fastest", ""]),
}
SWITCHES = ["--nesterov", "--no-nesterov", "--amp", "--no-amp", "--channels-last", "--no-channels-last"]

MLP_FLAGS = {
    **COMMON,
    "--hidden": HIDDEN,
    "--backend": st.sampled_from(["numpy", "torch", "jax", "NumPy", ""]),
    "--dataset": st.sampled_from(["moons", "circles", "cifar10", "mnist", ""]),
    "--init": st.sampled_from(["he", "xavier", "orthogonal", ""]),
    "--dtype": st.sampled_from(["float64", "float32", "float16"]),
    "--n-samples": _num(_ints(0, 400)),
    "--noise": _num(_floats(0.0, 12.0)),
    "--factor": _num(_floats(0.0, 1.1)),
    "--test-fraction": _num(_floats(0.0, 1.0)),
    "--val-fraction": _num(_floats(0.0, 1.0)),
}
RNN_FLAGS = {
    **COMMON,
    "--batch-size": _num(_ints(-1, 512)),
    "--input-length": _num(_ints(-1, 8)),
    "--cell": st.sampled_from(["vanilla", "lstm", "gru", ""]),
    "--hidden-dim": _num(_ints(-1, 64)),
    "--init": st.sampled_from(["xavier", "orthogonal", "he", "normal", ""]),
    "--forget-bias": _num(_floats(-3.0, 3.0)),
    "--input-mode": st.sampled_from(["onehot", "scalar", "binary"]),
    "--test-size": _num(st.sampled_from(["1", "10", "200", "1000000000"])),
    "--test-seed": SEEDS,
    "--curriculum-start": _num(_ints(-1, 9)),
    "--curriculum-fraction": _num(_floats(0.0, 1.2)),
}
UNKNOWN = st.one_of(st.from_regex(r"--[a-z][a-z-]{0,12}", fullmatch=True), st.sampled_from(["-x", "---", "--lr=", "extra", "-"]))


@st.composite
def argvs(draw, flags: dict):
    names = draw(st.lists(st.sampled_from(sorted(flags)), max_size=5, unique=True))
    argv = []
    for name in names:
        value = draw(flags[name])
        argv += [f"{name}={value}"] if draw(st.booleans()) and value else [name, value]
    argv += draw(st.lists(st.sampled_from(SWITCHES), max_size=2))
    if draw(st.integers(0, 9)) == 0:  # now and then an unknown flag or a stray word
        argv.insert(draw(st.integers(0, len(argv))), draw(UNKNOWN))
    return argv


def _values(argv: list[str]) -> dict[str, str]:
    out, i = {}, 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--") and "=" in a:
            k, v = a.split("=", 1)
            out[k] = v
        elif a.startswith("--") and i + 1 < len(argv):
            out[a] = argv[i + 1]
            i += 1
        i += 1
    return out


def _known_open(argv: list[str]) -> bool:
    """Inputs of a crash the fuzzer found whose fix is still open (see FOUND): none at present."""
    return False


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing is written in --dry-run; if something were, it lands here
    monkeypatch.setenv("NNLAB_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("NNLAB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def _assert_dry_run_clear(in_tmp, full):
    """Run ``full`` (a ``--dry-run`` command line): a clear outcome (``_assert_clear``) and no file written."""
    code, err = _run(full)
    event(f"exit {code}")
    _assert_clear(full, code, err)
    assert os.listdir(in_tmp) == [], "a dry run wrote files"


@FUZZ
@given(argv=argvs(MLP_FLAGS))
@example(argv=["--lr", "1e400"])
@example(argv=["--hidden", ""])
@example(argv=["--epochs", "٣"])
def test_fuzz_train_mlp_dry_run(in_tmp, argv):
    assume(not _known_open(argv))
    full = ["train", "mlp", "--dry-run", *argv]
    _assert_dry_run_clear(in_tmp, full)


@FUZZ
@given(argv=argvs(RNN_FLAGS), with_length=st.sampled_from([True, True, True, False]))
@example(argv=["--input-length", "0"], with_length=False)
@example(argv=[], with_length=False)
def test_fuzz_train_rnn_dry_run(in_tmp, argv, with_length):
    if with_length and not any(a.startswith("--input-length") for a in argv):
        argv = ["--input-length", "4", *argv]
    assume(not _known_open(argv))
    full = ["train", "rnn", "--dry-run", *argv]
    _assert_dry_run_clear(in_tmp, full)


# -- what the fuzzer found ---------------------------------------------------------------------------
SEED_FIX = "needs a seed range check: TrainConfig.seed and PalindromeConfig.test_seed in [0, 2**32 - 1]"
SPLIT_FIX = "needs ToyDataConfig/make_toy to refuse splits scikit-learn cannot make (ConfigError, not sklearn's ValueError)"
ALLOC_FIX = "needs cli.main to report allocation failures (MemoryError, torch's 'can't allocate memory') as a message"
FLAG_FIX = "needs flags._convert to refuse a non-text value (argparse < 3.12 turns '--flag=--' into [])"
FOUND = {  # name: (argv, the fix it needed): crashes the fuzzer found, each now a clear message
    "mlp-seed-2**32": (["train", "mlp", "--seed", str(2**32)], SEED_FIX),  # sklearn: random_state < 2**32
    "mlp-numpy-seed-2**64": (["train", "mlp", "--backend", "numpy", "--seed", str(2**64)], SEED_FIX),
    "rnn-seed-2**64": (["train", "rnn", "--input-length", "4", "--seed", str(2**64)], SEED_FIX),  # torch: < 2**64
    "rnn-test-seed-2**64": (["train", "rnn", "--input-length", "4", "--test-seed", str(2**64)], SEED_FIX),
    "toy-test-split-too-small": (["train", "mlp", "--n-samples", "10", "--test-fraction", "0.01"], SPLIT_FIX),
    "toy-val-split-empties-train": (["train", "mlp", "--n-samples", "10", "--val-fraction", "0.9"], SPLIT_FIX),
    # sizes no allocator can satisfy: they fail at once and never use memory
    "mlp-torch-hidden-1e13": (["train", "mlp", "--hidden", str(10**13)], ALLOC_FIX),
    "mlp-numpy-hidden-1e13": (["train", "mlp", "--backend", "numpy", "--hidden", str(10**13)], ALLOC_FIX),
    "rnn-hidden-dim-1e13": (["train", "rnn", "--input-length", "4", "--hidden-dim", str(10**13)], ALLOC_FIX),
    "rnn-batch-1e13": (["train", "rnn", "--input-length", "4", "--batch-size", str(10**13)], ALLOC_FIX),
    "int-flag=--": (["train", "mlp", "--batch-size=--"], FLAG_FIX),
    "float-flag=--": (["train", "mlp", "--lr=--"], FLAG_FIX),
}


@pytest.mark.parametrize("name", list(FOUND))
def test_found_by_fuzzing(in_tmp, name):
    argv = [*FOUND[name][0], "--dry-run"]
    code, err = _run(argv)
    _assert_clear(argv, code, err)
    assert code == 2


# -- damaged checkpoint bytes ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", "mlp", "--backend", "numpy", "--epochs", "1", "--hidden", "3", "--progress", "off",
                     "--out", str(d / "run")]) == 0
    return (d / "run" / "checkpoint.pt").read_bytes()


@st.composite
def damage(draw, n: int):
    """A list of edits of a file of n bytes: truncations, byte flips, inserted or deleted ranges."""
    edits = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "flip", "insert", "delete", "zero-range"]))
        pos = draw(st.integers(0, n - 1))
        edits.append((kind, pos, draw(st.integers(1, 64)), draw(st.integers(0, 255))))
    return edits


def _apply(blob: bytes, edits) -> bytes:
    b = bytearray(blob)
    for kind, pos, length, byte in edits:
        pos = min(pos, max(0, len(b) - 1))
        if kind == "truncate":
            del b[pos:]
        elif kind == "flip" and b:
            b[pos] ^= byte or 0xFF
        elif kind == "insert":
            b[pos:pos] = bytes([byte]) * length
        elif kind == "delete":
            del b[pos:pos + length]
        elif kind == "zero-range":
            b[pos:pos + length] = bytes(len(b[pos:pos + length]))
    return bytes(b)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_damaged_checkpoint_loads_or_says_why(checkpoint_bytes, tmp_path, data):
    """A damaged checkpoint either loads as a well-formed one or raises CheckpointError naming the file; and
    ``nnlab evaluate`` on it ends with success or a clear message."""
    from nnlab.errors import CheckpointError
    from nnlab.train.checkpoint import load_checkpoint

    blob = _apply(checkpoint_bytes, data.draw(damage(len(checkpoint_bytes))))
    assume(blob != checkpoint_bytes)
    path = tmp_path / f"c{random.Random(blob).getrandbits(32)}.pt"
    path.write_bytes(blob)
    try:
        st_ = load_checkpoint(path)
    except CheckpointError as e:
        assert str(path) in str(e)
        event("refused: " + str(e).split(str(path))[-1][3:40])
    else:
        event("loaded")
        assert isinstance(st_["learner"]["model"], dict) and isinstance(st_["step"], int)
    code, err = _run(["evaluate", str(path)])
    _assert_clear(["evaluate", str(path)], code, err)
