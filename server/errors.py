"""Typed tool errors: a stable code, a message, and the next step for the agent."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ToolFailure(Exception):
    """Raised by tool logic; the tool adapter turns it into an MCP error result (isError: true)."""

    def __init__(self, code: str, message: str, hint: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.details = details or {}

    def to_model(self) -> "ErrorResult":
        return ErrorResult(code=self.code, message=self.message, hint=self.hint, details=self.details)


class ErrorResult(BaseModel):
    """What an agent gets back when a tool fails."""

    code: str = Field(description="Stable error code, e.g. invalid_selector, model_not_found, timeout.")
    message: str = Field(description="What went wrong.")
    hint: str = Field(description="The next step the agent should take.")
    details: dict[str, Any] = Field(default_factory=dict, description="Extra structured context, when there is any.")

    def text(self) -> str:
        return f"ERROR {self.code}: {self.message}\nhint: {self.hint}"

