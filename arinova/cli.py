"""The ``arinova`` command: ``serve`` (the server), ``migrate`` (migrations alone) and
``check`` (the settings and the services they name, before a start) and ``openapi`` (the
REST API's OpenAPI document, offline)."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from collections.abc import Sequence

from arinova.db.embedded import EMBEDDED
from arinova.db.embedded import start as start_embedded
from arinova.logs import configure_logging
from arinova.settings import Settings, SettingsError

log = logging.getLogger("arinova")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arinova", description="Arinova Chat backend: REST and WebSocket on one port."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve", help="run the server (settings from the environment; flags override them)"
    )
    serve.add_argument("--host", help="address to listen on (HOST, default 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port to listen on (PORT, default 3501)")
    serve.add_argument(
        "--workers", type=int, help="server processes sharing the port (WORKERS, default 1)"
    )
    commands.add_parser(
        "migrate", help="create the database if needed, apply pending migrations, and exit"
    )
    commands.add_parser(
        "check",
        help="check the settings and reach PostgreSQL, Redis, the storage; one line per "
        "check, exit status 1 on any failure",
    )
    openapi = commands.add_parser(
        "openapi",
        help="print the OpenAPI 3.1 document of the REST API (as GET /api/openapi.json sends it)",
    )
    openapi.add_argument("--output", metavar="FILE", help="write it to FILE instead of stdout")
    return parser


def _fail(message: str, status: int) -> int:
    print(f"arinova: error: {message}", file=sys.stderr)
    return status


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    overrides = {
        name: getattr(args, name)
        for name in ("host", "port", "workers")
        if getattr(args, name, None) is not None
    }
    if "port" in overrides and not 0 <= overrides["port"] <= 65535:
        raise SettingsError(f"--port must be between 0 and 65535, got {overrides['port']}")
    return settings.replace(**overrides) if overrides else settings


class _EmbeddedFailed(Exception):
    pass


def _with_database(settings: Settings) -> tuple[Settings, object | None]:
    """Start the embedded PostgreSQL when the settings ask for it; the caller keeps the
    returned handle referenced while it serves (PostgreSQL stops when the process exits)."""
    if settings.database_url != EMBEDDED:
        return settings, None
    try:
        handle, url = start_embedded(settings.data_dir)
    except Exception as exc:
        raise _EmbeddedFailed(f"cannot start the embedded PostgreSQL: {exc}") from exc
    return settings.replace(database_url=url), handle


def serve(settings: Settings) -> int:
    from arinova.server.runner import bind_socket

    try:
        sock = bind_socket(settings.host, settings.port)
    except OSError as exc:
        return _fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}", 1)
    try:
        settings, _embedded = _with_database(settings)
    except _EmbeddedFailed as exc:
        return _fail(str(exc), 1)
    # one worker too runs under the supervisor: SIGHUP starts its replacement first
    return _serve_workers(settings, sock)


def _serve_workers(settings: Settings, sock: socket.socket) -> int:
    import uvloop

    from arinova.db.migrate import prepare_database
    from arinova.server.supervisor import MetricsUnavailable, Supervisor

    try:
        report = uvloop.run(prepare_database(settings.database_url))
    except Exception as exc:
        return _fail(f"cannot prepare the database: {exc}", 1)
    log.info("migrations: %s", report.describe())
    try:
        return Supervisor(settings, sock).run()
    except MetricsUnavailable as exc:
        return _fail(str(exc), 1)


def migrate(settings: Settings) -> int:
    import uvloop

    from arinova.db.migrate import prepare_database

    try:
        settings, _embedded = _with_database(settings)
        report = uvloop.run(prepare_database(settings.database_url))
    except _EmbeddedFailed as exc:
        return _fail(str(exc), 1)
    except Exception as exc:
        return _fail(f"migration failed: {exc}", 1)
    print(f"migrations: {report.describe()}")
    return 0


def check() -> int:
    import uvloop

    from arinova.preflight import Outcome, run_checks

    def report(outcome: Outcome) -> None:
        print(outcome.line(), flush=True)

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        report(Outcome("settings", False, str(exc), "correct the variable it names"))
        return 1
    passed = uvloop.run(run_checks(settings, report))
    print("all checks passed" if passed else "some checks failed", flush=True)
    return 0 if passed else 1


def openapi(settings: Settings, output: str | None) -> int:
    from arinova.compose import describing_state
    from arinova.http.app import api_document

    document = api_document(describing_state(settings))
    if output is None:
        sys.stdout.buffer.write(document)
        sys.stdout.flush()
        return 0
    try:
        with open(output, "wb") as file:
            file.write(document)
    except OSError as exc:
        return _fail(f"cannot write {output}: {exc.strerror}", 1)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check":
        return check()
    if args.command == "openapi":
        try:
            return openapi(Settings.from_env(), args.output)
        except SettingsError as exc:
            return _fail(str(exc), 2)
    try:
        settings = _settings(args)
        if args.command == "serve":
            settings.validate()
    except SettingsError as exc:
        return _fail(str(exc), 2)
    configure_logging(settings.effective_log_level)
    if args.command == "migrate":
        return migrate(settings)
    return serve(settings)
