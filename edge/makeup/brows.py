"""Brows: tint the brow hairs."""

from __future__ import annotations

import cv2
import numpy as np

from edge.colour import hex_to_rgb
from edge.makeup.base import FaceMasks, Layer, LayerSpec, blend, luma, soft_threshold, tint_transform

_LIGHTNESS = 0.7
_CHROMA = 0.7


class Brows(Layer):
    """Both brow classes, with a light feather."""

    kind = "brows"

    @staticmethod
    def mask(masks: FaceMasks) -> np.ndarray:
        """Crop-space brow mask (cached per frame)."""
        return masks.cached(
            "brows", lambda: soft_threshold(masks.blur(masks.prob("left_eyebrow", "right_eyebrow"), 0.5))
        )

    def apply(self, frame: np.ndarray, masks: FaceMasks, spec: LayerSpec) -> None:
        """Move the brows' mean luma and chroma toward the shade; hair strands keep their contrast."""
        if spec.intensity <= 0:
            return
        shade_luma = float(luma(hex_to_rgb(spec.color).reshape(1, 1, 3))[0, 0])
        for reg in masks.regions(self.mask(masks)):
            wsum = float(reg.mask.sum())
            if wsum < 1e-3:
                continue
            region = reg.view(frame)
            src = region.astype(np.float32)
            mean_luma = float((luma(src) * reg.mask).sum()) / wsum
            # Luma moves as a whole (an offset), so the strands' light/dark detail survives.
            tint = tint_transform(spec.color, 0.0, _CHROMA, _LIGHTNESS * (shade_luma - mean_luma))
            blend(region, cv2.transform(src, tint), reg.mask * np.float32(spec.intensity), src=src)
