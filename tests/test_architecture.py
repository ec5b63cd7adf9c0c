"""The package's shape: no import circle, no import from a lower layer to a higher one, and a runtime floor that
never imports torch (nor any other package of the research floor).

The import graph is read from the source with ``ast``: imports at module level, inside functions and under
``TYPE_CHECKING`` all count, and so does a string literal that names a vitfer module (``importlib`` lookups such
as ``api.research("vitfer.training.run", ...)``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "vitfer"
#: each top-level module or package of vitfer -> its layer; a module imports only from its own layer or below
LAYERS = {
    "errors": 0, "version": 0, "files": 0, "labels": 0, "preprocess": 0, "shipped": 0, "hub": 0, "checks": 0, "meta": 0,
    "config": 0,
    "runtime": 1,
    "serving": 2, "compat": 2, "web": 2, "data": 2, "models": 2,
    "training": 3,
    "evaluation": 4, "explanations": 4,
    "api": 5, "cli": 6, "__init__": 6,
}
#: the runtime floor (what ``pip install vitfer`` runs): it may import nothing of the research floor
RUNTIME_FLOOR = {"errors", "version", "files", "labels", "preprocess", "shipped", "hub", "checks", "meta", "runtime",
                 "serving", "compat", "web", "api", "cli", "__init__"}


def module_name(path: Path) -> str:
    return ".".join(("vitfer", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def resolve(target: str) -> str | None:
    """The vitfer module an import names (``from vitfer.x import y`` may name module ``vitfer.x.y``)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def imports_of(path: Path) -> set[str]:
    """Every vitfer module that ``path`` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("vitfer.") \
                and node.value in MODULES:
            names = [node.value]
        else:
            continue
        found |= {m for m in (resolve(n) for n in names if n.startswith("vitfer")) if m}
    return found


GRAPH = {module: imports_of(path) - {module} for module, path in MODULES.items()}


def test_every_module_has_a_layer():
    assert not {top(m) for m in MODULES} - set(LAYERS)


def test_no_module_imports_from_a_layer_above_its_own():
    wrong = [f"{here} (layer {LAYERS[top(here)]}) imports {there} (layer {LAYERS[top(there)]})"
             for here, targets in GRAPH.items() for there in targets
             if top(here) != top(there) and LAYERS[top(there)] > LAYERS[top(here)]]
    assert not wrong, "\n".join(sorted(wrong))


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that import each other, directly or through others."""
    index, low, stack, on_stack, groups, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_import_circle():
    assert strongly_connected(GRAPH) == []


def test_the_circle_finder_finds_circles():
    """The check above would pass vacuously if the finder missed circles: it must see these."""
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_the_runtime_floor_imports_nothing_of_the_research_floor():
    wrong = [f"{here} imports {there}" for here, targets in GRAPH.items() if top(here) in RUNTIME_FLOOR
             and top(here) not in ("api", "cli", "__init__") for there in targets if top(there) not in RUNTIME_FLOOR]
    assert not wrong, "\n".join(sorted(wrong))


RUNTIME_CHECK = """
import sys
import numpy as np
import vitfer
from vitfer.runtime.predictor import Predictor
from vitfer.shipped import EXAMPLE_IMAGE
faces = Predictor().predict(str(EXAMPLE_IMAGE))
assert len(faces) == 1, faces
vitfer.Predictor("fast", detector="none").predict(np.zeros((48, 48, 3), np.uint8))
try:
    from vitfer.serving.app import create_app
    create_app()
except ImportError:
    pass
research = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "torchvision", "timm", "lightning",
                  "kornia", "pandas", "matplotlib", "sklearn", "onnx", "onnxscript", "transformers"})
print(",".join(research))
"""


@pytest.mark.slow
def test_a_prediction_and_the_server_never_import_torch():
    result = subprocess.run([sys.executable, "-c", RUNTIME_CHECK], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "", f"the runtime imported {result.stdout.strip()}"


@pytest.mark.slow
@pytest.mark.parametrize("order", ["forward", "backward"])
def test_every_module_imports_alone_in_a_fresh_interpreter(order):
    """A module that cannot be imported first (a circle at import time, a missing import) fails here."""
    modules = sorted(MODULES) if order == "forward" else sorted(MODULES)[::-1]
    code = ("import importlib, sys\n"
            "for name in sys.argv[1:]:\n"
            "    for loaded in [m for m in sys.modules if m == 'vitfer' or m.startswith('vitfer.')]:\n"
            "        del sys.modules[loaded]\n"
            "    importlib.import_module(name)\n")
    result = subprocess.run([sys.executable, "-c", code, *modules], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
