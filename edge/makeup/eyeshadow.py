"""Eyeshadow: the lid above each eye, below the brow, on skin only."""

from __future__ import annotations

import numpy as np

from edge.makeup.base import (
    FaceMasks,
    Layer,
    LayerSpec,
    smoothstep,
    soft_threshold,
    tint_regions,
)

_LIGHTNESS = 0.6
_CHROMA = 0.8


class Eyeshadow(Layer):
    """Upper lids, strongest at the lash line and fading toward the brow."""

    kind = "eyeshadow"

    @staticmethod
    def mask(masks: FaceMasks) -> np.ndarray:
        """Crop-space eyeshadow mask (cached per frame)."""

        def build() -> np.ndarray:
            _, ys = masks.grid()
            out = np.zeros((masks.size, masks.size), np.float32)
            for eye_name, brow_name in (("left_eye", "left_eyebrow"), ("right_eye", "right_eyebrow")):
                eye, brow = masks.part(eye_name), masks.part(brow_name)
                top = eye.y0  # the eye's upper contour
                gap = max(top - brow.y1, 1.5 * masks.unit)  # lid height between eye and brow
                # Centred just above the lash line and a little outward, like a lid wash.
                side = -1.0 if eye_name == "left_eye" else 1.0
                cx = eye.cx + side * 0.08 * eye.width
                blob = masks.ellipse(cx, top - 0.3 * gap, 0.65 * eye.width, gap + 0.5, falloff=1.2)
                # Denser near the lashes, sheer toward the brow.
                ramp = np.clip(1.0 - (np.float32(top) - ys) / np.float32(gap + 1.0), 0.35, 1.0)
                # Nothing below the eye's midline: shadow beside the eye corners looks like a bruise.
                ramp *= np.clip((np.float32(eye.cy) - ys) / np.float32(max(eye.cy - top, 1.0)), 0.0, 1.0)
                out = np.maximum(out, blob * ramp)
            # The eyeball is a hard no: anything past half-way into the eye's soft edge is vetoed.
            eyes = smoothstep(masks.prob("left_eye", "right_eye"), 0.1, 0.6)
            brows = masks.prob("left_eyebrow", "right_eyebrow")
            lid = masks.blur(out) * masks.prob("skin") * (1.0 - eyes) * (1.0 - brows)
            # The lid is thin and the guards eat into it: rescale so the densest point is fully opaque.
            peak = float(lid.max())
            return soft_threshold(lid / peak) if peak > 1e-3 else lid

        return masks.cached("eyeshadow", build)

    def apply(self, frame: np.ndarray, masks: FaceMasks, spec: LayerSpec) -> None:
        """Tint the lids toward the shade, keeping some of the skin's shading."""
        if spec.intensity <= 0:
            return
        # Shimmer: a pearly lift where the pigment is densest.
        lift = 15.0 if spec.finish == "shimmer" else 0.0
        tint_regions(frame, masks, self.mask(masks), spec, _LIGHTNESS, _CHROMA, lift=lift)
