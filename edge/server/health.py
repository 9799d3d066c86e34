"""``/healthz`` (200 only while frames flow) and ``/metrics`` (Prometheus text)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from edge.server.context import KioskDep, LiveCounters
from edge.server.errors import error_responses

if TYPE_CHECKING:
    from edge.netguard import ConnectionGuard
    from edge.pipeline import Health, ModelInfo, PipelineMetrics

router = APIRouter()


@router.get("/healthz", summary="200 only while frames are flowing", responses=error_responses(503))
async def healthz(kiosk: KioskDep) -> JSONResponse:
    """The pipeline's health; 503 with ``detail`` while it is not."""
    h = kiosk.pipeline.health()
    body: dict[str, Any] = {
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


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus text exposition")
async def metrics(kiosk: KioskDep) -> PlainTextResponse:
    """Counters, gauges and stage latencies."""
    p = kiosk.pipeline
    text = render_metrics(p.metrics(), p.health(), p.model_info(), kiosk.counters, kiosk.guard)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


def _metric(name: str, kind: str, help_text: str, value: str, labels: str = "") -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name}{labels} {value}"]


def render_metrics(
    stats: PipelineMetrics,
    health: Health,
    model: ModelInfo,
    counters: LiveCounters,
    guard: ConnectionGuard | None = None,
) -> str:
    """Prometheus text format."""
    model_labels = f'{{name="{model.name}",sha256="{model.sha256[:12]}",runtime="{model.runtime}"}}'
    lines = [
        *_metric("vanity_fps", "gauge", "Frames processed per second.", f"{stats.fps:.3f}"),
        *_metric("vanity_frames_total", "counter", "Frames processed.", str(stats.frames)),
        *_metric(
            "vanity_dropped_frames_total",
            "counter",
            "Frames dropped before a stage took them (at capture, or between pipelined stages).",
            str(stats.dropped),
        ),
        *_metric(
            "vanity_client_dropped_frames_total", "counter", "Frames a slow viewer skipped.", str(counters.client_drops)
        ),
        *_metric("vanity_stream_clients", "gauge", "Connected stream viewers.", str(counters.clients)),
        *_metric("vanity_face_present", "gauge", "Whether a face is tracked.", str(int(stats.face_present))),
        *_metric("vanity_healthy", "gauge", "Whether frames are flowing.", str(int(health.healthy))),
        *_metric("vanity_detections_total", "counter", "Detector runs (re-acquisitions).", str(stats.detections)),
        *_metric("vanity_camera_gaps_total", "counter", "Times the camera was lost.", str(stats.camera_gaps)),
        *_metric("vanity_model_info", "gauge", "The model in use.", "1", model_labels),
        "# HELP vanity_stage_latency_ms Stage latency quantiles over the recent window.",
        "# TYPE vanity_stage_latency_ms summary",
        *_metric(
            "vanity_live_channels",
            "gauge",
            "Open live channels (MJPEG streams and server-sent events).",
            str(counters.streams),
        ),
        *_metric(
            "vanity_live_channels_refused_total",
            "counter",
            "Live channels refused at server.max_streams.",
            str(counters.streams_refused),
        ),
    ]
    if guard is not None:
        g = guard.stats
        lines += [
            *_metric("vanity_connections", "gauge", "Open HTTP connections.", str(g.open)),
            *_metric(
                "vanity_connections_evicted_total",
                "counter",
                "Idle connections closed to stay within server.max_connections.",
                str(g.evicted),
            ),
            *_metric(
                "vanity_connections_timed_out_total",
                "counter",
                "Connections closed because a request did not arrive in time.",
                str(g.timed_out),
            ),
        ]
    for stage, s in stats.stages.items():
        lines.append(f'vanity_stage_latency_ms{{stage="{stage}",quantile="0.5"}} {s.p50_ms:.3f}')
        lines.append(f'vanity_stage_latency_ms{{stage="{stage}",quantile="0.95"}} {s.p95_ms:.3f}')
        lines.append(f'vanity_stage_latency_ms_count{{stage="{stage}"}} {s.count}')
    return "\n".join(lines) + "\n"
