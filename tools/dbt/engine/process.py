"""The dbt worker's process: started in the background, restarted after a timeout, a cancel or a crash, and read
line by line (replies, progress events and the ready line) into the queue of the call they answer."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from server import fastjson
from server.errors import ToolFailure

log = logging.getLogger("dbt_ae_mcp.engine")

REPO_ROOT = Path(__file__).resolve().parents[3]
STREAM_LIMIT = 256 * 1024 * 1024  # one JSON line can carry a large compiled project
KILL_AFTER_S = 5.0  # a worker asked to stop (SIGTERM: it cancels its database queries first) is killed after this


def stop_process(proc: asyncio.subprocess.Process, cancel_first: bool) -> None:
    """Stop a worker now, synchronously (safe inside a cancelled task). Where the database runs queries apart from the
    worker (`cancel_first`, which the worker reports), SIGTERM lets it cancel them first (worker.cancel_and_exit) and
    SIGKILL follows after KILL_AFTER_S; an in-process DuckDB worker is killed at once (its file is free for the next)."""
    if proc.returncode is not None:
        return
    try:
        if not cancel_first:
            proc.kill()
            return
        proc.terminate()
    except ProcessLookupError:
        return
    try:
        asyncio.get_running_loop().call_later(KILL_AFTER_S, _kill_if_running, proc)
    except RuntimeError:  # no loop (interpreter shutdown): do not leave it to chance
        _kill_if_running(proc)


def _kill_if_running(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass


class WorkerProcess:
    """Owns the worker process for one dbt project; DbtEngine (engine.py) adds the calls."""

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
        self.calls_run = 0  # calls that got the worker so far (a caller can tell whether another ran between two points)
        self.generation: str | None = None  # the worker's manifest at its last reply (worker.py Worker.generation)
        self.description: dict[str, Any] | None = None  # the last `describe` payload (DbtEngine.describe)
        self.cancel_first = False  # the worker's adapter runs queries outside it: stop it with SIGTERM (stop_process)

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
                sys.executable, "-m", "tools.dbt.engine.worker",
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
                    message = fastjson.loads(line)  # megabytes for a big project's manifest summary
                except json.JSONDecodeError:
                    log.warning("dbt worker wrote a non-JSON line: %r", line[:200])
                    continue
                if "cancel_first" in message:
                    self.cancel_first = bool(message["cancel_first"])
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
        if proc is not None:
            stop_process(proc, self.cancel_first)
        self._proc = None
        self._ready = None
        self.start()

    async def shutdown(self, grace_s: float = 0.5) -> None:
        """Stop the worker when the server ends: the client has gone, so nothing the worker does can still be answered.
        A worker that is idle exits at the end of its stdin; one still parsing or running dbt is killed after
        `grace_s` (dbt builds into temporary relations and renames them, so a killed run leaves no half-built model)."""
        proc = self._proc
        self._proc = None
        if proc is None or proc.returncode is not None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            await asyncio.wait_for(proc.wait(), timeout=grace_s)
        except (asyncio.TimeoutError, ProcessLookupError):
            stop_process(proc, self.cancel_first)
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
