"""What every toolset's register(app, ctx) receives: the settings and the shared dbt engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from server.settings import Settings
from tools.dbt.engine.engine import DbtEngine

T = TypeVar("T")

# Called after every dbt call with (command, every node as a dict, run_id); returns lines to add to the result.
RunListener = Callable[[str, list[dict[str, Any]], "str | None"], list[str]]


@dataclass
class AppContext:
    settings: Settings
    engine: DbtEngine
    serving: bool = False  # set by serve(): a process that answers clients warms slow services up in the background
    _shared: dict[str, Any] = field(default_factory=dict)
    run_listeners: list[RunListener] = field(default_factory=list)  # e.g. auto-escalation (server/app.py)
    # Run by serve() when the transport closes, before the process ends without interpreter teardown (server/cli.py):
    # what a service would otherwise leave to atexit (e.g. the column model's cache on disk).
    exit_hooks: list[Callable[[], None]] = field(default_factory=list)

    @property
    def token_budget(self) -> int:
        return self.settings.output_budget_tokens

    def existing(self, name: str) -> Any:
        """A shared object if something already made it, else None (never makes it)."""
        return self._shared.get(name)

    def shared(self, name: str, factory: Callable[[], T]) -> T:
        """One object per app for services several toolsets use (e.g. the authoring service and its write lock)."""
        if name not in self._shared:
            self._shared[name] = factory()
        return self._shared[name]  # type: ignore[no-any-return]
