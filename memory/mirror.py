"""An in-memory copy of the store's texts, metadata and vectors, beside the Chroma collection that stays the record.

A search asks Chroma's HNSW index for candidate ids and distances only (3 ms at 10,000 memories) and reads the
candidates' texts and metadata here instead of from Chroma's SQLite (8 ms more); memories found by name come from
the identifier index and are scored against their vectors here. About 1.6 KB per memory for a 384-dimension model
(15 MB at 10,000). Rebuilt from Chroma whenever the store is reopened, kept current by this process's writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from memory.ranking import IdentifierIndex


@dataclass
class Record:
    document: str
    metadata: dict[str, Any]
    row: int


class StoreMirror:
    def __init__(self) -> None:
        self.names = IdentifierIndex()
        self._records: dict[str, Record] = {}
        self._vectors = np.zeros((0, 0), dtype=np.float32)  # shaped by the first vectors put
        self._free: list[int] = []

    @classmethod
    def from_collection(cls, collection: Any) -> "StoreMirror":
        everything = collection.get(include=["documents", "metadatas", "embeddings"])
        mirror = cls()
        if everything["ids"]:
            mirror.put_many(everything["ids"], everything["documents"], everything["metadatas"], everything["embeddings"])
        return mirror

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, memory_id: str) -> bool:
        return memory_id in self._records

    def ids(self) -> list[str]:
        return list(self._records)

    def get(self, memory_id: str) -> Record | None:
        return self._records.get(memory_id)

    def put_many(self, ids: list[str], documents: list[str], metadatas: list[dict[str, Any]], vectors: Any) -> None:
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1)
        if self._vectors.shape[1] != matrix.shape[1]:
            if self._records:
                raise ValueError(f"vectors of dimension {matrix.shape[1]} in a mirror of dimension {self._vectors.shape[1]}")
            self._vectors = np.zeros((0, matrix.shape[1]), dtype=np.float32)
        for n, memory_id in enumerate(ids):
            old = self._records.get(memory_id)
            row = old.row if old is not None else self._allocate()
            self._vectors[row] = matrix[n]
            # None means "no such field" to Chroma, which drops it; so does the mirror
            self._records[memory_id] = Record(documents[n] or "", {k: v for k, v in (metadatas[n] or {}).items() if v is not None}, row)
            self.names.put(memory_id, documents[n] or "")

    def remove(self, memory_id: str) -> None:
        record = self._records.pop(memory_id, None)
        if record is not None:
            self._free.append(record.row)
            self.names.remove(memory_id)

    def cosines(self, ids: list[str], query_vector: Any) -> np.ndarray:
        rows = [self._records[i].row for i in ids]
        return self._vectors[rows] @ np.asarray(query_vector, dtype=np.float32)

    def _allocate(self) -> int:
        if self._free:
            return self._free.pop()
        used = len(self._records)
        if used >= len(self._vectors):
            grown = np.zeros((max(64, 2 * len(self._vectors)), self._vectors.shape[1]), dtype=np.float32)
            grown[: len(self._vectors)] = self._vectors
            self._vectors = grown
        return used
