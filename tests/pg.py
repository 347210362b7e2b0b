"""A throwaway PostgreSQL cluster for the warehouse tests on PostgreSQL, started by the tests themselves.

`initdb` in a temp dir and `pg_ctl start` on a free loopback port, trust authentication, the socket in the temp dir;
stopped and removed at the end of the run. As root (CI), the server runs as the `postgres` user Debian's package
creates (initdb refuses root). Server binaries come from Debian's `postgresql` package (`make test` installs it
through tests/install_postgres.sh). Without them the tests fail under CI and are skipped elsewhere, with the reason.

The fixture projects' `postgres` target (fixtures/*/profiles.yml) reads DBT_AE_PG_HOST/PORT/USER/DBNAME. The e2e tests
that touch the warehouse take the `warehouse` fixture (or `module_warehouse` for a module's shared server), which runs
each of them twice, with ids `[duckdb]` and `[postgres]`: a `Warehouse` gives the server its arguments and environment
(`--target postgres`, the database), starts sessions on it and reads the database directly. Built projects come from
templates made once per run: on PostgreSQL a database dbt's CLI built, which `CREATE DATABASE ... TEMPLATE` copies for
a test in well under a second (`built_shop_on`, `styleguide_on`; `shop_on` for a project not built yet)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from conftest import copy_built, copy_shop, copy_styleguide, free_port, held_session, stdio_session


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

    def connect(self, dbname: str) -> Any:
        """A psycopg2 connection in autocommit (what dbt-postgres itself uses)."""
        import psycopg2

        con = psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname=dbname)
        con.autocommit = True
        return con

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


def dbt_on_postgres(project: Path, pg: Postgres, dbname: str, *args: str) -> subprocess.CompletedProcess[str]:
    """dbt's own CLI on the project's postgres target (to build a database the way a user would)."""
    env = {**os.environ, **pg.env(dbname)}
    return subprocess.run([str(Path(sys.executable).parent / "dbt"), *args, "--target", "postgres", "--project-dir", str(project),
                           "--profiles-dir", str(project)], capture_output=True, text=True, cwd=project, env=env, timeout=600)


# -- the warehouse a test runs on: DuckDB or PostgreSQL (issue 17) ------------------------------------------------------

TARGETS = ("duckdb", "postgres")


@dataclass(frozen=True)
class Warehouse:
    """The warehouse of one parametrised test (its id says which: `[duckdb]`, `[postgres]`). DuckDB is the fixture
    projects' default target (a file in the project); PostgreSQL is their `postgres` target, on a database of the test's
    own in the throwaway cluster. `args` and `env` are what a server needs to use it; `session`/`held` start one."""

    target: str
    pg: Postgres | None = None
    dbname: str = ""

    @property
    def postgres(self) -> bool:
        return self.target == "postgres"

    @property
    def duckdb(self) -> bool:
        return self.target == "duckdb"

    @property
    def adapter(self) -> str:
        return self.target

    @property
    def args(self) -> tuple[str, ...]:
        """Server arguments: `--target postgres` on PostgreSQL, none on DuckDB (the profile's default)."""
        return ("--target", "postgres") if self.postgres else ()

    @property
    def env(self) -> dict[str, str]:
        return self.pg.env(self.dbname) if self.pg is not None else {}

    def session(self, project: Path, data_dir: Path, *extra: str, **client_kw: Any) -> Any:
        """stdio_session on this warehouse."""
        return stdio_session(project, data_dir, *self.args, *extra, env=self.env, **client_kw)

    def held(self, project: Path, data_dir: Path, *extra: str) -> AsyncIterator[Client]:
        """held_session on this warehouse (for a module-scoped client)."""
        return held_session(project, data_dir, *self.args, *extra, env=self.env)

    def dbt(self, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """dbt's own CLI on this warehouse (to build a project the way a user would)."""
        if self.pg is not None:
            return dbt_on_postgres(project, self.pg, self.dbname, *args)
        from conftest import run_dbt_cli

        return run_dbt_cli(project, *args)

    def query(self, project: Path, sql: str) -> list[tuple[Any, ...]]:
        """Rows of `sql` read from the warehouse directly (not through the server), after the server let go of it."""
        if self.pg is not None:
            with closing(self.pg.connect(self.dbname)) as con, con.cursor() as cursor:
                cursor.execute(sql)
                return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
        import duckdb

        with duckdb.connect(str(project / f"{project.name}.duckdb"), read_only=True) as con:
            return con.execute(sql).fetchall()

    def execute(self, project: Path, sql: str) -> None:
        """Run a statement that writes, directly on the warehouse."""
        if self.pg is not None:
            with closing(self.pg.connect(self.dbname)) as con, con.cursor() as cursor:
                cursor.execute(sql)
            return
        import duckdb

        with duckdb.connect(str(project / f"{project.name}.duckdb")) as con:
            con.execute(sql)

    def tables(self, project: Path) -> dict[str, int]:
        """Every table and view of the project's schemas with its row count."""
        names = self.query(project, "select table_schema || '.' || table_name from information_schema.tables "
                                    "where table_schema not in ('information_schema', 'pg_catalog') order by 1")
        return {name: self.query(project, f"select count(*) from {name}")[0][0] for (name,) in names}

    def from_template(self, template: str) -> None:
        """This warehouse's database becomes a copy of a built one (PostgreSQL copies a database in well under a second)."""
        assert self.pg is not None
        self.pg.psql(f"DROP DATABASE IF EXISTS {self.dbname} WITH (FORCE)")
        self.pg.psql(f"CREATE DATABASE {self.dbname} TEMPLATE {template}")


# A function-scoped test's database always has this name (tests of one process run one at a time; each process has a
# cluster of its own). dbt's partial parsing keys on the connection (database included): the parse state of a project
# built as `shop` then serves every test's server, which parses in ~1 s instead of ~3 s.
TEST_DATABASE = "shop"


def new_warehouse(request: pytest.FixtureRequest, dbname: str = TEST_DATABASE) -> Warehouse:
    """The warehouse named by the fixture's parameter; on PostgreSQL with a new, empty database `dbname`."""
    if request.param == "duckdb":
        return Warehouse("duckdb")
    pg: Postgres = request.getfixturevalue("postgres")
    pg.psql(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    pg.psql(f"CREATE DATABASE {dbname}")
    return Warehouse("postgres", pg, dbname)


@pytest.fixture(params=TARGETS)
def warehouse(request: pytest.FixtureRequest) -> Warehouse:
    """Runs the test once on DuckDB and once on PostgreSQL."""
    return new_warehouse(request)


@pytest.fixture(scope="module", params=TARGETS)
def module_warehouse(request: pytest.FixtureRequest) -> Warehouse:
    """`warehouse` for module-scoped fixtures (a project and a server shared by a module's tests, once per target)."""
    return new_warehouse(request, f"shop_module_{next(_databases)}")


def _built_on_postgres(pg: Postgres, project: Path, template: str) -> tuple[Path, str]:
    """Build `project` with dbt's CLI in a database named TEST_DATABASE (so that its parse state fits the tests'
    databases), then rename that database to `template`. The test's own empty database, if made already, goes first."""
    pg.psql(f"DROP DATABASE IF EXISTS {TEST_DATABASE} WITH (FORCE)")
    pg.psql(f"CREATE DATABASE {TEST_DATABASE}")
    built = dbt_on_postgres(project, pg, TEST_DATABASE, "build")
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    pg.psql(f"ALTER DATABASE {TEST_DATABASE} RENAME TO {template}")
    return project, template


@pytest.fixture(scope="session")
def built_shop_pg_template(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(project, database): the demo project built once per run by dbt's CLI on PostgreSQL, kept as a template database."""
    return _built_on_postgres(postgres, copy_shop(tmp_path_factory.mktemp("built-pg-template")), "built_shop")


@pytest.fixture(scope="session")
def built_styleguide_pg_template(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(project, database): the style-guide project built once per run by dbt's CLI on PostgreSQL."""
    return _built_on_postgres(postgres, copy_styleguide(tmp_path_factory.mktemp("styleguide-pg-template")), "built_styleguide")


def built_copy(request: pytest.FixtureRequest, warehouse: Warehouse, dest: Path, project: str = "shop") -> Path:
    """A writable copy of a fixture project (`shop` or `styleguide`) built on the warehouse: on DuckDB a copy of the
    built folder (the .duckdb file in it), on PostgreSQL the built folder and a copy of the built template database."""
    if warehouse.duckdb:
        return copy_built(request.getfixturevalue(f"built_{project}_template"), dest)
    template, database = request.getfixturevalue(f"built_{project}_pg_template")
    warehouse.from_template(database)
    return copy_built(template, dest)


@pytest.fixture
def built_shop_on(request: pytest.FixtureRequest, warehouse: Warehouse, tmp_path: Path) -> Path:
    """`built_shop` on the test's warehouse."""
    return built_copy(request, warehouse, tmp_path)


@pytest.fixture
def styleguide_on(request: pytest.FixtureRequest, warehouse: Warehouse, tmp_path: Path) -> Path:
    """`styleguide` (built) on the test's warehouse."""
    return built_copy(request, warehouse, tmp_path, "styleguide")


@pytest.fixture
def shop_on(request: pytest.FixtureRequest, warehouse: Warehouse, tmp_path: Path) -> Path:
    """`shop` (not built) for the test's warehouse: on PostgreSQL with the parse state of the postgres target."""
    project = copy_shop(tmp_path)
    if warehouse.postgres:
        template, _ = request.getfixturevalue("built_shop_pg_template")
        shutil.copy(template / "target" / "partial_parse.msgpack", project / "target" / "partial_parse.msgpack")
        warehouse.from_template("template0")  # empty again: building the template (first use) took the database's name
    return project
