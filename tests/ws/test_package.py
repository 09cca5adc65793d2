"""``arinova.ws`` stands apart: it imports nothing of the application (only the frame codec
in ``arinova._fast``) and its modules import one another without a cycle, imports under
``TYPE_CHECKING`` included. Read from the source (the AST), not from what is loaded."""

from __future__ import annotations

import ast
from pathlib import Path

import arinova.ws

PACKAGE = Path(arinova.ws.__file__).parent
ALLOWED_PREFIXES = ("arinova.ws", "arinova._fast")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports (``from X import name`` counts as X, and as X.name
    when that is a module of the package), relative imports resolved."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module_name(path if path.name == "__init__.py" else path.parent)
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                assert node.module is not None
                target = node.module
            found.add(target)
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                if (
                    (PACKAGE.parent.parent / Path(*candidate.split(".")))
                    .with_suffix(".py")
                    .exists()
                ):
                    found.add(candidate)
    return found


def package_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in sorted(PACKAGE.glob("*.py"))}
    return {
        name: {m for m in imported_modules(path) if m in modules} for name, path in modules.items()
    }


def test_the_package_has_modules() -> None:
    graph = package_graph()
    assert {"arinova.ws.protocol", "arinova.ws.connection", "arinova.ws.handshake"} <= set(graph)


def test_imports_nothing_of_the_application() -> None:
    offending = {
        module_name(path): sorted(
            name
            for name in imported_modules(path)
            if (name == "arinova" or name.startswith("arinova."))
            and not name.startswith(ALLOWED_PREFIXES)
        )
        for path in sorted(PACKAGE.glob("*.py"))
    }
    assert {name: found for name, found in offending.items() if found} == {}


def test_the_protocol_core_does_no_io() -> None:
    """The sans-I/O core: no asyncio, sockets or clock."""
    for module in ("protocol", "handshake", "limits"):
        imported = imported_modules(PACKAGE / f"{module}.py")
        assert not imported & {"asyncio", "socket", "time", "selectors", "uvloop"}, module


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> the modules it imports), or None."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for imported in sorted(graph.get(name, ())):
            cycle = visit(imported, [*path, name])
            if cycle:
                return cycle
        done.add(name)
        return None

    for name in sorted(graph):
        cycle = visit(name, [])
        if cycle:
            return cycle
    return None


def test_no_import_cycle() -> None:
    assert find_cycle(package_graph()) is None


def test_the_cycle_check_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"pkg": {"pkg.x"}, "pkg.x": {"pkg"}}) == ["pkg", "pkg.x", "pkg"]


def test_the_import_reader_sees_guarded_and_late_imports(tmp_path: Path) -> None:
    """An import under ``TYPE_CHECKING`` or inside a function counts."""
    source = tmp_path / "guarded.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from arinova.realtime.service import RealtimeService\n"
        "def later() -> None:\n"
        "    import arinova.state\n"
    )
    assert {"arinova.realtime.service", "arinova.state"} <= imported_modules(source)
