"""The run folder: a lock against a second writer, the metrics CSV, JSON files and provenance.

Every file is written with the package's one atomic write (``nnlab._io.atomic_write_bytes``: a temporary
name in the same folder, fsync, rename), so a crash at any moment leaves either the old file or the new one,
never half of one (plus, after a ``kill -9``, a ``.<name>.*.tmp`` file, removed by the next process that takes
the folder's lock).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from pathlib import Path

import numpy as np

from .. import __version__
from .._io import TEMP_GLOB, atomic_write_bytes, atomic_write_text  # noqa: F401 - re-exported: callers import them here
from ..errors import ConfigError, RunLockedError

METRIC_COLUMNS = (
    "epoch", "step", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
    "test_loss", "test_accuracy", "lr", "seconds",
)


def write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_metrics_csv(path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(METRIC_COLUMNS), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else _fmt(r.get(k))) for k in METRIC_COLUMNS})
    atomic_write_text(path, buf.getvalue())


def _fmt(v):
    if isinstance(v, float):
        return repr(v)
    return v


def git_commit() -> str | None:
    """The commit of the source tree, if it is a git checkout (provenance for every result)."""
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if out.returncode == 0:
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def provenance() -> dict:
    import platform

    return {"nnlab_version": __version__, "git_commit": git_commit(), "python": platform.python_version()}


class RunDir:
    """A run folder owned by one process at a time (an advisory ``flock`` on ``.lock``)."""

    def __init__(self, path: str | os.PathLike, *, lock: bool = True):
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot create output folder {str(self.path)!r}: {e.strerror or e}") from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise ConfigError(f"output folder {str(self.path)!r} is not writable")
        self._lock_fd = None
        if lock:
            self._acquire()

    def _acquire(self):
        import fcntl

        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunLockedError(
                f"another nnlab process is using {str(self.path)!r} (its .lock is held); "
                "wait for it to finish or choose another --out") from None
        self._lock_fd = fd
        self._remove_stale_temps()

    def _remove_stale_temps(self):
        """Remove temp files of writers killed mid-write (``kill -9``, power loss): we hold the lock, so no
        writer of this folder is alive. The files they were replacing are intact (renames are atomic)."""
        for p in self.path.glob(TEMP_GLOB):
            try:
                if p.is_file() and not p.is_symlink():
                    p.unlink()
            except OSError:
                pass

    def release(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def file(self, name: str) -> Path:
        return self.path / name
