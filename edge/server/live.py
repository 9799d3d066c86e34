"""The live channels: ``/stream.mjpg`` (MJPEG), ``/frame.jpg`` (one JPEG) and ``/api/events`` (SSE).

Viewers never slow the pipeline: each stream client reads the latest encoded frame at its
own pace, so a stalled client only misses frames (counted), and holds at most one frame in
flight. A kiosk has a handful of viewers: more than ``server.max_streams`` live channels
get 503, since they would starve the pipeline of CPU.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse

from edge.server.context import PROTECTED, Kiosk, KioskDep, LiveCounters
from edge.server.errors import error_responses
from edge.server.state import page_state

if TYPE_CHECKING:
    from edge.pipeline import LivePipeline

BOUNDARY = "vanityframe"

router = APIRouter()


class LiveChannel:
    """A stream's body that holds one of the kiosk's ``max_streams`` slots until it ends, fails or is dropped."""

    def __init__(self, body: AsyncIterator[bytes] | AsyncIterator[str], counters: LiveCounters) -> None:
        self.body, self.counters, self.held = body, counters, True
        counters.streams += 1

    def release(self) -> None:
        """Give the slot back (once)."""
        if self.held:
            self.held = False
            self.counters.streams -= 1

    def __aiter__(self) -> LiveChannel:
        return self

    async def __anext__(self) -> bytes | str:
        try:
            return await self.body.__anext__()
        except BaseException:  # the end, a disconnect (cancellation) or an error: all free the slot
            self.release()
            raise

    def __del__(self) -> None:  # a response dropped before its body was read
        self.release()


def live_channel(kiosk: Kiosk, body: AsyncIterator[bytes] | AsyncIterator[str]) -> LiveChannel:
    """Hold a live-channel slot for ``body``.

    Raises:
        HTTPException: 503 (with Retry-After) when every slot is taken.
    """
    limit = kiosk.cfg.server.max_streams
    if kiosk.counters.streams >= limit:
        kiosk.counters.streams_refused += 1
        raise HTTPException(
            status_code=503, detail=f"{limit} live viewers already connected", headers={"Retry-After": "5"}
        )
    return LiveChannel(body, kiosk.counters)


async def mjpeg_frames(
    pipeline: LivePipeline, max_fps: float, counters: LiveCounters, poll_s: float = 0.005
) -> AsyncIterator[bytes]:
    """Multipart JPEG parts: the newest frame whenever there is one, at most ``max_fps`` per second.

    A viewer that reads slowly blocks only its own generator (in ``send``); when it
    catches up it gets the latest frame, and the frames it missed are counted.
    """
    loop = asyncio.get_running_loop()
    # A little under the period, so a viewer at the pipeline's own rate does not alias down to half.
    min_gap = 0.9 / max_fps
    last = -1
    counters.clients += 1
    try:
        while True:
            frame = pipeline.latest_frame()
            if frame is None or frame.seq == last or not frame.jpeg:
                await asyncio.sleep(poll_s)
                continue
            if last >= 0 and frame.seq > last + 1:
                counters.client_drops += frame.seq - last - 1
            last = frame.seq
            sent = loop.time()
            yield (
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame.jpeg)}\r\n\r\n".encode()
                + frame.jpeg
                + b"\r\n"
            )
            await asyncio.sleep(max(0.0, sent + min_gap - loop.time()))
    finally:
        counters.clients -= 1


async def state_events(request: Request, kiosk: Kiosk, interval: float) -> AsyncIterator[str]:
    """Server-sent ``state`` events whenever the page's state changes; a keep-alive comment otherwise."""
    last = None
    yield "retry: 1500\n\n"
    while not await request.is_disconnected():
        body = json.dumps(page_state(kiosk).model_dump(mode="json"))
        if body != last:
            yield f"event: state\ndata: {body}\n\n"
            last = body
        else:
            yield ": keep-alive\n\n"
        await asyncio.sleep(interval)


_LIVE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


@router.get(
    "/stream.mjpg",
    summary="Live mirror image (MJPEG); each viewer gets the latest frame at its own pace",
    response_class=StreamingResponse,
    responses={**error_responses(401), 200: {"content": {"multipart/x-mixed-replace": {}}}},
    dependencies=PROTECTED,
)
async def stream(kiosk: KioskDep) -> StreamingResponse:
    """The live image, one multipart JPEG per frame."""
    frames = mjpeg_frames(kiosk.pipeline, kiosk.cfg.server.stream_fps, kiosk.counters)
    return StreamingResponse(
        live_channel(kiosk, frames),
        media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers=_LIVE_HEADERS,
    )


@router.get(
    "/frame.jpg",
    summary="The latest mirror image (one JPEG)",
    response_class=Response,
    responses={**error_responses(401, 503), 200: {"content": {"image/jpeg": {}}}},
    dependencies=PROTECTED,
)
async def frame(kiosk: KioskDep) -> Response:
    """The newest shown frame; 503 before the first."""
    latest = kiosk.pipeline.latest_frame()
    if latest is None or not latest.jpeg:
        raise HTTPException(status_code=503, detail="no frame yet")
    headers = {"Cache-Control": "no-store", "X-Frame-Seq": str(latest.seq)}
    return Response(latest.jpeg, media_type="image/jpeg", headers=headers)


@router.get(
    "/api/events",
    summary="Live state updates (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={**error_responses(401, 422), 200: {"content": {"text/event-stream": {}}}},
    dependencies=PROTECTED,
)
async def events(
    request: Request, kiosk: KioskDep, interval: float = Query(0.5, ge=0.1, le=10.0, description="Seconds.")
) -> StreamingResponse:
    """The page's state, pushed when it changes."""
    return StreamingResponse(
        live_channel(kiosk, state_events(request, kiosk, interval)),
        media_type="text/event-stream",
        headers=_LIVE_HEADERS,
    )
