"""A server killed in the middle of a build (SIGKILL: no chance to stop its dbt worker) must not leave the worker
behind. The worker's next progress event meets a closed pipe; before, that error was raised inside one of dbt's node
threads, the node was never marked done, and the worker waited on dbt's queue forever (found as an orphan worker,
parent pid 1, after a fault test). Now a closed channel ends the worker at once: nothing it does can be answered."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from conftest import RawServer, serve_args

pytestmark = pytest.mark.e2e


def workers_of(server_pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == server_pid and b"tools.dbt.engine.worker" in cmdline:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_worker_whose_server_was_killed_mid_build_exits(built_shop: Path, data_dir: Path) -> None:
    server = RawServer(serve_args(built_shop, data_dir, "--toolsets", "dbt"))
    try:
        server.initialize()
        server.call("dbt_list", {"select": "stg_orders"})  # the worker is up and warm
        workers = workers_of(server.proc.pid)
        assert len(workers) == 1, workers
        server.request("tools/call", {"name": "dbt_build", "arguments": {}, "_meta": {"progressToken": "build"}})
        deadline = time.monotonic() + 120
        while not any(m.get("method") == "notifications/progress" for m in list(server.messages)):
            assert time.monotonic() < deadline, "the build sent no progress"
            time.sleep(0.05)
        os.kill(server.proc.pid, signal.SIGKILL)  # mid-build: the worker is sending node events
        server.proc.wait(timeout=30)
        deadline = time.monotonic() + 90
        while alive(workers[0]):
            assert time.monotonic() < deadline, f"worker {workers[0]} outlived its killed server by 90 s"
            time.sleep(0.2)
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
        for pid in workers_of(server.proc.pid) if server.proc.poll() is None else []:
            os.kill(pid, signal.SIGKILL)
