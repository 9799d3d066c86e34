"""``/api/catalog``: the store's products and looks, and the kiosk's features (public)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from edge.looks import available_looks
from edge.server.context import KioskDep

if TYPE_CHECKING:
    from edge.catalog import Catalog

router = APIRouter()


def catalog_json(catalog: Catalog | None) -> dict[str, Any]:
    """Products and looks for the page's controls."""
    products = [json.loads(p.model_dump_json()) for p in catalog.products] if catalog is not None else []
    looks = [
        {"name": name, "title": look.title, "colors": [x.color for x in look.layers]}
        for name, look in available_looks(catalog).items()
    ]
    return {"products": products, "looks": looks}


@router.get("/api/catalog", summary="Products and looks of the store, and the kiosk's features")
async def api_catalog(kiosk: KioskDep) -> dict[str, Any]:
    """Everything the page's controls offer."""
    return {**catalog_json(kiosk.catalog), "features": kiosk.features.model_dump()}
