"""Downloads against a real HTTP server on 127.0.0.1: full, resumed (Range), Range ignored, md5 refused.

The server is the ``server`` fixture of tests/conftest.py (shared with experiments/test_reproduce_download.py)."""

from __future__ import annotations

import hashlib

import pytest

import fakes
from fakes import FAKE_SIZES, make_fake_cifar
from nnlab.data import download as dl
from nnlab.data.cifar10 import load_cifar10
from nnlab.data.download import OFFICIAL_MD5, OFFICIAL_URL, download_cifar10, download_file, md5_file
from nnlab.errors import ConfigError, DataError


@pytest.fixture
def archive(tmp_path):
    """The bytes and md5 of a small CIFAR-10 archive in the official layout."""
    data = (make_fake_cifar(tmp_path / "src") / fakes.ARCHIVE).read_bytes()
    return data, hashlib.md5(data).hexdigest()


def test_full_download(server, archive, tmp_path):
    data, md5 = archive
    server.files["/c.tar.gz"] = data
    dest = tmp_path / "out" / "c.tar.gz"
    assert download_file(server.url("/c.tar.gz"), dest, md5=md5, progress=False, chunk=1000) == dest
    assert dest.read_bytes() == data
    assert not (tmp_path / "out" / "c.tar.gz.part").exists()
    assert server.log == [("/c.tar.gz", None)] and server.statuses == [200]


def test_resumes_a_partial_download_with_a_range_request(server, archive, tmp_path):
    data, md5 = archive
    server.files["/c.tar.gz"] = data
    dest = tmp_path / "c.tar.gz"
    k = len(data) // 3
    (tmp_path / "c.tar.gz.part").write_bytes(data[:k])
    download_file(server.url("/c.tar.gz"), dest, md5=md5, progress=False)
    assert dest.read_bytes() == data
    assert server.log == [("/c.tar.gz", f"bytes={k}-")] and server.statuses == [206]


def test_server_that_ignores_range_restarts_from_zero(server, archive, tmp_path):
    data, md5 = archive
    server.files["/c.tar.gz"] = data
    server.ignore_range = True
    dest = tmp_path / "c.tar.gz"
    (tmp_path / "c.tar.gz.part").write_bytes(data[:100])
    download_file(server.url("/c.tar.gz"), dest, md5=md5, progress=False)
    assert dest.read_bytes() == data  # not data[:100] + data
    assert server.log == [("/c.tar.gz", "bytes=100-")] and server.statuses == [200]


def test_interrupted_download_keeps_the_part_and_a_rerun_resumes(server, archive, tmp_path):
    data, md5 = archive
    server.files["/c.tar.gz"] = data
    server.cut_after = 1500
    dest = tmp_path / "c.tar.gz"
    with pytest.raises(DataError, match="interrupted .*rerun to resume"):
        download_file(server.url("/c.tar.gz"), dest, md5=md5, progress=False, chunk=512)
    assert not dest.exists() and (tmp_path / "c.tar.gz.part").read_bytes() == data[:1500]
    server.cut_after = None
    download_file(server.url("/c.tar.gz"), dest, md5=md5, progress=False)
    assert dest.read_bytes() == data
    assert server.log[-1] == ("/c.tar.gz", "bytes=1500-") and server.statuses[-1] == 206


def test_md5_mismatch_is_refused_and_the_file_deleted(server, archive, tmp_path):
    data, md5 = archive
    server.files["/c.tar.gz"] = data
    dest = tmp_path / "c.tar.gz"
    wrong = "0" * 32
    with pytest.raises(DataError, match=f"md5 mismatch for .*/c.tar.gz: expected {wrong}, got {md5}"):
        download_file(server.url("/c.tar.gz"), dest, md5=wrong, progress=False)
    assert not dest.exists() and not (tmp_path / "c.tar.gz.part").exists()


def test_a_corrupt_partial_file_fails_the_md5_and_is_deleted(server, archive, tmp_path):
    data, md5 = archive
    server.files["/c.tar.gz"] = data
    dest = tmp_path / "c.tar.gz"
    (tmp_path / "c.tar.gz.part").write_bytes(b"x" * 50)  # not a prefix of the file
    with pytest.raises(DataError, match="md5 mismatch"):
        download_file(server.url("/c.tar.gz"), dest, md5=md5, progress=False)
    assert not (tmp_path / "c.tar.gz.part").exists() and not dest.exists()
    download_file(server.url("/c.tar.gz"), dest, md5=md5, progress=False)  # the rerun starts clean
    assert dest.read_bytes() == data


def test_complete_part_file_answered_416_is_finished(server, archive, tmp_path):
    data, md5 = archive
    server.files["/c.tar.gz"] = data
    dest = tmp_path / "c.tar.gz"
    (tmp_path / "c.tar.gz.part").write_bytes(data)
    download_file(server.url("/c.tar.gz"), dest, md5=md5, progress=False)
    assert dest.read_bytes() == data and server.statuses == [416]


def test_http_errors_and_bad_arguments(server, tmp_path):
    with pytest.raises(DataError, match="HTTP 404"):
        download_file(server.url("/missing"), tmp_path / "x", md5="0" * 32, progress=False)
    with pytest.raises(ConfigError, match="http:// or https://"):
        download_file("ftp://example.org/x", tmp_path / "x", md5="0" * 32)
    with pytest.raises(ConfigError, match="32 hexadecimal digits"):
        download_file(server.url("/x"), tmp_path / "x", md5="abc")
    with pytest.raises(ConfigError, match="chunk"):
        download_file(server.url("/x"), tmp_path / "x", md5="0" * 32, chunk=0)
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    with pytest.raises(DataError, match="download of .* failed"):
        download_file(f"http://127.0.0.1:{port}/x", tmp_path / "x", md5="0" * 32, progress=False, timeout=5)


def test_progress_bar_is_off_without_a_terminal(server, archive, tmp_path, capsys):
    data, md5 = archive
    server.files["/c.tar.gz"] = data
    download_file(server.url("/c.tar.gz"), tmp_path / "c.tar.gz", md5=md5, progress=True)
    assert capsys.readouterr().err == ""


def test_download_cifar10_then_load(server, archive, tmp_path, monkeypatch):
    data, md5 = archive
    server.files["/cifar-10-python.tar.gz"] = data
    monkeypatch.setenv("NNLAB_DATA_DIR", str(tmp_path / "data_home"))
    dest = download_cifar10(url=server.url("/cifar-10-python.tar.gz"), md5=md5, progress=False)
    assert dest == tmp_path / "data_home" / "cifar-10-python.tar.gz" and md5_file(dest) == md5
    a = load_cifar10(expected_sizes=FAKE_SIZES)
    assert a.train_x.shape == (100, 3, 32, 32) and a.md5 == md5
    # Already there with the right md5: no request at all.
    assert download_cifar10(url=server.url("/cifar-10-python.tar.gz"), md5=md5, progress=False) == dest
    assert len(server.log) == 1


def test_download_cifar10_does_not_overwrite_another_archive(server, archive, tmp_path):
    data, md5 = archive
    server.files["/cifar-10-python.tar.gz"] = data
    d = tmp_path / "d"
    d.mkdir()
    (d / "cifar-10-python.tar.gz").write_bytes(b"someone else's archive")
    with pytest.raises(DataError, match="already exists with md5 .* not " + md5):
        download_cifar10(d, url=server.url("/cifar-10-python.tar.gz"), md5=md5, progress=False)
    assert (d / "cifar-10-python.tar.gz").read_bytes() == b"someone else's archive" and server.log == []


def test_official_source():
    assert OFFICIAL_URL == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert OFFICIAL_MD5 == "c58f30108f718f92721af3b95e74349a"
    assert dl.download_cifar10.__kwdefaults__ == {"url": OFFICIAL_URL, "md5": OFFICIAL_MD5, "progress": "auto"}
