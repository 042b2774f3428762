"""Checkpoints: the whole resumable state in one dict, written atomically, loaded with weights_only.

``torch.load(..., weights_only=True)`` refuses any pickle global outside tensors and plain containers,
so a hostile checkpoint cannot run code; we turn its refusal into a clear ``CheckpointError``. That holds from
torch 2.6 on: before it, a crafted file could run code even under ``weights_only=True`` (CVE-2025-32434), so
:func:`load_checkpoint` refuses to load anything with an older torch. A loaded
checkpoint's structure is checked too (a hand-edited or foreign file fails here, with the file's name, not
deep inside a learner), and a state whose weights are NaN/inf is never written over the last good one.

The format (``nnlab-checkpoint-v1``), as ``nnlab.train.loop.fit`` writes it::

    {"format", "nnlab_version", "config": dict, "learner": {"model": {name: Tensor}, ...},
     "step": int >= 0, "rows": [dict], "first_hit": int | None, "streak": int, "elapsed": float,
     "stopped_early": bool, "total_steps": int}
"""

from __future__ import annotations

import io
import math
import os
import pickle
import re
from numbers import Integral, Real
from pathlib import Path

import torch

from .. import __version__
from .._io import atomic_write_bytes
from ..errors import CheckpointError, TrainingDiverged

FORMAT = "nnlab-checkpoint-v1"
#: The first torch whose ``torch.load(weights_only=True)`` cannot be made to run code (CVE-2025-32434, fixed in 2.6).
SAFE_TORCH = (2, 6)


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` atomically to ``path``; refuse (``TrainingDiverged``) if its weights are not finite.

    The loop notices a NaN/inf loss only at its next sync point, and the loss of a step is computed before
    that step's update: an update that blows the weights up can come just before a checkpoint whose losses
    are all finite. Checking the weights here keeps the file on disk the last good state.
    """
    path = Path(path)
    bad = nonfinite_weights(state.get("learner"))
    if bad:
        kept = (f"{str(path)!r} was not overwritten: it holds the last good state and is resumable" if path.exists()
                else "no checkpoint had been written yet")
        raise TrainingDiverged(
            f"the weights became NaN/inf before step {state.get('step', '?')} ({', '.join(bad[:3])}"
            f"{', ...' if len(bad) > 3 else ''}); training stopped and {kept}. Lower --lr or set --clip-grad-norm.")
    state = dict(state)
    state["format"] = FORMAT
    state["nnlab_version"] = __version__
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def nonfinite_weights(learner_state) -> list[str]:
    """Names of the floating-point model (and EMA) tensors of a learner state that hold a NaN or an inf."""
    if not isinstance(learner_state, dict):
        return []
    bad = []
    for part in ("model", "ema"):
        tensors = learner_state.get(part)
        for name, t in (tensors.items() if isinstance(tensors, dict) else ()):
            if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
                bad.append(name if part == "model" else f"ema.{name}")
    return bad


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` (a file, or a run folder holding ``checkpoint.pt``).

    Raises ``CheckpointError`` naming the file for anything else: missing, not a regular file, truncated,
    garbage, a pickle that asks for code (refused, never run), another format, or malformed fields.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {str(path)!r}")
    if not path.is_file():
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}: not a regular file")
    _require_safe_torch(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"refused to load {str(path)!r}: it is not a plain-tensor checkpoint (weights_only=True); "
            f"nothing in it was executed ({first[:200]})") from None
    except Exception as e:  # noqa: BLE001 - a damaged file makes torch.load fail in many ways (IndexError, ...)
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}, truncated or corrupt "
                              f"({type(e).__name__}{': ' + first if first else ''})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not an nnlab checkpoint (format {FORMAT} expected)")
    problems = _structure_problems(state)
    if problems:
        raise CheckpointError(f"{str(path)!r} is a damaged nnlab checkpoint: " + "; ".join(problems[:5]))
    return state


def _require_safe_torch(path: Path) -> None:
    """Refuse to unpickle anything with a torch whose ``weights_only=True`` can be bypassed (before 2.6)."""
    version = str(torch.__version__)
    m = re.match(r"(\d+)\.(\d+)", version)
    if m is None or (int(m[1]), int(m[2])) < SAFE_TORCH:
        need = ".".join(map(str, SAFE_TORCH))
        raise CheckpointError(
            f"refused to load {str(path)!r}: torch {version} is older than {need}, and before {need} "
            f"torch.load(weights_only=True) can run code from a crafted file (CVE-2025-32434); "
            f"upgrade torch (pip install 'torch>={need}') and load it again")


def _is_int(v) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool)


def _structure_problems(st: dict) -> list[str]:
    """What in a loaded checkpoint does not match the format (see the module docstring)."""
    problems = []
    if not isinstance(st.get("config"), dict):
        problems.append(f"'config' must be a dict, got {type(st.get('config')).__name__}")
    learner = st.get("learner")
    if not isinstance(learner, dict):
        problems.append(f"'learner' must be a dict, got {type(learner).__name__}")
    else:
        model = learner.get("model")
        if not isinstance(model, dict) or not model:
            problems.append(f"'learner.model' must be a non-empty dict of tensors, got {type(model).__name__}")
        else:
            bad = [str(k) for k, v in model.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
            if bad:
                problems.append(f"'learner.model' entries must be named tensors: {', '.join(bad[:3])}")
        for key in ("optimizer", "train_stats", "ema"):
            if key in learner and not isinstance(learner[key], dict):
                problems.append(f"'learner.{key}' must be a dict, got {type(learner[key]).__name__}")
        if "torch_rng" in learner and not isinstance(learner["torch_rng"], torch.Tensor):
            problems.append("'learner.torch_rng' must be a tensor")
    step = st.get("step")
    if not _is_int(step) or step < 0:
        problems.append(f"'step' must be an integer >= 0, got {step!r}")
    rows = st.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        problems.append("'rows' must be a list of dicts")
    if st.get("first_hit") is not None and not _is_int(st.get("first_hit")):
        problems.append(f"'first_hit' must be an integer or None, got {st.get('first_hit')!r}")
    if not _is_int(st.get("streak", 0)):
        problems.append(f"'streak' must be an integer, got {st.get('streak')!r}")
    elapsed = st.get("elapsed", 0.0)
    if isinstance(elapsed, bool) or not isinstance(elapsed, Real) or not math.isfinite(elapsed):
        problems.append(f"'elapsed' must be a number of seconds, got {elapsed!r}")
    if not isinstance(st.get("stopped_early", False), bool):
        problems.append(f"'stopped_early' must be true or false, got {st.get('stopped_early')!r}")
    return problems


def config_differences(a: dict, b: dict, prefix: str = "", ignore: frozenset = frozenset()) -> list[str]:
    """Keys whose values differ between two nested config dicts (for a clear resume error).

    At each level plain values come before sections, so a run of another kind or model says so first
    (``kind``, ``model_name``), before the sections that differ because of it.
    """
    out = []
    keys = set(a) | set(b)
    for k in sorted(keys, key=lambda k: (isinstance(a.get(k), dict) or isinstance(b.get(k), dict), str(k))):
        name = f"{prefix}{k}"
        if name in ignore:
            continue
        va, vb = a.get(k, "<missing>"), b.get(k, "<missing>")
        if isinstance(va, dict) and isinstance(vb, dict):
            out += config_differences(va, vb, name + ".", ignore)
        elif _norm(va) != _norm(vb):
            out.append(f"{name}: checkpoint has {va!r}, this run has {vb!r}")
    return out


def _norm(v):
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    return v
