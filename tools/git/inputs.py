"""Inputs of the git tools. Agent text never becomes a git option: paths, remote and branch names starting with '-' are
refused here, before anything runs; paths are resolved against the project in the service."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from server.inputs import StrictInput
from tools.git.validate import path_problem, ref_name_problem, remote_name_problem

MAX_PATHS = 200
MAX_MESSAGE_CHARS = 20_000


def _paths(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    if len(value) > MAX_PATHS:
        raise PydanticCustomError("too_many_paths", f"at most {MAX_PATHS} paths", {"hint": "Give folders instead of many files."})
    for path in value:
        problem = path_problem(path)
        if problem:
            raise PydanticCustomError("invalid_path", f"path {path[:80]!r}: {problem}",
                                      {"hint": "Give project-relative paths, e.g. models/staging/stg_orders.sql."})
    return value


class StatusInput(StrictInput):
    pass


class DiffInput(StrictInput):
    paths: list[str] | None = Field(default=None, description="Default: whole project.")
    staged: bool = Field(default=False, description="Show staged changes.")

    @field_validator("paths")
    @classmethod
    def _check_paths(cls, value: list[str] | None) -> list[str] | None:
        return _paths(value)


class CommitInput(StrictInput):
    message: str = Field(description="Commit message.")
    paths: list[str] = Field(description="Project files or folders.")

    @field_validator("paths")
    @classmethod
    def _some(cls, value: list[str]) -> list[str]:
        _paths(value)
        if not value:
            raise PydanticCustomError("no_paths", "no paths given", {"hint": "Name the files to commit; git_status lists them."})
        return value

    @field_validator("message")
    @classmethod
    def _message(cls, value: str) -> str:
        if not value.strip() or "\x00" in value or len(value) > MAX_MESSAGE_CHARS:
            raise PydanticCustomError("invalid_message", f"a commit message must be non-empty text without NUL, at most {MAX_MESSAGE_CHARS} characters",
                                      {"hint": "Give a one-line summary, e.g. 'Rename order_date in stg_orders'."})
        return value


class LogInput(StrictInput):
    path: str | None = Field(default=None, description="Default: whole project.")
    limit: int = Field(default=10, ge=1, le=100, description="Most commits.")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return None if value is None else _paths([value])[0]  # type: ignore[index]


class PushInput(StrictInput):
    remote: str | None = Field(default=None, description="Default: upstream, else origin.")
    branch: str | None = Field(default=None, description="Default: current branch.")

    @field_validator("remote")
    @classmethod
    def _remote(cls, value: str | None) -> str | None:
        problem = remote_name_problem(value) if value is not None else None
        if problem:
            raise PydanticCustomError("invalid_remote", f"remote {value[:80]!r}: {problem}", {"hint": "Give a remote's name from `git remote`, e.g. origin."})  # type: ignore[index]
        return value

    @field_validator("branch")
    @classmethod
    def _branch(cls, value: str | None) -> str | None:
        problem = ref_name_problem(value) if value is not None else None
        if problem:
            raise PydanticCustomError("invalid_branch", f"branch {value[:80]!r}: {problem}", {"hint": "Give a local branch's name, e.g. main."})  # type: ignore[index]
        return value
