"""Download CIFAR-10 (or any file) over HTTP(S): resumable, md5-verified, renamed into place atomically.

The bytes go to ``<dest>.part``; an interrupted download is resumed with an HTTP ``Range`` request
(a server that ignores it and answers 200 makes us start over); the whole file's md5 must match
before ``<dest>.part`` is renamed to ``<dest>``, so ``<dest>`` is either absent or verified.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .._io import check_progress, progress_bar
from ..errors import DataError, check

__all__ = ["OFFICIAL_URL", "OFFICIAL_MD5", "md5_file", "download_file", "download_cifar10"]

# The "CIFAR-10 python version" from its authors' page, https://www.cs.toronto.edu/~kriz/cifar.html
OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"

_MD5_RE = re.compile(r"^[0-9a-fA-F]{32}$")
_CONTENT_RANGE_RE = re.compile(r"^bytes\s+(\d+)-(\d+)/(\d+|\*)$")


def md5_file(path, chunk: int = 1 << 20) -> str:
    """Hex md5 of a file, read in ``chunk``-byte pieces."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def _check_args(url, md5, chunk) -> None:
    problems = []
    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        problems.append(f"url must be an http:// or https:// URL, got {url!r}")
    if not isinstance(md5, str) or not _MD5_RE.match(md5):
        problems.append(f"md5 must be 32 hexadecimal digits, got {md5!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk <= 0:
        problems.append(f"chunk must be a positive integer (bytes), got {chunk!r}")
    check(problems, what="download")


def _progress_mode(progress) -> str:
    """``auto | on | off`` (``nnlab._io.progress_enabled``); ``True``/``False`` (older callers) mean auto/off."""
    if isinstance(progress, bool):
        return "auto" if progress else "off"
    return check_progress(progress, "progress")


def _progress_bar(total, initial, name, mode: str):
    return progress_bar(mode=mode, total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                        desc=name, leave=False)


def download_file(url: str, dest, *, md5: str, progress: str | bool = "auto", chunk: int = 1 << 20,
                  timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest + ".part"``, and verify ``md5``. Returns ``dest``.

    ``progress``: a tqdm bar on stderr: ``auto`` (only when stderr is a terminal), ``on``, ``off``; ``True``
    means ``auto``, ``False`` ``off``. ``chunk``: bytes per read. ``timeout``: seconds a connection may stay silent. A wrong md5 deletes the downloaded file
    and raises ``DataError`` naming the expected and actual md5. A dropped connection keeps the
    ``.part`` file and raises ``DataError``: rerun to resume.
    """
    _check_args(url, md5, chunk)
    progress = _progress_mode(progress)
    md5 = md5.lower()
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the folder {dest.parent} ({e.strerror or e})") from None

    for _attempt in range(2):  # a second attempt only after discarding a .part that cannot be resumed
        offset = part.stat().st_size if part.is_file() else 0
        headers = {"User-Agent": "nnlab (python urllib)"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and offset:  # nothing left past `offset`: the .part is complete or bogus
                e.close()
                if md5_file(part) == md5:
                    os.replace(part, dest)
                    return dest
                part.unlink()
                continue
            raise DataError(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", e)
            raise DataError(f"download of {url} failed: {reason}; check the URL and the network, or download "
                            f"the file yourself and put it at {dest}") from None

        with resp:
            resumed = False
            if offset and resp.status == 206:
                m = _CONTENT_RANGE_RE.match(resp.headers.get("Content-Range", "").strip())
                if not m or int(m.group(1)) != offset:  # not the range we asked for: start over
                    part.unlink()
                    continue
                resumed = True
            elif resp.status != 200:
                raise DataError(f"download of {url} failed: unexpected HTTP status {resp.status}")
            # 200 with a Range request: the server ignored it and sends the whole file (restart).
            start = offset if resumed else 0
            length = resp.headers.get("Content-Length")
            total = start + int(length) if length and length.isdigit() else None
            h = hashlib.md5()
            if resumed:
                with open(part, "rb") as f:
                    while b := f.read(chunk):
                        h.update(b)
            received = 0
            try:
                with open(part, "ab" if resumed else "wb") as f, _progress_bar(total, start, dest.name, progress) as bar:
                    while b := resp.read(chunk):
                        f.write(b)
                        h.update(b)
                        received += len(b)
                        bar.update(len(b))
            except (OSError, http.client.HTTPException) as e:
                if isinstance(e, OSError) and e.errno in (28, 13, 30, 122):  # disk full, permissions: not the network
                    raise DataError(f"cannot write {part} ({e.strerror})") from None
                raise DataError(f"download of {url} interrupted after {start + received} bytes ({e}); "
                                f"rerun to resume from {part}") from None
        if total is not None and start + received < total:
            raise DataError(f"download of {url} interrupted at {start + received} of {total} bytes; "
                            f"rerun to resume from {part}")
        actual = h.hexdigest()
        if actual != md5:
            part.unlink(missing_ok=True)
            raise DataError(f"md5 mismatch for {url}: expected {md5}, got {actual}; the file was deleted "
                            f"(a corrupt download, a wrong mirror, or a wrong --md5)")
        os.replace(part, dest)
        return dest
    raise DataError(f"download of {url} failed: the server does not resume {part} consistently; delete it and retry")


def download_cifar10(data_dir=None, *, url: str = OFFICIAL_URL, md5: str = OFFICIAL_MD5,
                     progress: str | bool = "auto") -> Path:
    """Download ``cifar-10-python.tar.gz`` into the data folder (see ``resolve_data_dir``); return its path.

    An archive already there with the right md5 is kept (no network). One with another md5 is not
    overwritten: the error says so and how to proceed.
    """
    from .cifar10 import ARCHIVE_NAME, resolve_data_dir

    url = OFFICIAL_URL if url is None else url
    md5 = OFFICIAL_MD5 if md5 is None else md5
    _check_args(url, md5, 1)
    _progress_mode(progress)
    dest = resolve_data_dir(data_dir) / ARCHIVE_NAME
    if dest.is_file():
        actual = md5_file(dest)
        if actual == md5.lower():
            return dest
        raise DataError(f"{dest} already exists with md5 {actual}, not {md5.lower()}; loading it does not need the "
                        f"official checksum (its contents are validated), or delete it to download again")
    return download_file(url, dest, md5=md5, progress=progress)
