"""A write-ahead record of the authoring changes dbt has not validated yet, so that a server killed between writing a
change and dbt's answer does not leave it in the project unvalidated.

`commit` (base.py) writes files, then has dbt parse and compile them, and puts every file back when dbt refuses. A
SIGKILL in between leaves the new files in place, unchecked, and the agent never got an answer. Before writing, the
originals and the digest of what is about to be written are recorded here: one JSON file per call in a folder per
project in the data dir (no read-modify-write shared between processes: two servers on one project cannot bring
back each other's finished records); the file is removed once dbt has answered (kept or rolled back). At the next
start, a record whose process is gone is rolled back, newest first: each file still holding exactly what the
interrupted call wrote gets its original back (or is removed, if the call created it); a file changed since (a
person's edit) is left as it is and named in the report. An unanswered call is undone, as a database undoes an
uncommitted transaction. A process is known by its pid and its start time (a pid alone is reused: a container's
server is pid 1 on every start)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tools.authoring.files import Applied, FileChange, _atomic_write, planned_bytes

log = logging.getLogger("dbt_ae_mcp.authoring")
RECORD_SUFFIX = ".pending.json"


def _digest(data: bytes | None) -> str | None:
    return hashlib.sha256(data).hexdigest() if data is not None else None


def process_started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22 of proc_pid_stat(5); the name in () may hold spaces


def process_alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        pass
    now = process_started(pid)
    return started is None or now is None or now == started


@dataclass
class ChangeJournal:
    folder: Path
    root: Path

    def begin(self, tool: str, planned: dict[Path, bytes | None]) -> Path | None:
        """Record the files about to be written (path -> new bytes, None for a deletion), with their current bytes.
        None when the record cannot be written (a read-only data dir): the change then goes ahead unrecorded."""
        try:
            files = {}
            for path, new in planned.items():
                before = path.read_bytes() if path.exists() else None
                files[path.relative_to(self.root).as_posix()] = {
                    "before": base64.b64encode(before).decode("ascii") if before is not None else None, "after": _digest(new)}
            record = {"pid": os.getpid(), "started": process_started(os.getpid()), "tool": tool, "at": time.time(), "files": files}
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}{RECORD_SUFFIX}"
            _atomic_write(path, json.dumps(record).encode("utf-8"))
            return path
        except OSError as exc:
            log.warning("authoring journal in %s not written (%s): an interrupted change would not be rolled back", self.folder, exc)
            return None

    @contextlib.contextmanager
    def recording(self, tool: str, changes: list[FileChange]) -> Iterator[None]:
        """begin() before the block writes `changes`, end() once dbt has answered (or the block raised)."""
        record = self.begin(tool, planned_bytes(changes))
        try:
            yield
        finally:
            self.end(record)

    def end(self, record: Path | None) -> None:
        if record is None:
            return
        try:
            record.unlink(missing_ok=True)
        except OSError as exc:  # the answer stands; the record of a finished change would be rolled back at next start
            log.warning("authoring journal record %s not removed: %s", record, exc)

    def records(self) -> list[Path]:
        try:
            return sorted(self.folder.glob(f"*{RECORD_SUFFIX}"), reverse=True)  # newest first
        except OSError:
            return []

    def recover(self) -> list[str]:
        """Roll back the changes of calls whose process is gone, newest first; what was done, one line each. A record
        that cannot be read or rolled back is kept and logged (the server still starts)."""
        report: list[str] = []
        for record in self.records():
            try:
                entry = json.loads(record.read_text(encoding="utf-8"))
                if process_alive(int(entry.get("pid", 0)), entry.get("started")):
                    continue
                line = self._roll_back(entry)
                record.unlink(missing_ok=True)
            except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
                log.warning("authoring journal record %s not recovered: %s", record, exc)
                continue
            log.warning("authoring: %s", line)
            report.append(line)
        return report

    def _roll_back(self, entry: dict) -> str:
        undone = Applied()
        kept: list[str] = []
        root = self.root.resolve()
        for rel, change in (entry.get("files") or {}).items():
            path = (root / rel).resolve()
            if not path.is_relative_to(root):
                raise ValueError(f"{rel!r} is outside the project")
            original = base64.b64decode(change["before"]) if change.get("before") is not None else None
            current = path.read_bytes() if path.is_file() else None
            if _digest(current) != change.get("after"):
                if current != original:
                    kept.append(rel)
                continue
            undone.originals[path] = original
        undone.rollback()
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(entry.get("at", 0))))
        line = f"{entry.get('tool')} at {when} was interrupted before dbt validated it"
        if undone.originals:
            line += f"; put back: {', '.join(sorted(p.relative_to(root).as_posix() for p in undone.originals))}"
        if kept:
            line += f"; changed since, left as they are: {', '.join(sorted(kept))}"
        return line
