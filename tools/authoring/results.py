"""What an authoring tool returns: the files it wrote (or would write) with diffs, what dbt made of them, next step."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from server.registration import ToolResult


class FileOut(BaseModel):
    path: str = Field(description="Relative to the project.")
    action: str = Field(description="created, modified, deleted or unchanged.")
    diff: str | None = Field(default=None, description="Unified diff (cut when the result is over budget).")


class AuthoringResult(ToolResult):
    tool: str
    dry_run: bool
    files: list[FileOut]
    validated: str = Field(description="How dbt checked the change: 'parse', 'parse+compile', or 'not run (dry run)'.")
    nodes: list[str] = Field(default_factory=list, description="unique_ids the change defines or touches, as dbt parsed them.")
    notes: list[str] = Field(default_factory=list, description="Choices made for you and things to know.")
    next_step: str | None = Field(default=None, description="What to call next to prove the change.")
    load: dict[str, Any] | None = Field(default=None, description="Result of loading/running it, when asked (dbt_seed load=true).")
    diffs_cut: bool = False

    def summary(self) -> str:
        verb = "would write" if self.dry_run else "wrote"
        files = ", ".join(f"{f.path} ({f.action})" for f in self.files)
        lines = [f"{self.tool}: {verb} {files}; validated: {self.validated}"]
        lines += [f"- {note}" for note in self.notes]
        if self.load is not None:
            lines.append(f"- load: {'OK' if self.load.get('success') else 'FAILED'} {self.load.get('counts', '')}")
        if self.next_step:
            lines.append(f"next: {self.next_step}")
        if self.dry_run:
            lines += [f.diff for f in self.files if f.diff]
        return "\n".join(lines)

    def fit(self, limit_chars: int) -> "AuthoringResult":
        if len(self.model_dump_json()) <= limit_chars:
            return self
        files = [f.model_copy(update={"diff": (f.diff or "")[:2000] or None}) for f in self.files]
        fitted = self.model_copy(update={"files": files, "diffs_cut": True})
        if len(fitted.model_dump_json()) > limit_chars:
            fitted = fitted.model_copy(update={"files": [f.model_copy(update={"diff": None}) for f in files]})
        return fitted
