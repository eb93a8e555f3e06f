"""The CLI's shape, kept by tests: no import cycle between its modules, and nothing of the
package imported but its public modules (the CLI is a user of the SDK like any other).

Read from the source (an AST walk), so an import inside a function counts as much as one at
the top: a cycle hidden behind a lazy import is still a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import agile_async

CLI = Path(agile_async.__file__).parent / "_cli"
#: What the CLI may import from the package: its public modules.
PUBLIC = {
    "agile_async",
    "agile_async.campaigns",
    "agile_async.scaleout",
    "agile_async.segments",
    "agile_async.testing",
    "agile_async.webhooks",
}


def cli_modules() -> list[str]:
    return sorted(
        "agile_async._cli" + ("" if p.stem == "__init__" else f".{p.stem}")
        for p in CLI.glob("*.py")
    )


def source_of(module: str) -> Path:
    name = module.rpartition(".")[2]
    return CLI / ("__init__.py" if module == "agile_async._cli" else f"{name}.py")


def imports_of(module: str) -> list[tuple[int, str]]:
    """Every module ``module`` imports (line, absolute name), wherever the import is; for
    ``from X import a``, ``X.a`` too when that is a module (``from . import _common``)."""
    tree = ast.parse(source_of(module).read_text(encoding="utf-8"))
    package = module if module == "agile_async._cli" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.startswith("agile_async")]


def test_the_walk_sees_every_kind_of_import() -> None:
    """The walk itself: relative, absolute and lazy imports all resolve (a walk that saw
    nothing would pass the tests below)."""
    app = {name for _, name in imports_of("agile_async._cli._app")}
    assert {"agile_async._cli._campaign", "agile_async._cli._scaleout"} <= app
    init = {name for _, name in imports_of("agile_async._cli")}
    assert "agile_async._cli._app" in init  # imported inside main()
    assert "agile_async.testing" in {name for _, name in imports_of("agile_async._cli._common")}


def test_the_cli_modules_import_no_cycle() -> None:
    modules = set(cli_modules())
    graph = {
        module: {name for _, name in imports_of(module) if name in modules and name != module}
        for module in modules
    }
    graph["agile_async._cli"].discard("agile_async._cli")  # a package and its own __init__
    for module in graph:  # every submodule imports its package first: not an edge to follow
        if module != "agile_async._cli":
            graph[module].discard("agile_async._cli")
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in visiting:
            cycle = [*visiting[visiting.index(module) :], module]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        visiting.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_the_cli_imports_only_public_modules_of_the_package() -> None:
    """``agile_async._x`` (or ``.._x``) from the CLI is reaching past the SDK's surface:
    what the CLI needs, a user of the SDK needs too, so it is public or not needed."""
    modules = set(cli_modules())
    private = []
    for module in modules:
        for line, name in imports_of(module):
            parent = name.rpartition(".")[0]
            if name.startswith("agile_async._cli") or name in PUBLIC:
                continue
            last = name.rpartition(".")[2]
            if parent in PUBLIC and (not last.startswith("_") or last.endswith("__")):
                continue  # a public name (``__version__`` too) from a public module
            private.append(f"{source_of(module).name}:{line}: {name}")
    assert private == []


@pytest.mark.parametrize("module", [m for m in cli_modules() if not m.endswith(".__main__")])
def test_each_cli_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    """Whatever module is imported first, the import works (an import cycle fails some
    order of them) and registers nothing as a side effect."""
    code = f"import {module}"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_every_command_is_registered_in_one_place() -> None:
    """Command modules define commands; only ``_app`` registers them (no ``@group.command``
    and no ``add_command`` anywhere else, so importing a module changes no command tree)."""
    registering = []
    for module in cli_modules():
        if module == "agile_async._cli._app":
            continue
        tree = ast.parse(source_of(module).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "add_command":
                registering.append(f"{source_of(module).name}:{node.lineno}")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for decorator in node.decorator_list:  # @group.command(), @group.group()
                    call = decorator.func if isinstance(decorator, ast.Call) else decorator
                    if (
                        isinstance(call, ast.Attribute)
                        and call.attr in ("command", "group")
                        and not (isinstance(call.value, ast.Name) and call.value.id == "click")
                    ):
                        registering.append(f"{source_of(module).name}:{node.lineno}")
    assert registering == []
