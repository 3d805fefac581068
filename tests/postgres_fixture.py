"""A real PostgreSQL for tests: the ``postgres_url`` fixture (one fresh database per test).

Where the server comes from, in order:

1. ``GENIE_TEST_POSTGRES_URL`` (``.ci/run`` starts a throwaway cluster and sets it): a
   URL whose user may create databases;
2. PostgreSQL's server binaries on this machine (``pg_ctl`` on ``PATH`` or Debian's
   ``/usr/lib/postgresql/*/bin``): a throwaway cluster for the session, in a temporary
   folder on a free loopback port, run as the ``postgres`` user when we are root;
3. neither: the tests are skipped, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest

# Read at import: the session's clean-environment fixture removes GENIE_* variables.
ENV_URL = os.environ.get("GENIE_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    dirs = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name or 0)
    )
    return next((Path(d) for d in reversed(dirs) if (Path(d) / "initdb").exists()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _throwaway_cluster(bindir: Path) -> Iterator[str]:
    """initdb + pg_ctl start in a temporary folder; yields an admin URL with a password."""
    user: str | None = None
    if os.geteuid() == 0:  # postgres refuses to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("running as root and there is no 'postgres' user") from None
        user = "postgres"
    root = Path(tempfile.mkdtemp(prefix="genie-pg-"))
    data, password = root / "data", secrets.token_urlsafe(16)
    (root / "pw").write_text(password)
    if user:
        shutil.chown(root, user)
        shutil.chown(root / "pw", user)
    port = _free_port()

    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, user=user, cwd=root)

    try:
        run(
            str(bindir / "initdb"), "-D", str(data), "-U", "genie", "-E", "UTF8",
            "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={root / 'pw'}",
            "--no-sync",
        )  # fmt: skip
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", options,
            "-w", "-t", "60", "start")  # fmt: skip
        try:
            yield f"postgresql://genie:{password}@127.0.0.1:{port}/postgres"
        finally:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _unavailable(reason: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"CI=true but there is no PostgreSQL for the tests: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL: {reason}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """An admin URL (may create databases) of a real PostgreSQL server for the session."""
    if ENV_URL:
        yield ENV_URL
        return
    bindir = _pg_bin()
    if bindir is None:
        _unavailable(
            "set GENIE_TEST_POSTGRES_URL, or install PostgreSQL's server "
            "(apt-get install postgresql) so that the tests start a throwaway cluster"
        )
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(_throwaway_cluster(bindir))
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            output = getattr(exc, "stderr", None) or b""
            _unavailable(f"could not start a throwaway cluster: {exc} {output.decode()[-500:]}")
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """The URL of a new, empty database on the test server, dropped after the test."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(urlsplit(postgres_server)._replace(path=f"/{name}"))
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
