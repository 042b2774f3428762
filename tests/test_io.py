"""nnlab._io: the one atomic file write and the one progress rule (used by train/, data/ and report/)."""

from __future__ import annotations

import errno
import os
import stat
import sys

import pytest

from nnlab import _io
from nnlab.errors import ConfigError


def _temps(folder):
    return sorted(p.name for p in folder.glob(_io.TEMP_GLOB))


def test_atomic_write_replaces_whole_with_the_usual_mode_and_no_temp(tmp_path):
    path = tmp_path / "a.json"
    _io.atomic_write_text(path, "old\n")
    _io.atomic_write_bytes(path, b"new\n")
    assert path.read_bytes() == b"new\n" and _temps(tmp_path) == []
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # as open(path, "w"), not mkstemp's 0600


def test_a_failed_write_keeps_the_old_file_removes_its_temp_and_names_the_target(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"last good")

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError) as info:
        _io.atomic_write_bytes(path, b"half")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert path.read_bytes() == b"last good" and _temps(tmp_path) == []


def test_every_writer_uses_the_one_atomic_write():
    """The run folder, checkpoints and figures share it (one place for each kind of thing)."""
    from nnlab.report import plots
    from nnlab.train import checkpoint, runfolder

    assert runfolder.atomic_write_bytes is _io.atomic_write_bytes and runfolder.TEMP_GLOB == _io.TEMP_GLOB
    assert checkpoint.atomic_write_bytes is _io.atomic_write_bytes and plots.atomic_write_bytes is _io.atomic_write_bytes


@pytest.mark.parametrize("tty", [True, False])
def test_the_progress_rule(monkeypatch, tty):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty, raising=False)
    assert _io.progress_enabled("on") is True
    assert _io.progress_enabled("off") is False
    assert _io.progress_enabled("auto") is tty
    bar = _io.progress_bar(range(3), mode="auto", desc="x")
    assert bar.disable is (not tty) and list(bar) == [0, 1, 2]


def test_unknown_progress_mode_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"^unknown --progress 'loud'; valid: auto, on, off$"):
        _io.progress_enabled("loud")
    assert _io.check_progress("off") == "off"


def test_download_takes_the_progress_modes_and_the_old_booleans():
    from nnlab.data.download import _progress_mode

    assert [_progress_mode(v) for v in (True, False, "auto", "on", "off")] == ["auto", "off", "auto", "on", "off"]
    with pytest.raises(ConfigError, match="unknown progress 'yes'"):
        _progress_mode("yes")
