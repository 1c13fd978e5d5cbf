"""What a request to `wala serve` must pass before any route runs: the Host a loopback server answers to
(DNS rebinding), the Origin of a state-changing request (another site's page), and the token of a server
bound to anything but loopback."""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import Request

from wala.serve.jobs import Refused


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def check_request(request: Request, host: str, token: str | None) -> None:
    """Refuses (Refused) a request a hostile page could make: bound to loopback, one naming another host in
    its Host header (DNS rebinding: a page on evil.example that now resolves to 127.0.0.1); a POST, PUT,
    PATCH or DELETE whose Origin is not this server's; with a token, an API request without it."""
    given_host = request.headers.get("host")
    if is_loopback(host) and given_host is not None:
        name = given_host.rsplit(":", 1)[0] if not given_host.endswith("]") else given_host
        if name.strip("[]").lower() not in {host.strip("[]").lower(), "localhost", "127.0.0.1", "::1"}:
            raise Refused(403, "this server answers only to its own address (localhost)")
    origin = request.headers.get("origin")
    if request.method not in ("GET", "HEAD", "OPTIONS") and origin is not None:
        if origin.lower() != f"{request.url.scheme}://{given_host}".lower():
            raise Refused(403, "requests from another site's page are refused")
    if token is not None and request.url.path.startswith("/api/"):
        bearer = request.headers.get("authorization", "")
        given = (
            (bearer[7:] if bearer.lower().startswith("bearer ") else None)
            or request.headers.get("x-wala-token")
            or request.query_params.get("token")
            or ""
        )
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Refused(401, "this server needs its token: open the address it printed (…/?token=…)")
