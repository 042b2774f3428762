"""Downloads against a real HTTP server on 127.0.0.1: full, resumed (Range), Range ignored, md5 refused."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

import fakes
from fakes import FAKE_SIZES, make_fake_cifar
from nnlab.data import download as dl
from nnlab.data.cifar10 import load_cifar10
from nnlab.data.download import OFFICIAL_MD5, OFFICIAL_URL, download_cifar10, download_file, md5_file
from nnlab.errors import ConfigError, DataError


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` with single-range ``Range: bytes=a-`` support, logging every request.

    ``server.ignore_range``: answer 200 with the whole body anyway. ``server.cut_after``: send the
    full Content-Length header but close the connection after that many body bytes.
    """

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        srv = self.server
        rng = self.headers.get("Range")
        srv.log.append((self.path, rng))
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        if rng and not srv.ignore_range:
            assert rng.startswith("bytes=") and rng.endswith("-"), rng  # the only form the client sends
            start = int(rng[len("bytes="):-1])
            if start >= len(body):
                srv.statuses.append(416)  # before the reply: the client may check statuses as soon as it has it
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            srv.statuses.append(206)
        else:
            self.send_response(200)
            srv.statuses.append(200)
        payload = body[start:]
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Accept-Ranges", "none" if srv.ignore_range else "bytes")
        self.end_headers()
        if srv.cut_after is not None:
            self.wfile.write(payload[:srv.cut_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)  # talk to 127.0.0.1 directly
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.files, srv.log, srv.statuses = {}, [], []
    srv.ignore_range, srv.cut_after = False, None
    srv.url = lambda path: f"http://127.0.0.1:{srv.server_address[1]}{path}"
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    t.join(timeout=5)


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
