"""Serve the generated dbt docs site (target/index.html, manifest.json, catalog.json) on 127.0.0.1 from the server.

dbt's own `docs serve` blocks its process and opens a browser; here a small threaded static HTTP server runs beside
the MCP server until dbt_docs(stop=true) or until the MCP server exits. Only the target folder is served, only on
loopback, and only to requests whose Host names that loopback address: a web page whose DNS name rebinds to
127.0.0.1 sends its own name as Host and is refused, so it cannot read the manifest. Only the files the docs
site loads are served (no listing of target/, no compiled SQL or run results).
"""

from __future__ import annotations

import functools
import http.server
import threading
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from server.errors import ToolFailure


SITE_FILES = frozenset({"/", "/index.html", "/manifest.json", "/catalog.json"})


def host_allowed(host: str | None, port: int) -> bool:
    """Only a Host that names our loopback socket; anything else is a rebound DNS name or a misdirected request."""
    return (host or "").strip().lower() in (f"127.0.0.1:{port}", f"localhost:{port}")


def path_allowed(target: str) -> bool:
    return urlsplit(target).path in SITE_FILES


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass  # stdout/stderr stay clean; requests are not worth a log line

    def _refusal(self) -> tuple[HTTPStatus, str] | None:
        if not host_allowed(self.headers.get("Host"), self.server.server_address[1]):
            return HTTPStatus.MISDIRECTED_REQUEST, "Host must be 127.0.0.1 or localhost with this port"
        if not path_allowed(self.path):
            return HTTPStatus.NOT_FOUND, "Not part of the docs site"
        return None

    def _serve(self, serve: Any) -> None:
        refusal = self._refusal()
        if refusal:
            self.send_error(*refusal)
        else:
            serve()

    def do_GET(self) -> None:
        self._serve(super().do_GET)

    def do_HEAD(self) -> None:
        self._serve(super().do_HEAD)


class DocsServer:
    def __init__(self) -> None:
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.folder: Path | None = None

    @property
    def url(self) -> str | None:
        if self._httpd is None:
            return None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self, folder: Path, port: int) -> str:
        if not (folder / "index.html").is_file():
            raise ToolFailure("docs_not_generated", f"No {folder / 'index.html'} to serve.", "Call dbt_docs with generate=true first.")
        if self._httpd is not None:
            if self.folder == folder and (port in (0, self._httpd.server_address[1])):
                return self.url or ""
            self.stop()
        handler = functools.partial(_Quiet, directory=str(folder))
        try:
            self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as exc:
            raise ToolFailure("port_in_use", f"Cannot serve the docs on 127.0.0.1:{port}: {exc.strerror}.", "Pick another port, or port=0 for any free one.") from None
        self._httpd.daemon_threads = True
        self.folder = folder
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="dbt-docs-server", daemon=True)
        self._thread.start()
        return self.url or ""

    def stop(self) -> bool:
        if self._httpd is None:
            return False
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd = None
        return True
