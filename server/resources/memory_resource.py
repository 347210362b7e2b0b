"""Reader of `memory://{+key}`: one memory by its exact key, through the memory toolset's store (memory/service.py,
the app's one MemoryService: ctx.shared("memory")). The key is checked by the key convention (memory/keys.py) before
anything is read; a pattern (`*`) is refused: a resource is one memory (memory_retrieve takes patterns)."""

from __future__ import annotations

import json

import anyio

from server.context import AppContext
from server.resources import not_found


async def read_memory(ctx: AppContext, key: str) -> str:
    from memory.keys import KeyError_, KeyPattern, parse_key
    from memory.service import MemoryService

    try:
        parsed = parse_key(key)
    except KeyError_ as exc:
        raise not_found("invalid_key", str(exc), exc.hint or "Use memory://{agent}/{project}/{data_type} with an exact key; "
                        "memory_retrieve takes patterns.") from None
    service = ctx.shared("memory", lambda: MemoryService(ctx.settings))
    store = await anyio.to_thread.run_sync(service.get)
    found = await anyio.to_thread.run_sync(store.retrieve, KeyPattern((parsed.agent, parsed.project, parsed.data_type)))
    memory = next((m for m in found if m.key == str(parsed)), None)
    if memory is None:
        raise not_found("memory_not_found", f"No memory with key {str(parsed)!r} (or it has expired).",
                        "Call memory_list for stored keys, or memory_retrieve with a '*' pattern.")
    return json.dumps({"key": memory.key, "text": memory.text, "metadata": dict(memory.metadata)}, indent=1, default=str)


def known_keys(ctx: AppContext) -> list[str]:
    """Memory keys for completion, from what this process already holds: never opens the store or loads the model
    (a key press must answer in milliseconds), so nothing until the memory toolset has warmed up or been used."""
    service = ctx.existing("memory")
    store = service.opened() if service is not None else None
    return store.known_keys() if store is not None else []
