"""The package's layers: no import cycle, and no module imports from a layer above its own."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "vitfer"
#: lower layers never import higher ones (lazy imports inside functions included)
LAYERS = {
    "errors": 0, "labels": 0, "shipped": 0, "hub": 0, "runs": 0, "preprocess": 0, "checks": 0,
    "data": 1, "faces": 1, "models": 1, "config": 1,
    "training": 2, "inference": 2,
    "evaluation": 3, "explanations": 3,
    "serving": 4, "api": 4, "cli": 4, "__init__": 4,
}


def module_name(path: Path) -> str:
    return ".".join(("vitfer", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")


def layer_of(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "__init__"]


MODULES = sorted(module_name(p) for p in SRC.rglob("*.py"))


def test_no_module_imports_from_a_layer_above_its_own():
    wrong = []
    for path in SRC.rglob("*.py"):
        here = module_name(path)
        for node in ast.walk(ast.parse(path.read_text())):
            targets = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                       [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for target in targets:
                if target.startswith("vitfer.") and layer_of(target) > layer_of(here):
                    wrong.append(f"{here} imports {target}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("order", ["forward", "backward"])
def test_every_module_imports_alone_in_a_fresh_interpreter(order):
    """An import cycle shows up as an ImportError for some first module; each module is tried first."""
    modules = MODULES if order == "forward" else MODULES[::-1]
    code = ("import importlib, sys\n"
            "for name in sys.argv[1:]:\n"
            "    for loaded in [m for m in sys.modules if m == 'vitfer' or m.startswith('vitfer.')]:\n"
            "        del sys.modules[loaded]\n"
            "    importlib.import_module(name)\n")
    result = subprocess.run([sys.executable, "-c", code, *modules], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
