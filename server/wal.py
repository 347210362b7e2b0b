"""A SQLite file in WAL mode shared by threads and processes: the memory journal and the delegation task store.

One connection per thread (sqlite3 connections are not shared across threads); every write is one `BEGIN IMMEDIATE`
transaction, so concurrent writers queue on the file lock instead of failing on a lock upgrade; synchronous=FULL,
so a committed write survives a killed process."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def retry_locked(step: Callable[[], T], seconds: float = 30.0) -> T:
    """Switching a new file to WAL answers "database is locked" at once, without the busy timeout, to a connection
    racing another that does the same (two threads, or two processes): retried until `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class WalDatabase:
    def __init__(self, path: Path, schema: str, *, timeout: float = 60.0, rows_by_name: bool = False) -> None:
        self.path = path
        self.schema = schema
        self.timeout = timeout
        self.rows_by_name = rows_by_name
        self._local = threading.local()
        self._init_lock = threading.Lock()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened (and the schema created) on first use."""
        db = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            if self.rows_by_name:
                db.row_factory = sqlite3.Row
            with self._init_lock:
                retry_locked(lambda: (db.execute("PRAGMA journal_mode=WAL"), db.executescript(self.schema)))
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        db = self.connection()
        retry_locked(lambda: db.execute("BEGIN IMMEDIATE"))
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
