"""The house rules of the layout: four import roots, no import circles, nothing imports upward."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROOTS = ("regpilot", "handlers", "tasks", "config")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root in ROOTS:
        for path in (ROOT / root).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Return the project modules `name` imports, lazy (in-function) imports included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in MODULES:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _is_package_of(parent: str, child: str) -> bool:
    return child.startswith(parent + ".")


def test_the_distribution_installs_exactly_four_import_roots():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {pattern.split(".")[0] for pattern in include} == set(ROOTS)
    assert project["project"]["scripts"]["regpilot"] == "regpilot.cli.main:main"


def test_no_module_imports_itself_back_through_others():
    # A package's __init__ importing its own submodules is not a circle of concern.
    edges = {
        name: {t for t in targets if not _is_package_of(name, t) and not _is_package_of(t, name)}
        for name, targets in GRAPH.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_core_is_pure():
    allowed_roots = {"regpilot.core"}
    for name, targets in GRAPH.items():
        if name.startswith("regpilot.core"):
            assert {t for t in targets if not t.startswith(tuple(allowed_roots))} == set(), name
    impure = ("flask", "celery", "redis", "mlflow", "databricks", "kombu")
    for name, path in MODULES.items():
        if name.startswith("regpilot.core"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom | ast.Import):
                    mods = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                    mods.append(getattr(node, "module", None) or "")
                    assert not any(m.split(".")[0] in impure for m in mods), name


def test_the_library_never_imports_the_service_edges():
    # regpilot/ is the library: HTTP (handlers) and the worker (tasks) sit on top of it. Only the
    # CLI, which starts those processes, may reach them.
    for name, targets in GRAPH.items():
        if name.startswith("regpilot.") and not name.startswith("regpilot.cli"):
            assert {t for t in targets if t.split(".")[0] in ("handlers", "tasks")} == set(), name


def test_only_registry_adapters_import_mlflow_or_databricks():
    for name, path in MODULES.items():
        if name.startswith(("regpilot.core", "regpilot.workflows", "regpilot.stores")):
            text = path.read_text(encoding="utf-8")
            assert "import mlflow" not in text and "from mlflow" not in text, name
            assert "databricks.sdk" not in text, name
