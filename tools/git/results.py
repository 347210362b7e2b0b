"""Results of the git tools, each with its text summary. Paths are project-relative; nodes are dbt unique ids."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from server.budget import cut_text
from server.registration import ToolResult

WORDS = {"M": "modified", "A": "added", "D": "deleted", "R": "renamed", "C": "copied", "T": "type changed", "U": "conflict",
         "?": "untracked"}


def _status_words(code: str) -> str:
    staged, unstaged = code[:1], code[1:2]
    if code == "??":
        return "untracked"
    parts = [f"{WORDS.get(staged, staged)} (staged)"] if staged.strip() else []
    parts += [WORDS.get(unstaged, unstaged)] if unstaged.strip() else []
    return ", ".join(parts)


class GitStatusResult(ToolResult):
    branch: str = Field(description="Current branch ('' when detached), with ahead/behind of its upstream.")
    files: list[dict[str, Any]] = Field(default_factory=list, description="path, status (git's XY code), nodes.")
    by_resource: dict[str, list[str]] = Field(default_factory=dict, description="dbt unique id (or 'project', 'other') -> paths.")
    from_manifest: bool = False
    omitted_files: int = 0

    def summary(self) -> str:
        if not self.files:
            return f"git_status: {self.branch or 'detached HEAD'}: nothing changed in the project"
        status = {f["path"]: f["status"] for f in self.files}
        lines = [f"git_status: {self.branch or 'detached HEAD'}: {len(self.files)} changed file(s) in {len(self.by_resource)} resource(s)"]
        for resource, paths in list(self.by_resource.items())[:60]:
            lines.append(f"{resource}:")
            lines += [f"  {status.get(p, '  ')} {p} ({_status_words(status.get(p, '  '))})" for p in paths[:20]]
        return "\n".join(lines)

    def fit(self, limit_chars: int) -> "GitStatusResult":
        fitted = self
        while len(fitted.model_dump_json()) > limit_chars and len(fitted.files) > 1:
            keep = fitted.files[: len(fitted.files) // 2]
            paths = {f["path"] for f in keep}
            groups = {r: [p for p in ps if p in paths] for r, ps in fitted.by_resource.items()}
            fitted = fitted.model_copy(update={"files": keep, "by_resource": {r: ps for r, ps in groups.items() if ps},
                                               "omitted_files": fitted.omitted_files + len(fitted.files) - len(keep)})
        return fitted


class GitDiffResult(ToolResult):
    diff: str = Field(description="Unified diff, cut to the budget.")
    hunks: list[dict[str, Any]] = Field(default_factory=list, description="path, header (@@ line), nodes it touches.")
    files: int = 0
    truncated: bool = False
    full_diff: str | None = Field(default=None, description="File with the whole diff when cut.")
    untracked: list[str] = Field(default_factory=list, description="New files git_diff does not show (git add them or see git_status).")

    def summary(self) -> str:
        head = f"git_diff: {self.files} file(s), {len(self.hunks)} hunk(s)" + (f"; cut, whole diff in {self.full_diff}" if self.truncated else "")
        lines = [head] + [f"- {h['path']} {h['header']} -> {', '.join(h['nodes']) or '-'}" for h in self.hunks[:40]]
        if self.untracked:
            lines.append(f"untracked (not in the diff): {', '.join(self.untracked[:20])}")
        return "\n".join(lines) + "\n" + self.diff

    def fit(self, limit_chars: int) -> "GitDiffResult":
        size = len(self.model_dump_json())
        if size <= limit_chars:
            return self
        hunks = self.hunks
        while len(hunks) > 1 and len(str(hunks)) > limit_chars // 4:
            hunks = hunks[: len(hunks) // 2]
        room = max(200, limit_chars - (size - len(self.diff)) - 200 - (len(str(self.hunks)) - len(str(hunks))))
        diff, cut = cut_text(self.diff, room, f"the whole diff is in {self.full_diff}" if self.full_diff else "narrow paths")
        return self.model_copy(update={"diff": diff, "hunks": hunks, "truncated": self.truncated or cut})


class GitCommitResult(ToolResult):
    commit: str = Field(description="The new commit's hash.")
    branch: str
    files: list[str] = Field(default_factory=list, description="Project paths the commit changed, with git's status letter.")
    uncommitted: int = Field(default=0, description="Changed project files left out of the commit.")

    def summary(self) -> str:
        return (f"git_commit: {self.commit[:12]} on {self.branch or 'detached HEAD'}: {len(self.files)} file(s); "
                f"{self.uncommitted} other changed file(s) left uncommitted\n" + "\n".join(f"- {f}" for f in self.files[:50]))


class GitLogResult(ToolResult):
    commits: list[dict[str, Any]] = Field(default_factory=list, description="hash, author, date, subject, files.")

    def summary(self) -> str:
        lines = [f"git_log: {len(self.commits)} commit(s)"]
        lines += [f"- {c['hash'][:12]} {c['date'][:10]} {c['author']}: {c['subject']} ({len(c.get('files', []))} file(s))"
                  for c in self.commits]
        return "\n".join(lines)

    def fit(self, limit_chars: int) -> "GitLogResult":
        fitted = self
        while len(fitted.model_dump_json()) > limit_chars and fitted.commits:
            commits = [{**c, "files": c.get("files", [])[:20]} for c in fitted.commits[: max(1, len(fitted.commits) // 2)]]
            if commits == fitted.commits:
                commits = commits[:-1]
            fitted = fitted.model_copy(update={"commits": commits})
        return fitted


class GitPushResult(ToolResult):
    remote: str
    branch: str
    ref: str = Field(default="", description="Remote ref pushed to.")
    result: str = Field(default="", description="git's own line for the ref (new branch, fast-forward, up to date).")

    def summary(self) -> str:
        return f"git_push: {self.branch} -> {self.remote} {self.ref}: {self.result}"
