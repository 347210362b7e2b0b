"""The memory store on Chroma: upsert by key, hybrid search, pattern retrieval, retention layers, several processes.

Several server processes may open the same on-disk store. Chroma's embedded client keeps its vector index in
memory and does not see another process's writes, so every operation takes a file lock (shared to read,
exclusive to write) and compares a generation counter that every write bumps: when another process wrote since
we last looked, the client is reopened from disk first. Acknowledged writes are committed by Chroma's SQLite log
before the call returns, so they survive a killed process.

The class is built in layers: connection.py (open, lock, reopen), indexing.py (journal, mirror, purge), and here
the operations the tools call.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import numpy as np

from memory.indexing import StoreIndexing
from memory.keys import KeyPattern
from memory.ranking import combine, identifier_score, identifiers, word_scores
from memory.records import (
    LAYERS,
    METADATA_FIELDS,
    NAMED_CANDIDATES,
    NEVER,
    Memory,
    NewMemory,
    and_where,
    filter_conditions,
    is_live,
    live_condition,
    matches,
)
from server.errors import ToolFailure


class MemoryStore(StoreIndexing):
    # -- operations ----------------------------------------------------------------------------------------
    def store(self, items: list[NewMemory], now: float | None = None) -> list[Memory]:
        """Upsert by key: storing an existing key replaces it. Durable when this returns; searchable once indexed."""
        now = time.time() if now is None else now
        # The last write of a key in one batch wins, as if the items were stored one by one.
        by_key = {str(item.key): item for item in items}
        rows: list[tuple[str, str, dict[str, Any]]] = []
        stored: list[Memory] = []
        for key, item in by_key.items():
            layer = item.metadata.get("layer") or "long_term"
            retention = LAYERS[layer]
            metadata: dict[str, Any] = {
                "key": key,
                # None deletes a field an earlier write of this key had: storing a key again replaces it whole.
                **{name: item.metadata.get(name) or None for name in METADATA_FIELDS},
                "layer": layer,
                "created_at": int(now),
                "expires_at": NEVER if retention is None else int(now + retention),
                "content_hash": hashlib.sha256(item.text.encode()).hexdigest(),
                "embedding_model": self.identity,
                **item.key.metadata(),
            }
            rows.append((key, item.text, metadata))
            stored.append(Memory(key=key, text=item.text, metadata={k: v for k, v in metadata.items() if v is not None}))
        if self.journal is None:
            self._index(rows)
            return stored
        self._check_model()
        with self._locked(exclusive=False):  # opens the store: a model mismatch fails here, before anything is written
            pass
        try:
            self.journal.append(rows)
        except Exception as exc:
            raise ToolFailure(
                "memory_unavailable", f"Could not write the memory journal {self.journal.path}: {exc}",
                "Check that DBT_AE_MEMORY_DIR is writable and not full, then call again.",
            ) from exc
        self._wake_indexer()
        return stored


    def search(
        self, query: str, limit: int, filters: dict[str, str | None], pattern: KeyPattern | None, min_score: float | None,
        now: float | None = None,
    ) -> list[Memory]:
        self.drain()
        now = time.time() if now is None else now
        query_vector = self._embed([query])[0]
        conditions = filter_conditions(filters)
        if pattern is not None:
            conditions += [{k: {"$eq": v}} for k, v in pattern.where().items()]
        # Expiry is checked here in Python, not in the Chroma filter: a filter on expires_at turns the HNSW search
        # into a filtered scan (80 ms instead of 7 ms at 10,000 memories), and purging on every write keeps
        # expired memories rare.
        where = and_where(conditions)
        idents = identifiers(query)
        wanted = max(limit * 5, 30)
        records: dict[str, tuple[str, dict[str, Any]]] = {}
        semantic: dict[str, float] = {}
        with self._locked(exclusive=False) as collection:
            mirror = self._mirror_of(collection)
            if not len(mirror):
                return []
            found = collection.query(query_embeddings=[query_vector], n_results=min(wanted, len(mirror)), where=where, include=["distances"])
            unknown = [mid for mid in found["ids"][0] if mid not in mirror]
            if unknown:  # not expected (the mirror follows every write), but never worth a wrong answer
                self._mirror = None
                mirror = self._mirror_of(collection)
            for mid, dist in zip(found["ids"][0], found["distances"][0]):
                record = mirror.get(mid)
                if record is not None and is_live(record.metadata, now):
                    records[mid] = (record.document, record.metadata)
                    semantic[mid] = 1.0 - float(dist)
            named: set[str] = set()
            for ident in idents[:5]:
                named |= mirror.names.lookup(ident)
            named = {mid for mid in named - semantic.keys() if matches(mirror.get(mid).metadata, conditions, now)}  # type: ignore[union-attr]
            if named:
                ordered = sorted(named)
                cosines = mirror.cosines(ordered, query_vector)
                for n in np.argsort(-cosines, kind="stable")[: NAMED_CANDIDATES]:
                    record = mirror.get(ordered[n])
                    assert record is not None
                    records[ordered[n]] = (record.document, record.metadata)
                    semantic[ordered[n]] = float(cosines[n])
        keyword = {mid: identifier_score(idents, doc, mid) for mid, (doc, _meta) in records.items()}
        lexical = word_scores(query, {mid: f"{doc} {mid.replace('-', ' ').replace('/', ' ')}" for mid, (doc, _meta) in records.items()})
        hits: list[Memory] = []
        for scored in combine(semantic, keyword, lexical):
            if pattern is not None and not pattern.matches(scored.id):
                continue
            if min_score is not None and scored.score < min_score:
                continue
            doc, meta = records[scored.id]
            hits.append(Memory(scored.id, doc, meta, round(scored.score, 4), round(scored.semantic, 4), round(scored.keyword, 4)))
            if len(hits) >= limit:
                break
        return hits

    def retrieve(self, pattern: KeyPattern, now: float | None = None) -> list[Memory]:
        self.drain()
        now = time.time() if now is None else now
        conditions = [{k: {"$eq": v}} for k, v in pattern.where().items()] + [live_condition(now)]
        with self._locked(exclusive=False) as collection:
            got = collection.get(where=and_where(conditions), include=["documents", "metadatas"])
        memories = [Memory(mid, doc, meta) for mid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"]) if pattern.matches(mid)]
        return sorted(memories, key=lambda m: m.key)

    def delete(self, pattern: KeyPattern, dry_run: bool) -> list[str]:
        self.drain()
        conditions = [{k: {"$eq": v}} for k, v in pattern.where().items()]
        with self._locked(exclusive=not dry_run) as collection:
            got = collection.get(where=and_where(conditions), include=[])
            ids = sorted(mid for mid in got["ids"] if pattern.matches(mid))
            if ids and not dry_run:
                self._delete_ids(collection, ids)
        return ids

    def list(self, offset: int, limit: int, filters: dict[str, str | None], now: float | None = None) -> tuple[list[Memory], int]:
        self.drain()
        now = time.time() if now is None else now
        where = and_where(filter_conditions(filters) + [live_condition(now)])
        with self._locked(exclusive=False) as collection:
            got = collection.get(where=where, include=["metadatas"])
        keys = sorted(zip(got["ids"], got["metadatas"]), key=lambda pair: pair[0])
        page = [Memory(mid, "", meta) for mid, meta in keys[offset: offset + limit]]
        return page, len(keys)

    def stats(self, now: float | None = None) -> dict[str, Any]:
        self.drain()
        now = time.time() if now is None else now
        with self._locked(exclusive=False) as collection:
            got = collection.get(include=["metadatas"])
        by_layer: dict[str, int] = {}
        by_project: dict[str, int] = {}
        expired = 0
        for meta in got["metadatas"]:
            if meta.get("expires_at", NEVER) not in (NEVER, None) and meta["expires_at"] <= now:
                expired += 1
                continue
            by_layer[meta.get("layer", "?")] = by_layer.get(meta.get("layer", "?"), 0) + 1
            by_project[meta.get("key_project", "?")] = by_project.get(meta.get("key_project", "?"), 0) + 1
        return {
            "total": sum(by_layer.values()), "expired_pending_purge": expired, "by_layer": by_layer, "by_key_project": by_project,
            "embedding_model": self.identity, "embedding_dim": self.embedder.dimension, "embedding_backend": self.embedder.backend,
            "location": str(self.path or self.url),
        }
