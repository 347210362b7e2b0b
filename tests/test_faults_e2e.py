"""Faults (issue 17): a server killed with SIGKILL in the middle of memory writes, project file writes and tracking
baseline writes loses nothing it acknowledged and leaves nothing half-written; a DuckDB file another process holds and
a profile that cannot connect are typed errors with the next step, never a traceback.

Every kill here is a real SIGKILL of a real process. Where one exact moment cannot be hit on purpose, the tests kill
while many writes are in flight (pipelined requests, or a process that does nothing but write) and check the invariant
after every kill."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import (
    REPO,
    RawServer,
    follow_cursor,
    free_port,
    serve_args,
    stdio_session,
    with_cursor,
)
from conftest import error as typed_error
from conftest import ok as ok_result

pytestmark = pytest.mark.e2e

MEMORY_ONLY = ("--toolsets", "memory")
WRITERS = ("--toolsets", "dbt,authoring,files,lineage")


def kill(server: RawServer) -> None:
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=30)
    server.close()


def replies(server: RawServer, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The replies received so far to the given request ids."""
    with server._cond:  # the reader thread's list
        return {m["id"]: m for m in server.messages if m.get("id") in ids and ("result" in m or "error" in m)}


def wait_for_count(server: RawServer, ids: list[int], count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(replies(server, ids)) < count:
        assert time.monotonic() < deadline, f"only {len(replies(server, ids))} of {count} replies"
        time.sleep(0.005)


def leftovers(project: Path) -> list[str]:
    """Temporary or partial files in the project that dbt, git or an agent would see (target/ and logs/ aside)."""
    return sorted(p.relative_to(project).as_posix() for p in project.rglob("*")
                  if p.is_file() and p.relative_to(project).parts[0] not in ("target", "logs")
                  and (p.suffix == ".tmp" or ".dbt-ae-" in p.name))


# -- 1. memory --------------------------------------------------------------------------------------------------------

def test_memory_acknowledged_before_a_sigkill_is_all_there_after_restart(shop: Path, data_dir: Path) -> None:
    """60 memory_store calls in flight at once, SIGKILL as soon as some are answered, twice (the second round replaces
    the first round's keys): every acknowledged key comes back with the text of its last acknowledged store (or of a
    later store that landed unanswered). Calls in flight together are not ordered (MCP handles them concurrently), so
    one round never stores a key twice."""
    acknowledged: dict[str, str] = {}
    maybe: dict[str, set[str]] = {}  # an unanswered store may or may not have landed
    for round_, answered_before_kill in enumerate((8, 30)):
        server = RawServer(serve_args(shop, data_dir, *MEMORY_ONLY))
        server.initialize()
        sent: list[tuple[int, str, str]] = []
        for i in range(60):
            key = f"dbt-analytics-engineer/shop/fault-{i:03d}"  # the second round replaces the first's (an upsert)
            text = f"round {round_} fact {i} about fct_orders " + "x" * 200
            request_id = server.request("tools/call", {"name": "memory_store", "arguments": {"key": key, "value": text}})
            sent.append((request_id, key, text))
        ids = [r for r, _, _ in sent]
        wait_for_count(server, ids, answered_before_kill)
        kill(server)
        got = replies(server, ids)
        assert len(got) < len(sent), "every store was answered before the kill: it did not hit writes in flight"
        for request_id, key, text in sent:  # in send order: the last acknowledged store of a key wins
            reply = got.get(request_id)
            if reply is None:
                maybe.setdefault(key, set()).add(text)
                continue
            assert reply["result"]["isError"] is False, reply
            acknowledged[key] = text
            maybe.pop(key, None)
    restarted = RawServer(serve_args(shop, data_dir, *MEMORY_ONLY))
    try:
        restarted.initialize()

        def fetch(cursor: str | None) -> dict[str, Any]:
            result = restarted.call("memory_retrieve", with_cursor({"key": "dbt-analytics-engineer/shop/*", "limit": 200}, cursor))
            assert result["isError"] is False, result
            return result["structuredContent"]

        found = {m["key"]: m["text"] for page in follow_cursor(fetch) for m in page["memories"]}
        missing = sorted(set(acknowledged) - set(found))
        assert not missing, f"{len(missing)} acknowledged memories lost: {missing[:5]}"
        for key, text in acknowledged.items():  # the last acknowledged text, or a later store that landed unanswered
            assert found[key] == text or found[key] in maybe.get(key, set()), (key, found[key][:40], text[:40])
        assert restarted.call("memory_store", {"key": "dbt-analytics-engineer/shop/after-kill", "value": "still writable"})["isError"] is False
    finally:
        restarted.close()


# -- 2. project files -------------------------------------------------------------------------------------------------

def model_text(version: str, size: int) -> str:
    body = f"-- version {version}\nselect 1 as id, '{version}' as version\n"
    pad = f"-- padding line of version {version} ........................................................\n"
    return body + pad * (size // len(pad))


WRITE_LOOP = """
import sys
from pathlib import Path
from tools.authoring.files import FileChange, apply
target, a, b = Path(sys.argv[1]), Path(sys.argv[2]).read_text(), Path(sys.argv[3]).read_text()
apply([FileChange(target, a)])
print("ready", flush=True)
n = 0
while True:
    apply([FileChange(target, b if n % 2 == 0 else a)])
    n += 1
"""


def test_a_writer_killed_mid_write_leaves_old_or_new_content_and_no_temp_files(built_shop: Path, data_dir: Path,
                                                                                tmp_path: Path) -> None:
    """A process that does nothing but write a 1 MB model through the authoring write path (temp file, fsync, rename)
    is SIGKILLed 6 times at different moments: the model is always one complete version, and the temporary files a
    kill strands (it always strands some: the process lives inside writes) are gone once a server starts."""
    target = built_shop / "models" / "marts" / "fault_big.sql"
    versions = {"A": model_text("A", 900_000), "B": model_text("B", 900_000)}
    for name, text in versions.items():
        (tmp_path / name).write_text(text)
    stranded = 0
    for moment in (0.0, 0.05, 0.1, 0.2, 0.35, 0.5):
        writer = subprocess.Popen([sys.executable, "-c", WRITE_LOOP, str(target), str(tmp_path / "A"), str(tmp_path / "B")],
                                  cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready", writer.stderr.read() if writer.stderr else ""
        time.sleep(moment)
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        writer.stdout.close()
        writer.stderr.close()  # type: ignore[union-attr]
        assert target.read_text() in versions.values(), f"a half-written model after a kill at +{moment}s"
        stranded += len(leftovers(built_shop))
    assert stranded > 0, "no kill landed inside a write: the test proves nothing"
    server = RawServer(serve_args(built_shop, data_dir, *WRITERS))
    try:
        server.initialize()
        server.wait_for(server.request("tools/list", {}))
        assert leftovers(built_shop) == [], "a killed writer's temporary files are still in the project"
        listed = server.call("dbt_list", {"select": "fault_big"})
        assert listed["isError"] is False and listed["structuredContent"]["total"] == 1, listed
    finally:
        server.close()


def project_files(project: Path) -> dict[str, bytes]:
    return {p.relative_to(project).as_posix(): p.read_bytes() for p in project.rglob("*")
            if p.is_file() and p.relative_to(project).parts[0] not in ("target", "logs") and p.suffix != ".duckdb"
            and not p.name.endswith(".duckdb.wal")}


def undone_at_restart(previous: tuple[dict[str, bytes], dict[str, bytes], set[int]] | None, now: dict[str, bytes], big: str) -> int:
    """After a restart, what the killed server wrote without answering is undone (tools/authoring/journal.py) unless
    dbt had validated it before the kill (a window of milliseconds before the answer): each of the attempt's files is
    as it was before the attempt, or the whole change. Returns 1 when a written, unanswered change was rolled back."""
    if previous is None:
        return 0
    was, left, answered = previous
    rolled_back = 0
    groups = [(2, {r for r in set(was) | set(left) if "fct_fault_new" in r or r.endswith((".yml", ".yaml"))}), (1, {big})]
    for request, paths in groups:  # request 1: file_write, 2: dbt_model
        if request in answered:
            continue
        state, before_state, after_state = ({r: files.get(r) for r in paths} for files in (now, was, left))
        assert state in (before_state, after_state), f"request {request}'s files are neither as before nor the whole change"
        rolled_back += state == before_state != after_state
    return min(rolled_back, 1)


@pytest.mark.slow
def test_a_server_killed_during_authoring_writes_leaves_every_file_whole(built_shop: Path, data_dir: Path) -> None:
    """file_write of a big model and dbt_model (a .sql and its properties) in flight, SIGKILL at 4 moments from the
    start of the writes to the end of their validation (the writes, dbt's parse, compile and zero-row check take ~2-4 s): after every kill each project file is its old or its new
    complete content (never a part), an acknowledged write is there, and once a server runs again no temporary file is
    left in the project and dbt reads it."""
    big = "models/marts/fault_big.sql"
    versions = {"A": model_text("A", 300_000), "B": model_text("B", 300_000)}
    (built_shop / big).write_text(versions["A"])
    mid_change = 0  # kills that landed after a write began and before its call was answered
    undone = 0  # unanswered changes a restart rolled back (tools/authoring/journal.py)
    previous: tuple[dict[str, bytes], dict[str, bytes], set[int]] | None = None  # the last attempt: files before, after, answered
    for i, moment in enumerate((0.2, 0.7, 1.5, 3.0)):
        server = RawServer(serve_args(built_shop, data_dir, *WRITERS))
        server.initialize()
        assert server.call("dbt_list", {"select": "fault_big"})["isError"] is False  # the worker has parsed: writes start at once
        before = project_files(built_shop)
        undone += undone_at_restart(previous, before, big)
        new_big = versions["B" if before[big].decode() == versions["A"] else "A"]
        ids = [
            server.request("tools/call", {"name": "file_write", "arguments": {"path": big, "content": new_big}}),
            server.request("tools/call", {"name": "dbt_model", "arguments": {
                "name": "fct_fault_new", "layer": "marts", "description": f"attempt {i}",
                "sql": f"select order_id, {i} as attempt\nfrom {{{{ ref('stg_orders') }}}}\n"}}),
        ]
        time.sleep(moment)
        kill(server)
        answered = replies(server, ids)
        after = project_files(built_shop)
        assert after[big].decode() in (before[big].decode(), new_big), f"{big} is neither old nor new after a kill at +{moment}s"
        if ids[0] in answered and not answered[ids[0]]["result"]["isError"]:
            assert after[big].decode() == new_big, "an acknowledged write is missing"
        for rel, data in after.items():
            if rel == big or before.get(rel) == data:
                continue
            text = data.decode()  # a changed or new file must be whole: YAML that loads, the full query
            if rel.endswith((".yml", ".yaml")):
                assert "fct_fault_new" in json.dumps(yaml.safe_load(text)), (rel, text[-300:])
            else:
                assert rel.endswith("fct_fault_new.sql") and f"{i} as attempt" in text and "ref('stg_orders')" in text, (rel, text[-300:])
        mid_change += any(before.get(r) != after[r] for r in after) and len(answered) < len(ids)
        previous = (before, after, {n for n, rid in enumerate(ids, 1) if rid in answered})
        print(f"kill at +{moment}s: answered {sorted(answered)}, changed {sorted(r for r in after if before.get(r) != after[r])}, "
              f"stranded {leftovers(built_shop)}")
    server = RawServer(serve_args(built_shop, data_dir, *WRITERS))
    try:
        server.initialize()
        server.wait_for(server.request("tools/list", {}))
        undone += undone_at_restart(previous, project_files(built_shop), big)
        assert leftovers(built_shop) == []
        assert mid_change > 0, "no kill landed inside a change: the test proves nothing"
        assert undone > 0, "no restart rolled back an interrupted change: the journal was not tested"
        assert not list((data_dir / "authoring").rglob("*.pending.json")), "a record of a finished change is left"
        # every line of the big file changes: answered in seconds (an intraline diff of it blocked the server for minutes)
        current = (built_shop / big).read_text()
        rewritten = server.call("file_write", {"path": big, "content": versions["B" if current == versions["A"] else "A"]}, timeout=90)
        assert rewritten["isError"] is False, rewritten
        listed = server.call("dbt_list", {"select": "fault_big"})
        assert listed["isError"] is False and listed["structuredContent"]["total"] == 1, listed
    finally:
        server.close()


# -- 3. tracking baselines --------------------------------------------------------------------------------------------

def baseline_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "tracking").glob("*.json") if ".corrupt-" not in p.name)


SAVE_LOOP = """
import sys
from pathlib import Path
from types import SimpleNamespace
from tools.lineage.tracking import ChangeTracking
tracker = SimpleNamespace(baselines=Path(sys.argv[1]))
data = {}
for n in range(100000):
    data[f"models/marts/m_{n % 40:02d}.sql"] = {"content": f"-- save {n}\\n" + "select 1 as id -- padding ......\\n" * 2000, "started_at": n}
    ChangeTracking._save(tracker, data)
    print(n, flush=True)
"""


def test_a_baselines_writer_killed_mid_save_leaves_the_last_saved_file(tmp_path: Path) -> None:
    """A process that does nothing but save baselines (the tracking toolset's _save, 40 files of 70 KB: 2.8 MB a save)
    is SIGKILLed at 5 moments: the file is always whole JSON and holds the last save the process reported done."""
    path = tmp_path / "tracking" / "shop-x.json"
    for moment in (0.05, 0.15, 0.3, 0.5, 0.8):
        writer = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, str(path)], cwd=REPO, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        assert writer.stdout is not None and writer.stdout.readline().strip() == "0", writer.stderr.read() if writer.stderr else ""
        time.sleep(moment)
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        done = [int(line) for line in writer.stdout.read().split()]
        writer.stdout.close()
        writer.stderr.close()  # type: ignore[union-attr]
        last = done[-1] if done else 0
        saved = json.loads(path.read_text())  # never cut short
        newest = max(entry["started_at"] for entry in saved.values())
        assert newest >= last, f"save {last} was reported done, the file holds save {newest}"


def test_tracking_baselines_survive_a_sigkill_and_a_corrupt_file_is_reported(built_shop: Path, data_dir: Path) -> None:
    """30 start_tracking calls with 100 KB baselines in flight (each rewrites the whole baselines file, up to 3 MB),
    SIGKILL after some are answered, twice: the file is always valid JSON holding every acknowledged baseline, and
    analyze_changes works after a restart. A baselines file cut short (as a non-atomic writer leaves it) is reported
    as a typed error, moved aside, and start_tracking works again."""
    acknowledged: dict[str, str] = {}
    for round_, answered_before_kill in enumerate((3, 12)):
        server = RawServer(serve_args(built_shop, data_dir, "--toolsets", "lineage"))
        server.initialize()
        sent = []
        for i in range(30):
            rel = f"models/marts/tracked_{i:02d}.sql"
            content = f"-- round {round_} file {i}\n" + "select 1 as id -- baseline padding .........\n" * 2200
            sent.append((server.request("tools/call", {"name": "start_tracking", "arguments": {"filepath": rel, "content": content}}), rel, content))
        ids = [r for r, _, _ in sent]
        wait_for_count(server, ids, answered_before_kill)
        kill(server)
        got = replies(server, ids)
        assert len(got) < len(sent), "every baseline was answered before the kill"
        for request_id, rel, content in sent:
            if request_id in got:
                assert got[request_id]["result"]["isError"] is False, got[request_id]
                acknowledged[rel] = content
        files = baseline_files(data_dir)
        assert len(files) == 1, files
        saved = json.loads(files[0].read_text())  # never cut short
        lost = sorted(rel for rel, content in acknowledged.items() if saved.get(rel, {}).get("content") not in
                      {content, *(c for _, r, c in sent if r == rel)})
        assert not lost, f"acknowledged baselines missing after a kill: {lost[:5]}"
    server = RawServer(serve_args(built_shop, data_dir, "--toolsets", "lineage"))
    try:
        server.initialize()
        (built_shop / "models" / "marts" / "tracked_00.sql").write_text("select 2 as id\n")
        changes = server.call("analyze_changes", {"filepath": "models/marts/tracked_00.sql"})
        assert changes["isError"] is False, changes
        assert changes["structuredContent"]["files"][0]["lines_added"] >= 1
        # A baselines file cut short by a writer that was not atomic: typed, moved aside, never a traceback.
        path = baseline_files(data_dir)[0]
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
        corrupt = server.call("analyze_changes", {})
        assert corrupt["isError"] is True, corrupt
        payload = corrupt["structuredContent"]
        assert payload["code"] == "tracking_baselines_corrupt" and "start_tracking" in payload["hint"], payload
        assert "Traceback" not in corrupt["content"][0]["text"]
        assert list((data_dir / "tracking").glob("*.corrupt-*.json")), "the unreadable file was not kept aside"
        again = server.call("start_tracking", {"filepath": "models/marts/fct_orders.sql"})
        assert again["isError"] is False and again["structuredContent"]["tracked"] == ["models/marts/fct_orders.sql"], again
        assert server.call("analyze_changes", {})["isError"] is False
    finally:
        server.close()


# -- 4. a DuckDB file another process holds ---------------------------------------------------------------------------

HOLD = "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); sys.stdin.read()"


def hold_open(database: Path) -> subprocess.Popen[str]:
    """Another process with the DuckDB file open read-write (as a DuckDB shell or notebook would), until its stdin closes."""
    return subprocess.Popen([sys.executable, "-c", HOLD, str(database)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


async def test_a_duckdb_file_locked_by_another_process_is_a_typed_error_with_a_hint(built_shop: Path, data_dir: Path) -> None:
    """dbt_run and dbt_show (inline SQL and a model) on a DuckDB file another process holds: `warehouse_locked`, a hint
    naming the holder's PID and what to do, no traceback; once the holder is gone the same server works."""
    holder = hold_open(built_shop / "shop.duckdb")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        async with stdio_session(built_shop, data_dir, "--toolsets", "dbt") as client:
            for tool, args in (("dbt_run", {"select": "stg_orders"}), ("dbt_show", {"sql": "select 1 as one"}),
                               ("dbt_show", {"model": "stg_orders"})):
                result = await client.call_tool(tool, args)
                failure = typed_error(result)
                assert failure["code"] == "warehouse_locked", (tool, failure)
                assert f"PID {holder.pid}" in failure["hint"] and "Another process" in failure["hint"], failure["hint"]
                assert "then call again" in failure["hint"]
                text = result.content[0].text
                assert "Traceback" not in text and 'File "' not in text, text
            holder.stdin.close()  # type: ignore[union-attr]
            holder.wait(timeout=30)
            # the holder is gone: the same calls work
            assert ok_result(await client.call_tool("dbt_run", {"select": "stg_orders"}))["success"] is True
            assert ok_result(await client.call_tool("dbt_show", {"sql": "select 1 as one"}))["rows"] == [[1]]
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


# -- 5. a profile that cannot connect ---------------------------------------------------------------------------------

async def test_a_profile_that_cannot_connect_gets_dbt_debug_advice(built_shop: Path, data_dir: Path) -> None:
    """Targets whose DuckDB folder is missing or is a file, a PostgreSQL target with no server on its port, and one whose
    adapter type is not installed: dbt_run and
    dbt_build are typed errors whose hint says what failed (the profile or the connection), names what to fix in
    profiles.yml and sends to dbt_debug; dbt_debug itself reports the failure; the good target keeps working."""
    profiles = yaml.safe_load((built_shop / "profiles.yml").read_text())
    outputs = profiles["shop"]["outputs"]
    outputs["no_folder"] = {"type": "duckdb", "path": str(built_shop / "no-such-folder" / "shop.duckdb"), "threads": 1}
    outputs["file_as_folder"] = {"type": "duckdb", "path": str(built_shop / "dbt_project.yml" / "shop.duckdb"), "threads": 1}
    outputs["bad_type"] = {"type": "nosuchwarehouse", "threads": 1}
    outputs["no_server"] = {"type": "postgres", "host": "127.0.0.1", "port": free_port(), "user": "postgres", "password": "",
                            "dbname": "shop", "schema": "main", "threads": 1}  # nothing listens there
    (built_shop / "profiles.yml").write_text(yaml.safe_dump(profiles))
    async with stdio_session(built_shop, data_dir, "--toolsets", "dbt") as client:
        for target, code, failed in (("no_folder", "connection_error", "connection failed"),
                                     ("file_as_folder", "connection_error", "connection failed"),
                                     ("no_server", "connection_error", "connection failed"),
                                     ("bad_type", "profile_error", "profile failed")):
            for tool, args in (("dbt_run", {"select": "stg_orders"}), ("dbt_build", {"select": "stg_orders"})):
                result = await client.call_tool(tool, {**args, "target": target})
                failure = typed_error(result)
                assert failure["code"] == code, (target, tool, failure)
                hint = failure["hint"]
                assert failed in hint and "profiles.yml" in hint and "dbt_debug" in hint, (target, hint)
                text = result.content[0].text
                assert "Traceback" not in text and 'File "' not in text, text
            if target in ("no_folder", "file_as_folder"):
                assert "no-such-folder" in hint or "dbt_project.yml" in hint, hint  # names the folder to fix
            if target == "no_server":
                assert "Connection refused" in failure["message"] and "port" in hint, failure  # the server's own words
            shown = typed_error(await client.call_tool("dbt_show", {"sql": "select 1 as one", "target": target}))
            assert shown["code"] in ("connection_error", "profile_error", "preview_unavailable"), shown
            assert "Traceback" not in shown["message"]
            debug = ok_result(await client.call_tool("dbt_debug", {"target": target}))
            assert debug["connection_ok"] is False and debug["success"] is False
            assert any("ERROR" in line or "invalid" in line or "Could not" in line for line in debug["output"]), debug["output"]
        # the good target still works in the same server
        assert ok_result(await client.call_tool("dbt_run", {"select": "stg_orders"}))["success"] is True
