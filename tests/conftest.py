"""Shared fixtures, for every folder under tests/. The fake CIFAR-10 builder lives in ``tests/fakes.py`` so it is
importable too (``from fakes import ...``: this folder is put on ``sys.path`` below)."""

from __future__ import annotations

import http.server
import os
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # `from fakes import ...` whatever the import mode

from fakes import make_fake_cifar as _make_fake_cifar  # noqa: E402


@pytest.fixture
def make_fake_cifar():
    """The builder itself: ``make_fake_cifar(tmp_path, n_train_per_batch=20, n_test=20, as_tar=True, corrupt=None)``."""
    return _make_fake_cifar


@pytest.fixture
def fake_cifar_dir(tmp_path) -> Path:
    """A valid small CIFAR-10 archive (5 x 20 training, 20 test images): the data folder holding it.

    Load it with ``load_cifar10(fake_cifar_dir, expected_sizes=fakes.FAKE_SIZES)``.
    """
    return _make_fake_cifar(tmp_path)


@pytest.fixture(scope="session")
def cifar_data_dir() -> Path:
    """The real CIFAR-10 folder from $NNLAB_DATA_DIR; the test is skipped when it is not set up."""
    d = os.environ.get("NNLAB_DATA_DIR")
    if not d:
        pytest.skip("real CIFAR-10 not configured: set NNLAB_DATA_DIR to a folder holding cifar-10-python.tar.gz")
    p = Path(d).expanduser()
    if not ((p / "cifar-10-python.tar.gz").is_file() or (p / "cifar-10-batches-py").is_dir()):
        pytest.skip(f"NNLAB_DATA_DIR={d} holds neither cifar-10-python.tar.gz nor cifar-10-batches-py/")
    return p


@pytest.fixture(scope="session")
def cifar_cache_dir(tmp_path_factory) -> Path:
    """One cache folder for the whole session, so the real archive is decoded at most once per run."""
    return tmp_path_factory.mktemp("nnlab_cache")


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
    """A local HTTP server on 127.0.0.1 serving ``server.files`` (path -> bytes); ``server.url(path)``, ``server.log``
    (path, Range header) and ``server.statuses`` per request. Used by data/test_download.py and
    experiments/test_reproduce_download.py."""
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
