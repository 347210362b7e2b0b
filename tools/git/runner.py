"""Runs the `git` CLI for the tools: never through a shell, always with an argument list, literal pathspecs (`--`
before paths), no pager, no prompt, a timeout, and off the event loop (asyncio subprocesses)."""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from server.errors import ToolFailure

TIMEOUT_S = 30.0
# Where the repository is comes from the project folder alone: variables that point git elsewhere are dropped.
REPO_VARS = frozenset({"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES",
                       "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_PREFIX", "GIT_CEILING_DIRECTORIES", "GIT_DISCOVERY_ACROSS_FILESYSTEM",
                       "GIT_EXTERNAL_DIFF", "GIT_DIFF_OPTS", "GIT_PAGER", "GIT_EDITOR", "GIT_SEQUENCE_EDITOR", "GIT_TRACE"})
# Every call: no colour, no pager, no external diff or text conversion, no ext:: transport, paths printed as they are.
BASE_ARGS = ["-c", "color.ui=false", "-c", "core.quotePath=false", "-c", "core.pager=cat", "-c", "protocol.ext.allow=never",
             "-c", "core.fsmonitor=false", "--no-pager", "--no-optional-locks", "--literal-pathspecs"]


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in REPO_VARS}
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "PAGER": "cat", "GIT_LITERAL_PATHSPECS": "1", "LC_ALL": "C",
                "GIT_ASKPASS": "", "SSH_ASKPASS": "", "GIT_EDITOR": ":"})
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env


@dataclass(frozen=True)
class GitOutput:
    code: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    def last_line(self) -> str:
        lines = [line for line in (self.err or self.out).splitlines() if line.strip()]
        return (lines[-1] if lines else f"git exited with {self.code}")[:500]


async def run_git(cwd: Path, *args: str, stdin: str | None = None, timeout: float = TIMEOUT_S) -> GitOutput:
    """`git <args>` in cwd, without a shell. A timeout or a cancelled call kills git."""
    exe = shutil.which("git")
    if exe is None:
        raise ToolFailure("git_not_found", "The `git` program is not installed or not on PATH.",
                          "Install git (e.g. `apt-get install git`) and restart the server.")
    proc = await asyncio.create_subprocess_exec(
        exe, *BASE_ARGS, *args, cwd=str(cwd), env=git_env(), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else b""), timeout)
    except asyncio.TimeoutError:
        raise ToolFailure("timeout", f"git {args[0]} took more than {timeout:.0f} s and was stopped.",
                          "Check the repository (a lock file, a hook or a remote that hangs) and call again.") from None
    finally:
        if proc.returncode is None:  # timed out or cancelled
            proc.kill()
            await proc.wait()
    return GitOutput(proc.returncode or 0, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def failure(what: str, result: GitOutput, hint: str = "Read git's message, fix the cause and call again.") -> ToolFailure:
    return ToolFailure("git_error", f"git {what} failed: {result.last_line()}", hint, {"stderr": result.err[-2000:]})


@dataclass(frozen=True)
class Repo:
    """The repository holding the project: its top folder and the project's folder inside it ('' when the same)."""

    top: Path
    prefix: str  # project folder relative to top, posix, no trailing slash

    def to_project(self, repo_path: str) -> str | None:
        """A repository-relative path as a project-relative one; None when it is outside the project."""
        if not self.prefix:
            return repo_path
        head = self.prefix + "/"
        return repo_path[len(head):] if repo_path.startswith(head) else None


async def find_repo(project: Path) -> Repo:
    result = await run_git(project, "rev-parse", "--show-toplevel")
    if not result.ok:
        if "dubious ownership" in result.err:
            raise ToolFailure("git_error", f"git refuses the repository at {project}: it is owned by another user.",
                              f"If you trust it, run `git config --global --add safe.directory '{project}'` and call again.")
        raise ToolFailure("not_a_git_repository", f"The project {project} is not inside a git repository.",
                          f"Run `git init` in {project} (or a folder above it) and commit the project once, then call again.")
    top = Path(result.out.strip()).resolve()
    try:
        prefix = project.resolve().relative_to(top).as_posix()
    except ValueError:
        raise ToolFailure("not_a_git_repository", f"git placed the project {project} in {top}, which does not hold it.",
                          "Start the server with --project-dir inside the repository's work tree.") from None
    return Repo(top, "" if prefix == "." else prefix)
