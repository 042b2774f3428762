"""report.html in a real browser: headless Chromium renders it offline with every figure decoded.

The report is drawn by ``nnlab report`` from synthetic run folders (the files a reproduction leaves: summaries,
metrics.csv, decision grids, gradient norms), so no training is needed and the redraw-from-files path is what
is tested. A copy of the page gets a small script that, once the page has loaded, counts the ``img`` elements
whose pixels decoded (``naturalWidth > 0``) and writes the count into the DOM; ``--dump-dom`` prints it.
Skipped when no Chromium is installed (CI installs it: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nnlab import __version__
from nnlab.cli import main
from nnlab.experiments import reproduce as rp

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
HEADER = "epoch,step,train_loss,train_accuracy,val_loss,val_accuracy,test_loss,test_accuracy,lr,seconds\n"
CHECK = """<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (im) { return im.complete && im.naturalWidth > 0 && im.naturalHeight > 0; });
  var out = document.createElement("pre");
  out.id = "nnlab-check";
  out.textContent = "images=" + imgs.length + " loaded=" + ok.length +
    " tables=" + document.querySelectorAll("table").length + " h2=" + document.querySelectorAll("h2").length;
  document.body.appendChild(out);
});
</script>
"""


def _chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _browser(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium installed (apt-get install -y chromium)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
             f"--user-data-dir={tmp_path / 'chromium-profile'}"]
    return subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=180)


def _run(folder: Path, summary: dict, epochs: int = 3, grid: bool = False) -> None:
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({"nnlab_version": __version__, "git_commit": "abc123",
                                                     "device": "cpu", "wall_time_s": 1.5, **summary}))
    (folder / "metrics.csv").write_text(HEADER + "".join(
        f"{e},{10 * e},{1.0 / e},{0.5 + 0.1 * e},,,{1.2 / e},{0.45 + 0.1 * e},0.01,{e}\n" for e in range(1, epochs + 1)))
    if grid:  # what the Part I runs save so the decision boundary can be redrawn without the model
        xs = np.linspace(-2, 3, 40)
        xx, yy = np.meshgrid(xs, xs)
        rng = np.random.default_rng(0)
        X = rng.normal(size=(50, 2))
        np.savez(folder / "decision_grid.npz", xx=xx, yy=yy, proba=1 / (1 + np.exp(-(xx - yy))), X=X,
                 y=(X[:, 0] > X[:, 1]).astype(np.int64))


def make_synthetic_reproduction(root: Path) -> Path:
    """A finished smoke reproduction's files, without the training: every figure of the report is drawn from them."""
    budget = rp.BUDGETS["smoke"]
    rec = {"budget": "smoke", "budget_settings": budget.settings(), "nnlab_version": __version__, "git_commit": "abc123",
           "python": "3.x", "torch": "2.x", "platform": "test", "device": "cpu", "data_dir": None,
           "started": "2026-01-01T00:00:00", "finished": "2026-01-01T00:01:00", "elapsed_s": 60.0,
           "sections": {n: {"status": "done", "elapsed_s": 10.0} for n in rp.SECTIONS}}
    root.mkdir(parents=True)
    (root / rp.REPRODUCE_JSON).write_text(json.dumps(rec))
    for recipe in rp.RECIPE_ORDER:
        for b in ("numpy", "torch"):
            for d in ("moons", "circles"):
                for seed in (0, 1):
                    _run(root / "part1" / recipe / "runs" / f"{b}-{d}-s{seed}",
                         {"seed": seed, "test_accuracy": 0.95 + 0.01 * seed, "test_loss": 0.1, "model": f"mlp-{b}"}, grid=True)
        for model in ("mlp", "cnn"):
            cm = (np.eye(10, dtype=int) * 5 + 1).tolist()
            _run(root / model / f"{recipe}-s0",
                 {"seed": 0, "test_accuracy": 0.5, "test_loss": 1.4, "model": f"{model}-cifar10", "data_n_test": 150,
                  "data_n_train": 1000, "per_class_accuracy": {c: 0.4 + 0.02 * i for i, c in enumerate(CLASSES)},
                  "confusion_matrix": cm})
        for T in (8, 10):
            _run(root / "rnn" / recipe / "runs" / f"{recipe}-vanilla-T{T}-s0",
                 {"seed": 0, "test_accuracy": 0.9, "test_loss": 0.3, "train_loss": 0.2, "model": "rnn-vanilla",
                  "data_input_length": T})
    _run(root / "rnn" / "lstm" / "runs" / "best-lstm-T10-s0",
         {"seed": 0, "test_accuracy": 1.0, "test_loss": 0.01, "train_loss": 0.01, "model": "rnn-lstm", "data_input_length": 10})
    g = root / "rnn" / "gradients"
    g.mkdir(parents=True)
    (g / "gradient_norms.json").write_text(json.dumps({"input_length": 10, "norms": {
        "vanilla at init": [0.5 ** (10 - t) for t in range(10)], "lstm at init": [0.9 ** (10 - t) for t in range(10)]}}))
    return root


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    root = make_synthetic_reproduction(tmp_path_factory.mktemp("browser") / "repro")
    assert main(["report", str(root)]) == 0
    return root / "report.html"


def test_report_tables_show_mean_std_over_seeds(report_html):
    md = report_html.with_suffix(".md").read_text(encoding="utf-8")
    # Part I: 2 seeds per cell -> mean ± sample std (n=2): 95 and 96 -> 95.5 ± 0.7
    assert re.search(r"\| 97\.5 +\| 95\.5 ± 0\.7 \(n=2\) +\| 95\.5 ± 0\.7 \(n=2\) +\|", md)
    assert "95.5 (mean of 4 cells, 8 runs)" in md  # the headline


def test_report_renders_with_every_figure_loaded(report_html, tmp_path):
    page = report_html.read_text(encoding="utf-8")
    n_img = len(re.findall(r"<img\b", page))
    assert n_img >= 15  # Part I bars, 4 boundaries, 4 curves, per-class x2, curves x4, confusion x2, RNN x2+
    assert not re.search(r"""(?:src|href)=["'](?!data:|#)""", page), "the page must load nothing from outside"
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", CHECK + "</body>"), encoding="utf-8")
    res = _browser(tmp_path, "--virtual-time-budget=15000", "--dump-dom", probe.as_uri())
    m = re.search(r"images=(\d+) loaded=(\d+) tables=(\d+) h2=(\d+)", res.stdout)
    assert m, f"no result in the DOM (exit {res.returncode}): {res.stderr[-2000:]}"
    images, loaded, n_tables, n_h2 = map(int, m.groups())
    assert images == n_img and loaded == images, (images, loaded)
    assert n_tables >= 7 and n_h2 >= 6  # headline, provenance, every section's table; the section headings


def test_report_screenshot_is_not_blank(report_html, tmp_path):
    shot = tmp_path / "shot.png"
    res = _browser(tmp_path, "--virtual-time-budget=10000", "--window-size=1200,2400", f"--screenshot={shot}",
                   report_html.as_uri())
    assert shot.exists(), f"no screenshot (exit {res.returncode}): {res.stderr[-2000:]}"
    import matplotlib.image as mpimg

    px = mpimg.imread(shot)  # (H, W, 3|4) floats in [0, 1]
    assert px.shape[0] >= 2000 and px.shape[1] >= 1000
    assert float(px[..., :3].std()) > 0.05  # text, tables and figures, not an empty white page
