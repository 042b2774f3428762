"""CIFAR-10 from the official "python version" archive: found, validated, decoded once, cached.

Where the data is (:func:`resolve_data_dir`): the ``data_dir`` argument, else ``$NNLAB_DATA_DIR``,
else ``./data``. That folder holds the official ``cifar-10-python.tar.gz`` or its extracted
``cifar-10-batches-py/`` (``data_batch_1`` … ``data_batch_5``, ``test_batch``, ``batches.meta``).

How it is read: the archive is streamed with :mod:`tarfile` and each batch is unpickled straight from
the stream by :func:`nnlab.data.safe_pickle.safe_load` (numpy globals only). Nothing is extracted to
disk, so member names such as ``../../x``, absolute paths or links cannot write anywhere; members are
picked by exact name and must be regular files. Every batch is validated (dict, ``b"data"`` uint8
``(n, 3072)``, ``b"labels"`` ints 0–9 with one per row, totals ``expected_sizes``) and errors are
:class:`~nnlab.errors.DataError` naming the file and what was wrong.

Cache: the decoded arrays are saved as ``.npy`` files in ``<cache root>/<key>/`` (written in a
temporary folder, then renamed into place, so a reader never sees half a cache). The key is a hash of
the source's path, size and mtime (a ``stat``, not a 170 MB hash); the archive's md5 is computed once,
while it is first decoded, and recorded in ``meta.json``. The cache root is ``cache_dir``, else
``$NNLAB_CACHE_DIR``, else ``<data_dir>/.nnlab_cache``, else (read-only data folder: no write
permission, or no ``w`` mode bit, which root would ignore) ``$XDG_CACHE_HOME/nnlab`` or
``~/.cache/nnlab``. Loading the cached 60,000 images is one ``np.load`` per array.

A data folder named by a file rather than by the user (a checkpoint's recorded config, in ``nnlab evaluate``)
comes as a :class:`ReadOnlyDataDir`: the data set in it is read, and nothing in that folder is ever written,
pruned or deleted (its ``.nnlab_cache`` is not even read); the cache goes to ``$NNLAB_CACHE_DIR`` or the user
cache folder. An extracted folder's batch files are capped in size like the archive's members.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import time
import warnings
import zlib
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import ConfigError, DataError, check
from .safe_pickle import safe_load

__all__ = [
    "ARCHIVE_NAME", "FOLDER_NAME", "CLASS_NAMES", "MEAN", "STD", "DATA_DIR_ENV", "CACHE_DIR_ENV",
    "Cifar10Arrays", "ReadOnlyDataDir", "resolve_data_dir", "find_cifar10", "read_cifar10", "load_cifar10",
    "split_train_val",
]

ARCHIVE_NAME = "cifar-10-python.tar.gz"
FOLDER_NAME = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
REQUIRED_FILES = TRAIN_BATCHES + (TEST_BATCH, META_FILE)

DATA_DIR_ENV = "NNLAB_DATA_DIR"
CACHE_DIR_ENV = "NNLAB_CACHE_DIR"


def _download_hint(folder) -> str:
    return (f"get it with `nnlab data download cifar10 --data-dir {folder}`, or point --data-dir or "
            f"${DATA_DIR_ENV} at a folder that holds {ARCHIVE_NAME} or {FOLDER_NAME}/")


# In batches.meta order (label i is CLASS_NAMES[i]).
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Per-channel (R, G, B) mean and std of the 50,000 training images, pixels scaled to [0, 1], over all
# pixels of the split (the figures published with CIFAR-10 training recipes, e.g. airbench; recomputed
# from the data set in tests/data/test_cifar10.py). Not (0.2023, 0.1994, 0.2010), the mean of per-image stds
# that some repositories copy.
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)

IMAGE_SHAPE = (3, 32, 32)  # (C, H, W); a row of b"data" is 1024 R, then 1024 G, then 1024 B values, row-major
ROW_LEN = 3 * 32 * 32
N_CLASSES = 10
CACHE_VERSION = 1
MAX_MEMBER_BYTES = 256 << 20  # a real batch is ~31 MB; refuse absurd members/files before reading them


class ReadOnlyDataDir(str):
    """A data folder named by a file (a checkpoint's config), not by the user: :func:`load_cifar10` reads the
    data set in it and never writes, prunes or deletes anything there (the cache goes to ``$NNLAB_CACHE_DIR``
    or the user cache folder). A crafted file could otherwise make nnlab write into any folder it names."""

    __slots__ = ()


@dataclass(frozen=True, eq=False)
class Cifar10Arrays:
    """The decoded data set (numpy arrays, host memory).

    ``train_x``/``test_x``: uint8 ``(N, 3, 32, 32)``; ``train_y``/``test_y``: int64 ``(N,)`` in 0..9;
    ``class_names``: the 10 names from ``batches.meta``; ``source``: the archive or folder read;
    ``md5``: the archive's md5 (None for an extracted folder).
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    class_names: list[str] = field(default_factory=lambda: list(CLASS_NAMES))
    source: str = ""
    md5: str | None = None

    def __repr__(self) -> str:
        return (f"Cifar10Arrays(train={tuple(self.train_x.shape)}, test={tuple(self.test_x.shape)}, "
                f"classes={len(self.class_names)}, source={self.source!r})")


# ----------------------------------------------------------------------------------------------------
# Where the data is


def resolve_data_dir(data_dir=None) -> Path:
    """The data folder: ``data_dir`` if given, else ``$NNLAB_DATA_DIR``, else ``./data`` (absolute path).

    Does not check that the folder exists (a download creates it); :func:`find_cifar10` does.
    """
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV) or "data"
    if not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be a path (str or os.PathLike) or None, got {type(data_dir).__name__}")
    return Path(data_dir).expanduser().absolute()


def _how_chosen(data_dir) -> str:
    if data_dir is not None:
        return "the data_dir argument / --data-dir"
    if os.environ.get(DATA_DIR_ENV):
        return f"${DATA_DIR_ENV}"
    return f"the default ./data (set ${DATA_DIR_ENV} or pass --data-dir)"


def _holds_batches(folder: Path) -> bool:
    return any((folder / name).exists() for name in REQUIRED_FILES)


def find_cifar10(data_dir=None) -> Path:
    """The CIFAR-10 source inside the data folder: the ``.tar.gz`` archive or the extracted folder.

    Looks for ``<dir>/cifar-10-python.tar.gz`` (preferred: its md5 can be checked), then
    ``<dir>/cifar-10-batches-py/``. ``data_dir`` may also be the archive itself or the extracted
    folder itself. Raises ``DataError`` naming the folder searched and how to get the data.
    """
    folder = resolve_data_dir(data_dir)
    if folder.is_file():
        if folder.name.endswith((".tar.gz", ".tgz")):
            return folder
        raise DataError(f"{folder} is a file, not a CIFAR-10 archive (*.tar.gz) or a data folder; {_download_hint(folder.parent)}")
    archive, extracted = folder / ARCHIVE_NAME, folder / FOLDER_NAME
    if archive.is_file():
        return archive
    if extracted.is_dir():
        return extracted
    if folder.is_dir() and _holds_batches(folder):
        return folder
    if not folder.exists():
        state = "does not exist"
    elif not folder.is_dir():
        state = "is not a folder"
    elif not any(folder.iterdir()):
        state = "is empty"
    else:
        state = f"holds neither {ARCHIVE_NAME} nor {FOLDER_NAME}/"
    raise DataError(f"CIFAR-10 not found: data folder {folder} (from {_how_chosen(data_dir)}) {state}; {_download_hint(folder)}")


# ----------------------------------------------------------------------------------------------------
# Decoding and validation


def _get(d: dict, key: str):
    """CIFAR pickles have bytes keys (``encoding="bytes"``); accept str keys from re-pickled files too."""
    if key.encode() in d:
        return d[key.encode()]
    return d.get(key)


def _parse_batch(obj, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate one batch dict; return ``x`` uint8 ``(n, 3072)`` and ``y`` int64 ``(n,)``."""
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a dict with b'data' and b'labels', got {type(obj).__name__}")
    data, labels = _get(obj, "data"), _get(obj, "labels")
    if data is None or labels is None:
        keys = sorted(repr(k) for k in obj)
        raise DataError(f"{where}: missing b'data' or b'labels' (keys: {', '.join(keys) or 'none'})")
    if not isinstance(data, np.ndarray):
        raise DataError(f"{where}: b'data' must be a numpy array, got {type(data).__name__}")
    if data.dtype != np.uint8:
        raise DataError(f"{where}: b'data' must have dtype uint8, got {data.dtype}")
    if data.ndim != 2 or data.shape[1] != ROW_LEN or data.shape[0] == 0:
        raise DataError(f"{where}: b'data' must have shape (n, {ROW_LEN}) with n > 0 (32x32 RGB rows), got {data.shape}")
    try:
        y = np.asarray(labels)
    except (ValueError, TypeError) as e:
        raise DataError(f"{where}: b'labels' is not a list of ints ({e})") from None
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: b'labels' must be a flat list of ints, got dtype {y.dtype} and shape {y.shape}")
    if len(y) != data.shape[0]:
        raise DataError(f"{where}: {len(y)} labels for {data.shape[0]} images")
    if y.min() < 0 or y.max() >= N_CLASSES:
        bad = y[(y < 0) | (y >= N_CLASSES)]
        raise DataError(f"{where}: labels must be in 0..{N_CLASSES - 1}, got {bad[:5].tolist()} ({len(bad)} out of range)")
    return np.ascontiguousarray(data), y.astype(np.int64)


def _parse_meta(obj, where: str) -> list[str]:
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a dict with b'label_names', got {type(obj).__name__}")
    names = _get(obj, "label_names")
    if not isinstance(names, (list, tuple)) or len(names) != N_CLASSES:
        got = f"{len(names)} names" if isinstance(names, (list, tuple)) else type(names).__name__
        raise DataError(f"{where}: b'label_names' must list {N_CLASSES} class names, got {got}")
    out = []
    for n in names:
        if isinstance(n, bytes):
            n = n.decode("utf-8", "replace")
        if not isinstance(n, str):
            raise DataError(f"{where}: class names must be strings, got {type(n).__name__}")
        out.append(n)
    return out


class _HashingReader:
    """Read-through wrapper that md5-hashes every byte read (the archive is hashed while decoded)."""

    def __init__(self, raw):
        self.raw = raw
        self.md5 = hashlib.md5()

    def read(self, n=-1):
        b = self.raw.read(n)
        self.md5.update(b)
        return b

    def drain(self) -> str:
        while self.read(1 << 20):
            pass
        return self.md5.hexdigest()


def _read_tar(archive: Path) -> tuple[dict, str]:
    """Unpickle the required members straight from the gzip stream. Returns ({name: object}, md5)."""
    found: dict[str, object] = {}
    try:
        raw = open(archive, "rb")
    except OSError as e:
        raise DataError(f"{archive}: cannot open ({e.strerror or e})") from None
    try:
        with raw:
            reader = _HashingReader(raw)
            with tarfile.open(fileobj=reader, mode="r|gz", bufsize=1 << 20) as tf:
                for m in tf:
                    parts = PurePosixPath(m.name).parts
                    if parts[:1] == (".",):
                        parts = parts[1:]
                    if len(parts) != 2 or parts[0] != FOLDER_NAME or parts[1] not in REQUIRED_FILES:
                        continue  # readme.html and anything else: never read, never written
                    where = f"{archive}:{m.name}"
                    if not m.isreg():
                        raise DataError(f"{where}: must be a regular file, got a {_member_kind(m)}")
                    if parts[1] in found:
                        raise DataError(f"{where}: appears twice in the archive")
                    if m.size > MAX_MEMBER_BYTES:
                        raise DataError(f"{where}: {m.size} bytes, more than a CIFAR-10 batch can be ({MAX_MEMBER_BYTES})")
                    found[parts[1]] = safe_load(tf.extractfile(m), source=where)
            md5 = reader.drain()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        # gzip/tar framing errors, also when raised while a batch is being unpickled from the stream
        raise DataError(f"{archive}: cannot read the archive, truncated or corrupt ({type(e).__name__}: {e}); "
                        f"delete it and download it again") from None
    missing = [n for n in REQUIRED_FILES if n not in found]
    if missing:
        raise DataError(f"{archive}: missing {', '.join(FOLDER_NAME + '/' + n for n in missing)} "
                        f"(found {', '.join(sorted(found)) or 'none of the CIFAR-10 files'})")
    return found, md5


def _member_kind(m: tarfile.TarInfo) -> str:
    if m.issym():
        return f"symbolic link to {m.linkname!r}"
    if m.islnk():
        return f"hard link to {m.linkname!r}"
    if m.isdir():
        return "directory"
    return "special file"


def _read_folder(folder: Path) -> dict:
    missing = [n for n in REQUIRED_FILES if not (folder / n).is_file()]
    if missing:
        present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        state = "the folder is empty" if not present else f"found {', '.join(present[:12])}"
        raise DataError(f"{folder}: missing {', '.join(missing)} ({state}); {_download_hint(folder.parent)}")
    found = {}
    for name in REQUIRED_FILES:
        path = folder / name
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size > MAX_MEMBER_BYTES:
                    raise DataError(f"{path}: {size} bytes, more than a CIFAR-10 batch can be ({MAX_MEMBER_BYTES})")
                # bounded as well: a file that grows while read, or one whose size stat does not tell (/proc)
                found[name] = safe_load(f, source=str(path), max_bytes=MAX_MEMBER_BYTES)
        except OSError as e:
            raise DataError(f"{path}: cannot read ({e})") from None
    return found


def _check_sizes(n_train: int, n_test: int, expected_sizes, source) -> None:
    if expected_sizes is not None and (n_train, n_test) != tuple(expected_sizes):
        raise DataError(f"{source}: {n_train} training and {n_test} test images, expected "
                        f"{expected_sizes[0]} and {expected_sizes[1]} (pass expected_sizes=None or the "
                        f"sizes of a smaller archive to accept it)")


def _validate_expected_sizes(expected_sizes):
    if expected_sizes is None:
        return None
    ok = (isinstance(expected_sizes, (tuple, list)) and len(expected_sizes) == 2
          and all(isinstance(v, Integral) and not isinstance(v, bool) and v > 0 for v in expected_sizes))
    if not ok:
        raise ConfigError(f"expected_sizes must be None or (n_train, n_test) with positive integers, got {expected_sizes!r}")
    return (int(expected_sizes[0]), int(expected_sizes[1]))


def read_cifar10(source, *, expected_sizes=(50000, 10000), md5: str | None = None) -> Cifar10Arrays:
    """Decode and validate a CIFAR-10 archive or extracted folder, without any cache.

    ``expected_sizes``: (training images, test images), or None to accept any totals (the five
    training batches must still hold the same number of rows). ``md5``: if given, the archive's md5
    must match (checked while it is read).
    """
    expected_sizes = _validate_expected_sizes(expected_sizes)
    source = Path(source)
    if source.is_file():
        found, actual_md5 = _read_tar(source)
        if md5 is not None and actual_md5 != md5.lower():
            raise DataError(f"{source}: md5 is {actual_md5}, expected {md5}; the file is corrupt or another archive")
    else:
        found, actual_md5 = _read_folder(source), None

    def where(name):
        return f"{source}:{FOLDER_NAME}/{name}" if source.is_file() else str(source / name)

    train = [_parse_batch(found[n], where(n)) for n in TRAIN_BATCHES]
    rows = {n: len(y) for n, (_, y) in zip(TRAIN_BATCHES, train)}
    if len(set(rows.values())) != 1:
        raise DataError(f"{source}: training batches differ in size: {rows}")
    test_x, test_y = _parse_batch(found[TEST_BATCH], where(TEST_BATCH))
    class_names = _parse_meta(found[META_FILE], where(META_FILE))
    n_train = sum(rows.values())
    _check_sizes(n_train, len(test_y), expected_sizes, source)
    train_x = np.concatenate([x for x, _ in train]).reshape(-1, *IMAGE_SHAPE)  # (N, 3072) -> (N, 3, 32, 32)
    train_y = np.concatenate([y for _, y in train])
    return Cifar10Arrays(train_x, train_y, test_x.reshape(-1, *IMAGE_SHAPE), test_y, class_names,
                         str(source), actual_md5)


# ----------------------------------------------------------------------------------------------------
# Cache

_ARRAYS = ("train_x", "train_y", "test_x", "test_y")


def _fingerprint(source: Path) -> str:
    """Cache key from path, size and mtime of the source file(s): a stat, no hashing of the data."""
    files = [source] if source.is_file() else [source / n for n in REQUIRED_FILES]
    stats = []
    for p in files:
        try:
            st = p.stat()
            stats.append([str(p), st.st_size, st.st_mtime_ns])
        except OSError:
            stats.append([str(p), None, None])
    text = json.dumps([CACHE_VERSION, str(source), stats])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nnlab"


def _cache_roots(data_dir: Path, cache_dir, *, in_data_dir: bool = True) -> list[Path]:
    if cache_dir is not None:
        return [Path(cache_dir).expanduser().absolute()]
    if os.environ.get(CACHE_DIR_ENV):
        return [Path(os.environ[CACHE_DIR_ENV]).expanduser().absolute()]
    return [data_dir / ".nnlab_cache", _user_cache_dir()] if in_data_dir else [_user_cache_dir()]


def _may_write(root: Path) -> bool:
    """Whether to write a cache under ``root``: its nearest existing folder is writable, by access *and*
    by mode bits (root may write into a ``r-x`` folder, but such a shared data folder means "read-only")."""
    p = root
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return p.is_dir() and os.access(p, os.W_OK) and bool(p.stat().st_mode & 0o222)
    except OSError:
        return False


def _load_cache(entry: Path, mmap: bool) -> Cifar10Arrays | None:
    """The cached arrays, or None if the entry is absent; a damaged entry is removed and None returned."""
    meta_path = entry / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        arrs = {k: np.load(entry / f"{k}.npy", mmap_mode="r" if mmap else None, allow_pickle=False) for k in _ARRAYS}
        for split in ("train", "test"):
            x, y = arrs[f"{split}_x"], arrs[f"{split}_y"]
            n = meta[split]
            if x.dtype != np.uint8 or x.shape != (n, *IMAGE_SHAPE) or y.dtype != np.int64 or y.shape != (n,):
                raise ValueError(f"{split} arrays are {x.dtype}{x.shape} and {y.dtype}{y.shape}, meta says {n}")
            if n and (y.min() < 0 or y.max() >= N_CLASSES):
                raise ValueError(f"{split} labels out of range")
        names = meta["class_names"]
        if not isinstance(names, list) or len(names) != N_CLASSES:
            raise ValueError("class_names")
    except (OSError, ValueError, KeyError, TypeError) as e:
        warnings.warn(f"ignoring damaged CIFAR-10 cache {entry} ({e}); decoding the archive again", stacklevel=3)
        shutil.rmtree(entry, ignore_errors=True)
        return None
    return Cifar10Arrays(arrs["train_x"], arrs["train_y"], arrs["test_x"], arrs["test_y"], list(names),
                         meta.get("source", ""), meta.get("md5"))


def _write_cache(root: Path, key: str, arrays: Cifar10Arrays) -> Path:
    """Write the cache entry in a temporary folder, then rename it into place (atomic on POSIX)."""
    root.mkdir(parents=True, exist_ok=True)
    entry = root / key
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=root))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; a shared data folder's cache should stay readable
        for k in _ARRAYS:
            np.save(tmp / f"{k}.npy", np.ascontiguousarray(getattr(arrays, k)), allow_pickle=False)
        meta = {"version": CACHE_VERSION, "source": arrays.source, "md5": arrays.md5,
                "class_names": list(arrays.class_names), "train": int(len(arrays.train_y)),
                "test": int(len(arrays.test_y)), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            os.replace(tmp, entry)
        except OSError:
            if not (entry / "meta.json").is_file():  # not a concurrent writer that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune(root, keep=key, source=arrays.source)
    return entry


def _prune(root: Path, keep: str, source: str) -> None:
    """Remove older entries of the same source (archive replaced) and temp folders left by killed runs."""
    now = time.time()
    for p in root.iterdir():
        try:
            if p.name == keep or not p.is_dir():
                continue
            if p.name.startswith(".") and ".tmp-" in p.name:
                if now - p.stat().st_mtime > 3600:
                    shutil.rmtree(p, ignore_errors=True)
                continue
            meta = json.loads((p / "meta.json").read_text())
            if meta.get("source") == source:
                shutil.rmtree(p, ignore_errors=True)
        except (OSError, ValueError):
            continue


def load_cifar10(data_dir=None, *, expected_sizes=(50000, 10000), cache: bool = True, cache_dir=None,
                 mmap: bool = False, md5: str | None = None) -> Cifar10Arrays:
    """Load CIFAR-10 from ``data_dir`` (see :func:`resolve_data_dir`), decoding it once into a cache.

    ``expected_sizes``: (training, test) image counts that must be found, or None for any
    (small test archives). ``cache``: False decodes every time and writes nothing. ``cache_dir``: where
    the cache lives (default ``$NNLAB_CACHE_DIR``, else ``<data_dir>/.nnlab_cache``, else
    ``~/.cache/nnlab`` when the data folder is read-only). ``mmap``: memory-map the cached arrays
    (read-only). ``md5``: if given, the archive must have this md5 (checked when it is decoded, and
    against the md5 recorded in the cache). A :class:`ReadOnlyDataDir` is only read: the cache then never lives
    in (or is read from) that folder.
    """
    expected_sizes = _validate_expected_sizes(expected_sizes)
    source = find_cifar10(data_dir)
    folder = source.parent if source.is_file() or source.name == FOLDER_NAME else source  # the data folder
    if not cache:
        return read_cifar10(source, expected_sizes=expected_sizes, md5=md5)

    key = _fingerprint(source)
    roots = _cache_roots(folder, cache_dir, in_data_dir=not isinstance(data_dir, ReadOnlyDataDir))
    for root in roots:
        hit = _load_cache(root / key, mmap)
        if hit is not None:
            if md5 is not None and hit.md5 != md5.lower():
                raise DataError(f"{source}: md5 is {hit.md5}, expected {md5}; the file is corrupt or another archive")
            _check_sizes(len(hit.train_y), len(hit.test_y), expected_sizes, source)
            return hit

    arrays = read_cifar10(source, expected_sizes=expected_sizes, md5=md5)
    errors = []
    for root in roots:
        if not _may_write(root):
            errors.append(f"{root}: not writable")
            continue
        try:
            entry = _write_cache(root, key, arrays)
        except OSError as e:
            errors.append(f"{root}: {e.strerror or e}")
            continue
        if mmap:
            return _load_cache(entry, mmap=True) or arrays
        return arrays
    warnings.warn(f"could not write the CIFAR-10 cache ({'; '.join(errors)}); every load will decode "
                  f"{source} again; set {CACHE_DIR_ENV} to a writable folder", stacklevel=2)
    return arrays


# ----------------------------------------------------------------------------------------------------
# Validation split


def split_train_val(train_x, train_y, val_size: int = 5000, seed: int = 0, *, stratified: bool = True):
    """Split a training set into (train_x, train_y, val_x, val_y), seeded and in original order.

    ``stratified=True`` takes from each class its share of ``val_size`` (largest-remainder rounding,
    so the sizes add up exactly); otherwise a uniformly random subset. Same seed, same split.
    """
    train_y = np.asarray(train_y)
    n = len(train_y)
    problems = []
    if len(train_x) != n:
        problems.append(f"train_x has {len(train_x)} rows but train_y has {n}")
    if isinstance(val_size, bool) or not isinstance(val_size, Integral) or not 0 < val_size < n:
        problems.append(f"val_size must be an integer in [1, {n - 1}] (the training set has {n} rows), got {val_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        problems.append(f"seed must be an integer >= 0, got {seed!r}")
    check(problems, what="train/validation split")
    rng = np.random.default_rng(seed)
    if stratified:
        classes, counts = np.unique(train_y, return_counts=True)
        quota = val_size * counts / n
        take = np.floor(quota).astype(np.int64)
        short = val_size - int(take.sum())
        take[np.argsort(-(quota - take), kind="stable")[:short]] += 1
        val_idx = np.concatenate([rng.permutation(np.flatnonzero(train_y == c))[:k] for c, k in zip(classes, take)])
    else:
        val_idx = rng.permutation(n)[:val_size]
    is_val = np.zeros(n, dtype=bool)
    is_val[val_idx] = True
    return train_x[~is_val], train_y[~is_val], train_x[is_val], train_y[is_val]
