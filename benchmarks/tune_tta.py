"""Choose the CNN's test-time views on the validation split, from finished run folders' checkpoints.

For each run folder (a ``checkpoint.pt`` of ``nnlab train cnn``), rebuild its learner from the checkpoint's own
config, then evaluate the *validation* split (never the test set) under each candidate: no views, the mirror
(``tta_flip``), and the mirror plus shifts of 1 or 2 pixels (``tta_translate``), through the learner's own
evaluation code. Prints a markdown table (validation accuracy per run, the mean, and the gain over ``flip``).

    python benchmarks/tune_tta.py runs/cnn-best-s0 runs/cnn-best-s1 runs/cnn-best-s2
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from pathlib import Path

CANDIDATES = {"none": (False, 0), "flip": (True, 0), "flip + shift 1": (True, 1), "flip + shift 2": (True, 2)}


def val_accuracies(run: Path, data_dir: str | None) -> dict[str, float]:
    from nnlab.experiments.evaluate import learner_from_checkpoint

    learner, task, train, _ = learner_from_checkpoint(run / "checkpoint.pt", device="cpu", data_dir=data_dir)
    if task.val is None:
        sys.exit(f"{run}: this run has no validation split; views are chosen on validation only")
    out = {}
    for name, (flip, shift) in CANDIDATES.items():
        learner.cfg = dataclasses.replace(train, tta_flip=flip, tta_translate=shift)
        out[name] = learner.evaluate(task.val, train.eval_batch_size).accuracy
        print(f"{run.name}: {name}: {100 * out[name]:.2f}", file=sys.stderr, flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders of nnlab train cnn (with checkpoint.pt)")
    ap.add_argument("--data-dir", default=None, help="CIFAR-10 folder (default: the one each run's config names)")
    args = ap.parse_args(argv)
    res = {r: val_accuracies(r, args.data_dir) for r in args.runs}
    names = [r.name for r in args.runs]
    print("| views | " + " | ".join(names) + " | mean | vs flip |")
    print("|---|" + "---:|" * (len(names) + 2))
    base = statistics.mean(res[r]["flip"] for r in args.runs)
    for c in CANDIDATES:
        accs = [res[r][c] for r in args.runs]
        m = statistics.mean(accs)
        print(f"| {c} | " + " | ".join(f"{100 * a:.2f}" for a in accs) + f" | {100 * m:.2f} | {100 * (m - base):+.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
