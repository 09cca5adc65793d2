"""The OpenAPI document (``arinova openapi``, ``GET /api/openapi.json``): generated from the
route table, the same bytes both ways, and every answer of a live server conforms to it
(schemathesis fuzzes the server: no 500, every status, content type and body as
documented, nothing slower than 5 s)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from arinova.compose import describing_state
from arinova.http.apidoc import Doc
from arinova.http.app import AREAS, api_document
from arinova.http.openapi import UndocumentedRoute, document, openapi_path
from arinova.http.router import ArinovaRouter
from arinova.server import Server
from arinova.settings import Settings
from tests.support.auth import TRUSTED_ORIGIN, SignedIn, authed_client, sign_up
from tests.support.push_service import new_vapid_keys
from tests.support.servers import StartServer

ARINOVA = [sys.executable, "-m", "arinova"]
METHODS = ("get", "post", "put", "patch", "delete")
#: the fuzzing's budget: examples per operation, and the slowest answer allowed
MAX_EXAMPLES = 25
MAX_RESPONSE_S = 5
#: the routes that probe an agent's own endpoint wait for it up to the probe's timeout
#: (5 s, behaviours.md §5): the generated endpoints are hosts nobody answers for
PROBING = r"^/api/(agents/health|agents/\{id\}/(health|skills)|conversations/\{id\}/status)$"
PROBING_RESPONSE_S = 5 + 2
#: operations that end the session they are called with: fuzzed with a session of their own
SESSION_ENDING = r"^/api/auth/(sign-out|revoke-|change-password|delete-user)"
#: the rest, but for the catch-all /api/auth/{tail}, which would reach those (a sign-out)
OTHERS = r"^/api/auth/(sign-out|revoke-|change-password|delete-user|\{tail\}$)"


def _described_router() -> ArinovaRouter:
    router = ArinovaRouter()
    state = describing_state(Settings.from_env({}))
    for area in AREAS:
        area.mount(router, state)
    return router


def test_the_document_lists_exactly_the_route_table() -> None:
    router = _described_router()
    spec = json.loads(api_document(describing_state(Settings.from_env({}))))
    assert spec["openapi"] == "3.1.0"
    listed = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    registered = {(r.method, openapi_path(r.pattern.decode())[0]) for r in router.registered}
    assert listed == registered
    assert ("GET", "/api/agents/{id}") in listed and ("GET", "/uploads/{tail}") in listed
    assert len(listed) == len(router.registered)


def test_every_registered_route_has_a_doc() -> None:
    assert [r for r in _described_router().registered if r.doc is None] == []
    router = ArinovaRouter()
    router.add_get("/documented", lambda request: None, doc=Doc("x", {200: None}))
    router.add_get("/x/:id", lambda request: None)
    with pytest.raises(UndocumentedRoute, match="GET /x/:id"):
        document(router.registered)


def test_bodies_come_from_the_validators() -> None:
    spec = json.loads(api_document(describing_state(Settings.from_env({}))))
    create = spec["paths"]["/api/agents"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["name"]
    assert body["properties"]["name"]["maxLength"] == 100
    assert body["properties"]["a2aEndpoint"]["format"] == "uri"
    assert set(create["responses"]) >= {"201", "400", "401", "413", "415", "429"}
    sign_up_body = spec["paths"]["/api/auth/sign-up/email"]["post"]["requestBody"]
    fields = sign_up_body["content"]["application/json"]["schema"]
    assert fields["required"] == ["name", "email", "password"]
    assert fields["properties"]["email"] == {"type": "string", "format": "email"}
    assert spec["components"]["securitySchemes"]["session"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "better-auth.session_token",
        "description": spec["components"]["securitySchemes"]["session"]["description"],
    }


async def test_the_command_and_the_endpoint_give_the_same_bytes(
    server: Server, tmp_path: Path
) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "DATABASE_URL": "postgresql://nowhere:1/x"}
    printed = await asyncio.to_thread(
        subprocess.run, [*ARINOVA, "openapi"], capture_output=True, env=env, timeout=60
    )
    assert printed.returncode == 0, printed.stderr
    target = tmp_path / "openapi.json"
    written = await asyncio.to_thread(
        subprocess.run,
        [*ARINOVA, "openapi", "--output", str(target)],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert written.returncode == 0 and written.stdout == b""
    async with httpx.AsyncClient(base_url=server.url) as client:
        served = await client.get("/api/openapi.json")
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/json; charset=utf-8"
    assert served.content == printed.stdout == target.read_bytes()
    assert json.loads(served.content)["paths"]


def test_the_command_says_why_it_cannot_write(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "openapi.json"
    done = subprocess.run(
        [*ARINOVA, "openapi", "--output", str(target)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"arinova: error: cannot write {target}: ")
    assert done.stdout == "" and not target.parent.exists()


# -- fuzzing ---------------------------------------------------------------------------------


async def _resources(base_url: str, user: SignedIn) -> dict[str, str]:
    """An agent, a direct conversation with a message and an attachment, for the fuzzer
    to reach the handlers past their 404s."""
    async with authed_client(base_url, user) as c:
        agent = (await c.post("/api/agents", json={"name": "fuzzed"})).json()
        conversation = (await c.post("/api/conversations", json={"agentId": agent["id"]})).json()
        upload = await c.post(
            f"/api/conversations/{conversation['id']}/upload",
            files={"file": ("note.txt", b"hello", "text/plain")},
        )
        assert upload.status_code == 200, upload.text
        message = upload.json()["message"]
    return {
        "agent": agent["id"],
        "conversation": conversation["id"],
        "message": message["id"],
        "attachment": message["attachments"][0]["id"],
    }


def _config(kept: dict[str, str], deleted: dict[str, str]) -> str:
    """schemathesis.toml: real ids in the paths (the rest of each request is generated);
    the DELETE operations get resources of their own, the others keep theirs."""
    blocks = []
    for methods, ids in (("(?i:get|head|post|put|patch)", kept), ("(?i:delete)", deleted)):
        by_path = [
            (r"^/api/agents/\{id\}", {"path.id": ids["agent"]}),
            (
                r"^/api/conversations/\{",
                {
                    "path.id": ids["conversation"],
                    "path.conversationId": ids["conversation"],
                    "path.messageId": ids["message"],
                    "path.agentId": ids["agent"],
                },
            ),
            (r"^/api/messages/\{messageId\}", {"path.messageId": ids["message"]}),
            (r"^/api/attachments/\{id\}", {"path.id": ids["attachment"]}),
        ]
        for regex, parameters in by_path:
            values = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in parameters.items())
            blocks.append(
                f"[[operations]]\ninclude-path-regex = {json.dumps(regex)}\n"
                f"include-method-regex = {json.dumps(f'^{methods}$')}\n"
                f"parameters = {{ {values} }}\n"
            )
    blocks.append(
        f"[[operations]]\ninclude-path-regex = {json.dumps(PROBING)}\n"
        f"checks = {{ max_response_time = {PROBING_RESPONSE_S} }}\n"
    )
    return "\n".join(blocks)


async def _schemathesis(
    base_url: str, user: SignedIn, config: Path, report: Path, *filters: str
) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{base_url}/api/openapi.json",
        "--header",
        f"Cookie: {user.cookie}",
        "--header",
        f"Origin: {TRUSTED_ORIGIN}",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance",
        "--max-response-time",
        str(MAX_RESPONSE_S),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "20261202",
        "--workers",
        "1",
        "--no-shrink",
        "--suppress-health-check",
        "all",
        "--request-timeout",
        "30",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        *filters,
    ]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""},
        cwd=config.parent,  # its cache of crashes goes there
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    assert process.returncode is not None
    return subprocess.CompletedProcess(command, process.returncode, output.decode(), None)


@pytest.fixture(scope="module")
async def fuzzed_server(start_module_server: StartServer) -> Server:
    public, private = new_vapid_keys()
    return await start_module_server(vapid_public_key=public, vapid_private_key=private)


@pytest.mark.parametrize(
    "operations",
    [
        pytest.param(("--exclude-path-regex", OTHERS), id="everything-else"),
        pytest.param(("--include-path-regex", SESSION_ENDING), id="session-ending"),
    ],
)
async def test_every_answer_of_a_live_server_conforms_to_the_document(
    fuzzed_server: Server, tmp_path: Path, operations: tuple[str, ...]
) -> None:
    user = await sign_up(fuzzed_server.url)
    config = tmp_path / "schemathesis.toml"
    kept = await _resources(fuzzed_server.url, user)
    config.write_text(_config(kept, await _resources(fuzzed_server.url, user)))
    report = tmp_path / "events.ndjson"
    run = await _schemathesis(fuzzed_server.url, user, config, report, *operations)
    assert run.returncode == 0, run.stdout[-20000:]
    assert " passed" in run.stdout, run.stdout[-5000:]
    _assert_tested(report)


def _assert_tested(report: Path) -> None:
    """The run sent requests (a run that tested nothing passes too)."""
    events: list[dict[str, Any]] = [
        json.loads(line) for line in report.read_text().splitlines() if line.strip()
    ]
    assert len(events) > 10
