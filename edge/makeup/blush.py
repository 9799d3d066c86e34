"""Blush: soft ellipses on the cheek apples, only on skin."""

from __future__ import annotations

import numpy as np

from edge.makeup.base import FaceMasks, Layer, LayerSpec, soft_threshold, tint_regions

_LIGHTNESS = 0.25  # how far luma moves toward the shade: blush is a sheer pigment, the skin's shading stays
_CHROMA = 0.7  # how far chroma moves toward the shade


class Blush(Layer):
    """Cheeks below the eyes and beside the nose."""

    kind = "blush"

    @staticmethod
    def mask(masks: FaceMasks) -> np.ndarray:
        """Crop-space blush mask (cached per frame)."""

        def build() -> np.ndarray:
            le, re_ = masks.part("left_eye"), masks.part("right_eye")
            mouth_y = 0.5 * (masks.part("upper_lip").cy + masks.part("lower_lip").cy)
            iod = max(re_.cx - le.cx, 4.0 * masks.unit)
            blob = np.zeros((masks.size, masks.size), np.float32)
            for eye, side in ((le, -1.0), (re_, 1.0)):
                # Cheek apple: halfway from the eye down to the mouth, a little outward of the pupil,
                # tilted up toward the temple.
                cx = eye.cx + side * 0.12 * iod
                cy = eye.cy + 0.5 * (mouth_y - eye.cy)
                blob = np.maximum(blob, masks.ellipse(cx, cy, 0.36 * iod, 0.24 * iod, -side * 15.0, falloff=2.0))
            # Skin only: the parts' own probabilities veto the feather (no blush on lips or eyes).
            parts = masks.prob("left_eye", "right_eye", "upper_lip", "lower_lip", "inner_mouth", "nose")
            return soft_threshold(blob * masks.feathered("skin") * (1.0 - np.clip(2.0 * parts, 0.0, 1.0)))

        return masks.cached("blush", build)

    def apply(self, frame: np.ndarray, masks: FaceMasks, spec: LayerSpec) -> None:
        """Tint the cheeks' chroma toward the shade, lightness only slightly."""
        if spec.intensity <= 0:
            return
        tint_regions(frame, masks, self.mask(masks), spec, _LIGHTNESS, _CHROMA)
