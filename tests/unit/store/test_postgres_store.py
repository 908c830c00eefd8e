"""The Store on PostgreSQL: a throwaway server on 127.0.0.1 runs the same contract as SQLite.

The server is started once per session (initdb into a temporary directory, pg_ctl on a free port,
fsync off). The contract tests share one database, emptied before each test (CREATE DATABASE costs
~0.3 s, TRUNCATE a few ms); the migration tests each get a fresh, empty database.
Skipped, with the reason, when PostgreSQL's binaries or asyncpg are missing or initdb cannot run.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.store import Store
from bot.store.migrate import head_revision
from bot.store.tables import metadata
from tests.unit.store.conftest import FakeClock
from tests.unit.store.contract import TABLES, StoreContract, schema_diff, table_names

asyncpg = pytest.importorskip("asyncpg", reason="asyncpg (the postgres extra) is not installed")

SUPERUSER = "parley"
SHARED_DATABASE = "contract"
APP_TABLES = ", ".join(t.name for t in metadata.sorted_tables)  # every table the app owns


@dataclass(frozen=True)
class PgServer:
    port: int

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"


def _find_bindir() -> Path | None:
    candidates = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    usable = [c for c in candidates if (c / "initdb").exists() and (c / "pg_ctl").exists()]

    def version(path: Path) -> int:
        return int(path.parent.name) if path.parent.name.isdigit() else 0

    return max(usable, key=version, default=None)


def _unprivileged_user() -> pwd.struct_passwd | None:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bindir = _find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL binaries not found (looked in /usr/lib/postgresql/*/bin and PATH)")
    run_as: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="parley-pg-"))
    if os.geteuid() == 0:  # initdb refuses to run as root
        user, runuser = _unprivileged_user(), shutil.which("runuser")
        if user is None or runuser is None:
            shutil.rmtree(base)
            pytest.skip("running as root without a non-root user and runuser for initdb")
        os.chown(base, user.pw_uid, user.pw_gid)
        run_as = [runuser, "-u", user.pw_name, "--"]

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*run_as, *map(str, args)], cwd=base, capture_output=True, text=True, timeout=60
        )

    data, log = base / "data", base / "server.log"
    try:
        init = run(
            bindir / "initdb", "-D", data, "-U", SUPERUSER, "--auth=trust", "--no-sync",
            "--encoding=UTF8", "--locale=C",
        )  # fmt: skip
        if init.returncode != 0:
            pytest.skip(f"initdb cannot run here: {init.stderr.strip()[-500:]}")
        for _attempt in range(3):  # the free port may be taken between probe and bind
            port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {base} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            start = run(bindir / "pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "start")
            if start.returncode == 0:
                break
        else:
            server_log = log.read_text() if log.exists() else ""
            pytest.fail(f"PostgreSQL did not start:\n{start.stderr}\n{server_log[-2000:]}")
        created = run(
            bindir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", SUPERUSER,
            SHARED_DATABASE,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        yield PgServer(port=port)
    finally:
        if (data / "postmaster.pid").exists():
            run(bindir / "pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
async def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty database on the session's server."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(
        host="127.0.0.1", port=pg_server.port, user=SUPERUSER, database="postgres"
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return pg_server.url(name)


@pytest.fixture
async def shared_pg_url(pg_server: PgServer) -> str:
    """The session's shared database, emptied (ids restarted) but still migrated."""
    conn = await asyncpg.connect(
        host="127.0.0.1", port=pg_server.port, user=SUPERUSER, database=SHARED_DATABASE
    )
    try:
        if await conn.fetchval("SELECT to_regclass('public.tenants')") is not None:
            await conn.execute(f"TRUNCATE {APP_TABLES} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
    return pg_server.url(SHARED_DATABASE)


class TestPostgresStore(StoreContract):
    @pytest.fixture
    async def store(self, shared_pg_url: str, clock: FakeClock) -> AsyncIterator[Store]:
        store = await Store.open(shared_pg_url, clock=clock)
        yield store
        await store.close()

    @pytest.fixture
    async def second_store(self, shared_pg_url: str, clock: FakeClock) -> AsyncIterator[Store]:
        store = await Store.open(shared_pg_url, clock=clock)
        yield store
        await store.close()


async def test_migrations_create_every_table_on_an_empty_database(pg_url: str) -> None:
    async with await Store.open(pg_url, migrate=False) as store:
        assert store.dialect == "postgresql"
        assert await store.current_revision() is None
        await store.upgrade()
        assert await store.current_revision() == head_revision()
    assert await table_names(pg_url) == TABLES


async def test_migrated_schema_matches_the_table_definitions(pg_url: str) -> None:
    await (await Store.open(pg_url)).close()
    assert await schema_diff(pg_url) == []


async def test_replicas_starting_together_migrate_once(pg_url: str) -> None:
    stores = await asyncio.gather(*(Store.open(pg_url) for _ in range(3)))
    for store in stores:
        assert await store.current_revision() == head_revision()
        await store.close()


async def test_bare_postgres_url_gets_the_async_driver(pg_server: PgServer, pg_url: str) -> None:
    bare = pg_url.replace("postgresql+asyncpg://", "postgres://")
    async with await Store.open(bare) as store:
        assert await store.ping()
