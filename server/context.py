"""What every toolset's register(app, ctx) receives: the settings and the shared dbt engine."""

from __future__ import annotations

from dataclasses import dataclass

from server.settings import Settings
from tools.dbt_engine.engine import DbtEngine


@dataclass
class AppContext:
    settings: Settings
    engine: DbtEngine

    @property
    def token_budget(self) -> int:
        return self.settings.output_budget_tokens
