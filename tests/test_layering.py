"""The package's layering (docs/architecture.md): no import circle in ``bench/`` and no import from a
lower layer into a higher one. Every ``import`` counts, wherever it stands: at the top, inside a
function, under ``if TYPE_CHECKING:`` (a type-only import is a dependency all the same)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bench"

# The layers, lowest first: (name, module prefixes, what the layer holds). A module belongs to the
# layer of its longest matching prefix; it may import modules of its own layer and of lower ones.
# docs/architecture.md mirrors this table (a test below holds the two together).
LAYERS: list[tuple[str, tuple[str, ...], str]] = [
    (
        "foundation",
        (
            "bench",
            "bench.errors",
            "bench.paths",
            "bench.registry",
            "bench.utils",
            "bench.config",
        ),
        "errors, paths, the registry class, small utilities, the config schemas",
    ),
    ("result rows", ("bench.results",), "the result row: one JSON file per run"),
    ("data and networks", ("bench.data", "bench.models"), "the dataset and model registries, taps"),
    (
        "losses, evaluation, teachers, tracking",
        ("bench.methods", "bench.evaluation", "bench.teachers", "bench.teacher_split", "bench.tracking"),
        "the KD-term registry and objective, metrics and inference, teacher checkpoints and the images "
        "they were trained on, logger backends",
    ),
    (
        "composition",
        ("bench.config.compose", "bench.cli", "bench.preflight"),
        "Hydra composition validated against the registries; the entry points' shared plumbing; "
        "what a run needs, checked before it starts",
    ),
    ("engine", ("bench.engine",), "one training run: the trainer, its step, callbacks, checkpoints"),
    ("workers", ("bench.workers",), "worker processes, multi-GPU trials, the local/Slurm launchers"),
    ("tuning", ("bench.tune",), "search spaces, studies, budgets, trials, finals"),
    ("report", ("bench.report",), "tables, statistics and figures from result rows and studies"),
    (
        "entry points and tools",
        (
            "bench.train",
            "bench.teacher",
            "bench.maskd_tokens",
            "bench.sweep",
            "bench.final",
            "bench.fidelity",
            "bench.rescore",
            "bench.forget",
            "bench.convert",
            "bench.reproduce",
            "bench.status",
            "bench.demo",
            "bench.plan",
            "bench.check_data",
            "bench.visualize",
            "bench.perf",
            "bench.report.__main__",
        ),
        "the commands (python -m bench.<command>, make <target>) and the perf tools",
    ),
]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool, known: Iterable[str]) -> set[str]:
    """Every ``bench`` module that ``source`` imports, anywhere in it (``from a import b`` counts as
    ``a.b`` when that is a module, else as ``a``; relative imports are resolved)."""
    known = set(known)
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = [f"{target}.{alias.name}" for alias in node.names]
            found.update(s for s in subs if s in known)
            if not all(s in known for s in subs):
                found.add(target)
    return {m for m in found if m == "bench" or m.startswith("bench.")}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in sorted((root / "bench").rglob("*.py"))}
    return {
        name: imports_of(path.read_text(), name, path.name == "__init__.py", files) - {name}
        for name, path in files.items()
    }


def layer_of(module: str) -> int:
    best, level = -1, None
    for i, (_, prefixes, _) in enumerate(LAYERS):
        for p in prefixes:
            within = module.startswith(p + ".") and p != "bench"  # the root holds only itself
            if (module == p or within) and len(p) > best:
                best, level = len(p), i
    if level is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")
    return level


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
        for m, deps in graph.items()
        for d in deps
        if layer_of(d) > layer_of(m)
    )


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer():
    for module in import_graph():
        layer_of(module)


def test_no_import_circle_in_bench():
    assert circles(import_graph()) == []


def test_no_import_from_a_lower_layer_into_a_higher_one():
    assert upward_imports(import_graph()) == []


def test_the_docs_state_the_same_layers():
    """docs/architecture.md has one table row per layer, lowest first, naming the same modules."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\|\s*(\d+)\s*\|([^|]+)\|([^|]+)\|", text, re.M)
    documented = [(int(n), name.strip(), sorted(re.findall(r"`([\w.]+)`", mods))) for n, name, mods in rows]
    expected = [(i, name, sorted(prefixes)) for i, (name, prefixes, _) in enumerate(LAYERS)]
    assert documented == expected


# ---- the checks cannot be fooled: imports hidden in functions, type-only or relative imports count
def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / "bench" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_a_function_local_import_counts(tmp_path):
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "errors.py": "def f():\n    from bench.tune import runner\n",
            "tune/__init__.py": "",
            "tune/runner.py": "",
        },
    )
    assert upward_imports(import_graph(root)) == [
        "bench.errors (foundation) imports bench.tune.runner (tuning)"
    ]


def test_a_type_checking_import_counts(tmp_path):
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "models/__init__.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from bench.engine.trainer import Trainer\n"
            ),
            "engine/__init__.py": "",
            "engine/trainer.py": "",
        },
    )
    assert upward_imports(import_graph(root)) == [
        "bench.models (data and networks) imports bench.engine.trainer (engine)"
    ]


def test_relative_and_from_package_imports_resolve(tmp_path):
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "data/__init__.py": "from . import splits\n",
            "data/splits.py": "from .. import tune\n",
            "tune/__init__.py": "",
        },
    )
    graph = import_graph(root)
    assert graph["bench.data"] == {"bench.data.splits"}
    assert graph["bench.data.splits"] == {"bench.tune"}
    assert upward_imports(graph) == ["bench.data.splits (data and networks) imports bench.tune (tuning)"]


def test_a_circle_through_a_package_init_is_found(tmp_path):
    """The registry-in-``__init__`` pattern: ``__init__`` imports a submodule that imports it back."""
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "methods/__init__.py": "TERMS = 1\nfrom bench.methods.objective import Objective\n",
            "methods/objective.py": "def f():\n    from bench.methods import TERMS\n",
        },
    )
    assert circles(import_graph(root)) == [["bench.methods", "bench.methods.objective"]]


def test_a_module_in_no_layer_is_an_error():
    with pytest.raises(AssertionError, match=r"bench\.newpkg is in no layer"):
        layer_of("bench.newpkg")
