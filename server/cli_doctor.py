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


def _dbt(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from dbt.cli.main import cli; cli()", *args,
               "--project-dir", str(settings.project_dir), "--profiles-dir", str(settings.effective_profiles_dir)]
    if settings.target:
        command += ["--target", settings.target]
    env = dict(os.environ, DO_NOT_TRACK="1", DBT_USE_COLORS="false")
    return subprocess.run(command, capture_output=True, text=True, cwd=settings.project_dir, env=env, timeout=300)


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
        debug = _dbt(settings, "debug")
        tail = (debug.stdout + debug.stderr).strip().splitlines()[-3:]
        checks.append(Check("connection", debug.returncode == 0, "dbt debug: " + " | ".join(tail), "fix the profile/target; `dbt debug` shows details"))
        parse = _dbt(settings, "parse")
        last = (parse.stdout + parse.stderr).strip().splitlines()[-1:] or [""]
        checks.append(Check("parse", parse.returncode == 0, "dbt parse: " + last[0], "fix the file named by dbt parse"))
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
