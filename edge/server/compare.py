"""``/api/compare``: before/after — hold to see the face without makeup, or split view."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from edge.pipeline import CompareMode
from edge.server.context import PROTECTED, KioskDep
from edge.server.errors import error_responses

router = APIRouter()


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


class CompareReply(BaseModel):
    """The before/after state."""

    compare: bool
    mode: CompareMode


@router.put(
    "/api/compare",
    response_model=CompareReply,
    summary="Before/after: hold (before) or split view",
    responses=error_responses(401, 403, 422),
    dependencies=PROTECTED,
)
async def put_compare(req: CompareRequest, kiosk: KioskDep) -> CompareReply:
    """Set the customer's before/after mode (a new customer starts with the look shown)."""
    mode: CompareMode = req.mode if isinstance(req, CompareSet) else ("before" if req.on else "off")
    kiosk.pipeline.set_compare(mode)
    return CompareReply(compare=mode == "before", mode=mode)
