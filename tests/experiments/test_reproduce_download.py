"""``nnlab reproduce`` fetches CIFAR-10 when it is missing (like ``download=True``), against a local HTTP server.

The whole pipeline with a failed download is covered by ``test_reproduce.py`` (its first call); here the fetch step
itself: a good download makes the sections runnable, a refused (``--no-download``), failed or corrupt one skips them
with the reason, and never leaves a file that a later run would take for the data set.
"""

from __future__ import annotations

import hashlib

import pytest

import fakes
from fakes import make_fake_cifar
from nnlab.cli import main
from nnlab.data import download as dl
from nnlab.data.cifar10 import ARCHIVE_NAME, load_cifar10
from nnlab.experiments import reproduce as rp


@pytest.fixture
def archive(tmp_path, monkeypatch):
    data = (make_fake_cifar(tmp_path / "src") / fakes.ARCHIVE).read_bytes()
    monkeypatch.setattr(dl, "OFFICIAL_MD5", hashlib.md5(data).hexdigest())  # the fake stands in for the official file
    monkeypatch.setenv("NNLAB_CACHE_DIR", str(tmp_path / "cache"))
    return data


def _missing(data_dir) -> str:
    reason = rp._cifar_available(data_dir)
    assert reason is not None
    return reason


def test_missing_data_is_downloaded_verified_and_then_found(server, archive, tmp_path, capsys):
    server.files["/c.tar.gz"] = archive
    data_dir = tmp_path / "data"
    assert rp._fetch_cifar(data_dir, _missing(data_dir), download=True, url=server.url("/c.tar.gz"), progress="off") is None
    assert (data_dir / ARCHIVE_NAME).read_bytes() == archive and not list(data_dir.glob("*.part"))
    assert len(load_cifar10(data_dir, expected_sizes=None).test_y) == 20
    err = capsys.readouterr().err
    assert "downloading" in err and "md5 verified" in err and "CIFAR-10 ready" in err


def test_no_download_skips_without_touching_the_network(server, archive, tmp_path):
    data_dir = tmp_path / "data"
    reason = rp._fetch_cifar(data_dir, _missing(data_dir), download=False, url=server.url("/c.tar.gz"), progress="off")
    assert "--no-download" in reason and "CIFAR-10 not found" in reason
    assert server.log == [] and not data_dir.exists()


@pytest.mark.parametrize("fault", ["404", "corrupt", "cut"])
def test_a_failed_download_skips_and_leaves_nothing_taken_for_the_data(server, archive, tmp_path, fault, capsys):
    data_dir = tmp_path / "data"
    if fault != "404":
        server.files["/c.tar.gz"] = archive[:-10] + b"x" * 10 if fault == "corrupt" else archive
    if fault == "cut":
        server.cut_after = len(archive) // 2
    reason = rp._fetch_cifar(data_dir, _missing(data_dir), download=True, url=server.url("/c.tar.gz"), progress="off")
    assert "download failed" in reason.lower() or "md5 mismatch" in reason or "interrupted" in reason
    assert not (data_dir / ARCHIVE_NAME).exists()  # no archive a later run would mistake for a good one
    assert rp._cifar_available(data_dir) is not None
    assert "sections are skipped" in capsys.readouterr().err
    if fault == "cut":  # a rerun resumes the partial download and then succeeds
        server.cut_after = None
        assert rp._fetch_cifar(data_dir, _missing(data_dir), download=True, url=server.url("/c.tar.gz"), progress="off") is None
        assert (data_dir / ARCHIVE_NAME).read_bytes() == archive


def test_reproduce_help_documents_the_download_flags(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    out = capsys.readouterr().out
    assert "--no-download" in out and "--url" in out and "md5" in out
