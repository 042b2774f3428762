"""Shared fixtures. The fake CIFAR-10 builder lives in ``tests/fakes.py`` so it is importable too."""

from __future__ import annotations

import os
import sys
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
