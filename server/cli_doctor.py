"""`dbt-ae-mcp doctor`: checks the set-up the way the server will use it and says what to fix."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from server.settings import Settings


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


# `dbt debug` then `dbt parse` in one child process (dbt's import is most of the time each would take on its own).
_DEBUG_THEN_PARSE = """
import sys
from dbt.cli.main import dbtRunner
runner = dbtRunner()
for command in ("debug", "parse"):
    print("@@doctor-start " + command, flush=True)
    result = runner.invoke([command, *sys.argv[1:]])
    print("@@doctor-end " + command + (" ok" if result.success else " failed"), flush=True)
"""


def _debug_then_parse(settings: Settings) -> dict[str, tuple[bool, list[str]]]:
    """command -> (succeeded, its output lines), for `debug` and `parse`; a command the child never finished failed."""
    args = ["--project-dir", str(settings.project_dir), "--profiles-dir", str(settings.effective_profiles_dir)]
    if settings.target:
        args += ["--target", settings.target]
    env = dict(os.environ, DO_NOT_TRACK="1", DBT_USE_COLORS="false")
    run = subprocess.run([sys.executable, "-c", _DEBUG_THEN_PARSE, *args], capture_output=True, text=True,
                         cwd=settings.project_dir, env=env, timeout=600)
    outcome: dict[str, tuple[bool, list[str]]] = {}
    current: str | None = None
    for line in run.stdout.splitlines():
        if line.startswith("@@doctor-start "):
            current = line.split()[1]
            outcome[current] = (False, [])
        elif line.startswith("@@doctor-end "):
            _, command, verdict = line.split()
            outcome[command] = (verdict == "ok", outcome[command][1])
            current = None
        elif current and line.strip():
            outcome[current][1].append(line)
    stderr = run.stderr.strip().splitlines()
    for command in ("debug", "parse"):
        ok, lines = outcome.get(command, (False, []))
        outcome[command] = (ok, lines if ok or lines else stderr)
    return outcome


def run_checks(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    core, duckdb = _package_version("dbt-core"), _package_version("dbt-duckdb")
    checks.append(Check("dbt-core", core is not None and core.startswith("1.11"), f"dbt-core {core}", "pip install 'dbt-core>=1.11,<1.12'"))
    checks.append(Check("adapter", duckdb is not None, f"dbt-duckdb {duckdb}", "install the dbt adapter of your warehouse"))
    has_project = (settings.project_dir / "dbt_project.yml").is_file()
    checks.append(Check("project", has_project, f"project dir {settings.project_dir}", "pass --project-dir pointing at the folder with dbt_project.yml"))
    profiles = settings.effective_profiles_dir / "profiles.yml"
    checks.append(Check("profiles", profiles.is_file(), f"profiles {profiles}", "pass --profiles-dir or create profiles.yml"))
    if has_project and profiles.is_file():
        dbt = _debug_then_parse(settings)
        debug_ok, debug_lines = dbt["debug"]
        checks.append(Check("connection", debug_ok, "dbt debug: " + " | ".join(debug_lines[-3:]), "fix the profile/target; `dbt debug` shows details"))
        parse_ok, parse_lines = dbt["parse"]
        checks.append(Check("parse", parse_ok, "dbt parse: " + (parse_lines[-1:] or [""])[0], "fix the file named by dbt parse"))
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=settings.data_dir):
            pass
        checks.append(Check("data dir", True, f"data dir {settings.data_dir} writable"))
    except OSError as exc:
        checks.append(Check("data dir", False, f"data dir {settings.data_dir}: {exc}", "set --data-dir / DBT_AE_DATA_DIR to a writable folder"))
    return checks


def run_doctor(settings: Settings) -> int:
    checks = run_checks(settings)
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        print(f"[{mark}] {check.name}: {check.detail}")
        if not check.ok and check.fix:
            print(f"       fix: {check.fix}")
    failed = [c for c in checks if not c.ok]
    print("all checks passed" if not failed else f"{len(failed)} check(s) failed")
    return 0 if not failed else 1
