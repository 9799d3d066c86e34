"""The kiosk page and the service API (FastAPI), over a running :class:`Mirror`.

Viewers never slow the pipeline: each stream client reads the latest encoded
frame at its own pace, so a stalled client only misses frames (counted), and
holds at most one frame in flight.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import time
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

STATIC = Path(__file__).resolve().parent / "static"
BOUNDARY = "vanityframe"


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts local connections."""
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LookRequest(BaseModel):
    """Choose a look: a named look, or one product at an intensity, or explicit layers."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=64, description="A look from the catalogue or the built-ins.")
    sku: str | None = Field(None, max_length=64, description="A single catalogue product to try.")
    intensity: float = Field(0.7, ge=0.0, le=1.0, description="Intensity for a single product.")
    add: bool = Field(False, description="With sku: add to the current look instead of replacing it.")


class CompareRequest(BaseModel):
    """Before/after."""

    model_config = ConfigDict(extra="forbid")

    on: bool = Field(description="True shows the face without makeup.")


class SnapshotReply(BaseModel):
    """Where the customer's photo was saved and when it expires."""

    id: str
    expires_in_s: float


def _look_json(look) -> dict[str, Any]:
    return json.loads(look.model_dump_json()) if hasattr(look, "model_dump_json") else {"name": str(look)}


def create_app(mirror, cfg, token: str | None = None, snapshots=None, lifespan=None) -> FastAPI:
    """Build the web app over a mirror; ``token`` is required on protected routes when set."""
    app = FastAPI(
        title="Vanity kiosk API",
        version="1",
        description="Live mirror stream, state, looks and catalogue of a Vanity kiosk.",
        lifespan=lifespan,
    )
    state = {"client_drops": 0, "clients": 0}

    if cfg.server.allowed_origins:
        from fastapi.middleware.cors import CORSMiddleware

        origins = [o for o in cfg.server.allowed_origins if o != "*"]
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "PUT", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError):
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()]
        return JSONResponse({"detail": "invalid request", "errors": errors}, status_code=422)

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

    # ------------------------------------------------------------------ page

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # ------------------------------------------------------------------ health & metrics

    @app.get("/healthz", summary="200 only while frames are flowing")
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
        return JSONResponse(body, status_code=200 if h.healthy else 503)

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus text exposition")
    async def metrics():
        return PlainTextResponse(render_metrics(mirror, state), media_type="text/plain; version=0.0.4")

    # ------------------------------------------------------------------ state & looks

    @app.get("/api/state", summary="What the mirror sees and shows now")
    async def api_state():
        return mirror_state(mirror)

    @app.get("/api/look", summary="The current look")
    async def get_look():
        return {"name": mirror.session.look_name, "look": _look_json(mirror.session.look)}

    @app.put("/api/look", dependencies=[Depends(auth)], summary="Choose a look or try one product")
    async def put_look(req: LookRequest):
        if (req.name is None) == (req.sku is None):
            raise HTTPException(status_code=400, detail="give exactly one of 'name' or 'sku'")
        if req.name is not None:
            try:
                look = mirror._resolve_look(req.name)
            except KeyError:
                raise HTTPException(status_code=404, detail=f"unknown look {req.name!r}") from None
            mirror.set_look(look, req.name)
        else:
            try:
                single = mirror.catalog.look_for(req.sku, req.intensity)
            except KeyError:
                raise HTTPException(status_code=404, detail=f"unknown sku {req.sku!r}") from None
            if req.add:
                layers = [lay for lay in mirror.session.look.layers if lay.kind not in {x.kind for x in single.layers}]
                single = single.model_copy(update={"name": "custom", "layers": layers + list(single.layers)})
            mirror.set_look(single, single.name)
        return {"name": mirror.session.look_name, "look": _look_json(mirror.session.look)}

    @app.put("/api/compare", dependencies=[Depends(auth)], summary="Before/after")
    async def put_compare(req: CompareRequest):
        mirror.set_compare(req.on)
        return {"compare": mirror.session.compare}

    @app.get("/api/catalog", summary="Products and looks of the store")
    async def api_catalog():
        return catalog_json(mirror)

    @app.post(
        "/api/snapshot",
        dependencies=[Depends(auth)],
        response_model=SnapshotReply,
        summary="Save the customer's photo (only when enabled)",
    )
    async def api_snapshot():
        if snapshots is None or not cfg.snapshots.enabled:
            raise HTTPException(status_code=403, detail="saving photos is disabled on this kiosk")
        _, jpeg = mirror.out.latest()
        if not jpeg:
            raise HTTPException(status_code=409, detail="no frame yet")
        sid = snapshots.save(jpeg)
        return SnapshotReply(id=sid, expires_in_s=cfg.snapshots.expire_hours * 3600)

    # ------------------------------------------------------------------ live channels

    @app.get("/stream.mjpg", dependencies=[Depends(auth)], summary="Live mirror image (MJPEG)")
    async def stream(request: Request):
        period = 1.0 / cfg.server.stream_fps

        async def frames():
            last = -1
            state["clients"] += 1
            try:
                while not await request.is_disconnected():
                    seq, jpeg = mirror.out.latest()
                    if seq != last and jpeg:
                        if last >= 0 and seq > last + 1:
                            state["client_drops"] += seq - last - 1
                        last = seq
                        yield (
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                            + jpeg
                            + b"\r\n"
                        )
                    await asyncio.sleep(period)
            finally:
                state["clients"] -= 1

        return StreamingResponse(
            frames(),
            media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            headers={"Cache-Control": "no-store"},
        )

    @app.get("/frame.jpg", dependencies=[Depends(auth)], summary="The latest mirror image (one JPEG)")
    async def frame():
        seq, jpeg = mirror.out.latest()
        if not jpeg:
            raise HTTPException(status_code=503, detail="no frame yet")
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store", "X-Frame-Seq": str(seq)})

    @app.get("/api/events", dependencies=[Depends(auth)], summary="Live state updates (Server-Sent Events)")
    async def events(request: Request, interval: float = 0.5):
        interval = min(max(interval, 0.1), 10.0)

        async def gen():
            last = None
            while not await request.is_disconnected():
                body = json.dumps(mirror_state(mirror))
                if body != last:
                    yield f"event: state\ndata: {body}\n\n"
                    last = body
                else:
                    yield ": keep-alive\n\n"
                await asyncio.sleep(interval)

        return StreamingResponse(gen(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    return app


Mode = Literal["attract", "mirror"]


def mirror_state(mirror) -> dict[str, Any]:
    """The page's view of the mirror: face present, tone, look, recommendations."""
    s = mirror.session
    face = mirror.face
    tone = s.tone
    recs = []
    if tone is not None and mirror.catalog is not None:
        for r in mirror.catalog.recommend(tone, limit=4):
            recs.append(
                {
                    "sku": r.product.sku,
                    "brand": r.product.brand,
                    "product": r.product.product,
                    "shade": r.product.shade,
                    "hex": r.product.hex,
                    "category": r.product.category,
                    "reason": r.reason,
                }
            )
    now = time.monotonic()
    return {
        "mode": "mirror" if face is not None else "attract",
        "face_present": face is not None,
        "face_score": None if face is None else round(float(face.face_score), 3),
        "tone": None
        if tone is None
        else {"monk": tone.monk, "undertone": tone.undertone, "label": f"{tone.undertone} undertone, Monk {tone.monk}"},
        "look": s.look_name,
        "compare": s.compare,
        "recommendations": recs,
        "session_age_s": round(now - s.started, 1),
        "fps": round(mirror.fps.rate(now), 1),
        "camera": mirror.camera_state,
    }


def catalog_json(mirror) -> dict[str, Any]:
    """Products and looks for the page's controls."""
    from edge.makeup import builtin_looks

    cat = mirror.catalog
    products = [json.loads(p.model_dump_json()) for p in cat.products] if cat is not None else []
    looks = {}
    for name, look in builtin_looks().items():
        looks[name] = {"name": name, "title": getattr(look, "title", name)}
    if cat is not None:
        for look in cat.looks:
            looks[look.name] = {"name": look.name, "title": getattr(look, "title", look.name)}
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
    for stage, s in mirror.stats.summary().items():
        lines.append(f'vanity_stage_latency_ms{{stage="{stage}",quantile="0.5"}} {s.p50_ms:.3f}')
        lines.append(f'vanity_stage_latency_ms{{stage="{stage}",quantile="0.95"}} {s.p95_ms:.3f}')
        lines.append(f'vanity_stage_latency_ms_count{{stage="{stage}"}} {s.count}')
    return "\n".join(lines) + "\n"
