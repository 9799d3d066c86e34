"""``/api/state``: the page's view of the mirror (face present, where, tone, look, recommendations)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Literal

import numpy as np
from fastapi import APIRouter
from pydantic import BaseModel, Field

from edge.contract import CLASS_GROUPS, FACE_CLASSES
from edge.server.context import PROTECTED, Features, Kiosk, KioskDep
from edge.server.errors import error_responses

if TYPE_CHECKING:
    from edge.catalog import Catalog, Product
    from edge.pipeline import EncodedFrame, LiveSnapshot
    from edge.types import FaceAnalysis

router = APIRouter()

REGION_CLASSES: dict[str, tuple[str, ...]] = {"face": FACE_CLASSES, "lips": CLASS_GROUPS["lips"]}
"""The boxes the page draws around: the whole face, and the lips."""


class ToneReply(BaseModel):
    """The customer's skin tone."""

    monk: int = Field(description="Monk Skin Tone step, 1 (lightest) to 10 (deepest).")
    undertone: str = Field(description="warm, neutral or cool.")
    label: str = Field(description="A sentence for the page.")
    confidence: float = Field(description="0..1.")
    uncertainty: float = Field(description="In Monk steps.")
    reference: str = Field(description="What the white balance came from: calibration, eyes or scene.")
    reliable: bool = Field(description="Sure enough to recommend shades by.")


class LayerReply(BaseModel):
    """One product of the worn look."""

    kind: str
    sku: str | None
    color: str
    intensity: float


class RecommendationReply(BaseModel):
    """A product the page suggests, and why."""

    sku: str
    brand: str
    product: str
    shade: str
    hex: str
    category: str
    reason: str


class StateReply(BaseModel):
    """What the mirror sees and shows now."""

    mode: Literal["mirror", "attract"] = Field(description="mirror while a face is tracked, else attract.")
    face_present: bool
    face_score: float | None
    no_face_s: float | None = Field(description="Seconds since the last face (None while one is seen).")
    regions: dict[str, list[float]] | None = Field(
        description="Face and lips boxes [x0, y0, x1, y1] in the shown image, as fractions of its size."
    )
    tone: ToneReply | None
    look: str
    layers: list[LayerReply]
    compare: bool = Field(description="Whether the face is shown without makeup ('before').")
    recommendations: list[RecommendationReply]
    session: str = Field(description="An opaque id of the customer's session.")
    session_age_s: float
    reset_after_s: float
    fps: float
    camera: str
    compare_mode: Literal["off", "before", "split"]
    features: Features


def face_regions(
    face: FaceAnalysis | None, frame: EncodedFrame | None, flipped: bool, classes: tuple[str, ...]
) -> dict[str, list[float]] | None:
    """Face and lips boxes [x0, y0, x1, y1] in the shown image, as fractions of its size."""
    if face is None or frame is None:
        return None
    w, h = frame.width, frame.height
    m = face.output_to_image()
    out: dict[str, list[float]] = {}
    for name, group in REGION_CLASSES.items():
        ids = [classes.index(c) for c in group if c in classes]
        vs, us = np.nonzero(np.isin(face.labels, ids))
        if len(us) < 3:
            continue
        pts = np.stack([us, vs, np.ones_like(us)], axis=1).astype(np.float64) @ m.T
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        if flipped:
            x0, x1 = w - 1 - x1, w - 1 - x0
        box = [x0 / w, y0 / h, x1 / w, y1 / h]
        out[name] = [round(float(min(max(v, 0.0), 1.0)), 4) for v in box]
    return out


def recommendations(snap: LiveSnapshot, catalog: Catalog | None) -> list[RecommendationReply]:
    """Up to four products: by skin tone when it is sure, else the products of the worn look."""
    if catalog is None:
        return []
    tone = snap.session.tone
    picks: list[tuple[Product, str]] = []
    if tone is not None and snap.tone_reliable:
        picks = [(r.product, r.reason) for r in catalog.recommend(tone, limit=4)]
    elif tone is not None:
        # Too unsure of the tone to advise by it: the products of the chosen look instead.
        for lay in snap.session.look.layers:
            if lay.sku is None:
                continue
            try:
                picks.append((catalog.product(lay.sku), "in your look"))
            except KeyError:
                continue
    return [
        RecommendationReply(
            sku=p.sku, brand=p.brand, product=p.product, shade=p.shade, hex=p.hex, category=p.category, reason=reason
        )
        for p, reason in picks[:4]
    ]


def page_state(kiosk: Kiosk) -> StateReply:
    """The page's view of the mirror (the pipeline's snapshot): face present, tone, look, recommendations."""
    snap = kiosk.pipeline.snapshot()
    s, face, tone = snap.session, snap.face, snap.session.tone
    return StateReply(
        mode="mirror" if face is not None else "attract",
        face_present=face is not None,
        face_score=None if face is None else round(float(face.face_score), 3),
        no_face_s=None if face is not None or not s.last_face else round(snap.now - s.last_face, 1),
        regions=face_regions(face, snap.frame, snap.flipped, kiosk.pipeline.model_info().classes),
        tone=None
        if tone is None
        else ToneReply(
            monk=tone.monk,
            undertone=tone.undertone,
            label=f"{tone.undertone} undertone, Monk {tone.monk}",
            confidence=tone.confidence,
            uncertainty=tone.uncertainty,
            reference=tone.reference,
            reliable=snap.tone_reliable,
        ),
        look=s.look_name,
        layers=[
            LayerReply(kind=lay.kind, sku=lay.sku, color=lay.color, intensity=lay.intensity) for lay in s.look.layers
        ],
        compare=s.compare == "before",
        recommendations=recommendations(snap, kiosk.catalog),
        session=hashlib.blake2s(repr(s.started).encode(), digest_size=4).hexdigest(),
        session_age_s=round(snap.now - s.started, 1),
        reset_after_s=snap.reset_after_s,
        fps=round(snap.fps, 1),
        camera=snap.camera,
        compare_mode=s.compare,
        features=kiosk.features,
    )


@router.get(
    "/api/state",
    response_model=StateReply,
    summary="What the mirror sees and shows now",
    responses=error_responses(401),
    dependencies=PROTECTED,
)
async def api_state(kiosk: KioskDep) -> StateReply:
    """The page's view of the mirror."""
    return page_state(kiosk)
