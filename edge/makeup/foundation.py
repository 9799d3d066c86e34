"""Foundation: evens the skin with edge-preserving smoothing and a small shift toward the shade."""

from __future__ import annotations

import cv2
import numpy as np

from edge.colour import hex_to_rgb
from edge.makeup.base import FaceMasks, Layer, LayerSpec, soft_threshold

_SMOOTH = 0.55  # share of the smoothed skin at full intensity; the rest is the original texture
_SHIFT = 0.35  # how far the skin's mean colour moves toward the shade at full intensity


class Foundation(Layer):
    """Skin only: eyes, brows, lips and mouth are excluded."""

    kind = "foundation"

    @staticmethod
    def mask(masks: FaceMasks) -> np.ndarray:
        """Crop-space foundation mask (cached per frame)."""

        def build() -> np.ndarray:
            features = masks.prob("left_eye", "right_eye", "left_eyebrow", "right_eyebrow", "inner_mouth")
            # The feather softens the edge inside the skin; the raw probability stops it leaking into hair.
            skin = masks.prob("skin", "nose")
            keep = np.clip(2.0 * skin, 0.0, 1.0) * (1.0 - np.clip(2.0 * features, 0.0, 1.0))
            return soft_threshold(masks.feathered("skin", "nose") * keep)

        return masks.cached("foundation", build)

    def apply(self, frame: np.ndarray, masks: FaceMasks, spec: LayerSpec) -> None:
        """Blend a bilateral-smoothed, colour-shifted skin over the original."""
        if spec.intensity <= 0:
            return
        reg = masks.region(self.mask(masks))
        if reg is None:
            return
        region = reg.view(frame)
        h, w = region.shape[:2]
        # Half resolution: the bilateral filter is the costly part and blemishes are low-frequency.
        small = cv2.pyrDown(region)
        sh, sw = small.shape[:2]
        skin_small = (reg.mask[: 2 * sh : 2, : 2 * sw : 2] > 0.5).astype(np.uint8)
        if not skin_small.any():
            return
        mean = np.array(cv2.mean(small, mask=skin_small)[:3], np.float32)
        smooth = cv2.resize(cv2.bilateralFilter(small, 5, 18.0, 3.0), (w, h), interpolation=cv2.INTER_LINEAR)
        # uint8 all the way (saturating OpenCV ops): this layer covers the whole face, so it must be cheap.
        base = cv2.addWeighted(region, 1.0 - _SMOOTH, smooth, _SMOOTH, 0.0)
        # Per-channel gain (von Kries-like) rather than an offset, so shadows keep their depth.
        gain = np.clip(1.0 + _SHIFT * (hex_to_rgb(spec.color) / np.maximum(mean, 1.0) - 1.0), 0.7, 1.4)
        lut = np.clip(np.arange(256, dtype=np.float32)[:, None] * gain[None, :] + 0.5, 0, 255).astype(np.uint8)
        target = cv2.LUT(base, lut.reshape(256, 1, 3))
        alpha = reg.mask * np.float32(spec.intensity)
        # blendLinear keeps alpha == 0 pixels exact (checked by the tests).
        region[...] = cv2.blendLinear(region, target, 1.0 - alpha, alpha)
