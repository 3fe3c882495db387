"""The package's layers: imports point one way, and there is no import cycle.

Imports inside functions count too: they may defer a slow import, never hide a cycle.
"""

import ast
import subprocess
import sys
from pathlib import Path

import lstmbench

PACKAGE = Path(lstmbench.__file__).parent
# Lower layers first; a module may import its own layer's modules and those of lower layers.
LAYERS = {
    "errors": 0,
    "model": 1,
    "data": 2,
    "training": 3,
    "sweep": 4,
    "analysis": 5,
    "bench": 5,
    "cli": 6,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every lstmbench module a file imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import; use lstmbench.LAYER... instead")
        if isinstance(node, ast.ImportFrom) and node.module.startswith("lstmbench"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if module_path(candidate) else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("lstmbench"))
    return found


def module_path(name: str) -> Path | None:
    base = PACKAGE.parent / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def layer(name: str) -> int:
    parts = name.split(".")
    return LAYERS[parts[1]] if len(parts) > 1 else 0


def package(name: str) -> str:
    return name.split(".")[1] if "." in name else ""


def import_graph() -> dict[str, set[str]]:
    return {module_name(p): imported_modules(p) for p in PACKAGE.rglob("*.py")}


def test_every_top_level_module_belongs_to_a_layer():
    tops = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()}
    tops -= {"__init__", "__pycache__"}
    assert tops <= set(LAYERS), f"not in a layer: {sorted(tops - set(LAYERS))}"


def test_imports_never_point_to_a_higher_layer():
    upward = [
        f"{importer} -> {imported}"
        for importer, targets in import_graph().items()
        for imported in targets
        if layer(imported) > layer(importer)
        or (
            layer(imported) == layer(importer)
            and imported.split(".")[1:2] != importer.split(".")[1:2]
        )
    ]
    assert upward == []


def test_there_is_no_import_cycle():
    graph = import_graph()
    # A package's __init__ imports its modules; their importing "lstmbench.x" itself is the
    # parent package running first, which Python handles, so only module -> module edges count.
    state: dict[str, int] = {}
    cycles = []

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph.get(name, ())):
            if name.startswith(target + "."):
                continue  # a module importing its own package's __init__ names
            if state.get(target) == 1:
                cycles.append(" -> ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_importing_lstmbench_does_not_import_triton():
    """Triton is optional: only kernels/triton_recurrence.py imports it, on request."""
    code = (
        "import sys, lstmbench.cli.main, lstmbench.model.fused, lstmbench.training.fused; "
        "sys.exit('triton' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
