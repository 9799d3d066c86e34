"""Brows: tint the brow hairs."""

from __future__ import annotations

import numpy as np

from edge.makeup.base import FaceMasks, Layer, LayerSpec, blend, lab_to_rgb, rgb_to_lab, shade_lab, soft_threshold

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
        """Move the brows' mean lightness and chroma toward the shade; hair strands keep their contrast."""
        if spec.intensity <= 0:
            return
        reg = masks.region(self.mask(masks))
        if reg is None:
            return
        wsum = float(reg.mask.sum())
        if wsum < 1e-3:
            return
        region = reg.view(frame)
        lab = rgb_to_lab(region)
        mean_l = float((lab[:, :, 0] * reg.mask).sum()) / wsum
        target = shade_lab(spec.color)
        out = lab.copy()
        out[:, :, 0] += np.float32(_LIGHTNESS * (target[0] - mean_l))
        out[:, :, 1:] += (target[1:] - lab[:, :, 1:]) * np.float32(_CHROMA)
        blend(region, lab_to_rgb(out), reg.mask * np.float32(spec.intensity))
