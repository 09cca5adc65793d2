"""The package imports exactly its declared runtime dependencies (pyproject.toml): no
import of a test-only package (websockets is the tests' client), no stale dependency."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import arinova

PACKAGE = Path(arinova.__file__).parent
PROJECT = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match is not None, requirement
    return match.group().lower().replace("_", "-")


def _imported_distributions() -> set[str]:
    modules: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.partition(".")[0])
    third_party = modules - set(sys.stdlib_module_names) - {"arinova"}
    owners = packages_distributions()
    return {_name(dist) for module in third_party for dist in owners.get(module, [module])}


def test_the_package_imports_exactly_its_runtime_dependencies() -> None:
    declared = {_name(r) for r in PROJECT["dependencies"]}
    embedded = {_name(r) for r in PROJECT["optional-dependencies"]["embedded"]}
    imported = _imported_distributions()
    assert imported - declared - embedded == set()
    assert declared - imported == set()
    assert "websockets" not in declared | imported
    assert "websockets" in {_name(r) for r in PROJECT["optional-dependencies"]["test"]}


def test_every_module_imports_without_websockets() -> None:
    script = """
import pkgutil, sys
sys.modules["websockets"] = None  # any import of it raises ImportError
import arinova
for module in pkgutil.walk_packages(arinova.__path__, "arinova."):
    if not module.name.endswith("__main__"):
        __import__(module.name)
assert not any(name.startswith("websockets") and sys.modules[name] for name in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=PACKAGE.parent, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
