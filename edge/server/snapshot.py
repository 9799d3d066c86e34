"""``/api/snapshot``: save the customer's photo, only when the kiosk enables it and the customer asks."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from edge.server.context import PROTECTED, KioskDep
from edge.server.errors import error_responses

router = APIRouter()


class SnapshotReply(BaseModel):
    """Where the customer's photo was saved and when it expires."""

    id: str
    expires_in_s: float


@router.post(
    "/api/snapshot",
    response_model=SnapshotReply,
    summary="Save the customer's photo (only when enabled)",
    responses=error_responses(401, 403, 409),
    dependencies=PROTECTED,
)
async def api_snapshot(kiosk: KioskDep) -> SnapshotReply:
    """Store the shown frame; 403 when saving is off, 409 before the first frame."""
    if kiosk.snapshots is None or not kiosk.features.snapshots:
        raise HTTPException(status_code=403, detail="saving photos is disabled on this kiosk")
    frame = kiosk.pipeline.latest_frame()
    if frame is None or not frame.jpeg:
        raise HTTPException(status_code=409, detail="no frame yet")
    sid = kiosk.snapshots.save(frame.jpeg)
    return SnapshotReply(id=sid, expires_in_s=kiosk.cfg.snapshots.expire_hours * 3600)
