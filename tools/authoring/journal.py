"""A write-ahead record of the authoring changes dbt has not validated yet, so that a server killed between writing a
change and dbt's answer does not leave it in the project unvalidated.

`commit` (base.py) writes files, then has dbt parse and compile them, and puts every file back when dbt refuses. A
SIGKILL in between leaves the new files in place, unchecked, and the agent never got an answer. Before writing, the
originals and the digest of what is about to be written are recorded here (one JSON file per project in the data
dir, replaced atomically); the record is removed once dbt has answered (kept or rolled back). At the next start,
a record whose process is gone is rolled back: each file still holding exactly what the interrupted call wrote
gets its original back (or is removed, if the call created it); a file changed since (a person's edit) is left as
it is and named in the report. An unanswered call is undone, as a database undoes an uncommitted transaction."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tools.authoring.files import Applied, _alive, _atomic_write

log = logging.getLogger("dbt_ae_mcp.authoring")


def _digest(data: bytes | None) -> str | None:
    return hashlib.sha256(data).hexdigest() if data is not None else None


@dataclass
class ChangeJournal:
    path: Path
    root: Path

    def _read(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, entries: dict[str, dict]) -> None:
        if not entries:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.path, json.dumps(entries).encode("utf-8"))

    def begin(self, tool: str, planned: dict[Path, bytes | None]) -> str | None:
        """Record the files about to be written (path -> new bytes, None for a deletion), with their current bytes.
        None when the record cannot be written (a read-only data dir): the change then goes ahead unrecorded."""
        try:
            return self._begin(tool, planned)
        except OSError as exc:
            log.warning("authoring journal %s not written (%s): an interrupted change would not be rolled back", self.path, exc)
            return None

    def _begin(self, tool: str, planned: dict[Path, bytes | None]) -> str:
        token = uuid.uuid4().hex
        files = {}
        for path, new in planned.items():
            before = path.read_bytes() if path.exists() else None
            files[path.relative_to(self.root).as_posix()] = {
                "before": base64.b64encode(before).decode("ascii") if before is not None else None, "after": _digest(new)}
        entries = self._read()
        entries[token] = {"pid": os.getpid(), "tool": tool, "at": time.time(), "files": files}
        self._write(entries)
        return token

    def end(self, token: str | None) -> None:
        if token is None:
            return
        entries = self._read()
        if entries.pop(token, None) is not None:
            self._write(entries)

    def recover(self) -> list[str]:
        """Roll back the changes of calls whose process is gone; what was done, one line each."""
        entries = self._read()
        report: list[str] = []
        for token, entry in list(entries.items()):
            if _alive(int(entry.get("pid", 0))):
                continue
            undone = Applied()
            kept: list[str] = []
            for rel, record in (entry.get("files") or {}).items():
                path = self.root / rel
                current = path.read_bytes() if path.is_file() else None
                if _digest(current) != record.get("after"):
                    if current != (base64.b64decode(record["before"]) if record.get("before") is not None else None):
                        kept.append(rel)
                    continue
                undone.originals[path] = base64.b64decode(record["before"]) if record.get("before") is not None else None
            undone.rollback()
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(entry.get("at", 0))))
            line = f"{entry.get('tool')} at {when} was interrupted before dbt validated it"
            if undone.originals:
                line += f"; put back: {', '.join(sorted(p.relative_to(self.root).as_posix() for p in undone.originals))}"
            if kept:
                line += f"; changed since, left as they are: {', '.join(sorted(kept))}"
            report.append(line)
            del entries[token]
        if report:
            self._write(entries)
        return report
