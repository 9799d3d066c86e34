"""The kiosk page and the service API (FastAPI), over a running :class:`Mirror`.

Viewers never slow the pipeline: each stream client reads the latest encoded
frame at its own pace, so a stalled client only misses frames (counted), and
holds at most one frame in flight.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

STATIC = Path(__file__).resolve().parent / "static"
BOUNDARY = "vanityframe"
LIP_CLASSES = ("upper_lip", "lower_lip")
CompareMode = Literal["off", "before", "split"]


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts local connections."""
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------------- request and reply models


class LookByName(BaseModel):
    """Wear a named look (from the catalogue or the built-ins)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64, description="A look from the catalogue or the built-ins.")


class LookBySku(BaseModel):
    """Try one catalogue product: alone (``try``), on top of the current look (``add``), or take it off."""

    model_config = ConfigDict(extra="forbid")

    sku: str = Field(max_length=64, description="A catalogue product.")
    intensity: float = Field(0.7, ge=0.0, le=1.0, description="Intensity of the product.")
    action: Literal["try", "add", "remove"] = Field(
        "try", description="try: this product alone; add: replace its layer in the current look; remove: take it off."
    )


class LookClear(BaseModel):
    """Take every product of one category off the current look."""

    model_config = ConfigDict(extra="forbid")

    clear: Literal["lips", "cheeks", "eyes", "brows", "face"] = Field(description="The category to take off.")


LookRequest = LookByName | LookBySku | LookClear


class CompareHold(BaseModel):
    """Hold to compare: True shows the face without makeup."""

    model_config = ConfigDict(extra="forbid")

    on: bool = Field(description="True shows the face without makeup (mode 'before').")


class CompareSet(BaseModel):
    """Before/after mode."""

    model_config = ConfigDict(extra="forbid")

    mode: CompareMode = Field(
        description="off: makeup; before: no makeup; split: the shown left half without, the right half with makeup."
    )


CompareRequest = CompareHold | CompareSet


class ErrorReply(BaseModel):
    """Why a request was refused."""

    detail: str


class LookReply(BaseModel):
    """The current look."""

    name: str
    look: dict[str, Any]


class CompareReply(BaseModel):
    """The before/after state."""

    compare: bool
    mode: CompareMode


class SnapshotReply(BaseModel):
    """Where the customer's photo was saved and when it expires."""

    id: str
    expires_in_s: float


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        401: "Token required",
        403: "Refused (disabled, or a foreign origin)",
        404: "Unknown look or product",
        409: "No frame yet",
        422: "Invalid request body or query",
        503: "Not available now (says why)",
    }
    return {c: {"model": ErrorReply, "description": text[c]} for c in codes}


def _look_json(look) -> dict[str, Any]:
    return json.loads(look.model_dump_json()) if hasattr(look, "model_dump_json") else {"name": str(look)}


# ---------------------------------------------------------------------- split view


class SplitView:
    """Wraps the renderer: while on, the shown image's left half keeps the face without makeup.

    The split belongs to one session: a new customer (a new session) never inherits it.
    """

    def __init__(self, mirror):
        self.mirror = mirror
        self.inner = mirror.renderer
        self._session = None

    @property
    def on(self) -> bool:
        """Whether the split is shown for the current session."""
        return self._session is not None and self._session is self.mirror.session

    def set(self, on: bool) -> None:
        """Turn the split view on or off for the current session."""
        self._session = self.mirror.session if on else None

    def render(self, frame: np.ndarray, face, look) -> np.ndarray:
        """Render the look; with the split on, restore the 'before' half and draw a divider."""
        out = self.inner.render(frame, face, look)
        if not self.on:
            return out
        w = frame.shape[1]
        half = w // 2
        # The image is flipped after rendering when mirrored: the shown left half is the frame's right half.
        before = slice(w - half, w) if self.mirror.cfg.render.mirror else slice(0, half)
        out[:, before] = frame[:, before]
        out[:, max(half - 1, 0) : half + 1] = 255
        return out


def install_split_view(mirror) -> SplitView:
    """Put a :class:`SplitView` in front of the mirror's renderer (once)."""
    if not isinstance(mirror.renderer, SplitView):
        mirror.renderer = SplitView(mirror)
    return mirror.renderer


# ---------------------------------------------------------------------- the app


PUBLIC_PATHS = ("/", "/healthz", "/metrics", "/api/catalog", "/openapi.json")
"""Routes that carry no image, no customer data and change nothing (also open without the token)."""

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


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


def allowed_host_names(cfg) -> frozenset[str]:
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

    def __init__(self, app, hosts: frozenset[str], allowed_origins: list[str]):
        self.app = app
        self.hosts = hosts
        self.allowed = set(allowed_origins)

    def _refusal(self, scope) -> tuple[int, str] | None:
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

    async def __call__(self, scope, receive, send):
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


def _headers_only(receive, send):
    """receive/send for a HEAD served as GET: the headers go out, the body never; then a disconnect."""
    done = {"sent": False}

    async def head_receive():
        if done["sent"]:
            return {"type": "http.disconnect"}
        return await receive()

    async def head_send(message):
        if message["type"] == "http.response.start":
            await send(message)
        elif message["type"] == "http.response.body" and not done["sent"]:
            done["sent"] = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return head_receive, head_send


def create_app(mirror, cfg, token: str | None = None, snapshots=None, lifespan=None, guard=None) -> FastAPI:
    """Build the web app over a mirror; ``token`` is required on protected routes when set.

    ``guard`` (an :class:`edge.netguard.ConnectionGuard`) adds its counters to ``/metrics``.
    """
    app = FastAPI(
        title="Vanity kiosk API",
        version="1",
        description="Live mirror stream, state, looks and catalogue of a Vanity kiosk. "
        "When the daemon listens off loopback, every route but /, /static, /healthz, /metrics, "
        "/api/catalog and /openapi.json needs the token (`Authorization: Bearer …` or `?token=`).",
        lifespan=lifespan,
        # The interactive docs load their scripts from a CDN: the kiosk has no network. The schema stays.
        docs_url=None,
        redoc_url=None,
    )
    state: dict[str, Any] = {"client_drops": 0, "clients": 0, "streams": 0, "streams_refused": 0, "guard": guard}
    split = install_split_view(mirror)
    allowed_origins = [o.rstrip("/") for o in cfg.server.allowed_origins if o != "*"]
    features = {"snapshots": bool(snapshots is not None and cfg.snapshots.enabled), "split": True}

    if allowed_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=allowed_origins,
            allow_methods=["GET", "PUT", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )

    app.add_middleware(KioskPolicy, hosts=allowed_host_names(cfg), allowed_origins=allowed_origins)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError):
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()]
        summary = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:3])
        return JSONResponse({"detail": f"invalid request: {summary}", "errors": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # Never a bare 500 page: say what failed, keep serving.
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)

    def auth(request: Request) -> None:
        if token is None:
            return
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else request.query_params.get("token", "")
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(status_code=401, detail="token required", headers={"WWW-Authenticate": "Bearer"})

    protected = {"dependencies": [Depends(auth)]}

    def live_channel(body) -> LiveChannel:
        # A kiosk has a handful of viewers; more live channels would starve the pipeline of CPU.
        if state["streams"] >= cfg.server.max_streams:
            state["streams_refused"] += 1
            raise HTTPException(
                status_code=503,
                detail=f"{cfg.server.max_streams} live viewers already connected",
                headers={"Retry-After": "5"},
            )
        return LiveChannel(body, state)

    # ------------------------------------------------------------------ page

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # ------------------------------------------------------------------ health & metrics

    @app.get("/healthz", summary="200 only while frames are flowing", responses=_errors(503))
    async def healthz():
        h = mirror.health()
        body = {
            "healthy": h.healthy,
            "reason": h.reason,
            "camera": h.camera,
            "fps": round(h.fps, 1),
            "last_frame_age_s": None if h.last_frame_age_s is None else round(h.last_frame_age_s, 3),
            "model": h.model,
            **h.extras,
        }
        if not h.healthy:
            body["detail"] = h.reason
        return JSONResponse(body, status_code=200 if h.healthy else 503)

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus text exposition")
    async def metrics():
        return PlainTextResponse(render_metrics(mirror, state), media_type="text/plain; version=0.0.4")

    # ------------------------------------------------------------------ state & looks

    def current_state() -> dict[str, Any]:
        s = mirror_state(mirror)
        s["compare_mode"] = "before" if s["compare"] else ("split" if split.on else "off")
        s["features"] = features
        return s

    @app.get("/api/state", summary="What the mirror sees and shows now", responses=_errors(401), **protected)
    async def api_state():
        return current_state()

    def look_reply() -> LookReply:
        return LookReply(name=mirror.session.look_name, look=_look_json(mirror.session.look))

    @app.get("/api/look", response_model=LookReply, summary="The current look", responses=_errors(401), **protected)
    async def get_look():
        return look_reply()

    @app.put(
        "/api/look",
        response_model=LookReply,
        summary="Choose a look, or try, add or remove one product",
        responses=_errors(401, 403, 404, 422),
        **protected,
    )
    async def put_look(req: LookRequest):
        current = mirror.session.look
        if isinstance(req, LookByName):
            try:
                look = mirror.resolve_look(req.name)
            except KeyError:
                raise HTTPException(status_code=404, detail=f"unknown look {req.name!r}") from None
            mirror.set_look(look, req.name)
        elif isinstance(req, LookClear):
            from edge.catalog import CATEGORY_KINDS

            kinds = set(CATEGORY_KINDS[req.clear])
            layers = [lay for lay in current.layers if lay.kind not in kinds]
            mirror.set_look(current.model_copy(update={"name": "custom", "layers": layers}), "custom")
        else:
            if mirror.catalog is None:
                raise HTTPException(status_code=404, detail="this kiosk has no catalogue")
            try:
                single = mirror.catalog.look_for(req.sku, req.intensity)
            except KeyError:
                raise HTTPException(status_code=404, detail=f"unknown sku {req.sku!r}") from None
            if req.action == "remove":
                layers = [lay for lay in current.layers if lay.sku != req.sku]
                single = current.model_copy(update={"name": "custom", "layers": layers})
            elif req.action == "add":
                kinds = {x.kind for x in single.layers}
                layers = [lay for lay in current.layers if lay.kind not in kinds]
                single = single.model_copy(update={"name": "custom", "layers": layers + list(single.layers)})
            mirror.set_look(single, single.name)
        return look_reply()

    @app.put(
        "/api/compare",
        response_model=CompareReply,
        summary="Before/after: hold (before) or split view",
        responses=_errors(401, 403, 422),
        **protected,
    )
    async def put_compare(req: CompareRequest):
        mode = req.mode if isinstance(req, CompareSet) else ("before" if req.on else "off")
        mirror.set_compare(mode == "before")
        split.set(mode == "split")
        return CompareReply(compare=mirror.session.compare, mode=mode)

    @app.get("/api/catalog", summary="Products and looks of the store, and the kiosk's features")
    async def api_catalog():
        return {**catalog_json(mirror), "features": features}

    @app.post(
        "/api/snapshot",
        response_model=SnapshotReply,
        summary="Save the customer's photo (only when enabled)",
        responses=_errors(401, 403, 409),
        **protected,
    )
    async def api_snapshot():
        if not features["snapshots"]:
            raise HTTPException(status_code=403, detail="saving photos is disabled on this kiosk")
        _, jpeg = mirror.out.latest()
        if not jpeg:
            raise HTTPException(status_code=409, detail="no frame yet")
        sid = snapshots.save(jpeg)
        return SnapshotReply(id=sid, expires_in_s=cfg.snapshots.expire_hours * 3600)

    # ------------------------------------------------------------------ live channels

    @app.get(
        "/stream.mjpg",
        summary="Live mirror image (MJPEG); each viewer gets the latest frame at its own pace",
        response_class=StreamingResponse,
        responses={**_errors(401), 200: {"content": {"multipart/x-mixed-replace": {}}}},
        **protected,
    )
    async def stream():
        return StreamingResponse(
            live_channel(mjpeg_frames(mirror.out, cfg.server.stream_fps, state)),
            media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @app.get(
        "/frame.jpg",
        summary="The latest mirror image (one JPEG)",
        response_class=Response,
        responses={**_errors(401, 503), 200: {"content": {"image/jpeg": {}}}},
        **protected,
    )
    async def frame():
        seq, jpeg = mirror.out.latest()
        if not jpeg:
            raise HTTPException(status_code=503, detail="no frame yet")
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store", "X-Frame-Seq": str(seq)})

    @app.get(
        "/api/events",
        summary="Live state updates (Server-Sent Events)",
        response_class=StreamingResponse,
        responses={**_errors(401, 422), 200: {"content": {"text/event-stream": {}}}},
        **protected,
    )
    async def events(request: Request, interval: float = Query(0.5, ge=0.1, le=10.0, description="Seconds.")):
        async def gen():
            last = None
            yield "retry: 1500\n\n"
            while not await request.is_disconnected():
                body = json.dumps(current_state())
                if body != last:
                    yield f"event: state\ndata: {body}\n\n"
                    last = body
                else:
                    yield ": keep-alive\n\n"
                await asyncio.sleep(interval)

        return StreamingResponse(
            live_channel(gen()),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return app


class LiveChannel:
    """A stream's body that holds one of the kiosk's ``max_streams`` slots until it ends, fails or is dropped."""

    def __init__(self, body, state: dict[str, Any]):
        self.body, self.state, self.held = body, state, True
        state["streams"] += 1

    def release(self) -> None:
        """Give the slot back (once)."""
        if self.held:
            self.held = False
            self.state["streams"] -= 1

    def __aiter__(self) -> LiveChannel:
        return self

    async def __anext__(self):
        try:
            return await self.body.__anext__()
        except BaseException:  # the end, a disconnect (cancellation) or an error: all free the slot
            self.release()
            raise

    def __del__(self) -> None:  # a response dropped before its body was read
        self.release()


async def mjpeg_frames(out, max_fps: float, state: dict[str, Any], poll_s: float = 0.005):
    """Multipart JPEG parts: the newest frame whenever there is one, at most ``max_fps`` per second.

    A viewer that reads slowly blocks only its own generator (in ``send``); when it
    catches up it gets the latest frame, and the frames it missed are counted.
    """
    loop = asyncio.get_running_loop()
    # A little under the period, so a viewer at the pipeline's own rate does not alias down to half.
    min_gap = 0.9 / max_fps
    last = -1
    state["clients"] += 1
    try:
        while True:
            seq, jpeg = out.latest()
            if seq == last or not jpeg:
                await asyncio.sleep(poll_s)
                continue
            if last >= 0 and seq > last + 1:
                state["client_drops"] += seq - last - 1
            last = seq
            sent = loop.time()
            yield (
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                + jpeg
                + b"\r\n"
            )
            await asyncio.sleep(max(0.0, sent + min_gap - loop.time()))
    finally:
        state["clients"] -= 1


Mode = Literal["attract", "mirror"]


def jpeg_size(jpeg: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, without decoding it."""
    i = 2
    n = len(jpeg)
    while i + 9 < n:
        if jpeg[i] != 0xFF:
            return None
        marker = jpeg[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(jpeg[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h = int.from_bytes(jpeg[i + 5 : i + 7], "big")
            w = int.from_bytes(jpeg[i + 7 : i + 9], "big")
            return w, h
        i += 2 + length
    return None


def face_regions(mirror, face) -> dict[str, list[float]] | None:
    """Face and lips boxes [x0, y0, x1, y1] in the shown image, as fractions of its size."""
    _, jpeg = mirror.out.latest()
    size = jpeg_size(jpeg) if jpeg else None
    if face is None or size is None:
        return None
    w, h = size
    classes = list(mirror.analyzer.parser.metadata.classes)
    m = face.output_to_image()
    out: dict[str, list[float]] = {}
    groups = {"face": [c for c in classes if c not in ("background", "hair")], "lips": list(LIP_CLASSES)}
    for name, group in groups.items():
        ids = [classes.index(c) for c in group if c in classes]
        vs, us = np.nonzero(np.isin(face.labels, ids))
        if len(us) < 3:
            continue
        pts = np.stack([us, vs, np.ones_like(us)], axis=1).astype(np.float64) @ m.T
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        if mirror.cfg.render.mirror:
            x0, x1 = w - 1 - x1, w - 1 - x0
        box = [x0 / w, y0 / h, x1 / w, y1 / h]
        out[name] = [round(float(min(max(v, 0.0), 1.0)), 4) for v in box]
    return out


def mirror_state(mirror) -> dict[str, Any]:
    """The page's view of the mirror: face present, tone, look, recommendations."""
    s = mirror.session
    face = mirror.face
    tone = s.tone
    sure = tone is not None and tone.confidence >= mirror.cfg.analysis.tone_min_confidence
    recs = []
    if mirror.catalog is not None and sure:
        picks = [(r.product, r.reason) for r in mirror.catalog.recommend(tone, limit=4)]
    elif mirror.catalog is not None and tone is not None:
        # Too unsure of the tone to advise by it: the products of the chosen look instead.
        picks = []
        for lay in getattr(s.look, "layers", []):
            try:
                picks.append((mirror.catalog.product(lay.sku), "in your look"))
            except KeyError:
                continue
    else:
        picks = []
    for product, reason in picks[:4]:
        recs.append(
            {
                "sku": product.sku,
                "brand": product.brand,
                "product": product.product,
                "shade": product.shade,
                "hex": product.hex,
                "category": product.category,
                "reason": reason,
            }
        )
    now = mirror.clock()
    look = s.look
    return {
        "mode": "mirror" if face is not None else "attract",
        "face_present": face is not None,
        "face_score": None if face is None else round(float(face.face_score), 3),
        "no_face_s": None if face is not None or not s.last_face else round(now - s.last_face, 1),
        "regions": face_regions(mirror, face),
        "tone": None
        if tone is None
        else {
            "monk": tone.monk,
            "undertone": tone.undertone,
            "label": f"{tone.undertone} undertone, Monk {tone.monk}",
            "confidence": tone.confidence,
            "uncertainty": tone.uncertainty,
            "reference": tone.reference,
            "reliable": sure,
        },
        "look": s.look_name,
        "layers": [
            {"kind": lay.kind, "sku": lay.sku, "color": lay.color, "intensity": lay.intensity}
            for lay in getattr(look, "layers", [])
        ],
        "compare": s.compare,
        "recommendations": recs,
        "session": hashlib.blake2s(repr(s.started).encode(), digest_size=4).hexdigest(),
        "session_age_s": round(now - s.started, 1),
        "reset_after_s": mirror.cfg.session.reset_after_s,
        "fps": round(mirror.fps.rate(time.monotonic()), 1),
        "camera": mirror.camera_state,
    }


def catalog_json(mirror) -> dict[str, Any]:
    """Products and looks for the page's controls."""
    from edge.makeup import builtin_looks

    cat = mirror.catalog
    products = [json.loads(p.model_dump_json()) for p in cat.products] if cat is not None else []
    looks = {}
    for name, look in builtin_looks().items():
        looks[name] = {"name": name, "title": getattr(look, "title", name), "colors": [x.color for x in look.layers]}
    if cat is not None:
        for look in cat.looks:
            looks[look.name] = {
                "name": look.name,
                "title": getattr(look, "title", look.name),
                "colors": [x.color for x in look.layers],
            }
    return {"products": products, "looks": list(looks.values())}


def render_metrics(mirror, state: dict[str, Any]) -> str:
    """Prometheus text format."""
    now = time.monotonic()
    h = mirror.health()
    meta = mirror.analyzer.parser.metadata
    lines = [
        "# HELP vanity_fps Frames processed per second.",
        "# TYPE vanity_fps gauge",
        f"vanity_fps {mirror.fps.rate(now):.3f}",
        "# HELP vanity_frames_total Frames processed.",
        "# TYPE vanity_frames_total counter",
        f"vanity_frames_total {mirror.frames}",
        "# HELP vanity_dropped_frames_total Frames replaced in the slot before processing.",
        "# TYPE vanity_dropped_frames_total counter",
        f"vanity_dropped_frames_total {mirror.slot.dropped}",
        "# HELP vanity_client_dropped_frames_total Frames a slow viewer skipped.",
        "# TYPE vanity_client_dropped_frames_total counter",
        f"vanity_client_dropped_frames_total {state['client_drops']}",
        "# HELP vanity_stream_clients Connected stream viewers.",
        "# TYPE vanity_stream_clients gauge",
        f"vanity_stream_clients {state['clients']}",
        "# HELP vanity_face_present Whether a face is tracked.",
        "# TYPE vanity_face_present gauge",
        f"vanity_face_present {int(mirror.face is not None)}",
        "# HELP vanity_healthy Whether frames are flowing.",
        "# TYPE vanity_healthy gauge",
        f"vanity_healthy {int(h.healthy)}",
        "# HELP vanity_detections_total Detector runs (re-acquisitions).",
        "# TYPE vanity_detections_total counter",
        f"vanity_detections_total {mirror.analyzer.detections}",
        "# HELP vanity_camera_gaps_total Times the camera was lost.",
        "# TYPE vanity_camera_gaps_total counter",
        f"vanity_camera_gaps_total {mirror.camera_gaps}",
        "# HELP vanity_model_info The model in use.",
        "# TYPE vanity_model_info gauge",
        f'vanity_model_info{{name="{meta.name}",sha256="{meta.tflite_sha256[:12]}",'
        f'runtime="{getattr(mirror.analyzer.parser, "runtime_name", "?")}"}} 1',
        "# HELP vanity_stage_latency_ms Stage latency quantiles over the recent window.",
        "# TYPE vanity_stage_latency_ms summary",
    ]
    lines += [
        "# HELP vanity_live_channels Open live channels (MJPEG streams and server-sent events).",
        "# TYPE vanity_live_channels gauge",
        f"vanity_live_channels {state['streams']}",
        "# HELP vanity_live_channels_refused_total Live channels refused at server.max_streams.",
        "# TYPE vanity_live_channels_refused_total counter",
        f"vanity_live_channels_refused_total {state['streams_refused']}",
    ]
    guard = state.get("guard")
    if guard is not None:
        g = guard.stats
        lines += [
            "# HELP vanity_connections Open HTTP connections.",
            "# TYPE vanity_connections gauge",
            f"vanity_connections {g.open}",
            "# HELP vanity_connections_evicted_total Idle connections closed to stay within server.max_connections.",
            "# TYPE vanity_connections_evicted_total counter",
            f"vanity_connections_evicted_total {g.evicted}",
            "# HELP vanity_connections_timed_out_total Connections closed because a request did not arrive in time.",
            "# TYPE vanity_connections_timed_out_total counter",
            f"vanity_connections_timed_out_total {g.timed_out}",
        ]
    for stage, s in mirror.stats.summary().items():
        lines.append(f'vanity_stage_latency_ms{{stage="{stage}",quantile="0.5"}} {s.p50_ms:.3f}')
        lines.append(f'vanity_stage_latency_ms{{stage="{stage}",quantile="0.95"}} {s.p95_ms:.3f}')
        lines.append(f'vanity_stage_latency_ms_count{{stage="{stage}"}} {s.count}')
    return "\n".join(lines) + "\n"
