"""Every dbt command as a method of one object, the handler side of the dbt toolset's table (tools.py)."""

from __future__ import annotations

from tools.dbt.execution import ExecutionCommands
from tools.dbt.inspection import InspectionCommands


class DbtCommands(ExecutionCommands, InspectionCommands):
    """Tool logic for dbt commands; the MCP layer stays in tools.py."""
