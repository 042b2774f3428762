"""Glue shared by the recipes: config records, run folders, device and distributed setup."""

from __future__ import annotations

import dataclasses
import time

from ..train.runfolder import provenance


def config_record(kind: str, model_name: str, recipe: str | None, **sections) -> dict:
    """The resolved config written to ``config.json`` and stored in every checkpoint."""
    rec = {"kind": kind, "model_name": model_name, "recipe": recipe}
    for name, obj in sections.items():
        rec[name] = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj
    rec.update(provenance())
    rec["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return rec


def to_jsonable(obj):
    if isinstance(obj, tuple):
        return list(obj)
    return obj
