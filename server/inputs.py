"""The strict input base every tool's arguments derive from: an unknown field is an error, never ignored."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
