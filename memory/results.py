"""Results of the memory tools, each with its text summary."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from server.registration import ToolResult


class MemoryOut(BaseModel):
    key: str
    text: str | None = None
    score: float | None = Field(default=None, description="cosine similarity + 0.35 x identifier match share")
    semantic_score: float | None = None
    keyword_score: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class StoreResult(ToolResult):
    count: int = Field(description="Memories stored; `stored` may list fewer to fit the output budget.")
    stored: list[MemoryOut]
    redactions: int = Field(description="Secrets masked in text and metadata.")
    indexing: int = Field(default=0, description="Memories in the store still being embedded in the background; "
                          "durable already, and the next search or retrieve waits for them.")

    def summary(self) -> str:
        keys = ", ".join(m.key for m in self.stored[:10])
        more = f" (+{self.count - min(10, len(self.stored))} more)" if self.count > 10 else ""
        masked = f"; {self.redactions} secret(s) redacted" if self.redactions else ""
        return f"stored {self.count} memor{'y' if self.count == 1 else 'ies'}: {keys}{more}{masked}"

    def fit(self, limit_chars: int) -> "StoreResult":
        fitted = self
        if len(fitted.model_dump_json()) > limit_chars:  # a large batch: keys only
            fitted = fitted.model_copy(update={"stored": [MemoryOut(key=m.key) for m in self.stored]})
        while len(fitted.model_dump_json()) > limit_chars and fitted.stored:
            fitted = fitted.model_copy(update={"stored": fitted.stored[: len(fitted.stored) // 2]})
        return fitted


class MemoriesResult(ToolResult):
    memories: list[MemoryOut]
    count: int = Field(description="Memories matched in all (this page may hold fewer).")
    truncated: bool = False
    offset: int = Field(default=0, description="Position of this page's first memory.")
    next_cursor: str | None = Field(default=None, description="Pass as cursor for the next page; null on the last.")

    def summary(self) -> str:
        lines = [f"{self.count} memor{'y' if self.count == 1 else 'ies'}" + (" (cut to fit)" if self.truncated else "")
                 + (f"; next_cursor={self.next_cursor}" if self.next_cursor else "")]
        for m in self.memories:  # whole texts: only the output budget cuts (and says so)
            score = f" [{m.score:.3f}]" if m.score is not None else ""
            lines.append(f"- {m.key}{score}: {(m.text or '').strip()}")
        return "\n".join(lines)

    def fit(self, limit_chars: int) -> "MemoriesResult":
        if len(self.model_dump_json()) <= limit_chars:
            return self
        memories = [m.model_copy(update={"text": (m.text or "")[:1000]}) for m in self.memories]
        fitted = self.model_copy(update={"memories": memories, "truncated": True})
        while len(fitted.model_dump_json()) > limit_chars and fitted.memories:
            fitted.memories = fitted.memories[: len(fitted.memories) // 2]
        if len(fitted.memories) < len(self.memories):
            following = self.offset + len(fitted.memories)
            fitted.next_cursor = str(following) if following < self.count else None
        return fitted


class DeleteResult(ToolResult):
    keys: list[str]
    count: int = Field(description="Memories deleted (or that would be); `keys` may list fewer to fit.")
    dry_run: bool

    def fit(self, limit_chars: int) -> "DeleteResult":
        fitted = self
        while len(fitted.model_dump_json()) > limit_chars and fitted.keys:
            fitted = fitted.model_copy(update={"keys": fitted.keys[: len(fitted.keys) // 2]})
        return fitted

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return f"{verb} {self.count} memor{'y' if self.count == 1 else 'ies'}: " + ", ".join(self.keys[:20])


class KeyListResult(ToolResult):
    items: list[MemoryOut]
    total: int
    offset: int = 0
    next_cursor: str | None = None

    def fit(self, limit_chars: int) -> "KeyListResult":
        fitted = self
        while len(fitted.model_dump_json()) > limit_chars and len(fitted.items) > 1:
            keep = len(fitted.items) // 2
            fitted = fitted.model_copy(update={"items": fitted.items[:keep], "next_cursor": str(self.offset + keep)})
        return fitted

    def summary(self) -> str:
        more = f"; next_cursor={self.next_cursor}" if self.next_cursor else ""
        return f"{len(self.items)} of {self.total} memories{more}\n" + "\n".join(f"- {i.key}" for i in self.items[:50])


class StatsResult(ToolResult):
    total: int
    expired_pending_purge: int
    by_layer: dict[str, int]
    by_key_project: dict[str, int]
    embedding_model: str
    embedding_dim: int | None = None
    embedding_backend: str | None = Field(default=None, description="onnx (the verified export) or torch.")
    location: str

    def summary(self) -> str:
        return f"{self.total} memories in {self.location} ({self.embedding_model}); by layer {self.by_layer}"
