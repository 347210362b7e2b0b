"""The server side of the warm dbt worker: one process per project, one call at a time, restart on timeout/cancel."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.errors import ToolFailure

log = logging.getLogger("dbt_ae_mcp.engine")

REPO_ROOT = Path(__file__).resolve().parents[2]
STREAM_LIMIT = 256 * 1024 * 1024  # one JSON line can carry a large compiled project

ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]


@dataclass
class WorkerReply:
    """What one dbt invocation returned: success flag, the serialized payload, and warn/error events."""

    success: bool
    payload: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)


class DbtEngine:
    """Owns the worker process for one dbt project and serialises calls to it."""

    def __init__(self, project_dir: Path, profiles_dir: Path, default_target: str | None = None) -> None:
        self.project_dir = project_dir
        self.profiles_dir = profiles_dir
        self.default_target = default_target
        self._proc: asyncio.subprocess.Process | None = None
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._reader: asyncio.Task[None] | None = None
        # request id -> (the worker it was sent to, where its replies go)
        self._pending: dict[int, tuple[asyncio.subprocess.Process | None, asyncio.Queue[dict[str, Any]]]] = {}
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self._waiting = 0

    # -- process lifecycle -------------------------------------------------------------------------
    def check_project(self) -> None:
        if not self.project_dir.is_dir():
            raise ToolFailure(
                "project_not_found",
                f"Project directory {self.project_dir} does not exist.",
                "Start the server with --project-dir pointing at a folder that holds dbt_project.yml.",
            )
        if not (self.project_dir / "dbt_project.yml").is_file():
            raise ToolFailure(
                "project_not_found",
                f"No dbt_project.yml in {self.project_dir}.",
                "Point --project-dir (or DBT_AE_PROJECT_DIR) at the dbt project's root folder.",
            )

    def start(self) -> None:
        """Start the worker in the background; returns at once (initialize never waits for dbt)."""
        if self._proc is not None and self._proc.returncode is None:
            return
        if self._ready is not None and not self._ready.done():
            return
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        loop.create_task(self._spawn(self._ready))

    async def _spawn(self, ready: asyncio.Future[dict[str, Any]]) -> None:
        if not self.project_dir.is_dir():
            if not ready.done():
                ready.set_result({"warm_error": None, "no_project": True})
            return
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tools.dbt_engine.worker",
                str(self.project_dir), str(self.profiles_dir), self.default_target or "",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None,
                cwd=str(self.project_dir), env=env, limit=STREAM_LIMIT,
            )
        except OSError as exc:
            if not ready.done():
                ready.set_result({"start_error": {"code": "worker_failed", "message": f"Could not start the dbt worker: {exc}", "hint": "Run `dbt-ae-mcp doctor`."}})
            return
        if ready is not self._ready:  # killed or restarted while this one was being spawned
            proc.kill()
            await proc.wait()
            return
        self._proc = proc
        self._reader = asyncio.get_running_loop().create_task(self._read_loop(proc, ready))
        log.info("dbt worker started, pid %s", proc.pid)

    async def _read_loop(self, proc: asyncio.subprocess.Process, ready: asyncio.Future[dict[str, Any]]) -> None:
        assert proc.stdout is not None
        try:
            while True:
                line = await proc.stdout.readline()
                if not line:
                    break
                try:
                    message = json.loads(line)
                except json.JSONDecodeError:
                    log.warning("dbt worker wrote a non-JSON line: %r", line[:200])
                    continue
                if message.get("type") == "ready":
                    if not ready.done():
                        ready.set_result(message)
                    continue
                entry = self._pending.get(message.get("id"))
                if entry is not None:
                    entry[1].put_nowait(message)
        except (ValueError, OSError) as exc:  # e.g. a line over the stream limit: treat the worker as lost
            log.error("lost the dbt worker's channel: %s", exc)
            if proc.returncode is None:
                proc.kill()
        await proc.wait()
        log.info("dbt worker %s exited with %s", proc.pid, proc.returncode)
        crash = {"type": "result", "ok": False, "error": {
            "code": "worker_crashed", "message": f"The dbt worker exited (code {proc.returncode}).",
            "hint": "Call again: the worker restarts. If it keeps failing, run dbt_debug.",
        }}
        for owner, queue in self._pending.values():
            if owner is proc:
                queue.put_nowait(crash)
        if not ready.done():
            ready.set_result({"start_error": {"code": "worker_crashed", "message": "The dbt worker exited during start-up.", "hint": "Run `dbt-ae-mcp doctor`; the server log has the worker's stderr."}})

    def kill(self) -> None:
        """Kill the worker now (synchronously, safe inside a cancelled task) and start a fresh one."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            try:
                proc.kill()
            except ProcessLookupError:
                pass
        self._proc = None
        self._ready = None
        self.start()

    async def shutdown(self) -> None:
        proc = self._proc
        self._proc = None
        if proc is None or proc.returncode is not None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            await asyncio.wait_for(proc.wait(), timeout=3)
        except (asyncio.TimeoutError, ProcessLookupError):
            proc.kill()
            await proc.wait()

    async def wait_ready(self) -> dict[str, Any]:
        self.check_project()
        worker_gone = self._proc is None or self._proc.returncode is not None
        if self._ready is None or (self._ready.done() and worker_gone):
            self._proc = None
            self._ready = None
            self.start()
        assert self._ready is not None
        ready = await asyncio.shield(self._ready)
        if "start_error" in ready:
            self._ready = None  # the next call tries a fresh start
            raise ToolFailure(**ready["start_error"])
        return ready

    # -- calls ---------------------------------------------------------------------------------------
    async def invoke(
        self,
        args: list[str],
        *,
        target: str | None = None,
        vars_json: str | None = None,
        timeout: float,
        progress: ProgressFn | None = None,
        reuse_manifest: bool = True,
        options: dict[str, Any] | None = None,
    ) -> WorkerReply:
        """Run one dbt command on the warm worker. Raises ToolFailure for calls that could not run at all.

        options: `guard` (every statement dbt sends must be a read-only query), and the `preview` op's sql/model/limit."""
        self.check_project()
        deadline = time.monotonic() + timeout
        if self._lock.locked() and progress is not None:
            await progress(0, None, f"queued: {self._waiting + 1} dbt call(s) ahead")
        self._waiting += 1
        try:
            await asyncio.wait_for(self._lock.acquire(), timeout=max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise ToolFailure("timeout", f"Timed out after {timeout:.0f}s waiting for an earlier dbt call.", "Call again later, or raise timeout_seconds.") from None
        finally:
            self._waiting -= 1
        try:
            return await self._invoke_locked(args, target, vars_json, deadline, timeout, progress, reuse_manifest, options)
        finally:
            self._lock.release()

    async def _invoke_locked(
        self,
        args: list[str],
        target: str | None,
        vars_json: str | None,
        deadline: float,
        timeout: float,
        progress: ProgressFn | None,
        reuse_manifest: bool,
        options: dict[str, Any] | None = None,
    ) -> WorkerReply:
        request_id = next(self._ids)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pending[request_id] = (None, queue)
        sent = False
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await self.wait_ready()
                proc = self._proc
                if proc is None or proc.returncode is not None or proc.stdin is None:
                    raise ToolFailure("worker_crashed", "The dbt worker is not running.", "Call again: the worker restarts.")
                self._pending[request_id] = (proc, queue)
                request = {
                    "id": request_id, "op": "invoke", "args": args,
                    "target": target or self.default_target, "vars": vars_json, "reuse_manifest": reuse_manifest,
                    "options": options or {},
                }
                try:
                    proc.stdin.write((json.dumps(request) + "\n").encode())
                    sent = True
                    await proc.stdin.drain()
                except (BrokenPipeError, ConnectionResetError):
                    self.kill()
                    raise ToolFailure("worker_crashed", "The dbt worker went away.", "Call again: the worker restarts.") from None
                finished = 0
                while True:
                    message = await queue.get()
                    if message.get("type") == "event":
                        if message.get("name") == "NodeFinished":
                            finished += 1
                        if progress is not None:
                            await progress(finished, None, f"{message.get('name')} {message.get('unique_id')} {message.get('status')}")
                        continue
                    if not message.get("ok"):
                        error = message.get("error") or {}
                        raise ToolFailure(
                            error.get("code", "dbt_error"), error.get("message", "dbt failed"), error.get("hint", ""),
                            details={k: v for k, v in error.items() if k not in ("code", "message", "hint")},
                        )
                    return WorkerReply(bool(message.get("success")), message.get("payload") or {}, message.get("events") or [])
        except TimeoutError:
            if not sent:  # still waiting for the worker to start: let it finish warming up
                raise ToolFailure(
                    "timeout", f"The dbt worker was still starting after {timeout:.0f}s.",
                    "Call again in a few seconds (large projects take longer to parse), or raise timeout_seconds.",
                ) from None
            log.warning("dbt call %s timed out after %.0fs; restarting the worker", args[:1], timeout)
            self.kill()
            raise ToolFailure(
                "timeout", f"dbt {' '.join(args[:1])} did not finish within {timeout:.0f}s; the worker was restarted.",
                "Narrow the selection or raise timeout_seconds; the next call works on a fresh worker.",
            ) from None
        except asyncio.CancelledError:
            if sent:
                log.warning("dbt call %s cancelled; restarting the worker", args[:1])
                self.kill()
            raise
        finally:
            self._pending.pop(request_id, None)
