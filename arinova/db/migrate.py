"""Schema migrations, kept in the original server's own bookkeeping table.

The original (Drizzle) records each applied migration as a row of
``drizzle.__drizzle_migrations`` (sha256 of the file, the journal's ``when``). Our
``migrations/baseline.sql`` is the end state of its fifteen migrations; on a fresh
database we run it and record the same fifteen rows, so both servers see the database
as current. A database the original migrated already has those rows and is adopted
without running any DDL.

Our own later migrations are files ``NNNN_name.sql`` (numbering continues the
original's, from 0015), recorded with ``created_at = 1771605691621 + NNNN``: always
after the original's last entry, so its migrator never re-runs anything.

Everything pending runs in one transaction under an advisory lock, so several
processes may start at once: one migrates, the others wait and find it done.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import asyncpg

from arinova.db.pool import CONNECT_TIMEOUT_S
from arinova.db.queries import migrations as q

log = logging.getLogger("arinova.migrate")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
BASELINE_FILE = "baseline.sql"
#: pg_advisory_xact_lock key shared by every process migrating a database ("arinovaM")
LOCK_KEY = 0x6172696E6F76614D
#: how long a process waits for another one's migration before giving up
LOCK_TIMEOUT = "300s"
MAINTENANCE_DATABASE = "postgres"

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class OriginalMigration:
    tag: str
    created_at: int
    hash: str


#: the original's journal: every database it migrated carries exactly these rows
ORIGINAL_MIGRATIONS: tuple[OriginalMigration, ...] = (
    OriginalMigration(
        "0000_legal_franklin_storm",
        1771003703671,
        "e0f911e2ed5e028d2d9eed32f936506bcf8083e16b6d3d18120278b31f749d16",
    ),
    OriginalMigration(
        "0001_married_psynapse",
        1771004692127,
        "febb4177805022a853358a62571cbd9527bc8ece059f61917de2fc8bd96b78f2",
    ),
    OriginalMigration(
        "0002_blue_shard",
        1771004877841,
        "1a24a5c446787fd780579d2e2d8595973e093cc2060651f1b312540ba39cbb10",
    ),
    OriginalMigration(
        "0003_ambiguous_venus",
        1771004931093,
        "1a8c77549f3107be95306c7204ae96052bc1105a417e014ef44cb0ab70518e0f",
    ),
    OriginalMigration(
        "0004_mysterious_rocket_racer",
        1771005344196,
        "3611deacd9e6d8f2bc43e299677379823142dda38bd87fea66bedb1a69a91a43",
    ),
    OriginalMigration(
        "0005_fancy_black_bolt",
        1771062325669,
        "3429a0a4d216bbf47f07c0e6f36e465ee1dec82cf57540ab9727fde31bf1b7e4",
    ),
    OriginalMigration(
        "0006_fuzzy_mad_thinker",
        1771089329351,
        "49ffec15d66b03238cb78edeaca5f0044a01043b148746fe3b89de0814de6dc9",
    ),
    OriginalMigration(
        "0007_majestic_ultragirl",
        1771214396488,
        "5dbf5cd24394efa55a9537a9fa7596eeff40f99ecbb5a017d1791fd48dc1cd8b",
    ),
    OriginalMigration(
        "0008_remarkable_ares",
        1771230922315,
        "52d46260a6629817dc9b7ebaa02190d1498e08bb99ccc597369f229c877909f8",
    ),
    OriginalMigration(
        "0009_pretty_stingray",
        1771241446502,
        "e28c94497b2236b9dda688ba288117c2b0c6dec83fd918bd4e07e6cfabf1b24d",
    ),
    OriginalMigration(
        "0010_real_lady_bullseye",
        1771298028238,
        "50a815ebf705d5334f4bb3a678b2b96d97f20de712164ef4cf8b0038c2153aa7",
    ),
    OriginalMigration(
        "0011_strong_tarot",
        1771303992271,
        "939b00e5f9c09470f1c3c0d5b2657c66de40dd11bb5ed9f5be1357ca1d40299e",
    ),
    OriginalMigration(
        "0012_whole_darkstar",
        1771469865385,
        "ac79d7b06c35cb91d44e04076846a1edce0310d209df16cbca4d1596a1c6f270",
    ),
    OriginalMigration(
        "0013_young_tempest",
        1771499753419,
        "c7516ccc5c92323901b6af5c5003387d71bc2d33f75c310df5d1729bcf9e3b61",
    ),
    OriginalMigration(
        "0014_curly_squadron_supreme",
        1771605691621,
        "1e8c690785e603ad17f3490b3583682a6814aebacb825e7312aa088f721c5282",
    ),
)
ORIGINAL_LAST_CREATED_AT = ORIGINAL_MIGRATIONS[-1].created_at
FIRST_OWN_NUMBER = len(ORIGINAL_MIGRATIONS)


class MigrationError(RuntimeError):
    """The database cannot be migrated safely; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class MigrationFile:
    number: int
    name: str
    sql: str
    hash: str

    @property
    def created_at(self) -> int:
        return ORIGINAL_LAST_CREATED_AT + self.number


@dataclass(frozen=True, slots=True)
class MigrationReport:
    database: str
    #: "applied": the baseline DDL ran now; "present": the original's fifteen entries
    #: were already recorded (by the original or an earlier run), no baseline DDL ran
    baseline: Literal["applied", "present"]
    #: what ran now, in order: "baseline" and/or our migration files' names
    applied: tuple[str, ...] = ()
    #: recorded entries newer than every migration this code knows (a newer release ran)
    ahead: tuple[int, ...] = ()
    database_created: bool = False

    @property
    def status(self) -> Literal["applied", "current"]:
        return "applied" if self.applied else "current"

    def describe(self) -> str:
        parts = [f"database {self.database!r}"]
        if self.database_created:
            parts.append("created")
        if self.applied:
            parts.append("applied " + ", ".join(self.applied))
        else:
            parts.append("already current")
        if self.ahead:
            parts.append(f"{len(self.ahead)} newer migration(s) recorded by a later release")
        return "; ".join(parts)


def baseline_sql() -> str:
    return (MIGRATIONS_DIR / BASELINE_FILE).read_text(encoding="utf-8")


def load_migration_files(directory: Path) -> list[MigrationFile]:
    """Our numbered migration files in ``directory``, in order (``baseline.sql`` excluded)."""
    files: list[MigrationFile] = []
    for path in sorted(directory.glob("*.sql")):
        if path.name == BASELINE_FILE:
            continue
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(
                f"migration file {path.name!r} is not named NNNN_name.sql "
                "(four digits, then lower-case letters, digits and underscores)"
            )
        number = int(match.group(1))
        if number < FIRST_OWN_NUMBER:
            raise MigrationError(
                f"migration file {path.name!r}: numbers 0000-{FIRST_OWN_NUMBER - 1:04d} "
                f"belong to the original's migrations; ours start at {FIRST_OWN_NUMBER:04d}"
            )
        if files and files[-1].number == number:
            raise MigrationError(f"two migration files are numbered {number:04d}")
        raw = path.read_bytes()
        files.append(
            MigrationFile(
                number=number,
                name=path.stem,
                sql=raw.decode("utf-8"),
                hash=hashlib.sha256(raw).hexdigest(),
            )
        )
    return files


@dataclass(frozen=True, slots=True)
class _Plan:
    baseline: bool
    pending: tuple[MigrationFile, ...]
    ahead: tuple[int, ...]


def _plan(recorded: Sequence[tuple[str, int | None]], files: Sequence[MigrationFile]) -> _Plan:
    by_created_at: dict[int, str] = {}
    for hash_, created_at in recorded:
        if created_at is None:
            raise MigrationError(
                "drizzle.__drizzle_migrations has a row without created_at; "
                "the migration history is damaged, fix it by hand"
            )
        by_created_at[int(created_at)] = hash_

    present = [m for m in ORIGINAL_MIGRATIONS if m.created_at in by_created_at]
    for m in present:
        if by_created_at[m.created_at] != m.hash:
            raise MigrationError(
                f"the recorded hash of the original's migration {m.tag} is "
                f"{by_created_at[m.created_at]}, expected {m.hash}: "
                "this database was not migrated by the original release we take over"
            )
    if 0 < len(present) < len(ORIGINAL_MIGRATIONS):
        missing = [m.tag for m in ORIGINAL_MIGRATIONS if m not in present]
        raise MigrationError(
            f"the database records only {len(present)} of the original's "
            f"{len(ORIGINAL_MIGRATIONS)} migrations (missing: {', '.join(missing)}); "
            "finish migrating it with the original server (node dist/migrate.js) first"
        )
    baseline = not present
    if baseline and by_created_at:
        raise MigrationError(
            "drizzle.__drizzle_migrations has rows but none of the original's migrations; "
            "this is not a database of this application"
        )

    known = {m.created_at for m in ORIGINAL_MIGRATIONS} | {f.created_at for f in files}
    unknown = sorted(c for c in by_created_at if c not in known)
    newest_known = max(known)
    if any(c < newest_known for c in unknown):
        raise MigrationError(
            "the database records migrations this release does not know "
            f"(created_at {', '.join(map(str, unknown))}); deploy the release that wrote them"
        )

    pending: list[MigrationFile] = []
    for f in files:
        recorded_hash = by_created_at.get(f.created_at)
        if recorded_hash is None:
            pending.append(f)
        elif recorded_hash != f.hash:
            raise MigrationError(
                f"migration {f.name} was changed after it was applied "
                f"(recorded sha256 {recorded_hash}, file {f.hash}); add a new migration instead"
            )
    newest_recorded = max(by_created_at, default=0)
    late = [f.name for f in pending if f.created_at < newest_recorded]
    if late:
        raise MigrationError(
            f"migration(s) {', '.join(late)} are older than the newest applied one; "
            "renumber them after it"
        )
    return _Plan(baseline=baseline, pending=tuple(pending), ahead=tuple(unknown))


async def _apply(conn: asyncpg.Connection[Any], label: str, sql: str) -> None:
    try:
        await conn.execute(sql)
    except asyncpg.PostgresError as exc:
        hint = ""
        if label == "baseline" and isinstance(
            exc, asyncpg.DuplicateObjectError | asyncpg.DuplicateTableError
        ):
            hint = " (the database has no migration history but already has tables)"
        raise MigrationError(
            f"migration {label} failed, nothing was applied{hint}: {type(exc).__name__}: {exc}"
        ) from exc


async def _migrate_locked(
    conn: asyncpg.Connection[Any], files: Sequence[MigrationFile], database: str
) -> MigrationReport:
    await conn.fetchrow(q.SESSION_SETUP.sql, LOCK_TIMEOUT)
    try:
        await conn.fetchval(q.LOCK.sql, LOCK_KEY)
    except asyncpg.LockNotAvailableError as exc:
        raise MigrationError(
            f"another process has been migrating {database!r} for over {LOCK_TIMEOUT}; is it stuck?"
        ) from exc

    has_table = bool(await conn.fetchval(q.BOOKKEEPING_EXISTS.sql))
    rows = await conn.fetch(q.RECORDED.sql) if has_table else []
    plan = _plan([(r["hash"], r["created_at"]) for r in rows], files)

    applied: list[str] = []
    if plan.baseline:
        if not has_table:
            await conn.execute(q.CREATE_BOOKKEEPING_SCHEMA.sql)
            await conn.execute(q.CREATE_BOOKKEEPING_TABLE.sql)
        await _apply(conn, "baseline", baseline_sql())
        await conn.executemany(q.RECORD.sql, [(m.hash, m.created_at) for m in ORIGINAL_MIGRATIONS])
        applied.append("baseline")
    for f in plan.pending:
        await _apply(conn, f.name, f.sql)
        await conn.execute(q.RECORD.sql, f.hash, f.created_at)
        applied.append(f.name)
    return MigrationReport(
        database=database,
        baseline="applied" if plan.baseline else "present",
        applied=tuple(applied),
        ahead=plan.ahead,
    )


async def pending_migrations(conn: asyncpg.Connection[Any]) -> str:
    """What a start would apply to the database of ``conn``, read only (``arinova check``);
    raises ``MigrationError`` when the start would refuse the database."""
    files = load_migration_files(MIGRATIONS_DIR)
    has_table = bool(await conn.fetchval(q.BOOKKEEPING_EXISTS.sql))
    rows = await conn.fetch(q.RECORDED.sql) if has_table else []
    plan = _plan([(r["hash"], r["created_at"]) for r in rows], files)
    names = (["baseline"] if plan.baseline else []) + [f.name for f in plan.pending]
    if not names:
        return "current"
    return f"{len(names)} pending, applied at start: {', '.join(names)}"


async def migrate(dsn: str, migrations_dir: Path | None = None) -> MigrationReport:
    """Bring the database at ``dsn`` to the current schema (see the module docstring)."""
    files = load_migration_files(migrations_dir or MIGRATIONS_DIR)
    conn: asyncpg.Connection[Any] = await asyncpg.connect(
        dsn,
        timeout=CONNECT_TIMEOUT_S,
        server_settings={"application_name": "arinova-migrate", "timezone": "UTC"},
    )
    try:
        database = str(await conn.fetchval(q.CURRENT_DATABASE.sql))
        async with conn.transaction():
            report = await _migrate_locked(conn, files, database)
    finally:
        await conn.close()
    if report.ahead:
        log.warning("migrations: %s", report.describe())
    elif report.applied:
        log.info("migrations: %s", report.describe())
    return report


def _target_database(dsn: str) -> tuple[str, str] | None:
    """(database name, DSN of the maintenance database on the same server), if named."""
    parts = urllib.parse.urlsplit(dsn)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    name = urllib.parse.unquote(parts.path.lstrip("/"))
    if not name:
        name = next((v for k, v in query if k in ("dbname", "database")), "")
    if not name:
        return None
    kept = [(k, v) for k, v in query if k not in ("dbname", "database")]
    maintenance = parts._replace(
        path="/" + MAINTENANCE_DATABASE, query=urllib.parse.urlencode(kept)
    )
    return name, urllib.parse.urlunsplit(maintenance)


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _create_database(name: str, maintenance_dsn: str) -> bool:
    """CREATE DATABASE; False when a concurrent creator won the race."""
    conn: asyncpg.Connection[Any] = await asyncpg.connect(
        maintenance_dsn, timeout=CONNECT_TIMEOUT_S
    )
    try:
        for attempt in range(10):
            try:
                # A database name cannot be a bind parameter: quoted identifier instead.
                await conn.execute(f"CREATE DATABASE {quote_identifier(name)}")
                return True
            except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                return False
            except asyncpg.ObjectInUseError:
                # the template database is briefly in use (e.g. by another CREATE DATABASE)
                if attempt == 9:
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))
    finally:
        await conn.close()
    return False


async def ensure_database(dsn: str) -> bool:
    """Create the database ``dsn`` names if it does not exist; True if this call created it."""
    try:
        conn: asyncpg.Connection[Any] = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)
    except asyncpg.InvalidCatalogNameError as exc:
        target = _target_database(dsn)
        if target is None:
            raise MigrationError(
                "the database does not exist and the URL names none to create"
            ) from exc
        name, maintenance_dsn = target
        created = await _create_database(name, maintenance_dsn)
        if created:
            log.info("created database %r", name)
        return created
    await conn.close()
    return False


async def prepare_database(dsn: str) -> MigrationReport:
    """Create the database if needed, then migrate it (called at server start)."""
    created = await ensure_database(dsn)
    report = await migrate(dsn)
    return replace(report, database_created=created) if created else report
