"""The memory toolset's logic: one store per server, created off the event loop, and what each tool does with it."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from memory.inputs import DeleteInput, Filters, ListInput, MemoryItem, MemoryMetadata, RetrieveInput, SearchInput, StatsInput, StoreInput
from memory.keys import KeyError_, KeyPattern, MemoryKey, parse_key, parse_pattern
from memory.redact import forbidden_character, redact_secrets
from memory.results import DeleteResult, KeyListResult, MemoriesResult, MemoryOut, StatsResult, StoreResult
from server.errors import ToolFailure
from server.registration import ProgressReporter
from server.settings import Settings

if TYPE_CHECKING:
    from memory.store import MemoryStore


log = logging.getLogger("dbt_ae_mcp.memory")
LAYER_NAMES = ("short_term", "mid_term", "long_term")
METADATA_MAX_CHARS = 256


class MemoryService:
    """Creates the store once, off the event loop: importing Chroma and loading the model take seconds."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: MemoryStore | None = None
        self._lock = threading.Lock()

    def start_background(self) -> None:
        threading.Thread(target=self._warm, name="dbt-ae-memory-warmup", daemon=True).start()

    def _warm(self) -> None:
        try:
            self.get().warm_up()
        except Exception as exc:  # reported by the first call that needs the store
            log.warning("memory warm-up failed: %s", exc)

    def opened(self) -> "MemoryStore | None":
        """The store if this process has opened it, without opening it."""
        return self._store

    def get(self) -> "MemoryStore":
        with self._lock:
            if self._store is None:
                from memory.store import MemoryStore

                url = self.settings.memory_url
                self._store = MemoryStore(
                    path=None if url else self.settings.effective_memory_dir, url=url, model=self.settings.memory_model,
                    model_cache=self.settings.memory_model_cache, use_onnx=self.settings.memory_onnx,
                )
            return self._store


def _failure_for_key(exc: KeyError_, field: str | None = None) -> ToolFailure:
    return ToolFailure("invalid_key", f"{field}: {exc}" if field else str(exc),
                       exc.hint or "Use '{agent}/{project}/{data_type}', e.g. 'dbt-analytics-engineer/shop/fct-orders-config'.")


@dataclass(frozen=True)
class SentMemory:
    """A memory as the agent sent it, with the names it gave the text and the metadata (errors name the field)."""

    item: MemoryItem
    text_field: str = "text"
    meta_prefix: str = "metadata."


@dataclass(frozen=True)
class CleanMemory:
    key: MemoryKey
    text: str
    metadata: dict[str, str]
    redactions: int


def refuse_characters(value: str, field: str, multiline: bool) -> None:
    """Control and bidi characters are refused, not stripped: they hide or reorder what a reader sees (terminal
    escapes, Trojan Source), and a silent fix would store something the agent did not send."""
    bad = forbidden_character(value, multiline)
    if bad is not None:
        position, char = bad
        allowed = " (newlines and tabs are allowed in the text)" if multiline else ""
        raise ToolFailure("invalid_input", f"{field} contains the character {char} at position {position}.",
                          f"Remove the {char.split(' ', 1)[0]} character from {field} and call again; control and "
                          f"bidirectional-text characters are refused{allowed}.",
                          {"field": field, "code_point": char.split(" ", 1)[0], "position": position})


def clean_metadata(metadata: MemoryMetadata, prefix: str = "metadata.") -> tuple[dict[str, str], int]:
    """Every field but the key: at most METADATA_MAX_CHARS, no control or bidi characters, secrets masked."""
    clean: dict[str, str] = {}
    masked = 0
    for name, value in metadata.model_dump(exclude={"key"}, exclude_none=True).items():
        field = f"{prefix}{name}"
        if len(value) > METADATA_MAX_CHARS:
            raise ToolFailure("invalid_input", f"{field} has {len(value)} characters; the limit is {METADATA_MAX_CHARS}.",
                              f"Shorten {field} to a label; put the details in the memory's text.",
                              {"field": field, "limit": METADATA_MAX_CHARS})
        refuse_characters(value, field, multiline=False)
        clean[name], count = redact_secrets(value)
        masked += count
    return clean, masked


def clean_memory(sent: SentMemory, max_chars: int) -> CleanMemory:
    """Checks one memory whole before anything is written, and masks its secrets; raises ToolFailure."""
    item = sent.item
    key_field = f"{sent.meta_prefix}key"
    try:
        key = parse_key(item.metadata.key)
    except KeyError_ as exc:
        raise _failure_for_key(exc, key_field) from None
    metadata, masked = clean_metadata(item.metadata, sent.meta_prefix)
    _check_layer(metadata.get("layer"))
    text = item.text.replace("\r\n", "\n")
    if not text.strip():
        raise ToolFailure("empty_text", f"The text for {key} is empty.", "Store what was learned, in words.")
    if len(text) > max_chars:
        raise ToolFailure("text_too_large", f"The text for {key} has {len(text)} characters; the limit is {max_chars}.",
                          "Store a summary, or split it under several keys.")
    refuse_characters(text, sent.text_field, multiline=True)
    text, in_text = redact_secrets(text)
    return CleanMemory(key, text, metadata, masked + in_text)


def _pattern(text: str) -> KeyPattern:
    try:
        return parse_pattern(text)
    except KeyError_ as exc:
        raise _failure_for_key(exc) from None


def _check_layer(layer: str | None) -> None:
    if layer is not None and layer not in LAYER_NAMES:
        raise ToolFailure("invalid_layer", f"Unknown layer {layer!r}.", f"Use one of {', '.join(LAYER_NAMES)}.")


def _metadata_filters(filters: Filters | None) -> dict[str, str | None]:
    if filters is None:
        return {}
    _check_layer(filters.layer)
    return {name: getattr(filters, name) for name in ("namespace", "layer", "category", "project", "agent")}


def _offset(cursor: str | None) -> int:
    try:
        offset = int(cursor) if cursor else 0
    except ValueError:
        offset = -1
    if offset < 0:
        raise ToolFailure("invalid_input", f"cursor {cursor!r} is not one this tool gave out.", "Call without cursor to start again.")
    return offset


def _out(memory: Any, with_text: bool = True) -> MemoryOut:
    return MemoryOut(key=memory.key, text=memory.text if with_text else None, score=memory.score,
                     semantic_score=memory.semantic_score, keyword_score=memory.keyword_score, metadata=dict(memory.metadata))


class MemoryTools:
    def __init__(self, service: MemoryService, max_chars: int) -> None:
        self.service = service
        self.max_chars = max_chars

    def _items(self, inp: StoreInput) -> list[SentMemory]:
        forms = [inp.items is not None, inp.text is not None or inp.metadata is not None, inp.key is not None or inp.value is not None]
        if sum(forms) != 1:
            raise ToolFailure("invalid_input", "Give one form: text+metadata, key+value, or items.",
                              "e.g. memory_store(text='…', metadata={'key': 'dbt-analytics-engineer/shop/fct-orders-config'}).")
        if inp.items is not None:
            if not inp.items:
                raise ToolFailure("invalid_input", "items is empty.", "Pass at least one item.")
            return [SentMemory(item, f"items[{n}].text", f"items[{n}].metadata.") for n, item in enumerate(inp.items)]
        if inp.key is not None or inp.value is not None:
            if inp.key is None or inp.value is None:
                raise ToolFailure("invalid_input", "The short form needs both key and value.", "Pass key='a/b/c' and value='…'.")
            return [SentMemory(MemoryItem(text=inp.value, metadata=MemoryMetadata(key=inp.key)), "value", "")]
        if inp.text is None or inp.metadata is None:
            raise ToolFailure("invalid_input", "text needs metadata with a key (and metadata needs text).", "Pass both text and metadata.key.")
        return [SentMemory(MemoryItem(text=inp.text, metadata=inp.metadata))]

    async def store(self, inp: StoreInput, progress: ProgressReporter) -> StoreResult:
        from memory.store import NewMemory

        cleaned = [clean_memory(sent, self.max_chars) for sent in self._items(inp)]  # all checked before any is written
        new = [NewMemory(key=c.key, text=c.text, metadata=c.metadata) for c in cleaned]
        redactions = sum(c.redactions for c in cleaned)
        store = await anyio.to_thread.run_sync(self.service.get)
        stored = await anyio.to_thread.run_sync(store.store, new)
        indexing = await anyio.to_thread.run_sync(store.pending)
        return StoreResult(count=len(stored), stored=[_out(m, with_text=False) for m in stored], redactions=redactions, indexing=indexing)

    async def search(self, inp: SearchInput, progress: ProgressReporter) -> MemoriesResult:
        if not inp.query.strip():
            raise ToolFailure("invalid_input", "query is empty.", "Describe what to look for.")
        pattern = _pattern(inp.filters.key) if inp.filters and inp.filters.key else None
        filters = _metadata_filters(inp.filters)
        store = await anyio.to_thread.run_sync(self.service.get)
        hits = await anyio.to_thread.run_sync(lambda: store.search(inp.query, inp.limit, filters, pattern, inp.min_score))
        return MemoriesResult(memories=[_out(h) for h in hits], count=len(hits))

    async def retrieve(self, inp: RetrieveInput, progress: ProgressReporter) -> MemoriesResult:
        pattern = _pattern(inp.key)
        offset = _offset(inp.cursor)
        store = await anyio.to_thread.run_sync(self.service.get)
        found = await anyio.to_thread.run_sync(store.retrieve, pattern)
        page = found[offset: offset + inp.limit]
        following = offset + len(page)
        return MemoriesResult(memories=[_out(m) for m in page], count=len(found), offset=offset,
                              next_cursor=str(following) if following < len(found) else None)

    async def delete(self, inp: DeleteInput, progress: ProgressReporter) -> DeleteResult:
        pattern = _pattern(inp.key)
        store = await anyio.to_thread.run_sync(self.service.get)
        keys = await anyio.to_thread.run_sync(store.delete, pattern, inp.dry_run)
        return DeleteResult(keys=keys, count=len(keys), dry_run=inp.dry_run)

    async def list(self, inp: ListInput, progress: ProgressReporter) -> KeyListResult:
        offset = _offset(inp.cursor)
        filters = _metadata_filters(inp.filters)
        store = await anyio.to_thread.run_sync(self.service.get)
        page, total = await anyio.to_thread.run_sync(lambda: store.list(offset, inp.limit, filters))
        following = offset + len(page)
        return KeyListResult(items=[_out(m, with_text=False) for m in page], total=total, offset=offset,
                             next_cursor=str(following) if following < total else None)

    async def stats(self, inp: StatsInput, progress: ProgressReporter) -> StatsResult:
        store = await anyio.to_thread.run_sync(self.service.get)
        return StatsResult(**await anyio.to_thread.run_sync(store.stats))
