"""Imports only go down (docs/ARCHITECTURE.md), read from the source: every ``import``/``from`` statement,
at module level or inside functions, of each package is checked against what that layer may import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "nnlab"

#: layer -> the nnlab subpackages/modules it must never import
FORBIDDEN = {
    "experiments": {"cli"},
    "models": {"train", "experiments", "report", "cli"},
    "data": {"train", "experiments", "report", "cli"},
    "numpy_nn": {"train", "experiments", "report", "cli", "models", "data"},
    "report": {"train", "models", "experiments", "cli"},
    "train": {"experiments", "report", "cli"},
}


def _nnlab_imports(text: str, rel_parts: tuple[str, ...]) -> set[str]:
    """The first component below ``nnlab`` of every nnlab module that a file imports (relative or absolute).

    ``rel_parts``: the file's path below ``nnlab/`` (e.g. ``("experiments", "cifar.py")``)."""
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                pkg = list(rel_parts[:-1])
                base = pkg[: max(0, len(pkg) - (node.level - 1))]
                target = base + (node.module.split(".") if node.module else [])
                names = [target[0]] if target else [a.name for a in node.names]
            elif node.module and node.module.split(".")[0] == "nnlab":
                parts = node.module.split(".")[1:]
                names = [parts[0]] if parts else [a.name for a in node.names]
            else:
                continue
            found.update(names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("nnlab."))
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_only_go_down(layer):
    bad = []
    for path in sorted((SRC / layer).rglob("*.py")):
        rel = path.relative_to(SRC).parts
        hits = _nnlab_imports(path.read_text(encoding="utf-8"), rel) & FORBIDDEN[layer]
        if hits:
            bad.append(f"{'/'.join(rel)} imports {', '.join(sorted(hits))}")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_the_checker_sees_relative_absolute_and_function_level_imports():
    text = "import nnlab.report.tables\ndef f():\n    from ..cli import main\n    from ..train.loop import fit\n    from . import common\n"
    assert _nnlab_imports(text, ("experiments", "x.py")) == {"cli", "train", "report", "experiments"}
    assert _nnlab_imports("from .. import cli\n", ("experiments", "x.py")) == {"cli"}


LAYERS = {"numpy_nn", "models", "data", "train", "experiments", "report", "cli"}


def test_only_the_entry_point_imports_the_cli():
    """The CLI parses and dispatches; what two commands share lives below it, so no module imports it back."""
    bad = [str(p.relative_to(SRC)) for p in sorted(SRC.rglob("*.py")) if p.name not in ("cli.py", "__main__.py")
           and "cli" in _nnlab_imports(p.read_text(encoding="utf-8"), p.relative_to(SRC).parts)]
    assert not bad, "modules importing nnlab.cli: " + ", ".join(bad)


@pytest.mark.parametrize("name", ["_io.py", "_validate.py", "errors.py"])
def test_shared_base_modules_import_no_layer(name):
    """The modules every layer may import (one atomic write, validators, errors) sit below all of them."""
    path = SRC / name
    if not path.exists():
        pytest.skip(f"{name} not in this tree")
    assert not _nnlab_imports(path.read_text(encoding="utf-8"), (name,)) & LAYERS
