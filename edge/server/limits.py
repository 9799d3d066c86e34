"""The request-body cap, and the token checked on writes before any body is read.

FastAPI parses (and so reads) a route's body before the route's dependencies run: without
this, a client with no token could send a 150 MiB body, be answered 422 (not 401) once it
was all in memory, and leave the daemon's RSS a gigabyte up.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi.responses import JSONResponse

from edge.server.context import token_matches
from edge.server.policy import PUBLIC_PATHS, SAFE_METHODS, ASGIApp, Message, Receive, Scope, Send


class _TooLarge(Exception):
    """The body grew past the cap while it was being read."""


def _reply(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class BodyLimit:
    """ASGI middleware: 401 on a write without the token before its body is read; 413 on a body over the cap.

    - A write (any method but GET/HEAD/OPTIONS) to a protected route (all but
      :data:`edge.server.policy.PUBLIC_PATHS` and ``/static/``) without the token is refused
      at once, the body unread (the route's own token check still runs after it).
    - A ``Content-Length`` over ``max_bytes`` is refused at once; a chunked body is counted
      as it arrives and refused when it passes the cap, so no more than the cap (plus one
      chunk) is ever held. Either 413 closes the connection: the rest of the body is not read.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, token: str | None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.token = token

    def _unauthorised(self, scope: Scope, headers: dict[bytes, bytes]) -> bool:
        if self.token is None or scope["method"] in SAFE_METHODS:
            return False
        path = scope["path"]
        if path in PUBLIC_PATHS or path.startswith("/static/"):
            return False
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        auth = headers.get(b"authorization", b"").decode("latin-1")
        return not token_matches(self.token, auth, (query.get("token") or [""])[0])

    def _too_large(self) -> JSONResponse:
        return _reply(413, f"request body larger than {self.max_bytes} bytes", {"Connection": "close"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if self._unauthorised(scope, headers):
            reply = _reply(401, "token required", {"WWW-Authenticate": "Bearer", "Connection": "close"})
            await reply(scope, receive, send)
            return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared < 0 or declared > self.max_bytes:
                await (self._too_large() if declared >= 0 else _reply(400, "bad Content-Length"))(scope, receive, send)
                return
        state = {"read": 0, "over": False, "started": False}

        async def capped_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["read"] += len(message.get("body", b""))
                if state["read"] > self.max_bytes:
                    state["over"] = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if state["over"]:
                return  # the app's reply to a body cut short (FastAPI makes it a 400): the 413 goes instead
            state["started"] = True
            await send(message)

        try:
            await self.app(scope, capped_receive, guarded_send)
        except _TooLarge:
            pass
        if state["over"] and not state["started"]:
            await self._too_large()(scope, receive, send)
