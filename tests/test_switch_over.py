"""docs/switch-over.md: every test it names exists, and the parts it says the two servers
share that no other test holds."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from arinova.auth.cookies import sign

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "switch-over.md"
FIXTURE = json.loads(Path("/work/shared/fixtures/legacy-auth.json").read_text())
NAMED = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_every_test_the_document_names_exists() -> None:
    named = NAMED.findall(DOC.read_text())
    assert len(named) >= 10
    missing = [
        f"{file}::{name}"
        for file, name in named
        if not (ROOT / file).is_file() or name not in _test_names(ROOT / file)
    ]
    assert missing == []


def test_our_cookie_is_the_one_the_original_writes() -> None:
    """The original's cookie for its session token, byte for byte: the original accepts
    the cookies this server sets."""
    token = FIXTURE["rows"]["session"]["token"]
    name, _, value = FIXTURE["cookie"].partition("=")
    assert name == "better-auth.session_token"
    assert sign(token, FIXTURE["secret"]) == value
