"""Eyeliner: a thin line along each eye's upper contour."""

from __future__ import annotations

import numpy as np

from edge.colour import hex_to_rgb
from edge.makeup.base import FaceMasks, Layer, LayerSpec, blend, smoothstep

_THICKNESS = 0.45  # class-map pixels (about 1 model-input pixel): thin, and scales with the face


class Eyeliner(Layer):
    """Built at frame scale so the line is thinner than a class-map pixel."""

    kind = "eyeliner"

    def apply(self, frame: np.ndarray, masks: FaceMasks, spec: LayerSpec) -> None:
        """Paint the band just above the eyes' upper edge."""
        if spec.intensity <= 0:
            return
        eyes = masks.prob("left_eye", "right_eye")
        colour = hex_to_rgb(spec.color)
        # Reach one line-thickness above the eyes, plus bilinear support. The line needs an eye
        # probability of 0.35 or more (the smoothstep below), so fainter pixels never widen the rectangles.
        for rect in masks.rects_of(masks.cached("eyeliner_reach", lambda: np.where(eyes >= 0.3, eyes, 0.0)), 2.0):
            here = smoothstep(masks.warp(eyes, rect), 0.35, 0.65)
            # The eye as seen from a point slightly above: positive only where the eye starts just
            # below, i.e. along the upper contour ("down" in the class map is the face's down).
            below = smoothstep(masks.warp(eyes, rect, shift=(0.0, _THICKNESS)), 0.35, 0.65)
            line = np.clip(below - here, 0.0, 1.0)
            if not line.any():
                continue
            x0, y0, x1, y1 = rect
            region = frame[y0:y1, x0:x1]
            blend(region, np.broadcast_to(colour, region.shape), line * np.float32(0.9 * spec.intensity))
