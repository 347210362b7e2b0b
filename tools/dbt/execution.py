"""dbt commands that build or load (run, build, test, seed, snapshot, source freshness, retry, deps), and the
authoring forms of dbt_seed and dbt_snapshot."""

from __future__ import annotations

from collections.abc import Awaitable, Callable


from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.dbt.inputs import (
    BuildInput,
    DepsInput,
    FreshnessInput,
    RetryInput,
    RunInput,
    SeedInput,
    SnapshotInput,
    TestInput,
)
from tools.dbt.results import DbtCommandResult
from tools.dbt.engine.serialize import redact



from tools.dbt.calls import DbtCalls


class ExecutionCommands(DbtCalls):
    async def run(self, inp: RunInput, progress: ProgressReporter) -> DbtCommandResult:
        return await self._execution(["run"], inp, progress, inp.execution_args() + (["--empty"] if inp.empty else []))

    async def build(self, inp: BuildInput, progress: ProgressReporter) -> DbtCommandResult:
        args = inp.execution_args() + (["--empty"] if inp.empty else [])
        for resource_type in inp.resource_types or []:
            args += ["--resource-type", resource_type]
        return await self._execution(["build"], inp, progress, args)

    async def test(self, inp: TestInput, progress: ProgressReporter) -> DbtCommandResult:
        if inp.store_failures and self.ctx.settings.read_only:
            raise ToolFailure("not_read_only", "store_failures writes tables, and the server runs read-only.", "Call without store_failures.")
        return await self._execution(["test"], inp, progress, inp.execution_args() + (["--store-failures"] if inp.store_failures else []),
                                     guard=not inp.store_failures)

    async def seed(self, inp: SeedInput, progress: ProgressReporter) -> DbtCommandResult:
        if not inp.defines:
            return await self._execution(["seed"], inp, progress, inp.execution_args())
        if not inp.load or inp.dry_run:
            return await self._define("seed", inp, progress)
        loaded: list[DbtCommandResult] = []

        async def load() -> None:
            """Load only the new seed; a failed load fails the call, and the authoring commit removes what it wrote."""
            only = inp.model_copy(update={"select": inp.name})
            result = await self._execution(["seed"], only, progress, only.execution_args())
            if not result.success:
                failed = next((n for n in result.nodes if n.failed), None)
                message = (failed.message if failed else None) or (result.error or {}).get("message") or "dbt seed failed"
                raise ToolFailure("dbt_database_error", f"Loading seed {inp.name} failed: {redact(message)}",
                                  "Fix the data or column_types and call again.")
            loaded.append(result)

        authored = await self._define("seed", inp, progress, finish=load)
        result = loaded[0]
        result.extra["authoring"] = authored.extra["authoring"]
        result.note = authored.note
        return result

    async def snapshot(self, inp: SnapshotInput, progress: ProgressReporter) -> DbtCommandResult:
        if not inp.defines:
            return await self._execution(["snapshot"], inp, progress, inp.execution_args())
        return await self._define("snapshot", inp, progress)

    async def _define(self, what: str, inp: SeedInput | SnapshotInput, progress: ProgressReporter,
                      finish: Callable[[], Awaitable[None]] | None = None) -> DbtCommandResult:
        """The authoring form of dbt_seed / dbt_snapshot: write the files (tools/authoring), return them in `extra`."""
        if inp.name is None:
            raise ToolFailure("invalid_input", f"Defining a {what} needs name.", f"Give name='...' to define a {what}, or no definition fields to run {what}s.")
        if inp.select or inp.exclude or inp.selector:
            raise ToolFailure("invalid_input", f"select/exclude/selector choose {what}s to run; name defines a new one.", "Give one or the other.")
        from tools.authoring.service import AuthoringService

        service = self.ctx.shared("authoring", lambda: AuthoringService(self.ctx))
        async with service.lock:
            authored = await (service.seed(inp, progress, finish=finish) if what == "seed" else service.snapshot(inp, progress))
        return DbtCommandResult(command=f"{what} (define)", success=True, counts={}, elapsed_s=0.0, nodes=[],
                                extra={"authoring": authored.model_dump(mode="json")}, note=authored.summary())

    async def source_freshness(self, inp: FreshnessInput, progress: ProgressReporter) -> DbtCommandResult:
        args = inp.selection_args() + (["--threads", str(inp.threads)] if inp.threads else [])
        return await self._execution(["source", "freshness"], inp, progress, args, guard=True)


    async def retry(self, inp: RetryInput, progress: ProgressReporter) -> DbtCommandResult:
        if not (self.target_dir / "run_results.json").exists():
            raise ToolFailure("nothing_to_retry", "No previous run_results.json to retry from.", "Run dbt_build or dbt_run first.")
        return self._result("retry", await self._invoke(["retry"], inp, progress))


    async def deps(self, inp: DepsInput, progress: ProgressReporter) -> DbtCommandResult:
        reply = await self._invoke(["deps", *(["--upgrade"] if inp.upgrade else [])], inp, progress, reuse_manifest=False)
        return self._result("deps", reply)

