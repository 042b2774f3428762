"""Small CIFAR-10 archives in the official layout, built by the tests themselves (importable helpers).

``make_fake_cifar(tmp_path, ...)`` writes ``<tmp_path>/data*/cifar-10-python.tar.gz`` (or the
extracted ``cifar-10-batches-py/``) and returns that data folder, ready for
``load_cifar10(folder, expected_sizes=(5 * n_train_per_batch, n_test))``. Its pixels and labels are a
pure function of ``seed`` (:func:`fake_cifar_arrays`), so a test can compare what was loaded.
``corrupt`` breaks it in one named way (see ``CORRUPTIONS``) for the error-path tests.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

FAKE_SIZES = (100, 20)  # (training, test) images with the default sizes (5 batches x 20, 20)
FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
LABEL_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
# corrupt="hostile_members": where its members would land if the archive were extracted naively
ESCAPES = ("escape.txt", "escape2.txt", "abs_escape.txt", "through_link.txt")  # in tmp_path
MARKER = "PWNED"  # corrupt="unsafe_pickle": the payload would create <data folder>/PWNED

CORRUPTIONS = {
    "truncated": "the .tar.gz (or data_batch_1 when extracted) cut in half",
    "bad_shape": "data_batch_2 b'data' has 3071 values per row",
    "wrong_dtype": "data_batch_2 b'data' is float32",
    "labels_out_of_range": "test_batch has a label 10",
    "label_count": "data_batch_5 has one label fewer than rows",
    "missing_batch": "data_batch_3 is absent",
    "not_dict": "data_batch_4 holds a list, not a dict",
    "bad_meta": "batches.meta lists 9 class names",
    "unsafe_pickle": "data_batch_1 calls os.system (would create <data folder>/PWNED)",
    "empty": "the data folder exists but is empty",
    "link_member": "(tar only) data_batch_1 is a symlink to /etc/passwd",
    "duplicate": "(tar only) data_batch_1 appears twice",
    "hostile_members": "(tar only) a valid archive plus members ../escape.txt, an absolute path, and links",
}


def fake_cifar_arrays(n_train_per_batch: int = 20, n_test: int = 20, seed: int = 0) -> dict:
    """The pixels (rows of 3072 uint8) and labels (ints 0-9) that ``make_fake_cifar`` writes.

    Labels cycle through the 10 classes (so every class is present when n >= 10), then are shuffled.
    """
    rng = np.random.default_rng(seed)

    def split(n):
        x = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        y = rng.permutation(np.arange(n) % 10).astype(np.int64)
        return x, y

    batches = [split(n_train_per_batch) for _ in range(5)]
    test_x, test_y = split(n_test)
    return {
        "batches": batches,  # [(x (n, 3072), y (n,))] * 5
        "train_x": np.concatenate([x for x, _ in batches]),
        "train_y": np.concatenate([y for _, y in batches]),
        "test_x": test_x,
        "test_y": test_y,
    }


def evil_pickle(module: str, name: str, *args) -> bytes:
    """A protocol-0 pickle that calls ``module.name(*args)`` when loaded (args: str / list of str)."""
    body = pickle.dumps(tuple(args), protocol=0)  # no globals: only str/list/tuple opcodes
    assert body.endswith(b".")
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n" + body[:-1] + b"R."


def _batch(x, y, label: str, corrupt_labels=None) -> dict:
    return {
        b"batch_label": label.encode(),
        b"labels": [int(v) for v in y] if corrupt_labels is None else corrupt_labels,
        b"data": x,
        b"filenames": [f"img_{i:05d}.png".encode() for i in range(len(y))],
    }


def _files(n_train_per_batch, n_test, corrupt, seed, data_dir: Path) -> dict[str, bytes]:
    """The member files {name: bytes}, each a protocol-2 pickle as in the official archive."""
    arrs = fake_cifar_arrays(n_train_per_batch, n_test, seed)
    files = {}
    for i, (x, y) in enumerate(arrs["batches"], start=1):
        name = f"data_batch_{i}"
        labels = None
        if corrupt == "bad_shape" and i == 2:
            x = np.zeros((len(y), 3071), dtype=np.uint8)
        if corrupt == "wrong_dtype" and i == 2:
            x = x.astype(np.float32)
        if corrupt == "label_count" and i == 5:
            labels = [int(v) for v in y[:-1]]
        obj = _batch(x, y, f"training batch {i} of 5", labels)
        if corrupt == "not_dict" and i == 4:
            obj = [x, y.tolist()]
        files[name] = pickle.dumps(obj, protocol=2)
        if corrupt == "unsafe_pickle" and i == 1:
            files[name] = evil_pickle("os", "system", f"touch {data_dir / MARKER}")
    test_labels = [int(v) for v in arrs["test_y"]]
    if corrupt == "labels_out_of_range":
        test_labels[len(test_labels) // 2] = 10
    files["test_batch"] = pickle.dumps(_batch(arrs["test_x"], arrs["test_y"], "testing batch 1 of 1", test_labels), protocol=2)
    names = LABEL_NAMES[:9] if corrupt == "bad_meta" else LABEL_NAMES
    files["batches.meta"] = pickle.dumps({b"num_cases_per_batch": n_train_per_batch, b"label_names": names, b"num_vis": 3072}, protocol=2)
    if corrupt == "missing_batch":
        del files["data_batch_3"]
    return files


def _add(tf: tarfile.TarFile, name: str, data: bytes = b"", *, kind=tarfile.REGTYPE, linkname: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mtime = 1_230_000_000
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.linkname = linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tf.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def make_fake_cifar(tmp_path, n_train_per_batch: int = 20, n_test: int = 20, as_tar: bool = True,
                    corrupt: str | None = None, *, seed: int = 0) -> Path:
    """Build a small CIFAR-10 in the official layout under ``tmp_path``; return the data folder.

    ``as_tar``: write ``cifar-10-python.tar.gz`` (else the extracted ``cifar-10-batches-py/``).
    ``corrupt``: None or one of ``CORRUPTIONS``. Each call makes a new folder ``data``, ``data-2``, ...
    """
    if corrupt is not None and corrupt not in CORRUPTIONS:
        raise ValueError(f"unknown corrupt {corrupt!r}; valid: {', '.join(CORRUPTIONS)}")
    if not as_tar and corrupt in ("link_member", "duplicate", "hostile_members"):
        raise ValueError(f"corrupt={corrupt!r} needs as_tar=True")
    tmp_path = Path(tmp_path)
    data_dir, k = tmp_path / "data", 1
    while data_dir.exists():
        k += 1
        data_dir = tmp_path / f"data-{k}"
    data_dir.mkdir(parents=True)
    if corrupt == "empty":
        return data_dir
    files = _files(n_train_per_batch, n_test, corrupt, seed, data_dir)

    if not as_tar:
        folder = data_dir / FOLDER
        folder.mkdir()
        for name, data in files.items():
            if corrupt == "truncated" and name == "data_batch_1":
                data = data[: len(data) // 2]
            (folder / name).write_bytes(data)
        return data_dir

    archive = data_dir / ARCHIVE
    with tarfile.open(archive, "w:gz") as tf:
        _add(tf, FOLDER, kind=tarfile.DIRTYPE)
        for name, data in files.items():
            if corrupt == "link_member" and name == "data_batch_1":
                _add(tf, f"{FOLDER}/{name}", kind=tarfile.SYMTYPE, linkname="/etc/passwd")
                continue
            _add(tf, f"{FOLDER}/{name}", data)
            if corrupt == "duplicate" and name == "data_batch_1":
                _add(tf, f"{FOLDER}/{name}", data)
        _add(tf, f"{FOLDER}/readme.html", b"<html>fake CIFAR-10 for tests</html>")
        if corrupt == "hostile_members":
            _add(tf, "../escape.txt", b"written outside the data folder")
            _add(tf, f"{FOLDER}/../../escape2.txt", b"written outside the data folder")
            _add(tf, str(tmp_path / "abs_escape.txt"), b"written at an absolute path")
            _add(tf, f"{FOLDER}/evil_link", kind=tarfile.SYMTYPE, linkname=str(tmp_path))
            _add(tf, f"{FOLDER}/evil_link/through_link.txt", b"written through a symlink")
            _add(tf, f"{FOLDER}/hard", kind=tarfile.LNKTYPE, linkname="/etc/passwd")
    if corrupt == "truncated":
        size = archive.stat().st_size
        with open(archive, "r+b") as f:
            f.truncate(size // 2)
    return data_dir


def metrics_rows(path) -> list[dict]:
    """A run's ``metrics.csv`` as dicts, without the wall-clock ``seconds`` column (the one that differs run to run)."""
    import csv

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r.pop("seconds")
    return rows
