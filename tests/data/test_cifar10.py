"""CIFAR-10 loading: folder resolution, validation with named errors, no writes outside, the cache, the split."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import fakes
from fakes import FAKE_SIZES, fake_cifar_arrays, make_fake_cifar
from nnlab.data import cifar10
from nnlab.data.cifar10 import (CLASS_NAMES, MEAN, STD, Cifar10Arrays, find_cifar10, load_cifar10, read_cifar10,
                                resolve_data_dir, split_train_val)
from nnlab.errors import ConfigError, DataError, UnsafePickleError


@pytest.fixture(autouse=True)
def _no_cache_dir_from_the_environment(monkeypatch):
    """The cache tests look for the cache where the data folder puts it: a $NNLAB_CACHE_DIR set by whoever runs
    the tests would move it (tests that want one set it themselves)."""
    monkeypatch.delenv("NNLAB_CACHE_DIR", raising=False)


def _assert_matches_fake(a: Cifar10Arrays, seed=0, n=20, n_test=20):
    ref = fake_cifar_arrays(n, n_test, seed)
    assert a.train_x.dtype == np.uint8 and a.train_x.shape == (5 * n, 3, 32, 32)
    assert a.test_x.dtype == np.uint8 and a.test_x.shape == (n_test, 3, 32, 32)
    assert a.train_y.dtype == np.int64 and a.train_y.shape == (5 * n,)
    assert a.test_y.dtype == np.int64 and a.test_y.shape == (n_test,)
    # A row is 1024 R, 1024 G, 1024 B values, each 32x32 row-major: pixel (c, i, j) is row[1024 c + 32 i + j].
    assert a.train_x[7, 2, 5, 9] == ref["train_x"][7, 2048 + 5 * 32 + 9]
    assert np.array_equal(a.train_x.reshape(len(a.train_x), -1), ref["train_x"])
    assert np.array_equal(a.train_y, ref["train_y"])
    assert np.array_equal(a.test_x.reshape(n_test, -1), ref["test_x"])
    assert np.array_equal(a.test_y, ref["test_y"])
    assert a.class_names == list(CLASS_NAMES)


# ---------------------------------------------------------------------------------------------- where


def test_resolve_data_dir_argument_then_env_then_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NNLAB_DATA_DIR", raising=False)
    assert resolve_data_dir() == tmp_path / "data"
    monkeypatch.setenv("NNLAB_DATA_DIR", str(tmp_path / "from_env"))
    assert resolve_data_dir() == tmp_path / "from_env"
    assert resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_data_dir("rel") == tmp_path / "rel"  # made absolute
    monkeypatch.setenv("NNLAB_DATA_DIR", "")  # empty means unset
    assert resolve_data_dir() == tmp_path / "data"
    with pytest.raises(TypeError, match="got int"):
        resolve_data_dir(3)


def test_loads_through_env_and_default_folder(tmp_path, monkeypatch):
    d = make_fake_cifar(tmp_path)
    monkeypatch.setenv("NNLAB_DATA_DIR", str(d))
    _assert_matches_fake(load_cifar10(expected_sizes=FAKE_SIZES))
    monkeypatch.delenv("NNLAB_DATA_DIR")
    monkeypatch.chdir(tmp_path)  # ./data is the default and make_fake_cifar's first folder is tmp_path/data
    _assert_matches_fake(load_cifar10(expected_sizes=FAKE_SIZES, cache=False))


@pytest.mark.parametrize("as_tar", [True, False])
def test_loads_archive_and_extracted_folder(tmp_path, as_tar):
    d = make_fake_cifar(tmp_path, as_tar=as_tar)
    a = load_cifar10(d, expected_sizes=FAKE_SIZES)
    _assert_matches_fake(a)
    if as_tar:
        assert a.md5 == hashlib.md5((d / fakes.ARCHIVE).read_bytes()).hexdigest()
        assert a.source == str(d / fakes.ARCHIVE)
    else:
        assert a.md5 is None and a.source == str(d / fakes.FOLDER)


def test_data_dir_may_be_the_archive_or_the_batches_folder(tmp_path):
    d_tar = make_fake_cifar(tmp_path)
    d_dir = make_fake_cifar(tmp_path, as_tar=False)
    assert find_cifar10(d_tar / fakes.ARCHIVE) == d_tar / fakes.ARCHIVE
    assert find_cifar10(d_dir / fakes.FOLDER) == d_dir / fakes.FOLDER
    _assert_matches_fake(load_cifar10(d_tar / fakes.ARCHIVE, expected_sizes=FAKE_SIZES))
    _assert_matches_fake(load_cifar10(d_dir / fakes.FOLDER, expected_sizes=FAKE_SIZES))


def test_other_sizes(tmp_path):
    d = make_fake_cifar(tmp_path, n_train_per_batch=7, n_test=3, seed=5)
    _assert_matches_fake(load_cifar10(d, expected_sizes=(35, 3)), seed=5, n=7, n_test=3)
    _assert_matches_fake(load_cifar10(d, expected_sizes=None), seed=5, n=7, n_test=3)


def _folder_with(folder: Path, name: str) -> Path:
    folder.mkdir()
    (folder / name).write_text("not CIFAR-10")
    return folder


@pytest.mark.parametrize("make,state", [
    (lambda p: p / "nowhere", "does not exist"),
    (lambda p: make_fake_cifar(p, corrupt="empty"), "is empty"),
    (lambda p: _folder_with(p / "other", "notes.txt"), "holds neither cifar-10-python.tar.gz nor cifar-10-batches-py/"),
])
def test_missing_data_names_the_folder_and_how_to_get_it(tmp_path, make, state):
    folder = make(tmp_path)
    with pytest.raises(DataError) as ei:
        load_cifar10(folder, expected_sizes=FAKE_SIZES)
    msg = str(ei.value)
    assert str(folder) in msg and state in msg
    assert "nnlab data download cifar10" in msg and "--data-dir" in msg and "NNLAB_DATA_DIR" in msg


def test_missing_data_message_says_where_the_folder_came_from(tmp_path, monkeypatch):
    monkeypatch.setenv("NNLAB_DATA_DIR", str(tmp_path / "env_dir"))
    with pytest.raises(DataError, match=r"\$NNLAB_DATA_DIR"):
        find_cifar10()
    monkeypatch.delenv("NNLAB_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="default ./data"):
        find_cifar10()


# ---------------------------------------------------------------------------------------------- validation

ERRORS = {  # corrupt -> (file named in the message, what it says)
    "truncated": ("cifar-10-python.tar.gz", "truncated or corrupt"),
    "bad_shape": ("data_batch_2", r"shape \(n, 3072\).*got \(20, 3071\)"),
    "wrong_dtype": ("data_batch_2", "dtype uint8, got float32"),
    "labels_out_of_range": ("test_batch", r"labels must be in 0..9, got \[10\]"),
    "label_count": ("data_batch_5", "19 labels for 20 images"),
    "missing_batch": ("", "missing .*data_batch_3"),
    "not_dict": ("data_batch_4", "expected a dict .* got list"),
    "bad_meta": ("batches.meta", "10 class names, got 9"),
    "link_member": ("data_batch_1", "must be a regular file, got a symbolic link to '/etc/passwd'"),
    "duplicate": ("data_batch_1", "appears twice"),
}


@pytest.mark.parametrize("corrupt,as_tar", [(c, t) for c in ERRORS for t in (True, False)
                                             if t or c not in ("link_member", "duplicate")])  # archive-only ones
def test_malformed_data_raises_a_data_error_naming_the_file(tmp_path, corrupt, as_tar):
    d = make_fake_cifar(tmp_path, as_tar=as_tar, corrupt=corrupt)
    where, what = ERRORS[corrupt]
    if corrupt == "truncated" and not as_tar:
        where, what = "data_batch_1", "not a valid pickle"
    with pytest.raises(DataError) as ei:
        load_cifar10(d, expected_sizes=FAKE_SIZES)
    msg = str(ei.value)
    assert str(d) in msg and where in msg
    assert re.search(what, msg), msg
    assert not (d / ".nnlab_cache").exists() or not any((d / ".nnlab_cache").iterdir())  # nothing cached


@pytest.mark.parametrize("as_tar", [True, False])
def test_unsafe_pickle_in_the_data_is_refused_and_never_runs(tmp_path, as_tar):
    d = make_fake_cifar(tmp_path, as_tar=as_tar, corrupt="unsafe_pickle")
    with pytest.raises(UnsafePickleError, match=r"data_batch_1: refused to unpickle global os\.system"):
        load_cifar10(d, expected_sizes=FAKE_SIZES)
    assert not (d / fakes.MARKER).exists()


def test_hostile_members_are_never_written(tmp_path):
    """Members named ../x, /abs/x, or behind a symlink are skipped: reading writes nothing anywhere."""
    d = make_fake_cifar(tmp_path, corrupt="hostile_members")
    _assert_matches_fake(load_cifar10(d, expected_sizes=FAKE_SIZES, cache=False))
    assert sorted(os.listdir(tmp_path)) == ["data"]
    assert sorted(os.listdir(d)) == [fakes.ARCHIVE]
    for name in fakes.ESCAPES:
        assert not (tmp_path / name).exists() and not (tmp_path.parent / name).exists()


def test_expected_sizes_are_checked(tmp_path):
    d = make_fake_cifar(tmp_path)
    with pytest.raises(DataError, match=r"100 training and 20 test images, expected 50000 and 10000"):
        load_cifar10(d)  # the real totals by default
    load_cifar10(d, expected_sizes=FAKE_SIZES)  # now cached: the check also applies to a cache hit
    with pytest.raises(DataError, match="expected 50000 and 10000"):
        load_cifar10(d)
    for bad in [(100,), (100, 0), "100,20", (100.0, 20), (True, 20)]:
        with pytest.raises(ConfigError, match="expected_sizes"):
            load_cifar10(d, expected_sizes=bad)


def test_training_batches_must_agree_in_size(tmp_path, monkeypatch):
    d = make_fake_cifar(tmp_path, as_tar=False)
    p = d / fakes.FOLDER / "data_batch_2"
    obj = pickle.loads(p.read_bytes())
    obj[b"data"], obj[b"labels"] = obj[b"data"][:5], obj[b"labels"][:5]
    p.write_bytes(pickle.dumps(obj, protocol=2))
    with pytest.raises(DataError, match="training batches differ in size"):
        load_cifar10(d, expected_sizes=None)


def test_md5_is_checked_when_asked(tmp_path):
    d = make_fake_cifar(tmp_path)
    good = hashlib.md5((d / fakes.ARCHIVE).read_bytes()).hexdigest()
    with pytest.raises(DataError, match=f"md5 is {good}, expected 0{{32}}"):
        load_cifar10(d, expected_sizes=FAKE_SIZES, md5="0" * 32)
    assert load_cifar10(d, expected_sizes=FAKE_SIZES, md5=good.upper()).md5 == good
    with pytest.raises(DataError, match="expected 0{32}"):  # also against the md5 recorded in the cache
        load_cifar10(d, expected_sizes=FAKE_SIZES, md5="0" * 32)


# ---------------------------------------------------------------------------------------------- cache


def _entries(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []


def test_second_load_comes_from_the_cache(tmp_path, monkeypatch):
    d = make_fake_cifar(tmp_path)
    first = load_cifar10(d, expected_sizes=FAKE_SIZES)
    (entry,) = _entries(d / ".nnlab_cache")
    assert sorted(os.listdir(entry)) == ["meta.json", "test_x.npy", "test_y.npy", "train_x.npy", "train_y.npy"]
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["md5"] == first.md5 and meta["train"] == 100 and meta["test"] == 20
    assert meta["class_names"] == list(CLASS_NAMES)

    def boom(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(cifar10, "_read_tar", boom)
    second = load_cifar10(d, expected_sizes=FAKE_SIZES)
    _assert_matches_fake(second)
    assert second.md5 == first.md5 and second.source == first.source
    mm = load_cifar10(d, expected_sizes=FAKE_SIZES, mmap=True)
    assert isinstance(mm.train_x, np.memmap) and not mm.train_x.flags.writeable
    _assert_matches_fake(mm)


def test_cache_is_refreshed_when_the_archive_changes(tmp_path):
    d = make_fake_cifar(tmp_path, seed=1)
    _assert_matches_fake(load_cifar10(d, expected_sizes=FAKE_SIZES), seed=1)
    (old,) = _entries(d / ".nnlab_cache")
    other = make_fake_cifar(tmp_path, seed=2)
    os.replace(other / fakes.ARCHIVE, d / fakes.ARCHIVE)
    os.utime(d / fakes.ARCHIVE, ns=(1, 1))  # a different mtime, whatever the clock resolution
    _assert_matches_fake(load_cifar10(d, expected_sizes=FAKE_SIZES), seed=2)
    (new,) = _entries(d / ".nnlab_cache")  # the stale entry of the same source was pruned
    assert new != old


def test_damaged_cache_is_rebuilt(tmp_path):
    d = make_fake_cifar(tmp_path)
    load_cifar10(d, expected_sizes=FAKE_SIZES)
    (entry,) = _entries(d / ".nnlab_cache")
    np.save(entry / "train_y.npy", np.zeros(3, dtype=np.int64))  # wrong length
    with pytest.warns(UserWarning, match="damaged CIFAR-10 cache"):
        _assert_matches_fake(load_cifar10(d, expected_sizes=FAKE_SIZES))
    (entry,) = _entries(d / ".nnlab_cache")
    (entry / "test_x.npy").write_bytes(b"not npy")
    with pytest.warns(UserWarning, match="damaged CIFAR-10 cache"):
        _assert_matches_fake(load_cifar10(d, expected_sizes=FAKE_SIZES))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _assert_matches_fake(load_cifar10(d, expected_sizes=FAKE_SIZES))


def test_cache_dir_argument_and_env(tmp_path, monkeypatch):
    d = make_fake_cifar(tmp_path)
    load_cifar10(d, expected_sizes=FAKE_SIZES, cache_dir=tmp_path / "c1")
    assert len(_entries(tmp_path / "c1")) == 1 and not (d / ".nnlab_cache").exists()
    monkeypatch.setenv("NNLAB_CACHE_DIR", str(tmp_path / "c2"))
    load_cifar10(d, expected_sizes=FAKE_SIZES)
    assert len(_entries(tmp_path / "c2")) == 1 and not (d / ".nnlab_cache").exists()


def test_unwritable_data_folder_falls_back_to_the_user_cache(tmp_path, monkeypatch):
    d = make_fake_cifar(tmp_path)
    (d / ".nnlab_cache").write_text("a file where the cache folder would go")  # unwritable, even as root
    monkeypatch.delenv("NNLAB_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    _assert_matches_fake(load_cifar10(d, expected_sizes=FAKE_SIZES))
    assert len(_entries(tmp_path / "xdg" / "nnlab")) == 1
    monkeypatch.setattr(cifar10, "_read_tar", lambda *a: pytest.fail("decoded again"))
    _assert_matches_fake(load_cifar10(d, expected_sizes=FAKE_SIZES))


def test_read_only_data_folder_is_left_untouched(tmp_path, monkeypatch):
    d = make_fake_cifar(tmp_path)
    monkeypatch.delenv("NNLAB_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    os.chmod(d, 0o555)  # like a shared data folder; root could still write, the mode bits say "don't"
    try:
        _assert_matches_fake(load_cifar10(d, expected_sizes=FAKE_SIZES))
        assert sorted(os.listdir(d)) == [fakes.ARCHIVE]
        assert len(_entries(tmp_path / "xdg" / "nnlab")) == 1
    finally:
        os.chmod(d, 0o755)


def test_a_read_only_data_dir_is_read_and_never_written_in(tmp_path, monkeypatch):
    """A folder named by a file (ReadOnlyDataDir): its data is read, its .nnlab_cache neither read, nor written,
    nor cleaned (a damaged entry under the right key stays), and the cache goes to the user's cache folder."""
    d = make_fake_cifar(tmp_path)
    monkeypatch.delenv("NNLAB_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    damaged = d / ".nnlab_cache" / cifar10._fingerprint(find_cifar10(d))
    damaged.mkdir(parents=True)
    (damaged / "meta.json").write_text("{not json")
    ro = cifar10.ReadOnlyDataDir(str(d))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the damaged entry is not even looked at
        _assert_matches_fake(load_cifar10(ro, expected_sizes=FAKE_SIZES))
    assert sorted(os.listdir(d)) == [".nnlab_cache", fakes.ARCHIVE]
    assert os.listdir(d / ".nnlab_cache") == [damaged.name] and os.listdir(damaged) == ["meta.json"]
    assert len(_entries(tmp_path / "xdg" / "nnlab")) == 1
    monkeypatch.setattr(cifar10, "_read_tar", lambda *a: pytest.fail("decoded again"))
    _assert_matches_fake(load_cifar10(ro, expected_sizes=FAKE_SIZES))  # from the user's cache


def test_no_writable_cache_warns_and_still_loads(tmp_path, monkeypatch):
    d = make_fake_cifar(tmp_path)
    (tmp_path / "blocked").write_text("a file")
    with pytest.warns(UserWarning, match="could not write the CIFAR-10 cache"):
        _assert_matches_fake(load_cifar10(d, expected_sizes=FAKE_SIZES, cache_dir=tmp_path / "blocked"))


def test_cache_false_writes_nothing(tmp_path):
    d = make_fake_cifar(tmp_path)
    _assert_matches_fake(load_cifar10(d, expected_sizes=FAKE_SIZES, cache=False))
    assert sorted(os.listdir(d)) == [fakes.ARCHIVE]


def test_read_cifar10_without_cache_matches(tmp_path):
    d = make_fake_cifar(tmp_path, as_tar=False)
    _assert_matches_fake(read_cifar10(d / fakes.FOLDER, expected_sizes=FAKE_SIZES))


# ---------------------------------------------------------------------------------------------- split


def _labels(n_per_class=(60, 40, 100, 0, 7, 13, 50, 50, 30, 150), seed=0):
    y = np.concatenate([np.full(k, c) for c, k in enumerate(n_per_class)]).astype(np.int64)
    return np.random.default_rng(seed).permutation(y)


def test_stratified_split_keeps_class_shares_and_partitions():
    y = _labels()
    x = np.arange(len(y) * 2).reshape(len(y), 2)  # row i is (2i, 2i + 1): identifies the sample
    tx, ty, vx, vy = split_train_val(x, y, val_size=50, seed=3)
    assert len(vy) == 50 and len(ty) == len(y) - 50
    ids = np.concatenate([tx[:, 0], vx[:, 0]]) // 2
    assert sorted(ids.tolist()) == list(range(len(y)))  # a partition, every sample once
    assert np.array_equal(y[tx[:, 0] // 2], ty) and np.array_equal(y[vx[:, 0] // 2], vy)
    assert np.all(np.diff(tx[:, 0]) > 0) and np.all(np.diff(vx[:, 0]) > 0)  # original order kept
    share = np.bincount(y, minlength=10) * 50 / len(y)
    counts = np.bincount(vy, minlength=10)
    assert np.all(np.abs(counts - share) < 1), (counts, share)


def test_split_is_seeded():
    y = _labels()
    x = np.arange(len(y))
    a = split_train_val(x, y, val_size=40, seed=0)
    b = split_train_val(x, y, val_size=40, seed=0)
    c = split_train_val(x, y, val_size=40, seed=1)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[2], c[2])


def test_random_split():
    y = _labels()
    x = np.arange(len(y))
    tx, ty, vx, vy = split_train_val(x, y, val_size=77, seed=0, stratified=False)
    assert len(vx) == 77 and sorted(np.concatenate([tx, vx]).tolist()) == list(range(len(y)))


def test_split_rejects_bad_arguments():
    y = _labels()
    x = np.arange(len(y))
    for val_size in (0, len(y), -1, 2.5, True):
        with pytest.raises(ConfigError, match="val_size must be an integer in"):
            split_train_val(x, y, val_size=val_size)
    with pytest.raises(ConfigError, match="rows"):
        split_train_val(x[:-1], y, val_size=10)
    with pytest.raises(ConfigError, match="seed"):
        split_train_val(x, y, val_size=10, seed=-1)


def test_constants():
    assert len(CLASS_NAMES) == 10 and CLASS_NAMES[0] == "airplane" and CLASS_NAMES[9] == "truck"
    assert MEAN == (0.4914, 0.4822, 0.4465) and STD == (0.2470, 0.2435, 0.2616)


# ---------------------------------------------------------------------------------------------- real data


@pytest.mark.cifar
def test_real_cifar10(cifar_data_dir, cifar_cache_dir):
    a = load_cifar10(cifar_data_dir, cache_dir=cifar_cache_dir)
    assert a.train_x.shape == (50000, 3, 32, 32) and a.train_x.dtype == np.uint8
    assert a.test_x.shape == (10000, 3, 32, 32) and a.test_x.dtype == np.uint8
    assert a.train_y.dtype == np.int64 and a.test_y.dtype == np.int64
    assert np.array_equal(np.bincount(a.train_y), [5000] * 10)
    assert np.array_equal(np.bincount(a.test_y), [1000] * 10)
    assert a.class_names == list(CLASS_NAMES)
    # MEAN/STD are these statistics of the training split, rounded to 4 decimals.
    v = np.arange(256, dtype=np.float64) / 255
    hist = np.stack([np.bincount(a.train_x[:, c].ravel(), minlength=256) for c in range(3)])  # (3, 256) pixel counts
    p = hist / hist.sum(axis=1, keepdims=True)
    mean = p @ v
    std = np.sqrt(p @ v**2 - mean**2)
    np.testing.assert_allclose(mean, MEAN, atol=6e-5)
    np.testing.assert_allclose(std, STD, atol=6e-5)
    b = load_cifar10(cifar_data_dir, cache_dir=cifar_cache_dir, mmap=True)  # from the cache
    assert isinstance(b.train_x, np.memmap)
    assert np.array_equal(a.train_x[::997], b.train_x[::997]) and np.array_equal(a.test_y, b.test_y)
    assert b.md5 == a.md5 and len(a.md5) == 32
