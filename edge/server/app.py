"""The kiosk's web app: one router per resource over a running :class:`~edge.pipeline.LivePipeline`."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from edge.server import catalog, compare, health, live, looks, page, snapshot, state
from edge.server.context import Kiosk
from edge.server.errors import RequestIds, install_error_handlers
from edge.server.limits import BodyLimit
from edge.server.policy import KioskPolicy, allowed_host_names

if TYPE_CHECKING:
    from edge.config import VanityConfig
    from edge.netguard import ConnectionGuard
    from edge.pipeline import LivePipeline
    from edge.snapshots import SnapshotStore

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

DESCRIPTION = (
    "Live mirror stream, state, looks and catalogue of a Vanity kiosk. "
    "When the daemon listens off loopback, every route but /, /static, /healthz, /metrics, "
    "/api/catalog and /openapi.json needs the token (`Authorization: Bearer …` or `?token=`)."
)


def create_app(
    pipeline: LivePipeline,
    cfg: VanityConfig,
    token: str | None = None,
    snapshots: SnapshotStore | None = None,
    lifespan: Lifespan | None = None,
    guard: ConnectionGuard | None = None,
) -> FastAPI:
    """Build the web app over a pipeline; ``token`` is required on protected routes when set.

    ``guard`` (an :class:`edge.netguard.ConnectionGuard`) adds its counters to ``/metrics``.
    """
    app = FastAPI(
        title="Vanity kiosk API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        # The interactive docs load their scripts from a CDN: the kiosk has no network. The schema stays.
        docs_url=None,
        redoc_url=None,
    )
    app.state.kiosk = Kiosk(pipeline, cfg, token=token, snapshots=snapshots, guard=guard)
    allowed_origins = [o.rstrip("/") for o in cfg.server.allowed_origins if o != "*"]
    if allowed_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=allowed_origins,
            allow_methods=["GET", "PUT", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    # Inside the policy (a foreign Host or origin is refused first), before any route reads a body.
    app.add_middleware(BodyLimit, max_bytes=cfg.server.max_body_bytes, token=token)
    app.add_middleware(KioskPolicy, hosts=allowed_host_names(cfg), allowed_origins=allowed_origins)
    app.add_middleware(RequestIds)  # outermost: even a refusal by the policy carries an id
    install_error_handlers(app)
    app.include_router(page.router)
    page.mount_static(app)
    for resource in (health, state, looks, compare, catalog, snapshot, live):
        app.include_router(resource.router)
    return app
