"""Output that every layer shares: the one atomic file write and the one progress-bar rule.

It sits at the top of the package, below every layer (``numpy_nn``, ``data``, ``train``, ``report`` may all
import it), and imports nothing but the standard library and, lazily, tqdm.

Atomic write: a file is written whole to a temporary name in the same folder (``.<name>.<random>.tmp``),
fsynced, then renamed over the target, so a crash at any moment leaves either the old file or the new one,
never half of one (plus, after a ``kill -9``, the temp file: :data:`TEMP_GLOB` finds it, and the next owner of a
run folder removes it).

Progress: ``on`` always shows a bar, ``off`` never, ``auto`` only when stderr is a terminal (so logs and
pipes stay clean).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

__all__ = ["PROGRESS_MODES", "TEMP_GLOB", "atomic_write_bytes", "atomic_write_text", "check_progress",
           "progress_bar", "progress_enabled"]

#: temporary files of :func:`atomic_write_bytes`: ``.<target name>.<random>.tmp``
TEMP_GLOB = ".*.tmp"


def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` would, racing other threads)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


#: mode of every file written here: what ``open(path, "w")`` would give (mkstemp alone makes 0600)
_FILE_MODE = 0o666 & ~_umask()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all: a temp file in the same folder, fsync, rename.

    A failure (a full disk, a read-only folder) removes the temp file, leaves any previous ``path``
    untouched and raises ``OSError`` naming ``path``. A process killed in between leaves the old file and a
    temp file (:data:`TEMP_GLOB`), which the next ``nnlab.train.runfolder.RunDir`` owner removes.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _FILE_MODE)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(e, OSError) and e.errno is not None and e.filename != str(path):
            # say which file could not be written (ENOSPC from write/fsync carries no name; mkstemp's names the temp)
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


#: values of every ``--progress`` flag and ``progress=`` argument
PROGRESS_MODES = ("auto", "on", "off")


def check_progress(mode, name: str = "--progress") -> str:
    """``mode`` if it is one of :data:`PROGRESS_MODES`; else a ``ConfigError`` that lists them."""
    if mode not in PROGRESS_MODES:
        from .errors import ConfigError

        raise ConfigError(f"unknown {name} {mode!r}; valid: {', '.join(PROGRESS_MODES)}")
    return mode


def progress_enabled(mode: str) -> bool:
    """The one progress rule: ``on`` -> True, ``off`` -> False, ``auto`` -> whether stderr is a terminal."""
    return check_progress(mode) == "on" or (mode == "auto" and sys.stderr.isatty())


def progress_bar(iterable=None, *, mode: str, **tqdm_kwargs):
    """A tqdm bar on stderr, shown per :func:`progress_enabled` (a disabled bar still counts and closes)."""
    from tqdm import tqdm  # lazily: `nnlab --help` does not pay for it

    return tqdm(iterable, disable=not progress_enabled(mode), **tqdm_kwargs)
