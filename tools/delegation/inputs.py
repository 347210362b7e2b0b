"""Inputs of the delegation tools. Agent names are labels (letters, digits, '.', '_', '-'); texts may hold newlines
but no other control or bidi character; every size is bounded, so a hostile call cannot flood the shared store."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from memory.redact import forbidden_character
from server.inputs import StrictInput
from tools.dbt.runs import RunStore

ROSTER = ("data-pipeline-engineer", "sql-database-specialist", "apache-spark-engineer", "tableau-bi-specialist",
          "data-governance-agent", "cicd-engineer")
AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
NODE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,255}$")
MAX_TEXT = 20_000
MAX_TITLE = 500
MAX_NODES = 100
MAX_ID = 10**12  # SQLite holds 8-byte integers: a bigger id is refused here, not by the driver


def check_agent(value: str | None) -> str | None:
    if value is not None and not AGENT_NAME.match(value):
        raise PydanticCustomError("invalid_agent", f"{value[:80]!r} is not an agent name",
                                  {"hint": "Use letters, digits, '.', '_' and '-' (at most 64), e.g. "
                                           f"{', '.join(ROSTER[:3])}."})
    return value


def check_text(value: str | None, limit: int, multiline: bool = True) -> str | None:
    if value is None:
        return None
    if len(value) > limit:
        raise PydanticCustomError("too_long", f"at most {limit:,} characters (got {len(value):,})",
                                  {"hint": "Shorten it; put long evidence in a file or memory and name it here."})
    if (bad := forbidden_character(value, multiline)) is not None:
        raise PydanticCustomError("invalid_character", f"contains the character {bad[1]} at {bad[0]}",
                                  {"hint": "Remove control characters; newlines and tabs are fine."})
    if not value.strip():
        raise PydanticCustomError("empty", "is empty", {"hint": "Say what the task is."})
    return value


def check_nodes(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    if len(value) > MAX_NODES:
        raise PydanticCustomError("too_many_nodes", f"at most {MAX_NODES} nodes", {"hint": "Name the main nodes only."})
    for node in value:
        if not NODE_NAME.match(node):
            raise PydanticCustomError("invalid_node", f"{node[:80]!r} is not a node name or unique id",
                                      {"hint": "Give names (fct_orders) or unique ids (model.shop.fct_orders)."})
    return list(dict.fromkeys(value))


AGENT = "e.g. sql-database-specialist."
NODES = "Names or unique ids."


class DelegateInput(StrictInput):
    to_agent: str = Field(description=AGENT)
    task: str = Field(description="What to do.")
    context: str | None = Field(default=None, description="Findings, links.")
    priority: Literal["low", "normal", "high"] = Field(default="normal", description="Queue order.")
    related_nodes: list[str] | None = Field(default=None, description=NODES)

    _agent = field_validator("to_agent")(classmethod(lambda cls, v: check_agent(v)))
    _task = field_validator("task")(classmethod(lambda cls, v: check_text(v, MAX_TITLE * 8)))
    _context = field_validator("context")(classmethod(lambda cls, v: check_text(v, MAX_TEXT)))
    _nodes = field_validator("related_nodes")(classmethod(lambda cls, v: check_nodes(v)))


class EscalateInput(StrictInput):
    subject: str = Field(description="One line: what is wrong.")
    severity: Literal["low", "medium", "high", "critical"] = Field(description="high+ lists first.")
    evidence: str | None = Field(default=None, description="Errors, rows, attempts.")
    related_nodes: list[str] | None = Field(default=None, description=NODES)
    run_id: str | None = Field(default=None, description="'latest' or a run_id: attach its failures.")
    to_agent: str | None = Field(default=None, description="Default: anyone.")

    _agent = field_validator("to_agent")(classmethod(lambda cls, v: check_agent(v)))
    _subject = field_validator("subject")(classmethod(lambda cls, v: check_text(v, MAX_TITLE, multiline=False)))
    _evidence = field_validator("evidence")(classmethod(lambda cls, v: check_text(v, MAX_TEXT)))
    _nodes = field_validator("related_nodes")(classmethod(lambda cls, v: check_nodes(v)))

    @field_validator("run_id")
    @classmethod
    def _run(cls, value: str | None) -> str | None:
        if value is not None and value != "latest" and not RunStore.valid(value):
            raise PydanticCustomError("invalid_run_id", f"{value[:40]!r} is not a run id",
                                      {"hint": "Use 'latest', or run_id from a dbt tool's result."})
        return value


class TaskListInput(StrictInput):
    agent: str | None = Field(default=None, description="Its and unassigned tasks.")
    status: Literal["open", "claimed", "done", "failed", "cancelled"] | None = Field(default=None, description="Default: open and claimed.")
    kind: Literal["delegation", "escalation"] | None = Field(default=None, description="Default: both.")
    limit: int = Field(default=20, ge=1, le=100, description="Page size.")
    cursor: str | None = None

    _agent = field_validator("agent")(classmethod(lambda cls, v: check_agent(v)))

    @field_validator("cursor")
    @classmethod
    def _cursor(cls, value: str | None) -> str | None:
        if value is not None and not (value.isdigit() and len(value) <= 9):
            raise PydanticCustomError("invalid_cursor", "not a cursor", {"hint": "Pass next_cursor from the last page, or none."})
        return value


class TaskClaimInput(StrictInput):
    id: int = Field(ge=1, le=MAX_ID)
    agent: str = Field(description="Who claims it.")
    lease_seconds: int = Field(default=1800, ge=1, le=86_400, description="Claim again to renew.")

    _agent = field_validator("agent")(classmethod(lambda cls, v: check_agent(v)))


class TaskUpdateInput(StrictInput):
    id: int = Field(ge=1, le=MAX_ID)
    status: Literal["open", "done", "failed", "cancelled"] | None = Field(default=None, description="'open' releases a claim.")
    result: str | None = Field(default=None, description="Outcome.")
    note: str | None = Field(default=None, description="Progress note.")
    agent: str | None = Field(default=None, description="You, if holding it.")

    _agent = field_validator("agent")(classmethod(lambda cls, v: check_agent(v)))
    _result = field_validator("result")(classmethod(lambda cls, v: check_text(v, MAX_TEXT)))
    _note = field_validator("note")(classmethod(lambda cls, v: check_text(v, MAX_TEXT)))


class TaskGetInput(StrictInput):
    id: int = Field(ge=1, le=MAX_ID)
