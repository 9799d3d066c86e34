"""Error replies: one JSON shape (``detail``), a request id on every response, 500s logged with it."""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from edge.server.policy import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
_SCOPE_KEY = "vanity.request_id"


class ErrorReply(BaseModel):
    """Why a request was refused."""

    detail: str


_ERROR_TEXT = {
    401: "Token required",
    403: "Refused (disabled, or a foreign origin)",
    404: "Unknown look or product",
    409: "No frame yet",
    422: "Invalid request body or query",
    503: "Not available now (says why)",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the refusals a route can answer with."""
    return {c: {"model": ErrorReply, "description": _ERROR_TEXT[c]} for c in codes}


def request_id(scope: Scope) -> str:
    """The id :class:`RequestIds` gave this request (a new one when it did not run)."""
    rid = scope.get(_SCOPE_KEY)
    if not isinstance(rid, str):
        rid = scope[_SCOPE_KEY] = secrets.token_hex(8)
    return rid


class RequestIds:
    """ASGI middleware: each request gets a random id, returned in the ``X-Request-ID`` header.

    The id is kept in the request's scope, so the catch-all error handler logs and returns the
    same one. Never taken from the client: a log line's id always names one request here.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = (REQUEST_ID_HEADER.lower().encode(), request_id(scope).encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_id)


async def _bad_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()]
    summary = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:3])
    return JSONResponse({"detail": f"invalid request: {summary}", "errors": errors}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Never a bare 500 page: say what failed, keep serving. The query is not logged (it may hold the token).
    # The id goes on a second line: the journal's rate limit keys on the first (edge.netguard).
    rid = request_id(request.scope)
    log.error(
        "%s %s failed: %s\nrequest id %s", request.method, request.url.path, type(exc).__name__, rid, exc_info=exc
    )
    return JSONResponse(
        {"detail": f"internal error: {type(exc).__name__}", "request_id": rid},
        status_code=500,
        headers={REQUEST_ID_HEADER: rid},
    )


def install_error_handlers(app: FastAPI) -> None:
    """Every refusal as ``{"detail": ...}``; an unexpected error as a logged 500 with its request id."""
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
