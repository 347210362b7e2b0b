"""The write-ahead journal of memories acknowledged but not yet embedded.

Embedding is ~95 % of a store's cost (about 60 texts/s for all-MiniLM-L6-v2 on this 2-core CPU), so memory_store
commits the memory here (SQLite, WAL, synchronous=FULL: it survives a killed process) and returns; an indexer
embeds it into Chroma moments later. Every read drains the journal first, so a search, retrieve or list after a
store always sees it. Any process that opens the store may drain any row: a row is deleted only if its sequence
number is unchanged, so a key stored again meanwhile keeps its newer text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.wal import WalDatabase

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
        self._db = WalDatabase(path, SCHEMA)

    def append(self, items: list[tuple[str, str, dict[str, Any]]]) -> None:
        """(id, document, metadata) rows, committed together before returning; a re-stored id replaces its row."""
        with self._db.write() as db:
            (seq,) = db.execute("UPDATE counter SET seq = seq + ? RETURNING seq", (len(items),)).fetchone()
            first = seq - len(items) + 1
            db.executemany(
                "INSERT OR REPLACE INTO pending (id, seq, document, metadata) VALUES (?, ?, ?, ?)",
                [(mid, first + n, doc, json.dumps(meta)) for n, (mid, doc, meta) in enumerate(items)],
            )

    def take(self, limit: int) -> list[PendingMemory]:
        rows = self._db.connection().execute("SELECT id, seq, document, metadata FROM pending ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [PendingMemory(mid, seq, doc, json.loads(meta)) for mid, seq, doc, meta in rows]

    def done(self, rows: list[PendingMemory]) -> None:
        with self._db.write() as db:
            db.executemany("DELETE FROM pending WHERE id = ? AND seq = ?", [(r.id, r.seq) for r in rows])

    def count(self) -> int:
        return int(self._db.connection().execute("SELECT count(*) FROM pending").fetchone()[0])
