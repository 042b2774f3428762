"""examples/quickstart.ipynb runs top to bottom (so it cannot rot) and shows the figures its runs wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakes import make_fake_cifar

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def test_notebook_is_stored_without_outputs():
    """Outputs (base64 figures) would bloat the repository and go stale; the test below makes them fresh."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_quickstart_notebook_executes(tmp_path, monkeypatch):
    """Run in a temporary working folder on a small fake CIFAR-10, every cell, with a timeout per cell."""
    data = make_fake_cifar(tmp_path, n_train_per_batch=40, n_test=40)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("NNLAB_DATA_DIR", str(data))  # the kernel inherits the environment
    monkeypatch.setenv("NNLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(work)}})
    client.execute()  # raises CellExecutionError naming the cell on any error

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "NumPy MLP on moons: test accuracy" in text
    assert "PyTorch MLP on CIFAR-10: test accuracy" in text  # the data was found: part 2 ran
    assert "vanilla RNN, T=5: test accuracy" in text
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) == 4  # decision boundary, curves, confusion matrix, RNN curves

    # Every run wrote its folder under the working folder, nowhere else.
    runs = sorted(p.parent.name for p in work.glob("runs/quickstart-*/*/summary.json"))
    assert runs == ["numpy-mlp-moons", "torch-mlp-cifar10", "vanilla-rnn-T5"]
    acc = json.loads(next(work.glob("runs/quickstart-*/numpy-mlp-moons/summary.json")).read_text())["test_accuracy"]
    assert acc >= 0.9  # 20 epochs on moons: a real model, not a smoke run


def test_quickstart_notebook_skips_cifar_without_data(tmp_path, monkeypatch):
    """Without CIFAR-10 the CIFAR cell says how to get it and the notebook still runs to the end."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "find_cifar10" in c.source)
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NNLAB_DATA_DIR", str(empty))
    one = nbformat.v4.new_notebook(cells=[cell], metadata=nb.metadata)
    nbclient.NotebookClient(one, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(o.get("text", "") for o in one.cells[0].outputs if o.output_type == "stream")
    assert "CIFAR-10 not found, part 2 skipped" in text and "nnlab data download cifar10" in text
