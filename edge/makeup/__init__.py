"""Virtual makeup: looks made of layers, painted onto the face's region of interest.

Usage::

    renderer = Renderer(feather_px=2.0)
    shown = renderer.render(frame_rgb, face, builtin_looks()["natural"])
"""

from __future__ import annotations

import numpy as np

from edge.makeup.base import LAYER_ORDER, CropMemo, FaceMasks, Finish, Layer, LayerKind, LayerSpec, Look, Refinement
from edge.makeup.blush import Blush
from edge.makeup.brows import Brows
from edge.makeup.eyeliner import Eyeliner
from edge.makeup.eyeshadow import Eyeshadow
from edge.makeup.foundation import Foundation
from edge.makeup.lipstick import Lipstick
from edge.types import FaceAnalysis

__all__ = [
    "LAYER_ORDER",
    "FaceMasks",
    "Finish",
    "Layer",
    "LayerKind",
    "LayerSpec",
    "Look",
    "Refinement",
    "Renderer",
    "builtin_looks",
]

_LAYER_CLASSES: tuple[type[Layer], ...] = (Foundation, Blush, Eyeshadow, Eyeliner, Brows, Lipstick)


class Renderer:
    """Paints looks onto frames; build once, reuse for every frame.

    Args:
        feather_px: Gaussian feather of the masks, in model-input (crop) pixels.
    """

    def __init__(self, feather_px: float = 2.0):
        if feather_px < 0:
            raise ValueError(f"feather_px must be >= 0, got {feather_px}")
        self.feather_px = float(feather_px)
        self._layers: dict[str, Layer] = {cls.kind: cls() for cls in _LAYER_CLASSES}
        self._rank = {kind: i for i, kind in enumerate(LAYER_ORDER)}
        self._memo = CropMemo()

    def refinements(self, look: Look) -> frozenset[Refinement]:
        """The refinement passes the look's worn layers read (none for a look without lipstick)."""
        needed: frozenset[Refinement] = frozenset()
        for spec in look.layers:
            if spec.intensity > 0:
                needed |= self._layers[spec.kind].refinements
        return needed

    def render(self, frame_rgb: np.ndarray, face: FaceAnalysis, look: Look) -> np.ndarray:
        """Return a copy of ``frame_rgb`` with ``look`` applied to ``face``.

        Only pixels inside the face's region of interest can change; layers with
        intensity 0 change nothing. Layers are painted in ``LAYER_ORDER``
        (foundation first, lipstick last) whatever their order in the look.

        Raises:
            ValueError: if the frame is not (H, W, 3) uint8.
        """
        if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 or frame_rgb.dtype != np.uint8:
            raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {frame_rgb.shape} {frame_rgb.dtype}")
        out = frame_rgb.copy()
        active = sorted((s for s in look.layers if s.intensity > 0), key=lambda s: self._rank[s.kind])
        if not active:
            return out
        masks = FaceMasks(face, frame_rgb.shape, self.feather_px, self._memo)
        if masks.roi is None:
            return out
        for spec in active:
            self._layers[spec.kind].apply(out, masks, spec)
        return out


def builtin_looks() -> dict[str, Look]:
    """Looks that work without a catalogue: ``natural``, ``bold``, ``evening``, ``none``."""

    def look(name: str, title: str, *layers: tuple[str, str, float, str]) -> Look:
        specs = [LayerSpec(kind=k, color=c, intensity=i, finish=f) for k, c, i, f in layers]
        return Look(name=name, title=title, layers=specs)

    return {
        "none": look("none", "No makeup"),
        "natural": look(
            "natural",
            "Natural",
            ("foundation", "#d2a98a", 0.35, "satin"),
            ("blush", "#d9826f", 0.3, "satin"),
            ("brows", "#5a4434", 0.3, "matte"),
            ("lipstick", "#c0716a", 0.45, "satin"),
        ),
        "bold": look(
            "bold",
            "Bold red",
            ("foundation", "#d2a98a", 0.5, "matte"),
            ("blush", "#c8595a", 0.4, "matte"),
            ("eyeliner", "#1b1414", 0.9, "matte"),
            ("brows", "#3b2a20", 0.55, "matte"),
            ("lipstick", "#b01c2e", 0.85, "matte"),
        ),
        "evening": look(
            "evening",
            "Evening glam",
            ("foundation", "#d2a98a", 0.45, "satin"),
            ("blush", "#b9606d", 0.4, "satin"),
            ("eyeshadow", "#5b3f63", 0.6, "shimmer"),
            ("eyeliner", "#141016", 0.85, "matte"),
            ("brows", "#3b2a20", 0.5, "matte"),
            ("lipstick", "#8e2a45", 0.75, "gloss"),
        ),
    }
