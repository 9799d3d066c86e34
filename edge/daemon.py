"""``vanity run``: build the mirror from the config and serve it until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import threading
import time
from pathlib import Path

log = logging.getLogger("vanity.daemon")


class DaemonError(RuntimeError):
    """The daemon cannot start with this configuration."""


def resolve_token(cfg) -> str | None:
    """The API token: from config, else from a systemd credential; required off loopback."""
    from edge.server import is_loopback

    token = cfg.server.token
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if token is None and cred_dir:
        p = Path(cred_dir) / "vanity-token"
        if p.is_file():
            token = p.read_text().strip() or None
    if not is_loopback(cfg.server.host) and not token:
        raise DaemonError(
            f"server.host = {cfg.server.host!r} is not loopback: set server.token (≥16 chars) or provide the "
            "systemd credential 'vanity-token'. Example token: " + secrets.token_urlsafe(24)
        )
    if token is not None and len(token) < 16:
        raise DaemonError("the API token must be at least 16 characters")
    return token


def build_mirror(cfg, notifier=None):
    """Load the model, catalogue, detector, renderer and source; raise DaemonError on bad input."""
    from edge.catalog import CatalogError, load_catalog
    from edge.contract import BundleError
    from edge.detectors import make_detector
    from edge.makeup import Renderer
    from edge.pipeline import Mirror
    from edge.runtime import RuntimeUnavailable, open_parser
    from edge.sources import make_source

    try:
        parser = open_parser(cfg.model.path, cfg.model.runtime, cfg.model.threads)
    except (BundleError, RuntimeUnavailable) as e:
        raise DaemonError(f"model bundle refused: {e}") from e
    try:
        catalog = load_catalog(cfg.catalog)
    except CatalogError as e:
        raise DaemonError(f"catalogue refused: {e}") from e
    try:
        detector = make_detector(cfg.detector)
    except RuntimeError as e:  # the shipped detector model missing or altered, no interpreter, no cascade
        raise DaemonError(f"face detector refused: {e}") from e
    from edge.calibration import CalibrationError, load_calibration

    try:
        calibration = load_calibration(cfg.state_dir)
    except CalibrationError as e:
        raise DaemonError(f"colour calibration refused (run vanity calibrate again): {e}") from e
    try:
        # The first session resolves render.look, so an unknown look fails here.
        return Mirror(
            cfg,
            parser,
            detector,
            Renderer(feather_px=cfg.render.feather_px),
            catalog,
            make_source(cfg.source),
            notifier=notifier,
            calibration=calibration,
        )
    except KeyError as e:
        raise DaemonError(f"render.look: {e}") from e


def end_streams_on_shutdown(app, stopping, poll_s: float = 0.1):
    """ASGI wrapper: once ``stopping()`` is true, a request's ``receive`` reports a disconnect.

    Live channels (the MJPEG stream, server-sent events) end when their client disconnects;
    this makes them end within ``poll_s`` of SIGTERM/SIGINT too, instead of being cancelled
    (with a traceback in the journal) when uvicorn's graceful-shutdown timeout runs out.
    """
    disconnect = {"type": "http.disconnect"}

    async def wrapped(scope, receive, send):
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        response = {"started": False, "complete": False, "cut": False}

        async def receive_or_disconnect():
            if stopping():
                response["cut"] = True
                return disconnect
            task = asyncio.ensure_future(receive())
            try:
                while True:
                    done, _ = await asyncio.wait({task}, timeout=poll_s)
                    if done:
                        return task.result()
                    if stopping():
                        task.cancel()
                        response["cut"] = True
                        return disconnect
            except BaseException:
                task.cancel()
                raise

        async def tracking_send(message):
            if message["type"] == "http.response.start":
                response["started"] = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                response["complete"] = True
            await send(message)

        await app(scope, receive_or_disconnect, tracking_send)
        if response["cut"] and response["started"] and not response["complete"]:
            # End the chunked body cleanly: the client sees the stream close, not a reset.
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return wrapped


def serve(cfg) -> None:
    """Run until SIGTERM or SIGINT; both take the same graceful path (< 2 s)."""
    import uvicorn

    from edge.sdnotify import Notifier
    from edge.server import create_app
    from edge.snapshots import SnapshotStore

    token = resolve_token(cfg)
    notifier = Notifier()
    mirror = build_mirror(cfg, notifier)
    snapshots = SnapshotStore(cfg.snapshots) if cfg.snapshots.enabled else None

    @contextlib.asynccontextmanager
    async def lifespan(app):
        # The socket is bound and listening (connections queue): start the pipeline, tell systemd.
        mirror.start()
        log.info("serving the mirror on http://%s:%s/ (source %s)", cfg.server.host, port, mirror.source.name)
        notifier.ready(f"serving on {cfg.server.host}:{port}")
        try:
            yield
        finally:
            notifier.stopping()
            t0 = time.monotonic()
            mirror.stop(timeout=1.0)
            log.info("stopped in %.2f s", time.monotonic() - t0)

    app = create_app(mirror, cfg, token=token, snapshots=snapshots, lifespan=lifespan)
    server: uvicorn.Server | None = None
    config = uvicorn.Config(
        end_streams_on_shutdown(app, lambda: server is not None and server.should_exit),
        host=cfg.server.host,
        port=cfg.server.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    # Bind before the lifespan runs, so READY=1 means "the page answers" and port 0 is resolved.
    try:
        sock = config.bind_socket()
    except (OSError, SystemExit) as e:
        raise DaemonError(f"cannot listen on {cfg.server.host}:{cfg.server.port} ({e})") from e
    sock.listen(128)
    port = sock.getsockname()[1]

    stop_sweeper = threading.Event()
    if snapshots is not None:
        threading.Thread(target=snapshots.sweep_forever, args=(stop_sweeper,), daemon=True).start()
    try:
        # uvicorn installs SIGINT and SIGTERM handlers that both trigger a graceful shutdown.
        server.run(sockets=[sock])
    finally:
        stop_sweeper.set()
        mirror.stop(timeout=0.5)
