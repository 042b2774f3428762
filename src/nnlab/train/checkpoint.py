"""Checkpoints: the whole resumable state in one dict, written atomically, loaded with weights_only.

``torch.load(..., weights_only=True)`` refuses any pickle global outside tensors and plain containers,
so a hostile checkpoint cannot run code; we turn its refusal into a clear ``CheckpointError``.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import torch

from .. import __version__
from ..errors import CheckpointError
from .runfolder import atomic_write_bytes

FORMAT = "nnlab-checkpoint-v1"


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    state = dict(state)
    state["format"] = FORMAT
    state["nnlab_version"] = __version__
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {str(path)!r}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"refused to load {str(path)!r}: it is not a plain-tensor checkpoint (weights_only=True); "
            f"nothing in it was executed ({first[:200]})") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}: {str(e).splitlines()[0][:200] if str(e) else type(e).__name__}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not an nnlab checkpoint (format {FORMAT} expected)")
    return state


def config_differences(a: dict, b: dict, prefix: str = "", ignore: frozenset = frozenset()) -> list[str]:
    """Keys whose values differ between two nested config dicts (for a clear resume error)."""
    out = []
    for k in sorted(set(a) | set(b)):
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
