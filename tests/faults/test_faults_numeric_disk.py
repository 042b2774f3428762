"""Numerical faults, contention and disk faults (issue #6, cases 5 and 6).

Numerics: a learning rate that explodes mid-run (``lr_multiplier`` patched to return inf at one step) or a
NaN gradient (a tensor hook) stops the run with a clear message and exit 2, and the checkpoint on disk is
the last state from before the fault: it loads, its weights are finite, and resuming it (fault removed)
ends exactly where an uninterrupted run ends. The worst moment is tested: the exploding update is the last
one before a checkpoint, whose recorded losses (computed before each update) are all still finite.

Contention (a second process on the ``--out`` of a running one) is in test_faults_kill.py, which has
cheap processes to run it with.

Disk: an unwritable output folder is reported before training. CI runs the tests as root, for whom
``chmod 0o500`` does not stop writes, so every case here binds root too: the folder is put under a regular
file (``<file>/out``: ENOTDIR), is an existing file, or sits on a read-only file system, simulated in-process
(``os.access`` and ``os.open`` answer as the kernel does on a read-only mount, for root as for anyone). A full
disk is simulated in-process: ``os.fsync`` raises ENOSPC (after cutting the temp file in half) at the n-th write of
a chosen file; the run stops with a clear message naming the file, the previous file is byte-for-byte
intact, no temp file is left, and the run resumes to the uninterrupted result.
"""

from __future__ import annotations

import errno
import math
import os
from pathlib import Path

import pytest
import torch

from nnlab.cli import main
from nnlab.train.checkpoint import load_checkpoint
from fakes import metrics_rows

# 320 training points, batch 5: 64 steps an epoch, a checkpoint every 16 steps
MLP = ["train", "mlp", "--n-samples", "400", "--epochs", "2", "--checkpoint-every", "16", "--seed", "5", "--progress", "off"]
RNN = ["train", "rnn", "--input-length", "4", "--steps", "40", "--eval-every", "10", "--checkpoint-every", "5",
       "--early-stop-accuracy", "0", "--hidden-dim", "12", "--batch-size", "16", "--progress", "off"]


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def _assert_same_result(ref: Path, out: Path):
    a, b = load_checkpoint(ref), load_checkpoint(out)
    assert a["step"] == b["step"]
    for k, v in a["learner"]["model"].items():
        assert torch.equal(v, b["learner"]["model"][k]), k
    assert metrics_rows(ref / "metrics.csv") == metrics_rows(out / "metrics.csv")
    assert _temps(out) == []


CASES = {  # name: (argv, steps per checkpoint)
    "mlp-numpy": ([*MLP, "--backend", "numpy"], 16),
    "mlp-torch": ([*MLP, "--backend", "torch"], 16),
    "rnn": (RNN, 5),
}


@pytest.fixture(autouse=True, scope="module")
def _no_figures():
    """Figures cost seconds per run and are not what these tests are about (the kill tests check them)."""
    from nnlab.report import plots

    mp = pytest.MonkeyPatch()
    for name in ("plot_curves", "plot_decision_boundary", "plot_confusion_matrix"):
        mp.setattr(plots, name, lambda *a, **k: None)
    yield
    mp.undo()


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    d = tmp_path_factory.mktemp("refs")
    for name, (argv, _) in CASES.items():
        assert main([*argv, "--out", str(d / name)]) == 0
    return d


# -- numerical faults --------------------------------------------------------------------------------
def _explode_at(monkeypatch, step: int):
    """The learning rate of optimizer step ``step`` (0-based) becomes inf: that update makes the weights non-finite."""
    import nnlab.train.learners as learners

    real = learners.lr_multiplier
    monkeypatch.setattr(learners, "lr_multiplier", lambda cfg, s, total: math.inf if s == step else real(cfg, s, total))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("where", ["just-before-a-checkpoint", "mid-period"])
@pytest.mark.parametrize("case", list(CASES))
def test_divergence_stops_clearly_and_keeps_the_last_good_checkpoint(refs, tmp_path, monkeypatch, capsys, case, where):
    argv, every = CASES[case]
    bad_step = 3 * every - 1 if where == "just-before-a-checkpoint" else 3 * every + 2  # 0-based index of the update
    last_good = (bad_step // every) * every  # the last checkpoint written before that update
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _explode_at(m, bad_step)
        code = main([*argv, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("nnlab: error: ") and "NaN/inf" in err and "Traceback" not in err, err
    assert "resumable" in err
    st = load_checkpoint(out / "checkpoint.pt")
    assert st["step"] == last_good, f"the checkpoint on disk is from step {st['step']}, the last good one is {last_good}"
    assert all(bool(torch.isfinite(t).all()) for t in st["learner"]["model"].values()), "the kept checkpoint holds NaN/inf"
    assert _temps(out) == [] and not (out / "summary.json").exists()
    # resumed without the fault, it ends exactly where the uninterrupted run ends
    assert main([*argv, "--out", str(out), "--resume"]) == 0
    _assert_same_result(refs / case, out)


def test_divergence_writes_no_metrics_row_past_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    argv, every = CASES["mlp-torch"]
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _explode_at(m, 8 * every - 1)  # update 127: the last of epoch 2, whose row is written at step 128
        assert main([*argv, "--out", str(out)]) == 2
    st = load_checkpoint(out / "checkpoint.pt")
    rows = metrics_rows(out / "metrics.csv")
    assert len(rows) == len(st["rows"]) and all(math.isfinite(float(r["test_loss"])) for r in rows)


@pytest.mark.parametrize("clip", ["0", "1.0"])
def test_nan_gradient_stops_clearly_and_keeps_the_last_good_checkpoint(refs, tmp_path, monkeypatch, capsys, clip):
    """A NaN gradient with a finite loss: caught through the clipped norm (clip > 0) or the next loss (clip = 0)."""
    from nnlab.train.learners import TorchLearner

    argv, every = CASES["mlp-torch"]
    bad_step = 2 * every - 1
    real = TorchLearner.train_step

    def train_step(self, x, y, step):
        if step == bad_step:
            p = next(self.model.parameters())
            h = p.register_hook(lambda g: g * float("nan"))
            try:
                return real(self, x, y, step)
            finally:
                h.remove()
        return real(self, x, y, step)

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(TorchLearner, "train_step", train_step)
        code = main([*argv, "--clip-grad-norm", clip, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "NaN/inf" in err and "Traceback" not in err, err
    st = load_checkpoint(out / "checkpoint.pt")
    assert st["step"] == every and all(bool(torch.isfinite(t).all()) for t in st["learner"]["model"].values())
    assert main([*argv, "--clip-grad-norm", clip, "--out", str(out), "--resume"]) == 0


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value encountered:RuntimeWarning")
def test_huge_learning_rate_from_the_start(tmp_path, capsys):
    """--lr 1e30 (numpy backend; the torch one is in train/test_loop.py): clear message, no checkpoint claimed."""
    out = tmp_path / "run"
    code = main(["train", "mlp", "--backend", "numpy", "--lr", "1e30", "--momentum", "0", "--epochs", "1", "--n-samples", "100",
                 "--progress", "off", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "NaN/inf" in err and "Traceback" not in err, err
    assert not (out / "checkpoint.pt").exists()


# -- unwritable output -------------------------------------------------------------------------------
def _unwritable_outs(tmp_path: Path) -> dict:
    f = tmp_path / "a-file"
    f.write_text("x")
    return {"under-a-file": f / "out", "is-a-file": f}


@pytest.mark.parametrize("kind", ["under-a-file", "is-a-file"])
def test_unwritable_output_folder_is_reported_before_training(tmp_path, capsys, kind):
    out = _unwritable_outs(tmp_path)[kind]
    code = main([*MLP, "--backend", "numpy", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("nnlab: error: cannot create output folder") and str(out) in err, err
    assert "Traceback" not in err and sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def _read_only_mount(monkeypatch, folder: Path) -> None:
    """``folder`` answers as on a read-only mount, where root is refused too: ``access(W_OK)`` is false and
    opening anything inside it for writing fails with EROFS (a real mount needs privileges a test has not)."""
    real_access, real_open = os.access, os.open

    def inside(path) -> bool:
        if isinstance(path, int):  # a file descriptor
            return False
        p = Path(os.fsdecode(path)).absolute()
        return p == folder or folder in p.parents

    def access(path, mode, *a, **k):
        return False if mode & os.W_OK and inside(path) else real_access(path, mode, *a, **k)

    def open_(path, flags, *a, **k):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "open", open_)


def test_read_only_output_folder_is_reported_before_training(tmp_path, capsys, monkeypatch):
    out = tmp_path / "ro"
    out.mkdir()
    with monkeypatch.context() as m:
        _read_only_mount(m, out)
        code = main([*MLP, "--backend", "numpy", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err == f"nnlab: error: output folder {str(out)!r} is not writable\n", err
    assert list(out.iterdir()) == []


def test_a_run_file_that_cannot_be_replaced_gives_a_clear_message(tmp_path, capsys):
    out = tmp_path / "run"
    (out / "metrics.csv").mkdir(parents=True)  # e.g. a stray folder of that name
    code = main([*MLP, "--backend", "numpy", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "metrics.csv" in err and "Traceback" not in err


# -- full disk ---------------------------------------------------------------------------------------
def _enospc_at(monkeypatch, target: str, n: int, seen: dict):
    """The n-th fsync of a temp file of ``target`` (e.g. checkpoint.pt) fails with ENOSPC after half was written."""
    real = os.fsync
    count = [0]

    def fsync(fd):
        try:
            name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            name = ""
        if name.startswith(f".{target}.") and name.endswith(".tmp"):
            count[0] += 1
            if count[0] == n:
                final = Path(os.readlink(f"/proc/self/fd/{fd}")).parent / target
                seen["before"] = final.read_bytes() if final.exists() else None
                os.ftruncate(fd, os.fstat(fd).st_size // 2)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("target, n", [("checkpoint.pt", 3), ("metrics.csv", 2), ("config.json", 1), ("summary.json", 1)])
def test_full_disk_stops_clearly_and_keeps_what_was_written(refs, tmp_path, monkeypatch, capsys, target, n):
    argv = CASES["mlp-torch"][0]
    out = tmp_path / "run"
    seen = {}
    with monkeypatch.context() as m:
        _enospc_at(m, target, n, seen)
        code = main([*argv, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("nnlab: error: ") and "No space left on device" in err, err
    assert str(out / target) in err and "Traceback" not in err, err
    assert _temps(out) == [], "the failed write left its temp file"
    if seen["before"] is None:
        assert not (out / target).exists()
    else:
        assert (out / target).read_bytes() == seen["before"], f"the previous {target} was changed"
    ref_rows = metrics_rows(refs / "mlp-torch" / "metrics.csv")
    if (out / "metrics.csv").exists():
        rows = metrics_rows(out / "metrics.csv")
        assert rows == ref_rows[:len(rows)]
    if (out / "checkpoint.pt").exists():
        st = load_checkpoint(out / "checkpoint.pt")
        assert 0 < st["step"] and len(st["rows"]) <= len(ref_rows)
    assert main([*argv, "--out", str(out), "--resume"]) == 0
    _assert_same_result(refs / "mlp-torch", out)


def test_written_files_are_readable_like_any_file(refs):
    """Atomic writes go through mkstemp (mode 0600); the run's files get the mode open() would give."""
    umask = os.umask(0)
    os.umask(umask)
    for name in ("config.json", "metrics.csv", "summary.json", "checkpoint.pt", "decision_grid.npz"):
        mode = (refs / "mlp-torch" / name).stat().st_mode & 0o777
        assert mode == 0o666 & ~umask, f"{name}: {oct(mode)}"
