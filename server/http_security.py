"""Who may talk to the streamable-HTTP transport: bearer token, bind policy, and Host/Origin checks (DNS rebinding).

The checks themselves run in the MCP SDK (TokenVerifier + RequireAuthMiddleware, TransportSecuritySettings); this
module only derives their configuration from Settings, so the policy is a few pure functions a test can read.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import socket
from typing import Any

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings

from server.settings import Settings

log = logging.getLogger("dbt_ae_mcp.http")

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
CLIENT_ID = "dbt-ae-mcp-bearer"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: only processes on this machine can connect."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_problem(settings: Settings) -> str | None:
    """Why serving as configured would be unsafe, or None. Only a loopback bind may go without a token."""
    if not settings.http:
        return None
    host, _ = settings.http_host_port
    if is_loopback(host) or settings.http_token is not None:
        return None
    return (f"refusing to serve HTTP on {settings.http} without a token: anyone who can reach that address could run "
            "dbt and write files. Set --http-token-file PATH (or DBT_AE_HTTP_TOKEN_FILE / DBT_AE_HTTP_TOKEN), or bind "
            "127.0.0.1.")


def host_header(host: str, port: int) -> str:
    """The Host header a client sends for host:port (IPv6 in brackets; no port for 80)."""
    name = f"[{host}]" if ":" in host else host
    return name.lower() if port == 80 else f"{name.lower()}:{port}"


def _machine_names() -> set[str]:
    """This machine's names and addresses, for a wildcard bind (0.0.0.0 / ::)."""
    names = {socket.gethostname(), socket.getfqdn()}
    for name in list(names):
        try:
            names.update(str(info[4][0]) for info in socket.getaddrinfo(name, None))
        except OSError:
            pass
    return {name for name in names if name}


def own_hosts(host: str, port: int, extra: list[str] | None = None) -> list[str]:
    """Host header values that name this server: its bind address, loopback names for loopback/wildcard binds,
    the machine's names for a wildcard bind, and any configured extra host."""
    names = {host}
    if is_loopback(host) or host in WILDCARD_HOSTS:
        names.update(LOOPBACK_NAMES)
    if host in WILDCARD_HOSTS:
        names.update(_machine_names())
    names.difference_update(WILDCARD_HOSTS)
    return sorted({host_header(name, port) for name in names} | {h.lower() for h in extra or []})


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """Host must name this server; an Origin must be this server's own (http://host:port) or a configured one."""
    host, port = settings.http_host_port
    hosts = own_hosts(host, port, settings.http_allowed_hosts)
    origins = [f"http://{h}" for h in hosts] + settings.http_allowed_origins
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


class StaticTokenVerifier:
    """The SDK's TokenVerifier for one shared secret, compared in constant time (digests, so length leaks nothing)."""

    def __init__(self, token: str) -> None:
        self._digest = hashlib.sha256(token.encode()).digest()

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(hashlib.sha256(token.encode()).digest(), self._digest):
            return AccessToken(token="", client_id=CLIENT_ID, scopes=[])
        return None


def auth_options(settings: Settings) -> dict[str, Any]:
    """MCPServer keyword arguments that make every request to /mcp carry `Authorization: Bearer <token>`."""
    if not settings.http or settings.http_token is None:
        return {}
    host, port = settings.http_host_port
    own_url = f"http://{host_header(host, port)}/"
    return {
        "token_verifier": StaticTokenVerifier(settings.http_token.get_secret_value()),
        "auth": AuthSettings(issuer_url=own_url, resource_server_url=None),  # type: ignore[arg-type]
    }


def http_run_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for run_streamable_http_async; refuses an unsafe bind even if the CLI check was skipped."""
    problem = exposure_problem(settings)
    if problem:
        raise ValueError(problem)
    host, port = settings.http_host_port
    if not is_loopback(host):
        log.warning("serving plain HTTP on %s: the bearer token crosses the network in clear; put a TLS proxy in front", settings.http)
    return {"host": host, "port": port, "transport_security": transport_security(settings)}
