"""``vanity run``: build the mirror from the config and serve it until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uvicorn

    from edge.config import VanityConfig
    from edge.netguard import ConnectionGuard
    from edge.pipeline import LivePipeline
    from edge.sdnotify import Notifier

log = logging.getLogger(__name__)

BACKLOG = 128
"""Pending connections the kernel queues; more wait in SYN retries (the guard keeps accepting)."""


class DaemonError(RuntimeError):
    """The daemon cannot start with this configuration; ``errors`` lists each problem."""

    def __init__(self, message: str, errors: list[str] | None = None):
        super().__init__(message)
        self.errors = errors or []


FD_RESERVE = 128
"""File descriptors kept free beside the connection cap: model, camera, libraries, logs."""


def resolve_token(cfg: VanityConfig) -> str | None:
    """The API token: from config, else from a systemd credential; required off loopback."""
    from edge.config import check_token
    from edge.server import is_loopback

    token = cfg.server.token.get_secret_value() if cfg.server.token is not None else None
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if token is None and cred_dir:
        p = Path(cred_dir) / "vanity-token"
        if p.is_file():
            try:
                token = p.read_bytes().decode("utf-8").strip() or None
            except (OSError, UnicodeDecodeError) as e:
                raise DaemonError(f"credential vanity-token: unreadable or not UTF-8 ({type(e).__name__})") from None
    if not is_loopback(cfg.server.host) and not token:
        raise DaemonError(
            f"server.host = {cfg.server.host!r} is not loopback: set server.token (≥16 chars) or provide the "
            "systemd credential 'vanity-token'. Example token: " + secrets.token_urlsafe(24)
        )
    if token is not None:
        try:
            check_token(token)
        except ValueError as e:
            raise DaemonError(str(e)) from None
    return token


def check_deployment(cfg: VanityConfig, need_token: bool = True) -> str | None:
    """Everything ``vanity run`` refuses, checked without starting anything; ``config check`` runs it too.

    Checks the token (off loopback), the model bundle (metadata, hash, classes and geometry),
    the catalogue, the starting look, the LAN host names, and that the connection cap fits the
    open-file limit.
    With ``need_token`` False a missing token off loopback is not an error (the credential
    is only visible to the service). Returns the token.

    Raises:
        DaemonError: listing every problem found.
    """
    import resource

    from edge.catalog import CatalogError, load_catalog
    from edge.contract import BundleError, load_bundle
    from edge.looks import available_looks
    from edge.server import is_loopback

    errors: list[str] = []
    token = None
    try:
        token = resolve_token(cfg)
    except DaemonError as e:
        if need_token or is_loopback(cfg.server.host) or cfg.server.token is not None:
            errors.append(f"server.token: {e}")
    try:
        load_bundle(cfg.model.path)
    except BundleError as e:
        errors.append(f"model.path: model bundle refused: {e}")
    catalog = None
    try:
        catalog = load_catalog(cfg.catalog)
    except CatalogError as e:
        errors.append(f"catalog: catalogue refused: {e}")
    looks = available_looks(catalog)
    if cfg.render.look not in looks:
        errors.append(f"render.look: unknown look {cfg.render.look!r}; choose from: {', '.join(sorted(looks))}")
    if cfg.server.host in ("0.0.0.0", "::") and not cfg.server.allowed_hosts:
        errors.append(
            f"server.allowed_hosts: with host = {cfg.server.host!r}, list the names LAN clients use "
            "(e.g. ['kiosk.local', '192.168.1.20']); other Host headers are refused"
        )
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and cfg.server.max_connections + FD_RESERVE > soft:
        errors.append(
            f"server.max_connections: {cfg.server.max_connections} connections + {FD_RESERVE} other files exceed "
            f"the open-file limit {soft} (lower it, or raise LimitNOFILE=)"
        )
    if errors:
        raise DaemonError(f"{len(errors)} problem(s) with this configuration", errors)
    return token


def build_pipeline(cfg: VanityConfig, notifier: Notifier | None = None) -> LivePipeline:
    """Load the model, catalogue, detector, renderer and source into the live pipeline.

    Raises:
        DaemonError: a part refused (says which and why).
    """
    from edge.catalog import CatalogError, load_catalog
    from edge.contract import BundleError
    from edge.detectors import make_detector
    from edge.makeup import Renderer
    from edge.pipeline import LivePipeline
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
    from edge.tone_model import ToneModel, ToneModelError

    try:
        tone_model = ToneModel.load(cfg.analysis.tone_model)
    except ToneModelError as e:
        raise DaemonError(f"tone model refused (make tone-model rebuilds it): {e}") from e
    try:
        # The first session resolves render.look, so an unknown look fails here.
        return LivePipeline(
            cfg,
            parser,
            detector,
            Renderer(feather_px=cfg.render.feather_px),
            catalog,
            make_source(cfg.source),
            notifier=notifier,
            calibration=calibration,
            tone_model=tone_model,
        )
    except KeyError as e:
        raise DaemonError(f"render.look: {e}") from e


def end_streams_on_shutdown(app: Any, stopping: Callable[[], bool], poll_s: float = 0.1) -> Any:
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


def graceful_server(config: uvicorn.Config) -> uvicorn.Server:
    """A ``uvicorn.Server`` on which SIGTERM ends like SIGINT: a graceful shutdown, then a normal return.

    uvicorn re-raises the signal it caught once it has shut down, so SIGTERM ended the
    process with status 143 (and SIGINT with a KeyboardInterrupt) after a clean stop.
    """
    import signal

    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return Server(config)


def server_config(app: Any, cfg: VanityConfig, guard: ConnectionGuard) -> uvicorn.Config:
    """uvicorn's configuration for the kiosk: the guarded h11 protocol, the kiosk's timeouts and limits."""
    import uvicorn

    from edge.netguard import kiosk_protocol

    return uvicorn.Config(
        app,
        host=cfg.server.host,
        port=cfg.server.port,
        http=kiosk_protocol(guard),
        ws="none",
        proxy_headers=False,  # no proxy in front of a kiosk: X-Forwarded-* must not change the scheme or client
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
        # uvicorn annotates an int but waits a float: a fractional keep-alive is kept as configured.
        timeout_keep_alive=cfg.server.keep_alive_s,  # type: ignore[arg-type]
        h11_max_incomplete_event_size=16 * 1024,
        backlog=BACKLOG,
        lifespan="on",
    )


def serve(cfg: VanityConfig) -> None:
    """Run until SIGTERM or SIGINT; both take the same graceful path (< 2 s) and return normally."""

    from edge.netguard import ConnectionGuard, ServerProbe, install_log_limits
    from edge.sdnotify import Notifier
    from edge.server import create_app
    from edge.snapshots import SnapshotStore

    token = check_deployment(cfg)
    notifier = Notifier()
    pipeline = build_pipeline(cfg, notifier)
    snapshots = SnapshotStore(cfg.snapshots) if cfg.snapshots.enabled else None
    guard = ConnectionGuard(cfg.server.max_connections, cfg.server.header_timeout_s)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        # The socket is bound and listening (connections queue): start the pipeline, tell systemd.
        pipeline.server_alive = ServerProbe(cfg.server.host, port).ok
        pipeline.start()
        log.info("serving the mirror on http://%s:%s/ (source %s)", cfg.server.host, port, pipeline.source.name)
        notifier.ready(f"serving on {cfg.server.host}:{port}")
        try:
            yield
        finally:
            notifier.stopping()
            t0 = time.monotonic()
            pipeline.stop(timeout=1.0)
            log.info("stopped in %.2f s", time.monotonic() - t0)

    app = create_app(pipeline, cfg, token=token, snapshots=snapshots, lifespan=lifespan, guard=guard)
    server: uvicorn.Server | None = None
    config = server_config(end_streams_on_shutdown(app, lambda: server is not None and server.should_exit), cfg, guard)
    install_log_limits()
    server = graceful_server(config)
    # Bind before the lifespan runs, so READY=1 means "the page answers" and port 0 is resolved.
    try:
        sock = config.bind_socket()
    except (OSError, SystemExit) as e:
        raise DaemonError(f"cannot listen on {cfg.server.host}:{cfg.server.port} ({e})") from e
    sock.listen(BACKLOG)
    port = sock.getsockname()[1]

    stop_sweeper = threading.Event()
    if snapshots is not None:
        threading.Thread(target=snapshots.sweep_forever, args=(stop_sweeper,), daemon=True).start()
    try:
        # SIGINT and SIGTERM both trigger uvicorn's graceful shutdown (see graceful_server).
        server.run(sockets=[sock])
    finally:
        stop_sweeper.set()
        pipeline.stop(timeout=0.5)
