"""`dbt-ae-mcp serve | demo | doctor`. Flags override DBT_AE_* env vars, which override defaults."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from pydantic import ValidationError


def _settings_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project-dir", help="dbt project directory (default: current directory)")
    parser.add_argument("--profiles-dir", help="directory holding profiles.yml")
    parser.add_argument("--target", help="default dbt target")
    parser.add_argument("--data-dir", help="server state directory (logs, memory)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR")


def _overrides(ns: argparse.Namespace, keys: list[str]) -> dict[str, Any]:
    return {key: getattr(ns, key) for key in keys if getattr(ns, key, None) not in (None, False)}


def load_settings(ns: argparse.Namespace):
    from server.settings import Settings

    keys = ["project_dir", "profiles_dir", "target", "data_dir", "log_level", "toolsets", "read_only", "http", "timeout_seconds", "memory_dir", "memory_url", "memory_model"]
    try:
        return Settings(**_overrides(ns, keys))
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            print(f"dbt-ae-mcp: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dbt-ae-mcp", description="MCP server for dbt analytics engineering")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the MCP server (stdio by default)")
    _settings_args(serve)
    serve.add_argument("--toolsets", help="comma-separated toolsets to register (default: all)")
    serve.add_argument("--read-only", action="store_true", help="register no tool that writes files or the warehouse")
    serve.add_argument("--http", metavar="HOST:PORT", help="serve streamable HTTP on HOST:PORT (path /mcp)")
    serve.add_argument("--timeout-seconds", type=float, help="default timeout of a dbt call")
    serve.add_argument("--memory-dir", help="on-disk memory store (default: DATA_DIR/memory)")
    serve.add_argument("--memory-url", help="use a `chroma run` server at this URL for memories")
    serve.add_argument("--memory-model", help="embedding model: 'bundled', a local path or a cached model name")

    demo = sub.add_parser("demo", help="run an agent-style session against the bundled demo project")
    demo.add_argument("--workdir", help="where to copy the demo project (default: ./.demo)")

    doctor = sub.add_parser("doctor", help="check the set-up and say what to fix")
    _settings_args(doctor)

    ns = parser.parse_args(argv)
    if ns.command == "serve":
        from server.app import configure_logging, serve as serve_main

        settings = load_settings(ns)
        configure_logging(settings)
        asyncio.run(serve_main(settings))
    elif ns.command == "demo":
        from server.cli_demo import run_demo

        raise SystemExit(asyncio.run(run_demo(ns.workdir)))
    elif ns.command == "doctor":
        from server.cli_doctor import run_doctor

        raise SystemExit(run_doctor(load_settings(ns)))


if __name__ == "__main__":
    main()
