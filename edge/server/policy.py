"""Who may talk to the kiosk: loopback binding, the Host allow-list and the strict-origin rule."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from fastapi.responses import JSONResponse

if TYPE_CHECKING:
    from edge.config import VanityConfig

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC_PATHS = ("/", "/healthz", "/metrics", "/api/catalog", "/openapi.json")
"""Routes that carry no image, no customer data and change nothing (also open without the token)."""

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts local connections."""
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(value: str) -> str | None:
    """The name in a Host header, lower-case, without port or IPv6 brackets; None when malformed."""
    v = value.strip().lower()
    if v.startswith("["):
        end = v.find("]")
        name, rest = (v[1:end], v[end + 1 :]) if end > 0 else ("", "")
    else:
        name, _, port = v.partition(":")
        rest = ":" + port if _ else ""
    if not name or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
        return None
    return name


def allowed_host_names(cfg: VanityConfig) -> frozenset[str]:
    """Host names the kiosk answers to: the loopback names, the bind address, ``server.allowed_hosts``."""
    names = {"localhost", "127.0.0.1", "::1", *cfg.server.allowed_hosts}
    if cfg.server.host not in ("0.0.0.0", "::"):
        names.add(cfg.server.host.lower())
    return frozenset(names)


class KioskPolicy:
    """ASGI middleware: who may talk to the kiosk, checked before any route runs.

    - **Host allow-list** (every route): a DNS-rebinding page reaches the loopback port under
      its own name (``Host: evil.example``); anything but the allowed names gets 421.
    - **Strict origin** for every route that changes state or returns the customer's image or
      data (all but :data:`PUBLIC_PATHS`), and for every write: a browser request must come
      from the kiosk's own origin or a configured one. ``Origin: null`` (a sandboxed frame, a
      ``data:`` page) is refused, and so is a request the browser marks as cross-site
      (``Sec-Fetch-Site``), such as a foreign page's ``<img src=/frame.jpg>``. Requests without
      either header are not from a page (curl, the kiosk's own scripts) and pass.
    - **HEAD** is served as GET without the body (also on the live channels, which end at once).

    Pure ASGI (no body buffering), so a stream's backpressure stays per client.
    """

    def __init__(self, app: ASGIApp, hosts: frozenset[str], allowed_origins: list[str]) -> None:
        self.app = app
        self.hosts = hosts
        self.allowed = set(allowed_origins)

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host")
        if host is not None and host_name(host) not in self.hosts:
            return 421, f"host {host!r} is not served here"
        private = scope["path"] not in PUBLIC_PATHS and not scope["path"].startswith("/static/")
        if not private and scope["method"] in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None:
            own = f"{scope.get('scheme', 'http')}://{host}" if host else None
            if origin.rstrip("/") not in self.allowed and origin != own:
                return 403, f"origin {origin!r} is not allowed"
            return None
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return 403, f"a {site} request may not use {scope['path']}"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            reply = JSONResponse({"detail": refusal[1]}, status_code=refusal[0])
            await reply(scope, receive, send)
            return
        if scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        await self.app(dict(scope, method="GET"), *_headers_only(receive, send))


def _headers_only(receive: Receive, send: Send) -> tuple[Receive, Send]:
    """receive/send for a HEAD served as GET: the headers go out, the body never; then a disconnect."""
    done = {"sent": False}

    async def head_receive() -> Message:
        if done["sent"]:
            return {"type": "http.disconnect"}
        return await receive()

    async def head_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            await send(message)
        elif message["type"] == "http.response.body" and not done["sent"]:
            done["sent"] = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return head_receive, head_send
