"""Map config dataclasses onto argparse flags, so each default is written once (in the dataclass).

Flags default to "not given"; a run's config is dataclass default < recipe < explicit flag.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing

from ..errors import ConfigError

_SKIP = object()


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_dataclass_flags(parser: argparse.ArgumentParser, cls, *, prefix: str = "", only=None, exclude=(), group=None):
    """Add one flag per field of ``cls`` (``dest`` = ``prefix + field``); defaults are SUPPRESS."""
    g = group or parser.add_argument_group(cls.__name__)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if (only is not None and f.name not in only) or f.name in exclude:
            continue
        help_ = f.metadata.get("help", "")
        default = f.default if f.default is not dataclasses.MISSING else None
        t = hints[f.name]
        dest = prefix + f.name
        # a help text that explains its own default (``data_dir``: $NNLAB_DATA_DIR, else ./data) keeps it alone
        shown = help_ if "(default: " in help_ else f"{help_} (default: {_show(default)})"
        if t is bool:
            g.add_argument(_flag(f.name), dest=dest, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                           help=shown)
        else:
            g.add_argument(_flag(f.name), dest=dest, type=str, default=argparse.SUPPRESS, metavar=f.name.upper(),
                           help=shown)


def _show(v):
    if isinstance(v, tuple):
        return ",".join(map(str, v))
    return v


def _convert(cls, name: str, text: str):
    hints = typing.get_type_hints(cls)
    t = hints[name]
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and type(None) in args:
        if str(text).lower() in ("none", ""):
            return None
        t = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(t), typing.get_args(t)
    try:
        if t is int:
            return int(text)
        if t is float:
            v = float(text)
            return v
        if t is str:
            return str(text)
        if origin is tuple:
            from .._validate import parse_int_list

            return parse_int_list(name, text)
    except ConfigError:  # parse_int_list's own message, naming the item that is wrong
        raise
    except (ValueError, TypeError):  # TypeError: argparse < 3.12 hands "--flag=--" over as []
        kind = {int: "an integer", float: "a number"}.get(t, str(t))
        raise ConfigError(f"{_flag(name)} must be {kind}, got {text!r}") from None
    return text


def build(cls, *layers: dict, prefix: str = "", args: argparse.Namespace | None = None):
    """Instantiate ``cls`` from dataclass defaults < each layer (plain dicts) < flags in ``args``."""
    values = {}
    names = {f.name for f in dataclasses.fields(cls)}
    for layer in layers:
        for k, v in (layer or {}).items():
            if k not in names:
                raise ConfigError(f"unknown {cls.__name__} field {k!r}; valid: {', '.join(sorted(names))}")
            values[k] = v
    if args is not None:
        for k in names:
            dest = prefix + k
            if hasattr(args, dest):
                v = getattr(args, dest)
                values[k] = v if isinstance(v, bool) else _convert(cls, k, v)
    return cls(**values)
