"""Indexing the memory journal in the background, the in-memory mirror search reads, and purging expired memories."""

from __future__ import annotations

import fcntl
import threading
import time
from typing import Any

from memory.connection import StoreConnection
from memory.journal import PendingMemory
from memory.mirror import StoreMirror
from memory.records import DRAIN_BATCH, NEVER, log


class StoreIndexing(StoreConnection):
    def warm_up(self) -> None:
        """Load the model, open the store and index what an earlier process left in the journal."""
        self.embedder.start()
        with self._locked(exclusive=False) as collection:
            self._mirror_of(collection)
        self._wake_indexer()


    def pending(self) -> int:
        """Memories acknowledged but not yet embedded (the next read indexes them first)."""
        return self.journal.count() if self.journal is not None else 0

    def _check_model(self) -> None:
        error = self.embedder.load_error()
        if error is not None:
            self._embed(["probe"])  # raises the typed model error

    def _index(self, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Embed (outside the lock) and upsert under the exclusive lock."""
        ids, texts = [r[0] for r in rows], [r[1] for r in rows]
        vectors = self._embed(texts)
        with self._locked(exclusive=True) as collection:
            indexed_at = int(time.time())
            metadatas = [{**r[2], "indexed_at": indexed_at} for r in rows]
            collection.upsert(ids=ids, embeddings=vectors, documents=texts, metadatas=metadatas)
            if self._mirror is not None:
                self._mirror.put_many(ids, texts, metadatas, vectors)
            self._purge(collection, time.time())

    def drain(self) -> None:
        """Index every journaled memory, from any process; one drainer at a time across processes."""
        if self.journal is None or not self.journal.take(1):
            return
        with self._locked(exclusive=False):  # a process with another model must fail on the mismatch, not embed
            pass
        with self._drain_lock, open(self.path / ".dbt-ae-memory.indexer.lock", "a+") as lock:  # type: ignore[operator]
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                while True:
                    batch: list[PendingMemory] = self.journal.take(DRAIN_BATCH)
                    if not batch:
                        return
                    self._index([(r.id, r.document, r.metadata) for r in batch])
                    self.journal.done(batch)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _wake_indexer(self) -> None:
        if self.journal is None:
            return
        if self._indexer is None:
            self._indexer = threading.Thread(target=self._index_forever, name="dbt-ae-memory-indexer", daemon=True)
            self._indexer.start()
        self._indexer_wake.set()

    def _index_forever(self) -> None:
        while True:
            self._indexer_wake.wait()
            self._indexer_wake.clear()
            try:
                self.drain()
            except Exception as exc:  # the next read drains again and reports the error to its caller
                log.warning("background indexing of journaled memories failed: %s", exc)

    def _purge(self, collection: Any, now: float) -> int:
        expired = collection.get(where={"$and": [{"expires_at": {"$gt": NEVER}}, {"expires_at": {"$lte": int(now)}}]}, include=[])
        if expired["ids"]:
            self._delete_ids(collection, expired["ids"])
        return len(expired["ids"])

    def known_keys(self, limit: int = 2000) -> list[str]:
        """Keys this process already holds (the search mirror, once built, and the journal): for completion, which
        must never open Chroma or load the model. Empty until the store has warmed up."""
        keys = self._mirror.ids() if self._mirror is not None else []
        if self.journal is not None:
            try:
                keys += [row.id for row in self.journal.take(limit)]
            except Exception:
                pass
        return sorted(set(keys))[:limit]

    def _delete_ids(self, collection: Any, ids: list[str]) -> None:
        collection.delete(ids=ids)
        if self._mirror is not None:
            for mid in ids:
                self._mirror.remove(mid)

    def _mirror_of(self, collection: Any) -> StoreMirror:
        """The mirror, current with the store. Called under the lock, so no writer runs meanwhile."""
        started = time.time()
        if self._mirror is None:
            self._mirror = StoreMirror.from_collection(collection)
        elif self._mirror_stale:
            # Every upsert stamps indexed_at under the exclusive lock, so what changed since the last look is
            # exactly what was indexed since (a second of overlap for the integer stamps); deletions show in
            # the count.
            changed = collection.get(where={"indexed_at": {"$gte": int(self._mirror_synced_at) - 1}},
                                     include=["documents", "metadatas", "embeddings"])
            if changed["ids"]:
                self._mirror.put_many(changed["ids"], changed["documents"], changed["metadatas"], changed["embeddings"])
            if collection.count() != len(self._mirror):
                present = set(collection.get(include=[])["ids"])
                for mid in [mid for mid in self._mirror.ids() if mid not in present]:
                    self._mirror.remove(mid)
                if len(present) != len(self._mirror):  # something the stamps cannot explain: start over
                    self._mirror = StoreMirror.from_collection(collection)
        self._mirror_synced_at, self._mirror_stale = started, False
        return self._mirror

