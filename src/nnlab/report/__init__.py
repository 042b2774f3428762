"""Tables and figures drawn from saved run files only (``metrics.csv``, ``summary.json``, ``decision_grid.npz``).

Submodules (import the one you need; this package itself imports nothing):

- ``nnlab.report.tables``: ``mean_std``, ``fmt_pct``, ``markdown_table``, ``read_metrics_csv``.
- ``nnlab.report.plots``: ``plot_curves``, ``plot_decision_boundary``, ``plot_confusion_matrix``,
  ``plot_accuracy_vs_length``, ``plot_gradient_norms``, ``plot_bar_compare``; ``draw_run_figures`` (the figures
  of one run folder). Figures are rendered with matplotlib's Agg canvas (no pyplot, no global backend change,
  nothing left open) and written atomically.
- ``nnlab.report.html``: ``render_html``, ``write_html``: the report's markdown as one offline HTML page
  with every image embedded as base64.

Layering: this package depends on numpy, matplotlib, the standard library and ``nnlab.errors`` only; it never
imports torch, ``nnlab.train`` or ``nnlab.models`` (a test checks it in a fresh interpreter), so figures can be
redrawn from a run folder without the model or a GPU.
"""
