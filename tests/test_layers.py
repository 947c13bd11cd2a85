"""The package's import structure: layers, no cycles, no private names across modules.

Every ``import`` in ``medssl3d/`` is read from the source (``ast``, function-level imports included, since a
lazy import that closes a circle is still a circle), so the test is fast and needs no dependency.

The layer order, lowest first; a module may import its own layer and the layers below, never above:

0. ``medssl3d`` (the top package, which loads sub-packages on first use), ``medssl3d._lazy``,
   ``medssl3d.utils``: file writing, argument checks, device and rank helpers.
1. ``medssl3d.reports``: turns numbers into tables, Markdown and plots, and runs bundles as separate
   processes; it knows no network, dataset or engine, so every layer above may write through it.
2. ``medssl3d.data``: datasets, datalists, splits, readers.
3. ``medssl3d.transforms``: MONAI transforms over what data reads.
4. ``medssl3d.losses``, ``medssl3d.nets``, ``medssl3d.optimizers``, ``medssl3d.metrics``: tensors in, tensors or
   numbers out.
5. ``medssl3d.tasks``: a pretext task wires a transform, a network and a loss together.
6. ``medssl3d.engines``: training-loop handlers around MONAI's engines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "medssl3d"

LAYERS: list[tuple[str, ...]] = [
    ("medssl3d", "medssl3d._lazy", "medssl3d.utils"),
    ("medssl3d.reports",),
    ("medssl3d.data",),
    ("medssl3d.transforms",),
    ("medssl3d.losses", "medssl3d.nets", "medssl3d.optimizers", "medssl3d.metrics"),
    ("medssl3d.tasks",),
    ("medssl3d.engines",),
]


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _imports(module: str) -> list[tuple[str, str, int]]:
    """(imported module, imported name or "", line) for every medssl3d import in ``module``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return imports_in(path.read_text(encoding="utf-8"), package)


def imports_in(source: str, package: str) -> list[tuple[str, str, int]]:
    """The medssl3d imports of ``source``, a module of ``package``, wherever they stand (functions too)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(a.name, "", node.lineno) for a in node.names if a.name.split(".")[0] == "medssl3d"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "medssl3d":
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                known = submodule in MODULES
                found.append((submodule, "", node.lineno) if known else (target, alias.name, node.lineno))
    return found


GRAPH = {m: sorted({target for target, _, _ in _imports(m) if target != m}) for m in MODULES}


def layer_of(module: str) -> int:
    best, level = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), i
    return level


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a list of modules (first == last), or ``None``."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_every_module_has_a_layer():
    assert [m for m in MODULES if layer_of(m) < 0] == []
    assert len(MODULES) > 50  # the walk found the package


def test_no_lower_layer_imports_a_higher_one():
    upward = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)}) at line {line}"
        for module in sorted(MODULES)
        for target, _, line in _imports(module)
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_no_import_cycles():
    assert find_cycle(GRAPH) is None


def test_no_private_name_imported_from_another_module():
    """A leading-underscore name stays in its module; a private module (``_lazy``) stays in its package."""
    bad = []
    for module in sorted(MODULES):
        for target, name, line in _imports(module):
            if name.startswith("_"):
                bad.append(f"{module}:{line} imports {name} from {target}")
            parts = target.split(".")
            for i, part in enumerate(parts):
                owner = ".".join(parts[:i])
                if part.startswith("_") and not (module == owner or module.startswith(owner + ".")):
                    bad.append(f"{module}:{line} imports the private module {target}")
    assert bad == []


@pytest.mark.parametrize(
    "graph, cycle",
    [
        ({"a": ["b"], "b": ["c"], "c": []}, None),
        ({"a": ["b"], "b": ["c"], "c": ["a"]}, ["a", "b", "c", "a"]),
        ({"a": ["a2"], "a2": [], "b": ["b"]}, ["b", "b"]),
    ],
)
def test_find_cycle_finds_what_is_there(graph, cycle):
    assert find_cycle(graph) == cycle


def test_the_walk_sees_function_level_relative_and_package_imports():
    source = (
        "import os\n"
        "from .base import PretextTask\n"
        "from medssl3d.utils import io\n"
        "from medssl3d.nets import UNet\n"
        "def f():\n"
        "    from ..engines.checkpoint import _private\n"
    )
    assert imports_in(source, "medssl3d.tasks") == [
        ("medssl3d.tasks.base", "PretextTask", 2),
        ("medssl3d.utils.io", "", 3),
        ("medssl3d.nets", "UNet", 4),
        ("medssl3d.engines.checkpoint", "_private", 6),
    ]
    assert layer_of("medssl3d.data.classification.anything") == layer_of("medssl3d.data") == 2
    assert layer_of("medssl3d.engines.checkpoint") > layer_of("medssl3d.nets.unet") > layer_of("medssl3d.utils.io")
