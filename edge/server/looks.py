"""``/api/look``: the worn look; choose one, or try, add, remove or clear products."""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from edge.catalog import CATEGORY_KINDS, Catalog
from edge.looks import with_layers_of, without_kinds, without_sku
from edge.makeup import Look
from edge.pipeline import LivePipeline
from edge.server.context import PROTECTED, KioskDep
from edge.server.errors import error_responses

router = APIRouter()


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


class LookReply(BaseModel):
    """The current look."""

    name: str
    look: dict[str, Any]


def look_reply(pipeline: LivePipeline) -> LookReply:
    """The worn look, as the page reads it."""
    session = pipeline.snapshot().session
    return LookReply(name=session.look_name, look=json.loads(session.look.model_dump_json()))


def _product_look(catalog: Catalog | None, req: LookBySku, current: Look) -> Look:
    """The look after trying, adding or removing one product.

    Raises:
        HTTPException: 404 without a catalogue or for an unknown product.
    """
    if catalog is None:
        raise HTTPException(status_code=404, detail="this kiosk has no catalogue")
    try:
        single = catalog.look_for(req.sku, req.intensity)
    except KeyError:
        raise HTTPException(status_code=404, detail=f"unknown sku {req.sku!r}") from None
    if req.action == "remove":
        return without_sku(current, req.sku)
    if req.action == "add":
        return with_layers_of(current, single)
    return single


@router.get(
    "/api/look",
    response_model=LookReply,
    summary="The current look",
    responses=error_responses(401),
    dependencies=PROTECTED,
)
async def get_look(kiosk: KioskDep) -> LookReply:
    """The worn look."""
    return look_reply(kiosk.pipeline)


@router.put(
    "/api/look",
    response_model=LookReply,
    summary="Choose a look, or try, add or remove one product",
    responses=error_responses(401, 403, 404, 422),
    dependencies=PROTECTED,
)
async def put_look(req: LookRequest, kiosk: KioskDep) -> LookReply:
    """Wear a look by name, or change one product or category of the worn one."""
    pipeline = kiosk.pipeline
    if isinstance(req, LookByName):
        try:
            pipeline.choose_look(req.name)
        except KeyError:
            raise HTTPException(status_code=404, detail=f"unknown look {req.name!r}") from None
    else:
        current = pipeline.snapshot().session.look
        if isinstance(req, LookClear):
            pipeline.set_look(without_kinds(current, CATEGORY_KINDS[req.clear]), "custom")
        else:
            look = _product_look(kiosk.catalog, req, current)
            pipeline.set_look(look, look.name)
    return look_reply(pipeline)
