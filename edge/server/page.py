"""The kiosk page (``/``) and its assets (``/static``), served from the package: no CDN."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    """The kiosk page; never cached, so an update shows at the next load."""
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


def mount_static(app: FastAPI) -> None:
    """Serve ``edge/static`` under ``/static``."""
    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
