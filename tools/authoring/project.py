"""What the authoring tools know about the project: its folders (dbt_project.yml) and its nodes (the warm manifest)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from server.errors import ToolFailure

# dbt adapter type -> sqlglot dialect
DIALECTS = {"duckdb": "duckdb", "postgres": "postgres", "redshift": "redshift", "snowflake": "snowflake", "bigquery": "bigquery",
            "databricks": "databricks", "spark": "spark", "trino": "trino", "athena": "athena", "clickhouse": "clickhouse",
            "sqlserver": "tsql", "fabric": "tsql", "oracle": "oracle", "materialize": "postgres", "mysql": "mysql"}


@dataclass
class ProjectLayout:
    root: Path
    name: str
    model_paths: list[str]
    seed_paths: list[str]
    snapshot_paths: list[str]
    macro_paths: list[str]
    test_paths: list[str]
    packages_install_path: str

    @classmethod
    def read(cls, root: Path) -> "ProjectLayout":
        path = root / "dbt_project.yml"
        try:
            data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ToolFailure("project_not_found", f"No dbt_project.yml in {root}.", "Start the server with --project-dir pointing at a dbt project.") from None
        except Exception as exc:
            raise ToolFailure("invalid_yaml", f"dbt_project.yml is not valid YAML: {str(exc).splitlines()[0]}", "Fix dbt_project.yml, then call again.") from None

        def paths(key: str, default: str) -> list[str]:
            value = data.get(key) or [default]
            return [str(v) for v in value] if isinstance(value, list) else [str(value)]

        return cls(root.resolve(), str(data.get("name", "")), paths("model-paths", "models"), paths("seed-paths", "seeds"),
                   paths("snapshot-paths", "snapshots"), paths("macro-paths", "macros"), paths("test-paths", "tests"),
                   str(data.get("packages-install-path", "dbt_packages")))


@dataclass
class ProjectIndex:
    """The warm manifest's summary (tools/dbt_engine/describe.py), indexed for the checks authoring makes."""

    raw: dict[str, Any]
    by_name: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for node in self.raw.get("nodes", []):
            if node["resource_type"] in ("model", "seed", "snapshot", "analysis"):
                self.by_name.setdefault(node["name"], []).append(node)
        for source in self.raw.get("sources", []):
            self.sources[(source["source_name"], source["name"])] = source

    @property
    def dialect(self) -> str:
        return DIALECTS.get(str(self.raw.get("adapter_type") or ""), "duckdb")

    @property
    def project_name(self) -> str | None:
        return self.raw.get("project_name")

    def node(self, name: str) -> dict[str, Any] | None:
        """A model/seed/snapshot of the root project by name (packages' nodes only when the name is unique to them)."""
        found = self.by_name.get(name, [])
        own = [n for n in found if n["package"] == self.project_name]
        return (own or found or [None])[0]

    def names(self, *types: str) -> set[str]:
        return {n for n, nodes in self.by_name.items() if any(x["resource_type"] in types for x in nodes)}

    def generic_tests(self) -> dict[str, str]:
        """Generic test name -> how to write it (bare for the project's own, 'package.name' for a package's)."""
        out: dict[str, str] = {}
        for macro in self.raw.get("macros", []):
            if macro["name"].startswith("test_"):
                name = macro["name"][5:]
                if macro["package"] == self.project_name:
                    out[name] = name
                elif name not in out:
                    out[name] = f"{macro['package']}.{name}"
        return out

    def has_package(self, package: str) -> bool:
        return any(m["package"] == package for m in self.raw.get("macros", []))

    def tests_on(self, unique_id: str) -> list[dict[str, Any]]:
        return [n for n in self.raw.get("nodes", []) if n["resource_type"] == "test" and n.get("attached_node") == unique_id]


def profile_dialect(root: Path, profiles_dir: Path, target: str | None) -> str:
    """The sqlglot/sqlfluff dialect of the profile's adapter, read from the YAML files (no dbt call, so never waits)."""
    try:
        project = YAML(typ="safe").load((root / "dbt_project.yml").read_text(encoding="utf-8")) or {}
        profiles = YAML(typ="safe").load((profiles_dir / "profiles.yml").read_text(encoding="utf-8")) or {}
        profile = profiles.get(project.get("profile")) or {}
        output = (profile.get("outputs") or {}).get(target or profile.get("target")) or {}
        return DIALECTS.get(str(output.get("type")), "duckdb")
    except Exception:
        return "duckdb"


async def project_index(engine: Any, timeout: float, progress: Any = None, compile_ahead: dict[str, Any] | None = None) -> ProjectIndex:
    """The warm manifest's summary from the dbt worker (parsed again first if the project changed; engine.describe)."""
    return ProjectIndex(await engine.describe(timeout=timeout, progress=progress, compile_ahead=compile_ahead))
