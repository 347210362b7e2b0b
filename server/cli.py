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

    keys = ["project_dir", "profiles_dir", "target", "data_dir", "log_level", "toolsets", "read_only", "http", "timeout_seconds", "memory_dir", "memory_url", "memory_model",
            "http_token", "http_token_file", "http_allowed_origins", "http_allowed_hosts", "allow_sql_in_jinja", "preview_any_relation", "allow_push",
            "agent_name", "auto_escalate_to"]
    overrides = _overrides(ns, keys)
    token_flags = [key for key in ("http_token", "http_token_file") if key in overrides]
    if len(token_flags) == 1:  # a flag beats the env var of the other token source
        overrides[{"http_token": "http_token_file", "http_token_file": "http_token"}[token_flags[0]]] = None
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            where = ".".join(str(p) for p in err["loc"])
            print(f"dbt-ae-mcp: {where + ': ' if where else ''}{err['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


def exit_now() -> None:
    """End the process as soon as the transport has closed and the worker is stopped. Interpreter finalization would
    take seconds more (torch, onnxruntime, Chroma and dbt tear down their modules and threads) while the client waits
    and then kills the process anyway; everything acknowledged is already durable (SQLite with synchronous=FULL,
    files renamed into place), and what services kept for exit has been written by serve()'s exit hooks
    (AppContext.exit_hooks): atexit handlers do not run."""
    import logging
    import os

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dbt-ae-mcp", description="MCP server for dbt analytics engineering")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the MCP server (stdio by default)")
    _settings_args(serve)
    serve.add_argument("--toolsets", help="comma-separated toolsets to register (default: all)")
    serve.add_argument("--read-only", action="store_true", help="register no tool that writes files or the warehouse")
    serve.add_argument("--http", metavar="HOST:PORT", help="serve streamable HTTP on HOST:PORT (path /mcp)")
    serve.add_argument("--http-token", help="bearer token HTTP clients must send (visible in `ps`: prefer --http-token-file)")
    serve.add_argument("--http-token-file", help="file holding the HTTP bearer token")
    serve.add_argument("--http-allowed-origins", help="comma-separated extra Origins allowed, e.g. https://app.example.com")
    serve.add_argument("--http-allowed-hosts", help="comma-separated extra Host header values allowed, e.g. mcp.example.com")
    serve.add_argument("--allow-sql-in-jinja", action="store_true",
                       help="let Jinja an agent sends run statements (run_query, statement, hooks); ignored with --read-only")
    serve.add_argument("--preview-any-relation", action="store_true",
                       help="let dbt_show read relations that are not models, seeds, snapshots or sources of the project")
    serve.add_argument("--allow-push", action="store_true", help="register git_push (never --force); ignored with --read-only")
    serve.add_argument("--agent-name", help="the agent this server acts as in delegations (default: dbt-analytics-engineer)")
    serve.add_argument("--auto-escalate-to", metavar="AGENT",
                       help="escalate each test failing in dbt_build/dbt_test to AGENT, once until it passes again")
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
        from server.http_security import exposure_problem

        settings = load_settings(ns)
        problem = exposure_problem(settings)
        if problem:
            print(f"dbt-ae-mcp: {problem}", file=sys.stderr)
            raise SystemExit(2)
        configure_logging(settings)
        asyncio.run(serve_main(settings))
        exit_now()
    elif ns.command == "demo":
        from server.cli_demo import run_demo

        raise SystemExit(asyncio.run(run_demo(ns.workdir)))
    elif ns.command == "doctor":
        from server.cli_doctor import run_doctor

        raise SystemExit(run_doctor(load_settings(ns)))


if __name__ == "__main__":
    main()
