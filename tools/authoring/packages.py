"""dbt_package: add a package to packages.yml and install it; packages.yml is put back if the install fails."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.authoring import yaml_props
from tools.authoring.base import AuthoringBase
from tools.authoring.files import check_path_text, apply, plan_diffs, read_text
from tools.authoring.inputs import (
    PackageInput,
)
from tools.authoring.plan import Plan
from tools.authoring.project import DIALECTS
from tools.authoring.results import AuthoringResult, FileOut


GIT_URL = re.compile(r"^(https://|http://|ssh://|git@[A-Za-z0-9.-]+:)[^\s]+$")


class PackageAuthoring(AuthoringBase):
    async def package(self, inp: PackageInput, progress: ProgressReporter) -> AuthoringResult:
        forms = [inp.name is not None, inp.git is not None, inp.local is not None]
        if sum(forms) != 1:
            raise ToolFailure("invalid_input", "Give exactly one of name (+version), git (+revision) or local.", "e.g. name='dbt-labs/dbt_utils', version='1.3.0'.")
        if inp.name is not None:
            if not re.match(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", inp.name) or not inp.version:
                raise ToolFailure("invalid_input", "A hub package is 'owner/name' with a version.", "e.g. name='dbt-labs/dbt_utils', version='1.3.0'.")
            entry: dict[str, Any] = {"package": inp.name, "version": inp.version}
            same = ("package", inp.name)
        elif inp.git is not None:
            if not GIT_URL.match(inp.git):  # git's ext:: and other transports run commands; flags start with '-'
                raise ToolFailure("invalid_input", "git must be an https://, ssh:// or git@host: URL.", "e.g. git='https://github.com/org/pkg.git'.")
            entry = {"git": inp.git, **({"revision": inp.revision} if inp.revision else {})}
            same = ("git", inp.git)
        else:
            check_path_text(inp.local or "")
            local = Path(inp.local or "")
            folder = (self.root / local).resolve() if not local.is_absolute() else local.resolve()
            if not (folder / "dbt_project.yml").is_file():
                raise ToolFailure("package_not_found", f"No dbt_project.yml in {inp.local}.", "Give the folder of a dbt package.")
            entry = {"local": inp.local}
            same = ("local", inp.local)
        layout, _ = await self._current(inp, progress)
        installed_dir = self.root / layout.packages_install_path
        had_installed_dir = installed_dir.exists()
        path = self.root / "packages.yml"
        dependencies = self.root / "dependencies.yml"
        if not path.exists() and dependencies.exists() and "packages:" in (read_text(dependencies) or ""):
            path = dependencies
        plan = Plan(next_step="dbt_build (the package's models and macros are now available)")
        doc = yaml_props.load(plan.pending(path), path.name)
        packages = doc.data.get("packages")
        if packages is None:
            doc.data["packages"] = yaml_props.to_yaml([])
            packages = doc.data["packages"]
        if "version" in doc.data and doc.data.get("version") == 2 and path.name == "packages.yml":
            del doc.data["version"]
        replaced = False
        for n, existing in enumerate(packages):
            if isinstance(existing, dict) and existing.get(same[0]) == same[1]:
                packages[n] = yaml_props.to_yaml(entry)
                replaced = True
        if not replaced:
            packages.append(yaml_props.to_yaml(entry))
        plan.write(path, doc.dump())
        lock = self.root / "package-lock.yml"
        plan.write(lock, read_text(lock))  # kept as it is now, so that a failed install puts it back
        diffs = plan_diffs(self.root, plan.changes)
        files = [FileOut(path=d.path, action=d.action, diff=d.diff or None) for d in diffs if d.path != lock.name]
        if inp.dry_run:
            return AuthoringResult(tool="dbt_package", dry_run=True, files=files, validated="not run (dry run)", next_step=plan.next_step)
        changes = [c for c, d in zip(plan.changes, diffs) if d.action != "unchanged" or c.path == lock]
        applied = apply(changes)
        try:
            reply = await self.engine.invoke(["deps"], timeout=self._timeout(inp), progress=progress, reuse_manifest=False)
            if not reply.success:
                error = reply.payload.get("exception") or {}
                raise ToolFailure("dbt_deps_failed", f"dbt deps failed: {error.get('message', 'see the server log')}",
                                  "Check the package name, version or path (and network access for hub/git packages).")
            after = await self.index(self._timeout(inp), progress)
        except BaseException as exc:
            applied.rollback()
            if isinstance(exc, ToolFailure):
                # dbt_packages/ as the restored lock says, or a half-installed package breaks every later call
                if not had_installed_dir:
                    shutil.rmtree(installed_dir, ignore_errors=True)
                else:
                    try:
                        await self.engine.invoke(["deps"], timeout=self._timeout(inp), progress=progress, reuse_manifest=False)
                    except ToolFailure:
                        pass  # the typed error below is the one the agent needs; dbt_deps shows this one
                raise ToolFailure(exc.code, f"{exc.message} — packages.yml was put back as it was.", exc.hint, exc.details) from None
            raise
        adapters = {f"dbt_{name}" for name in DIALECTS}
        installed = sorted({m["package"] for m in after.raw.get("macros", [])} - {"dbt", after.project_name or ""} - adapters)
        return AuthoringResult(tool="dbt_package", dry_run=False, files=files, validated="deps+parse",
                               notes=[f"packages installed: {', '.join(installed) or 'none'}"], next_step=plan.next_step)

