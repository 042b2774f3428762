"""Timing helpers shared by the benchmark scripts (not part of the package, not tests).

How every figure here is taken:

- all contenders live in ONE process and are timed in the same rounds: round ``r`` calls each contender once,
  in an order rotated by ``r`` (so none is always first after a pause), after untimed warm-up rounds;
- the figure per contender is the MEDIAN over rounds, so a burst of load from other processes on a shared
  machine lands on one round of every contender rather than on one contender;
- a ``sync`` callable (``torch.cuda.synchronize`` on a GPU) runs before the clock starts and before it stops;
- evaluation, checkpoints and data loading from disk are outside the timed region unless a row says otherwise.

Each script prints a human table, then ONE JSON object on its last line (``emit``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any, Callable


def cpu_model() -> str:
    """``lscpu``'s "Model name" (falls back to /proc/cpuinfo, then ``platform.processor()``)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.MULTILINE)
        if m:
            return m.group(1).strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        if m:
            return m.group(1).strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """Date, CPU, cores, load and library versions, for the JSON record and RESULTS.md."""
    import numpy

    info: dict[str, Any] = {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
    }
    try:
        info["loadavg_1min_at_start"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        info["torch"] = None
    try:
        import sklearn

        info["sklearn"] = sklearn.__version__
    except ImportError:
        info["sklearn"] = None
    return info


def add_common_args(ap: argparse.ArgumentParser, *, repeats: int, warmup: int) -> None:
    ap.add_argument("--repeats", type=int, default=repeats, help=f"timed rounds; the median is reported (default {repeats})")
    ap.add_argument("--warmup", type=int, default=warmup, help=f"untimed rounds first (default {warmup})")
    ap.add_argument("--out", default=None, help="also write the JSON record to this file")


#: ``--fused``: which optimizer implementation EVERY torch contender uses (ours and the baselines alike).
FUSED_CHOICES = ("on", "off", "both")


def add_fused_arg(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--fused", choices=FUSED_CHOICES, default="on",
                    help="optimizer implementation of every torch contender, ours and the baselines alike: on = fused "
                         "kernels (what nnlab uses on CPU/CUDA), off = torch's default (a for-loop on CPU, foreach on "
                         "CUDA), both = every pair in both, interleaved in the same rounds (default on)")


def fused_modes(choice: str) -> list[bool]:
    """``--fused`` as the list of settings to time, the headline one first."""
    return {"on": [True], "off": [False], "both": [True, False]}[choice]


def fused_kw(fused: bool) -> dict:
    """Constructor keyword of a baseline's torch optimizer: ``fused=True``, or torch's default (``fused=None``)."""
    return {"fused": True} if fused else {}


def set_fused(opt, fused: bool) -> None:
    """Switch a torch optimizer built by nnlab (fused on CPU/CUDA) to ``fused`` before its first step: True keeps
    the fused kernel, False gives torch's default (``fused=None``: for-loop on CPU, foreach on CUDA), as a
    baseline built without the keyword has. Each step reads ``group["fused"]``; the state is still empty."""
    if opt.state:
        raise RuntimeError("set_fused: call it before the optimizer's first step (its state is laid out per implementation)")
    for group in opt.param_groups:
        if "fused" not in group:
            raise ValueError(f"{type(opt).__name__} has no fused implementation")
        group["fused"] = True if fused else None
    opt.defaults["fused"] = True if fused else None


def impl_name(fused: bool, device_type: str = "cpu") -> str:
    """How a torch optimizer with this ``fused`` setting steps on a device of this type (for labels)."""
    if fused:
        return "fused"
    return "default (foreach on CUDA)" if device_type == "cuda" else "default (for-loop on CPU)"


def interleaved(contenders: dict[str, Callable[[], Any]], *, repeats: int, warmup: int,
                sync: Callable[[], None] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each contender, ``repeats`` values each (warm-up rounds not recorded).

    Round ``r`` calls every contender once, starting from contender ``r mod k`` (rotated order).
    """
    names = list(contenders)
    k = len(names)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + repeats):
        order = names[r % k:] + names[:r % k]
        for name in order:
            fn = contenders[name]
            if sync is not None:
                sync()
            t0 = time.perf_counter()
            fn()
            if sync is not None:
                sync()
            dt = time.perf_counter() - t0
            if r >= warmup:
                times[name].append(dt)
    return times


def repeat_calls(fn: Callable[[], Any], calls: int) -> Callable[[], None]:
    """``fn`` called ``calls`` times in a row (for timing tiny operations; divide the time by ``calls``)."""
    def run():
        for _ in range(calls):
            fn()
    return run


def median(xs) -> float:
    return float(statistics.median(xs))


def stats(xs, scale: float = 1.0, digits: int = 3) -> dict:
    """Median, min, max of ``xs`` times ``scale`` (e.g. 1e3 for ms), and the number of rounds."""
    return {"median": round(median(xs) * scale, digits), "min": round(min(xs) * scale, digits),
            "max": round(max(xs) * scale, digits), "n": len(xs)}


def paired_ratio(num: list[float], den: list[float], digits: int = 3) -> dict:
    """Per-round ratios ``num[r] / den[r]`` (both timed in round ``r``, under the same load): median and quartiles.

    A check on the headline ratio of medians: when the two agree, load drift did not decide the figure.
    """
    rs = sorted(a / b for a, b in zip(num, den))
    q = statistics.quantiles(rs, n=4, method="inclusive") if len(rs) >= 2 else [rs[0]] * 3
    return {"median": round(float(statistics.median(rs)), digits), "q1": round(q[0], digits), "q3": round(q[2], digits)}


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    """A plain fixed-width table (first column left-aligned, the rest right-aligned)."""
    cells = [[str(h) for h in headers]] + [[c if isinstance(c, str) else f"{c:.3f}" if isinstance(c, float) else str(c)
                                            for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for j, row in enumerate(cells):
        print("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))
        if j == 0:
            print("  ".join("-" * w for w in widths))


def emit(result: dict, out: str | None = None) -> None:
    """Print ``result`` as ONE JSON line (the script's last line); also write it to ``out`` if given."""
    line = json.dumps(result, sort_keys=False)
    if out:
        Path(out).write_text(line + "\n")
    print(line, flush=True)


def textbook_epoch(model, opt, crit, loader, device=None):
    """One epoch of the textbook PyTorch loop, the baseline of bench_part1 and bench_cifar: batches from a
    ``DataLoader`` (moved to ``device`` when given), ``zero_grad``/forward/backward/step, ``loss.item()`` every step."""
    def run():
        model.train()
        running = 0.0
        for xb, yb in loader:
            if device is not None:
                xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad()
            loss = crit(model(xb), yb)
            loss.backward()
            opt.step()
            running += loss.item()
        return running

    return run
