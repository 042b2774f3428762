"""nnlab.report: figures from saved files, table numbers worked out by hand, offline HTML, import layering."""

from __future__ import annotations

import base64
import math
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest

from nnlab.errors import DataError
from nnlab.report import html as rhtml
from nnlab.report import plots, tables

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HEADER = "epoch,step,train_loss,train_accuracy,val_loss,val_accuracy,test_loss,test_accuracy,lr,seconds\n"


def assert_png(path: Path, min_side: int = 200) -> None:
    """A real, non-trivial PNG: magic bytes, an IHDR chunk with a plausible size, more than a few bytes."""
    data = Path(path).read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= min_side and height >= min_side, (width, height)
    assert len(data) > 5_000, f"{path} is suspiciously small ({len(data)} bytes)"


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def tiny_png(path: Path) -> bytes:
    """A valid 1 x 1 red PNG written by hand (no matplotlib), for the HTML tests."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    data = (PNG_MAGIC + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


@pytest.fixture
def metrics_csv(tmp_path) -> Path:
    """Three epochs without a validation split (val columns empty), as the run folder contract says."""
    path = tmp_path / "run" / "metrics.csv"
    path.parent.mkdir()
    path.write_text(HEADER + "".join(
        f"{e},{10 * e},{1.0 / e},{0.5 + 0.1 * e},,,{1.2 / e},{0.45 + 0.1 * e},0.01,{1.5}\n" for e in (1, 2, 3)))
    return path


@pytest.fixture
def grid_npz(tmp_path) -> Path:
    g = np.linspace(-2, 2, 30)
    xx, yy = np.meshgrid(g, g)  # (30, 30)
    proba = 1.0 / (1.0 + np.exp(-(xx + yy)))  # P(class 1)
    X = np.random.default_rng(0).normal(size=(40, 2))
    y = (X.sum(axis=1) > 0).astype(np.int64)
    path = tmp_path / "run" / "decision_grid.npz"
    path.parent.mkdir(exist_ok=True)
    np.savez(path, xx=xx, yy=yy, proba=proba, X=X, y=y)
    return path


# ------------------------------------------------------------------------------------------- layering
def test_report_never_imports_torch_train_models_or_pyplot():
    code = textwrap.dedent("""
        import sys
        import nnlab.report, nnlab.report.plots, nnlab.report.tables, nnlab.report.html
        bad = sorted(m for m in sys.modules
                     if m.split(".")[0] == "torch" or m.startswith(("nnlab.train", "nnlab.models"))
                     or m == "matplotlib.pyplot")
        print(bad)
        sys.exit(1 if bad else 0)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"nnlab.report pulled in: {proc.stdout}{proc.stderr}"


# -------------------------------------------------------------------------------------------- tables
def test_mean_std_by_hand():
    mean, std = tables.mean_std([0.90, 0.95, 1.00])
    assert mean == pytest.approx(0.95)
    # sample std, ddof=1: sqrt((0.05^2 + 0 + 0.05^2) / (3 - 1)) = 0.05
    assert std == pytest.approx(0.05)
    mean, std = tables.mean_std([0.2, 0.4])
    assert (mean, std) == (pytest.approx(0.3), pytest.approx(math.sqrt(0.02)))  # sqrt((0.1^2 * 2) / 1)
    assert tables.mean_std([0.7]) == (0.7, 0.0)
    assert tables.mean_std(np.array([1, 1, 1])) == (1.0, 0.0)
    with pytest.raises(ValueError, match="non-empty"):
        tables.mean_std([])


def test_fmt_pct_by_hand():
    assert tables.fmt_pct(0.973, 0.012, 10) == "97.3 ± 1.2 (n=10)"
    assert tables.fmt_pct(*tables.mean_std([0.96, 0.97, 0.98]), 3) == "97.0 ± 1.0 (n=3)"
    assert tables.fmt_pct(0.5, 0.0, 1) == "50.0 (n=1)"  # one run: no spread to show
    assert tables.fmt_pct(0.12345, 0.00123, 5, digits=2) == "12.35 ± 0.12 (n=5)"
    assert tables.fmt_pct(1.0, None, 4) == "100.0 (n=4)"
    with pytest.raises(ValueError, match="fraction in \\[0, 1\\], got 97.3"):
        tables.fmt_pct(97.3, 1.2, 10)  # a percent passed where a fraction belongs
    with pytest.raises(ValueError, match="n must be a positive integer"):
        tables.fmt_pct(0.5, 0.1, 0)


def test_markdown_table_exact_text():
    text = tables.markdown_table(["model", "acc"], [["VGG", "97.3 ± 1.2 (n=10)"], ["a|b", None]])
    assert text == (
        "| model | acc               |\n"
        "| ----- | ----------------- |\n"
        "| VGG   | 97.3 ± 1.2 (n=10) |\n"
        "| a\\|b  |                   |\n"
    )
    with pytest.raises(ValueError, match="row 0 has 1 cells, expected 2"):
        tables.markdown_table(["a", "b"], [["only one"]])


def test_read_metrics_csv(metrics_csv, tmp_path):
    cols = tables.read_metrics_csv(metrics_csv)
    assert list(cols) == list(tables.METRICS_COLUMNS)
    assert cols["epoch"] == [1.0, 2.0, 3.0]
    assert cols["val_loss"] == [None, None, None]
    assert cols["train_accuracy"] == pytest.approx([0.6, 0.7, 0.8])
    with pytest.raises(DataError, match="not found"):
        tables.read_metrics_csv(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("epoch,train_loss\n1,abc\n")
    with pytest.raises(DataError, match=r"line 2, column 'train_loss': not a number: 'abc'"):
        tables.read_metrics_csv(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="no header"):
        tables.read_metrics_csv(empty)


# --------------------------------------------------------------------------------------------- plots
def test_plot_curves_png_parents_and_no_temp(metrics_csv, tmp_path):
    out = tmp_path / "deep" / "er" / "curves.png"
    assert plots.plot_curves(metrics_csv, out, title="moons") == out
    assert_png(out)
    assert no_temp_files(out.parent)


def test_plot_curves_draws_only_present_splits_in_percent(metrics_csv):
    fig = plots._fig_curves(tables.read_metrics_csv(metrics_csv), None)
    ax_loss, ax_acc = fig.axes[:2]
    assert [line.get_label() for line in ax_loss.lines] == ["train", "test"]  # val columns are empty
    train_acc = ax_acc.lines[0]
    assert list(train_acc.get_xdata()) == [1.0, 2.0, 3.0]
    assert list(train_acc.get_ydata()) == pytest.approx([60.0, 70.0, 80.0])  # fractions shown as %
    assert ax_loss.get_xlabel() == "epoch"


def test_plot_curves_step_mode_with_validation(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(HEADER + ",100,2.0,0.1,2.1,0.12,,,0.1,3\n,200,1.5,0.3,1.6,0.28,1.7,0.25,0.1,6\n")
    fig = plots._fig_curves(tables.read_metrics_csv(path), None)
    ax_loss = fig.axes[0]
    assert ax_loss.get_xlabel() == "step"
    labels = [line.get_label() for line in ax_loss.lines]
    assert labels == ["train", "val", "test"]
    assert list(ax_loss.lines[2].get_xdata()) == [200.0]  # the test loss exists only at the last row
    assert_png(plots.plot_curves(path, tmp_path / "c.png"))


def test_plot_curves_of_one_evaluation_writes_the_values(tmp_path):
    """A run evaluated once (the CNN ``best`` recipe evaluates only at its end): each point carries its value, and
    the figure says that there is one evaluation."""
    path = tmp_path / "metrics.csv"
    path.write_text(HEADER + "14,4928,1.2,0.8166,0.43,0.9136,0.45,0.9019,0.0,1838\n")
    fig = plots._fig_curves(tables.read_metrics_csv(path), None)
    ax_loss, ax_acc = fig.axes[:2]
    assert [t.get_text() for t in ax_acc.texts] == ["train 81.66%", "val 91.36%", "test 90.19%"]
    assert [t.get_text() for t in ax_loss.texts] == ["train 1.20", "val 0.43", "test 0.45"]
    assert ax_acc.get_title() == "accuracy (one evaluation, at epoch 14)" and ax_loss.get_title().startswith("loss (one")
    assert_png(plots.plot_curves(path, tmp_path / "c.png"))
    # several rows: no value labels
    path.write_text(HEADER + "1,352,2.0,0.3,1.9,0.35,1.9,0.34,0.1,120\n2,704,1.5,0.5,1.4,0.55,1.4,0.54,0.1,240\n")
    fig = plots._fig_curves(tables.read_metrics_csv(path), None)
    assert not fig.axes[1].texts and fig.axes[1].get_title() == "accuracy"


def test_plot_curves_rejects_missing_or_empty_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        plots.plot_curves(tmp_path / "missing.csv", tmp_path / "c.png")
    (tmp_path / "h.csv").write_text(HEADER)
    with pytest.raises(DataError, match="no rows"):
        plots.plot_curves(tmp_path / "h.csv", tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


def test_plot_decision_boundary_binary_and_multiclass(grid_npz, tmp_path):
    assert_png(plots.plot_decision_boundary(grid_npz, tmp_path / "a" / "db.png", title="moons"))
    with np.load(grid_npz) as d:
        arrays = dict(d)
    xx = arrays["xx"]
    arrays["proba"] = np.stack([np.exp(-(xx - 1) ** 2), np.exp(-(xx + 1) ** 2), np.full_like(xx, 0.3)], axis=-1)
    arrays["y"] = np.arange(40) % 3
    multi = tmp_path / "multi.npz"
    np.savez(multi, **arrays)
    assert_png(plots.plot_decision_boundary(multi, tmp_path / "db3.png"))
    fig = plots._fig_decision_boundary(arrays, None)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["class 0", "class 1", "class 2"]


def test_plot_decision_boundary_bad_files(grid_npz, tmp_path):
    with pytest.raises(DataError, match="not found"):
        plots.plot_decision_boundary(tmp_path / "none.npz", tmp_path / "x.png")
    with np.load(grid_npz) as d:
        arrays = dict(d)
    no_y = tmp_path / "no_y.npz"
    np.savez(no_y, **{k: v for k, v in arrays.items() if k != "y"})
    with pytest.raises(DataError, match=r"lacks arrays \['y'\]"):
        plots.plot_decision_boundary(no_y, tmp_path / "x.png")
    arrays["proba"] = arrays["proba"][:-1]
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(DataError, match="proba must be"):
        plots.plot_decision_boundary(bad, tmp_path / "x.png")


def test_plot_confusion_matrix(tmp_path):
    names = ["airplane", "automobile", "bird"]
    m = np.array([[8, 2, 0], [1, 9, 0], [0, 0, 0]])  # last row empty: must not divide by zero
    out = plots.plot_confusion_matrix(m, names, tmp_path / "cm.png")
    assert_png(out)
    fig = plots._fig_confusion(m, names, None)
    ax = fig.axes[0]
    assert np.allclose(ax.images[0].get_array(), [[0.8, 0.2, 0], [0.1, 0.9, 0], [0, 0, 0]])  # row-normalised
    assert [t.get_text() for t in ax.texts] == ["8", "2", "0", "1", "9", "0", "0", "0", "0"]  # counts
    with pytest.raises(ValueError, match="2 class names for a 3 x 3"):
        plots.plot_confusion_matrix(m, names[:2], tmp_path / "x.png")
    with pytest.raises(ValueError, match="square"):
        plots.plot_confusion_matrix(np.ones((2, 3)), names, tmp_path / "x.png")


def test_plot_accuracy_vs_length_with_reference(tmp_path):
    rows = [{"cell": cell, "T": T, "mean": mean, "std": 0.05}
            for cell, base in (("rnn", 0.9), ("lstm", 1.0)) for T, mean in ((5, base), (10, base - 0.2), (20, base - 0.5))]
    rows.append({"cell": "rnn", "T": 15, "mean": 0.5, "std": None})  # a single run: no band width
    reference = {8: 0.92, 10: 0.88, 12: 0.20, 15: 1.0, 20: 0.10}  # the report's Part III table
    assert_png(plots.plot_accuracy_vs_length(rows, tmp_path / "acc.png", reference=reference))
    fig = plots._fig_accuracy_vs_length(rows, reference, None)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["rnn (mean ± std)", "lstm (mean ± std)", "report (single run)"]
    assert list(ax.lines[0].get_xdata()) == [5, 10, 15, 20]  # sorted by T
    assert list(ax.lines[2].get_ydata()) == pytest.approx([92, 88, 20, 100, 10])
    assert ax.lines[2].get_marker() != ax.lines[0].get_marker()
    with pytest.raises(ValueError, match=r"lacks keys \['mean'\]"):
        plots.plot_accuracy_vs_length([{"cell": "rnn", "T": 5}], tmp_path / "x.png")


def test_plot_gradient_norms_log_axis_tolerates_zeros(tmp_path):
    data = {"rnn": [1e-8 * 10 ** t for t in range(9)] + [0.0], "lstm": list(np.linspace(0.1, 1.0, 10))}
    assert_png(plots.plot_gradient_norms(data, tmp_path / "gn.png", title="T = 10"))
    ax = plots._fig_gradient_norms(data, None).axes[0]
    assert ax.get_yscale() == "log"
    assert list(ax.lines[0].get_xdata()) == list(range(1, 11))  # t = 1..T


def test_plot_bar_compare(tmp_path):
    labels = ["moons", "circles", "CIFAR-10 MLP"]
    series = {"report": ([97.0, None, 45.0], None), "ours": ([98.0, 99.5, 46.0], [0.5, 0.2, 1.0])}
    assert_png(plots.plot_bar_compare(labels, series, tmp_path / "bar.png", "test accuracy (%)"))
    ax = plots._fig_bar_compare(labels, series, "test accuracy (%)", None).axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == [97.0, 0.0, 45.0, 98.0, 99.5, 46.0]  # the report's missing value draws no bar
    with pytest.raises(ValueError, match="has 2 values, expected 3"):
        plots.plot_bar_compare(labels, {"x": ([1, 2], None)}, tmp_path / "x.png", "y")
    # a reference level per label (Part I: the Bayes-optimal accuracy) is a dash across the group, none for None
    marks = {"Bayes-optimal": [97.35, 97.95, None]}
    ax = plots._fig_bar_compare(labels, series, "test accuracy (%)", None, marks).axes[0]
    (dashes,) = [c for c in ax.collections if c.get_label() == "Bayes-optimal"]
    segs = dashes.get_segments()
    assert [s[0][1] for s in segs] == [97.35, 97.95] and all(s[1][0] - s[0][0] == pytest.approx(0.84) for s in segs)
    assert_png(plots.plot_bar_compare(labels, series, tmp_path / "bar2.png", "y", markers=marks))
    with pytest.raises(ValueError, match="marker 'Bayes-optimal' has 1 values, expected 3"):
        plots.plot_bar_compare(labels, series, tmp_path / "x.png", "y", markers={"Bayes-optimal": [1.0]})


def test_figures_do_not_leak(metrics_csv, tmp_path):
    import matplotlib.pyplot as plt  # only the test imports pyplot, to look at its figure registry

    before = plt.get_fignums()
    for k in range(2):
        plots.plot_curves(metrics_csv, tmp_path / f"c{k}.png")
        plots.plot_gradient_norms({"a": [1.0, 0.5]}, tmp_path / f"g{k}.png")
    assert plt.get_fignums() == before


def test_failed_write_keeps_old_file_and_leaves_no_temp(metrics_csv, tmp_path, monkeypatch):
    out = tmp_path / "curves.png"
    out.write_bytes(b"old figure")

    def broken_savefig(self, fh, **kwargs):
        fh.write(b"\x89PNG half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(plots.Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        plots.plot_curves(metrics_csv, out)
    assert out.read_bytes() == b"old figure"
    assert no_temp_files(tmp_path)


# ---------------------------------------------------------------------------------------------- html
REPORT_MD = """\
# nnlab report

Results of **Part II** with `lr = 0.1`, see [the table](#results).

## Results

| model | test accuracy |
|---|--:|
| VGG \\| BN | 97.3 ± 1.2 (n=10) |
| MLP | 45.0 (n=1) |

- curves below
- raw <b>html</b> is shown as text
  - nested item

![training curves](figs/curves.png)
![curves again](figs/curves.png "same file")

```
nnlab train --dry-run
```
"""


def test_render_html_embeds_images_and_converts_markdown(tmp_path):
    png = tiny_png(tmp_path / "figs" / "curves.png")
    page = rhtml.render_html(REPORT_MD, tmp_path, title="nnlab report")
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert 'src="figs/curves.png"' not in page and ".png\"" not in page
    encoded = base64.b64encode(png).decode("ascii")
    assert page.count(f'src="data:image/png;base64,{encoded}"') == 2
    assert '<h1 id="nnlab-report">nnlab report</h1>' in page
    assert '<h2 id="results">Results</h2>' in page
    assert "<strong>Part II</strong>" in page and "<code>lr = 0.1</code>" in page
    assert '<a href="#results">the table</a>' in page
    assert page.count("<tr>") == 3 and page.count("<th>") + page.count("<th ") == 2
    assert page.count("<td>") + page.count("<td ") == 4
    assert '<td style="text-align:right">97.3 ± 1.2 (n=10)</td>' in page
    assert "<td>VGG | BN</td>" in page
    assert "<ul><li>curves below</li><li>raw &lt;b&gt;html&lt;/b&gt; is shown as text<ul><li>nested item</li></ul></li></ul>" in page
    assert "<pre><code>nnlab train --dry-run</code></pre>" in page
    # Nothing that a browser would fetch: no remote sources, links to style sheets or scripts.
    for needle in ('src="http', "<link", "<script", "url("):
        assert needle not in page


def test_render_html_converts_a_markdown_table_from_tables(tmp_path):
    md = tables.markdown_table(["T", "accuracy"], [[8, tables.fmt_pct(0.92, 0.01, 3)], [10, None]])
    page = rhtml.render_html(md, tmp_path)
    assert page.count("<tr>") == 3 and "<td>92.0 ± 1.0 (n=3)</td>" in page and "<td></td>" in page


def test_render_html_missing_image_error_or_placeholder(tmp_path):
    md = "# r\n\n![curves](missing/curves.png)\n"
    with pytest.raises(DataError, match=r"cannot embed image 'missing/curves.png': file not found"):
        rhtml.render_html(md, tmp_path)
    page = rhtml.render_html(md, tmp_path, on_missing="placeholder")
    assert 'class="missing-image"' in page and "missing image: missing/curves.png" in page
    assert "<img" not in page
    with pytest.raises(DataError, match="only local image files"):
        rhtml.render_html("![x](https://example.org/a.png)", tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DataError, match="not a PNG"):
        rhtml.render_html("![x](empty.png)", tmp_path)
    with pytest.raises(ValueError, match="unknown on_missing 'skip'; valid: error, placeholder"):
        rhtml.render_html(md, tmp_path, on_missing="skip")


def test_write_html(tmp_path):
    tiny_png(tmp_path / "report" / "figs" / "curves.png")
    md = tmp_path / "report" / "README.md"
    md.write_text(REPORT_MD, encoding="utf-8")
    out = rhtml.write_html(md, tmp_path / "site" / "report.html")
    page = out.read_text(encoding="utf-8")
    assert "<title>nnlab report</title>" in page and "base64," in page
    assert no_temp_files(out.parent)
    with pytest.raises(DataError, match="not found"):
        rhtml.write_html(tmp_path / "none.md", tmp_path / "x.html")
