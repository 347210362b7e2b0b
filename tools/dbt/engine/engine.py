"""The server side of the warm dbt worker: one process per project, one call at a time, restart on timeout/cancel."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from server.errors import ToolFailure
from tools.dbt.engine.describe import apply_describe_delta
from tools.dbt.engine.process import WorkerProcess, log

ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]


@dataclass
class WorkerReply:
    """What one dbt invocation returned: success flag, the serialized payload, and warn/error events."""

    success: bool
    payload: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)


class DbtEngine(WorkerProcess):
    """Serialises calls to the worker of one dbt project: one dbt invocation at a time, the rest queue."""

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
        self.calls_run += 1
        try:
            return await self._invoke_locked(args, target, vars_json, deadline, timeout, progress, reuse_manifest, options)
        finally:
            self._lock.release()

    async def describe(self, *, timeout: float, progress: ProgressFn | None = None, compile_ahead: dict[str, Any] | None = None
                       ) -> dict[str, Any]:
        """The warm manifest's summary (describe.py), parsed again first if a file changed. The worker sends it only
        when its manifest is not the one this process already holds: on a 1,000-model project it is megabytes.
        `compile_ahead` ({"guard": ...}, compile_nodes' guard): the caller compiles the edited models next; the worker
        compiles them after its reply, while this process reads it (compile_op.compile_ahead)."""
        held = self.description
        options = {"have": (held or {}).get("generation"), **({"compile_ahead": compile_ahead} if compile_ahead is not None else {})}
        reply = await self.invoke(["describe"], timeout=timeout, progress=progress, options=options)
        payload = reply.payload
        if payload.get("unchanged") and held is not None and held.get("generation") == payload.get("generation"):
            return held
        if "delta_from" in payload:  # the changes to what this process said it holds
            if held is None or held.get("generation") != payload["delta_from"]:
                self.description = None  # not what was held after all (a concurrent describe): ask for all of it
                return await self.describe(timeout=timeout, progress=progress, compile_ahead=compile_ahead)
            payload = {k: v for k, v in apply_describe_delta(held, payload).items() if k != "delta_from"}
        self.description = payload
        return payload

    def current_description(self) -> dict[str, Any] | None:
        """The held summary when it describes the manifest the worker holds now, else None."""
        held = self.description
        return held if held is not None and self.generation is not None and held.get("generation") == self.generation else None

    @property
    def idle(self) -> bool:
        """No call holds or waits for the worker."""
        return not self._lock.locked() and not self._waiting

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
                    self.generation = message.get("generation")
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
