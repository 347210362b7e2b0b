"""A throwaway PostgreSQL cluster for the warehouse tests on PostgreSQL, started by the tests themselves.

`initdb` in a temp dir and `pg_ctl start` on a free loopback port, trust authentication, the socket in the temp dir;
stopped and removed at the end of the run. As root (CI), the server runs as the `postgres` user Debian's package
creates (initdb refuses root). Server binaries come from Debian's `postgresql` package (`make test` installs it
through tests/install_postgres.sh). Without them the tests fail under CI and are skipped elsewhere, with the reason.

The demo project's `postgres` target (fixtures/shop/profiles.yml) reads DBT_AE_PG_HOST/PORT/USER/DBNAME, so each
test gets a database of its own (`pg_database`) and a server started with those variables (`pg_session`)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from conftest import REPO, free_port, serve_args
from server.cli_demo import server_environment


@dataclass(frozen=True)
class Postgres:
    port: int
    host: str = "127.0.0.1"
    user: str = "postgres"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        done = subprocess.run(["psql", "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", dbname, "-v", "ON_ERROR_STOP=1",
                               "-At", "-c", sql], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def env(self, dbname: str) -> dict[str, str]:
        return {"DBT_AE_PG_HOST": self.host, "DBT_AE_PG_PORT": str(self.port), "DBT_AE_PG_USER": self.user,
                "DBT_AE_PG_DBNAME": dbname}


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if initdb is None or pg_ctl is None or shutil.which("psql") is None:
        reason = "PostgreSQL server binaries not found (make test installs Debian's postgresql: tests/install_postgres.sh)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="dbt-ae-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data = root / "data"
    port = free_port()
    subprocess.run(_as_server_user([initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]), check=True,
                   capture_output=True, timeout=120)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c full_page_writes=off"
    subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w", "start"]),
                   check=True, capture_output=True, timeout=120)
    try:
        yield Postgres(port)
    finally:
        subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


_databases = iter(range(1, 10_000))


@pytest.fixture
def pg_database(postgres: Postgres) -> str:
    """A new, empty database for one test."""
    name = f"shop_{next(_databases)}"
    postgres.psql(f"CREATE DATABASE {name}")
    return name


def dbt_on_postgres(project: Path, pg: Postgres, dbname: str, *args: str) -> subprocess.CompletedProcess[str]:
    """dbt's own CLI on the project's postgres target (to build a database the way a user would)."""
    env = {**os.environ, **pg.env(dbname)}
    return subprocess.run([str(Path(sys.executable).parent / "dbt"), *args, "--target", "postgres", "--project-dir", str(project),
                           "--profiles-dir", str(project)], capture_output=True, text=True, cwd=project, env=env, timeout=600)


@asynccontextmanager
async def pg_session(project: Path, data_dir: Path, pg: Postgres, dbname: str, *extra: str, **client_kw: Any) -> AsyncIterator[Client]:
    """A server over stdio on the project's postgres target and this test's database."""
    params = StdioServerParameters(command=sys.executable, args=serve_args(project, data_dir, "--target", "postgres", *extra),
                                   cwd=str(REPO), env={**server_environment(), **pg.env(dbname)})
    async with Client(params, **client_kw) as client:
        yield client
