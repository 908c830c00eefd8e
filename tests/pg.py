"""A throwaway PostgreSQL server on 127.0.0.1, for the store tests and `python -m bench persist`.

initdb into a temporary directory (as an unprivileged user when running as root: initdb refuses
root), pg_ctl on a free port, trust authentication for one superuser, the Unix socket inside the
temporary directory. `stop()` (or leaving the `with` block, also on an error or Ctrl-C) stops the
server at once and deletes the directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType

SUPERUSER = "parley"

FAST_UNSAFE = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
"""For tests: nothing is ever flushed to disk, so a crash may corrupt the (throwaway) cluster."""


class PgUnavailable(Exception):
    """PostgreSQL cannot run here (no binaries, no way round running as root, initdb fails)."""


class PgStartError(RuntimeError):
    """initdb worked but the server did not start; the message ends with the server log."""


def find_bindir() -> Path | None:
    """The newest PostgreSQL bin directory with initdb and pg_ctl, or None."""
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


class PgServer:
    """One PostgreSQL cluster in a temporary directory, listening on 127.0.0.1 only.

    `settings` are passed to the server as `-c name=value`; everything else is PostgreSQL's default.
    """

    def __init__(self, settings: Mapping[str, str] | None = None) -> None:
        self.settings = dict(settings or {})
        self.port = 0
        self.bindir: Path | None = None
        self._base: Path | None = None
        self._run_as: list[str] = []

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """initdb and start; raises PgUnavailable or PgStartError, leaving nothing behind."""
        bindir = find_bindir()
        if bindir is None:
            raise PgUnavailable(
                "no PostgreSQL binaries (looked in /usr/lib/postgresql/*/bin and PATH)"
            )
        self.bindir = bindir
        self._base = Path(tempfile.mkdtemp(prefix="parley-pg-"))
        try:
            self._start(bindir, self._base)
        except BaseException:  # also KeyboardInterrupt: a half-started server must not linger
            self.stop()
            raise

    def _start(self, bindir: Path, base: Path) -> None:
        if os.geteuid() == 0:  # initdb refuses to run as root
            user, runuser = _unprivileged_user(), shutil.which("runuser")
            if user is None or runuser is None:
                raise PgUnavailable(
                    "running as root without a non-root user and runuser for initdb"
                )
            os.chown(base, user.pw_uid, user.pw_gid)
            self._run_as = [runuser, "-u", user.pw_name, "--"]
        data, log = base / "data", base / "server.log"
        init = self._run(
            bindir / "initdb", "-D", data, "-U", SUPERUSER, "--auth=trust", "--no-sync",
            "--encoding=UTF8", "--locale=C",
        )  # fmt: skip
        if init.returncode != 0:
            raise PgUnavailable(f"initdb cannot run here: {init.stderr.strip()[-500:]}")
        settings = "".join(f" -c {name}={value}" for name, value in self.settings.items())
        for _attempt in range(3):  # the free port may be taken between probe and bind
            port = _free_port()
            options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base}{settings}"
            start = self._run(
                bindir / "pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "start"
            )
            if start.returncode == 0:
                self.port = port
                return
        server_log = log.read_text() if log.exists() else ""
        raise PgStartError(f"PostgreSQL did not start:\n{start.stderr}\n{server_log[-2000:]}")

    def create_database(self, name: str) -> None:
        assert self.bindir is not None, "start() the server first"
        created = self._run(
            self.bindir / "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name
        )
        if created.returncode != 0:
            raise RuntimeError(f"createdb {name} failed: {created.stderr.strip()}")

    def stop(self) -> None:
        """Stop the server (immediate shutdown: the cluster is thrown away) and delete its files."""
        base = self._base
        if base is None:
            return
        try:
            pid_file = base / "data" / "postmaster.pid"
            if pid_file.exists() and self.bindir is not None:
                stopped = self._run(
                    self.bindir / "pg_ctl", "-D", base / "data", "-m", "immediate", "stop"
                )
                if stopped.returncode != 0 and pid_file.exists():  # last resort: what pg_ctl sends
                    with contextlib.suppress(ValueError, OSError):
                        os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)
        finally:
            self._base = None
            shutil.rmtree(base, ignore_errors=True)

    def _run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._run_as, *map(str, args)],
            cwd=self._base,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def __enter__(self) -> PgServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def server_for_tests(*databases: str) -> Iterator[PgServer]:
    """A FAST_UNSAFE server with `databases` created, for a test fixture: the tests are skipped
    where PostgreSQL cannot run here, and fail when it is installed but does not start."""
    import pytest  # only the tests use this; the bench imports the module without pytest

    server = PgServer(settings=FAST_UNSAFE)
    try:
        server.start()
    except PgUnavailable as exc:
        pytest.skip(str(exc))
    except PgStartError as exc:
        pytest.fail(str(exc))
    try:
        for database in databases:
            server.create_database(database)
        yield server
    finally:
        server.stop()
