"""What every router reads: the kiosk (pipeline, config, token, stores) held in ``app.state``."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from edge.catalog import Catalog
    from edge.config import VanityConfig
    from edge.netguard import ConnectionGuard
    from edge.pipeline import LivePipeline
    from edge.snapshots import SnapshotStore


class Features(BaseModel):
    """What this kiosk offers the page."""

    snapshots: bool = Field(description="The customer may save a photo.")
    split: bool = Field(description="Split view (before | after) is available.")


@dataclass
class LiveCounters:
    """Viewers of the live channels (MJPEG stream, server-sent events)."""

    client_drops: int = 0
    """Frames slow viewers skipped."""
    clients: int = 0
    """Connected MJPEG viewers."""
    streams: int = 0
    """Open live channels (each holds one of ``server.max_streams``)."""
    streams_refused: int = 0


@dataclass
class Kiosk:
    """The app's state: the running pipeline and what the routes need beside it."""

    pipeline: LivePipeline
    cfg: VanityConfig
    token: str | None = None
    snapshots: SnapshotStore | None = None
    guard: ConnectionGuard | None = None
    """Adds its connection counters to ``/metrics`` when set."""
    counters: LiveCounters = field(default_factory=LiveCounters)

    @property
    def catalog(self) -> Catalog | None:
        """The store's catalogue the pipeline was built with (None: built-in looks only)."""
        return self.pipeline.catalog

    @property
    def features(self) -> Features:
        """What the page may offer."""
        return Features(snapshots=self.snapshots is not None and self.cfg.snapshots.enabled, split=True)


def get_kiosk(request: Request) -> Kiosk:
    """The kiosk of the app serving this request."""
    kiosk: Kiosk = request.app.state.kiosk
    return kiosk


KioskDep = Annotated[Kiosk, Depends(get_kiosk)]


def require_token(request: Request) -> None:
    """Refuse (401) a request without the kiosk's token, when it has one (``Authorization: Bearer`` or ``?token=``)."""
    token = get_kiosk(request).token
    if not token_matches(token, request.headers.get("authorization", ""), request.query_params.get("token", "")):
        raise HTTPException(status_code=401, detail="token required", headers={"WWW-Authenticate": "Bearer"})


def token_matches(token: str | None, authorization: str, query_token: str) -> bool:
    """Whether a request carries the kiosk's token (always, when it has none).

    ``authorization`` is the ``Authorization`` header (``Bearer …``), ``query_token`` the ``?token=``
    value; the header wins when it is a bearer token. Compared in constant time.
    """
    if token is None:
        return True
    given = authorization[7:] if authorization.lower().startswith("bearer ") else query_token
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


PROTECTED = [Depends(require_token)]
"""``dependencies=`` of every route that carries the customer's image or data, or changes anything."""
