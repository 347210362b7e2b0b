"""The write-ahead journal of memories acknowledged but not yet embedded.

Embedding is ~95 % of a store's cost (about 60 texts/s for all-MiniLM-L6-v2 on this 2-core CPU), so memory_store
commits the memory here (SQLite, WAL, synchronous=FULL: it survives a killed process) and returns; an indexer
embeds it into Chroma moments later. Every read drains the journal first, so a search, retrieve or list after a
store always sees it. Any process that opens the store may drain any row: a row is deleted only if its sequence
number is unchanged, so a key stored again meanwhile keeps its newer text.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    document TEXT NOT NULL,
    metadata TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counter (one INTEGER PRIMARY KEY CHECK (one = 1), seq INTEGER NOT NULL);
INSERT OR IGNORE INTO counter VALUES (1, 0);
"""


@dataclass(frozen=True)
class PendingMemory:
    id: str
    seq: int
    document: str
    metadata: dict[str, Any]


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._init_lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            # Switching a new file to WAL answers "database is locked" at once, without waiting, to a connection
            # that races another one doing the same (two threads here, or two processes): one at a time, retried.
            with self._init_lock:
                _retry_locked(lambda: (db.execute("PRAGMA journal_mode=WAL"), db.executescript(SCHEMA)))
            db.execute("PRAGMA synchronous=FULL")
            self._local.db = db
        return db

    def append(self, items: list[tuple[str, str, dict[str, Any]]]) -> None:
        """(id, document, metadata) rows, committed together before returning; a re-stored id replaces its row."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            (seq,) = db.execute("UPDATE counter SET seq = seq + ? RETURNING seq", (len(items),)).fetchone()
            first = seq - len(items) + 1
            db.executemany(
                "INSERT OR REPLACE INTO pending (id, seq, document, metadata) VALUES (?, ?, ?, ?)",
                [(mid, first + n, doc, json.dumps(meta)) for n, (mid, doc, meta) in enumerate(items)],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def take(self, limit: int) -> list[PendingMemory]:
        rows = self._db().execute("SELECT id, seq, document, metadata FROM pending ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [PendingMemory(mid, seq, doc, json.loads(meta)) for mid, seq, doc, meta in rows]

    def done(self, rows: list[PendingMemory]) -> None:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("DELETE FROM pending WHERE id = ? AND seq = ?", [(r.id, r.seq) for r in rows])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def count(self) -> int:
        return int(self._db().execute("SELECT count(*) FROM pending").fetchone()[0])


def _retry_locked(step: Callable[[], object], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
