"""The git tools' logic: the project's repository seen through the project (paths in and out are project-relative, the
project may be a subfolder of the repository), each change labelled with the dbt nodes it touches."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from server.budget import budget_chars, cut_text
from server.context import AppContext
from server.errors import ToolFailure
from server.registration import ProgressReporter
from tools.git.hunks import parse_diff
from tools.git.inputs import CommitInput, DiffInput, LogInput, PushInput, StatusInput
from tools.git.nodes import NodeIndex, resource_of
from tools.git.results import GitCommitResult, GitDiffResult, GitLogResult, GitPushResult, GitStatusResult
from tools.git.runner import Repo, failure, find_repo, run_git
from tools.git.validate import project_path, ref_name_problem

PUSH_TIMEOUT_S = 120.0
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # what `git diff --cached` compares to before the first commit
# Plumbing diffs (diff-files, diff-index): `git diff` rewrites .git/index to refresh stat data, even with
# --no-optional-locks (git 2.39), and a read-only tool must leave the repository as it was.
DIFF_ARGS = ("-p", "--no-color", "--no-ext-diff", "--no-textconv", "--relative")
NO_IDENTITY_HINT = ("Set who commits, once: `git config --global user.name \"Your Name\"` and "
                    "`git config --global user.email you@example.com` (drop --global for this repository only), then call again.")


def parse_status(text: str, repo: Repo) -> tuple[str, list[tuple[str, str]]]:
    """`git status --porcelain=v1 -z --branch` as (branch line, [(XY, project path)]), project files only."""
    entries = text.split("\0")
    branch, files, i = "", [], 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if entry.startswith("## "):
            branch = entry[3:]
            continue
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        if code[0] in "RC":
            i += 1  # the rename's source path follows
        rel = repo.to_project(path)
        if rel is not None:
            files.append((code, rel))
    return branch, files


def branch_label(line: str) -> str:
    """'main...origin/main [ahead 1]' -> 'main [ahead 1]'; 'No commits yet on main' -> 'main (no commits yet)'."""
    if line.startswith("No commits yet on "):
        return line[len("No commits yet on "):] + " (no commits yet)"
    if line.startswith("HEAD (no branch)"):
        return ""
    name, _, rest = line.partition("...")
    extra = rest[rest.find("["):] if "[" in rest else ""
    return (name + (" " + extra if extra else "")).strip()


class GitTools:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.project = ctx.settings.project_dir
        self.lock = ctx.shared("git_write_lock", asyncio.Lock)

    async def _repo(self) -> Repo:
        return await find_repo(self.project)

    async def _head(self, repo: Repo) -> bool:
        return (await run_git(repo.top, "rev-parse", "--verify", "--quiet", "HEAD")).ok

    async def _changed(self, repo: Repo, paths: list[str]) -> tuple[str, list[tuple[str, str]]]:
        result = await run_git(self.project, "status", "--porcelain=v1", "-z", "--branch", "--untracked-files=all", "--", *paths)
        if not result.ok:
            raise failure("status", result)
        return parse_status(result.out, repo)

    # -- git_status ---------------------------------------------------------------------------------------------------
    async def status(self, args: StatusInput, progress: ProgressReporter) -> GitStatusResult:
        repo = await self._repo()
        branch, changed = await self._changed(repo, ["."])
        index = NodeIndex.load(self.project)
        touched = await self._touched_by_file(repo, index, [p for code, p in changed if code not in ("??", "A ", "D ", " D")])
        files, groups = [], {}
        for code, path in changed:
            nodes = touched.get(path) if path in touched else index.file_nodes(path, self._text(path))
            files.append({"path": path, "status": code, **({"nodes": nodes} if nodes else {})})
            for group in resource_of(index, path, nodes or []):
                groups.setdefault(group, []).append(path)
        return GitStatusResult(branch=branch_label(branch), files=files, by_resource=groups, from_manifest=index.from_manifest)

    async def _touched_by_file(self, repo: Repo, index: NodeIndex, paths: list[str]) -> dict[str, list[str]]:
        """For tracked, changed YAML and macro files: the nodes their hunks (against HEAD) touch."""
        split = [p for p in paths if p.endswith((".yml", ".yaml")) or index.kind_of(p) == "macro"]
        if not split or not await self._head(repo):
            return {}
        result = await run_git(self.project, "diff-index", *DIFF_ARGS, "-U0", "HEAD", "--", *split)
        touched: dict[str, list[str]] = {}
        for diff in parse_diff(result.out) if result.ok else []:
            text = self._text(diff.path)
            nodes = [n for h in diff.hunks for n in index.nodes_in(diff.path, text, h.new_lines)]
            touched[diff.path] = list(dict.fromkeys(nodes))
        return touched

    def _text(self, path: str) -> str | None:
        try:
            file = self.project / path
            return file.read_text(encoding="utf-8") if file.is_file() and file.stat().st_size < 2_000_000 else None
        except (OSError, UnicodeDecodeError):
            return None

    # -- git_diff -----------------------------------------------------------------------------------------------------
    async def diff(self, args: DiffInput, progress: ProgressReporter) -> GitDiffResult:
        repo = await self._repo()
        paths = [project_path(self.project, p) for p in args.paths or ["."]]
        if args.staged:
            base = "HEAD" if await self._head(repo) else EMPTY_TREE
            result = await run_git(self.project, "diff-index", *DIFF_ARGS, "-U3", "--cached", base, "--", *paths)
        else:
            result = await run_git(self.project, "diff-files", *DIFF_ARGS, "-U3", "--", *paths)
        if not result.ok:
            raise failure("diff", result)
        index = NodeIndex.load(self.project)
        hunks, files = [], parse_diff(result.out)
        for diff in files:
            text = await self._staged_text(diff.path) if args.staged else self._text(diff.path)
            if not diff.hunks:
                hunks.append({"path": diff.path, "header": diff.status, "nodes": index.file_nodes(diff.path, text)})
            for hunk in diff.hunks:
                hunks.append({"path": diff.path, "header": hunk.header, "nodes": index.nodes_in(diff.path, text, hunk.new_lines)})
        untracked = [] if args.staged else [p for code, p in (await self._changed(repo, paths))[1] if code == "??"]
        limit = budget_chars(self.ctx.token_budget) // 2
        text, truncated = cut_text(result.out, limit)
        full = None
        if truncated:
            full = self._save_diff(result.out)
            text, _ = cut_text(result.out, limit, f"the whole diff is in {full}")
        return GitDiffResult(diff=text, hunks=hunks, files=len(files), truncated=truncated, full_diff=full, untracked=untracked)

    async def _staged_text(self, path: str) -> str | None:
        shown = await run_git(self.project, "show", f":./{path}")  # the index's version (literal path, relative to cwd)
        return shown.out if shown.ok else None

    def _save_diff(self, text: str) -> str:
        folder = self.ctx.settings.data_dir / "git"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"diff-{hashlib.sha256(text.encode()).hexdigest()[:16]}.patch"
        path.write_text(text, encoding="utf-8")
        return str(path)

    # -- git_commit ---------------------------------------------------------------------------------------------------
    async def commit(self, args: CommitInput, progress: ProgressReporter) -> GitCommitResult:
        repo = await self._repo()
        paths = list(dict.fromkeys(project_path(self.project, p) for p in args.paths))
        async with self.lock:
            ident = await run_git(self.project, "-c", "user.useConfigOnly=true", "var", "GIT_COMMITTER_IDENT")
            if not ident.ok:
                raise ToolFailure("git_identity_missing", "git has no identity (user.name and user.email) to commit with.", NO_IDENTITY_HINT)
            _, changed = await self._changed(repo, paths)
            unchanged = [p for p in paths if not any(_under(f, p) for _, f in changed)]
            if not changed or unchanged:
                what = ", ".join(unchanged or paths)
                raise ToolFailure("nothing_to_commit", f"Nothing to commit in {what[:300]}: no change git sees (or ignored by .gitignore).",
                                  "Call git_status to see the changed files and commit those; an empty commit is refused.",
                                  {"unchanged": (unchanged or paths)[:50]})
            added = await run_git(self.project, "add", "-A", "--", *paths)
            if not added.ok:
                raise failure("add", added)
            done = await run_git(self.project, "-c", "user.useConfigOnly=true", "commit", "--quiet", "--no-edit", "-F", "-",
                                 "--", *paths, stdin=args.message)
            if not done.ok:
                await run_git(self.project, "reset", "--quiet", "--", *paths)  # unstage what this call staged
                raise failure("commit", done, "Nothing was committed. Read git's message (a hook may have refused), fix it and call again.")
        head = await run_git(self.project, "rev-parse", "HEAD")
        shown = await run_git(self.project, "show", "--name-status", "--format=", "--relative", "--no-renames", "HEAD")
        files = [f"{line[0]} {line.split(chr(9), 1)[1]}" for line in shown.out.splitlines() if "\t" in line]
        branch, left = await self._changed(repo, ["."])
        return GitCommitResult(commit=head.out.strip(), branch=branch_label(branch).split(" ")[0], files=files, uncommitted=len(left))

    # -- git_log ------------------------------------------------------------------------------------------------------
    async def log(self, args: LogInput, progress: ProgressReporter) -> GitLogResult:
        await self._repo()
        path = project_path(self.project, args.path or ".")
        if not (await run_git(self.project, "rev-parse", "--verify", "--quiet", "HEAD")).ok:
            return GitLogResult(commits=[])
        result = await run_git(self.project, "log", f"--max-count={args.limit}", "--format=%x1e%H%x1f%an%x1f%aI%x1f%s",
                               "--name-only", "--relative", "--no-renames", "--", path)
        if not result.ok:
            raise failure("log", result)
        commits: list[dict[str, Any]] = []
        for record in result.out.split("\x1e")[1:]:
            head, _, rest = record.partition("\n")
            fields = head.split("\x1f")
            if len(fields) == 4:
                commits.append({"hash": fields[0], "author": fields[1], "date": fields[2], "subject": fields[3][:500],
                                "files": [line for line in rest.splitlines() if line.strip()][:200]})
        return GitLogResult(commits=commits)

    # -- git_push -----------------------------------------------------------------------------------------------------
    async def push(self, args: PushInput, progress: ProgressReporter) -> GitPushResult:
        repo = await self._repo()
        branch = args.branch or await self._current_branch()
        if not (await run_git(repo.top, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")).ok:
            raise ToolFailure("branch_not_found", f"There is no local branch {branch!r}.", "Give a local branch (git_status shows the current one).")
        remotes = (await run_git(repo.top, "remote")).out.split()
        upstream = (await run_git(repo.top, "config", "--get", f"branch.{branch}.remote")).out.strip()
        remote = args.remote or (upstream if upstream in remotes else "origin" if "origin" in remotes else remotes[0] if len(remotes) == 1 else "")
        if remote not in remotes:
            raise ToolFailure("remote_not_found", f"No git remote named {remote!r}" if remote else "The repository has no remote to push to.",
                              f"Remotes: {', '.join(remotes) or 'none'}. Add one with `git remote add origin <url>`, or name one.")
        merge = (await run_git(repo.top, "config", "--get", f"branch.{branch}.merge")).out.strip() if remote == upstream else ""
        dest = merge if merge.startswith("refs/heads/") and not ref_name_problem(merge[len("refs/heads/"):]) else f"refs/heads/{branch}"
        if (await run_git(repo.top, "check-ref-format", dest)).code != 0:
            raise ToolFailure("invalid_input", f"{dest!r} is not a valid ref name.", "Give a plain branch name, e.g. main.")
        await progress(0, 1, f"pushing {branch} to {remote}")
        async with self.lock:  # never --force: a rejected push is reported, not overridden
            pushed = await run_git(repo.top, "push", "--porcelain", "--", remote,
                                   f"refs/heads/{branch}:{dest}", timeout=PUSH_TIMEOUT_S)
        line = next((ln for ln in pushed.out.splitlines() if "\t" in ln and dest in ln), "")
        if not pushed.ok:
            if line.startswith("!") or "rejected" in pushed.err:
                raise ToolFailure("push_rejected", f"The remote rejected the push of {branch}: {(line or pushed.last_line())[:300]}",
                                  "The remote has commits this branch lacks: pull and merge (or rebase) first. This server never force-pushes.")
            raise failure("push", pushed, "Check the remote's URL and your credentials (no prompt is possible here), then call again.")
        return GitPushResult(remote=remote, branch=branch, ref=dest, result=(line.split("\t")[-1] if line else "done").strip("[] ") or "done")

    async def _current_branch(self) -> str:
        result = await run_git(self.project, "symbolic-ref", "--quiet", "--short", "HEAD")
        name = result.out.strip()
        if not result.ok or ref_name_problem(name):
            raise ToolFailure("detached_head", "HEAD is not on a branch (or its name is unusual), so there is nothing to push by default.",
                              "Name the branch to push, e.g. branch='main'.")
        return name


def _under(path: str, given: str) -> bool:
    return given == "." or path == given or path.startswith(given.rstrip("/") + "/")
