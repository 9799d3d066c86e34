"""Lipstick: re-colours the lips in CIELAB while keeping their luminance texture."""

from __future__ import annotations

import cv2
import numpy as np

from edge.colour import hex_to_lab, lab_to_rgb, rgb_to_lab
from edge.makeup.base import FaceMasks, Layer, LayerSpec, blend, soft_threshold

# Per finish: gain on bright lip detail (speculars), gain on dark detail (creases),
# strength (L* units) of the added gloss highlight, strength of the sparkle.
_FINISH = {
    "matte": (0.4, 0.9, 0.0, 0.0),
    "satin": (1.0, 1.0, 8.0, 0.0),
    "gloss": (1.3, 1.0, 24.0, 0.0),
    "shimmer": (1.0, 1.0, 8.0, 45.0),
}

_SPARKLE_SCALE = 4  # sparkle map pixels per class-map pixel: glitter finer than the class map


def _sparkle_pattern(size: int, seed: int = 20261129) -> np.ndarray:
    """Static sparse glitter in crop space: fixed seed, so it moves with the face and never flickers."""
    rng = np.random.default_rng(seed)
    pat = np.where(rng.random((size, size)) < 0.035, rng.uniform(0.4, 1.0, (size, size)), 0.0).astype(np.float32)
    return cv2.GaussianBlur(pat, (0, 0), 0.6) * np.float32(3.0)


class Lipstick(Layer):
    """Upper and lower lips, never the teeth or the inside of the mouth."""

    kind = "lipstick"
    refinements = frozenset({"mouth"})

    def __init__(self) -> None:
        self._sparkle: dict[int, np.ndarray] = {}

    def _sparkle_for(self, size: int) -> np.ndarray:
        if size not in self._sparkle:
            self._sparkle[size] = _sparkle_pattern(size * _SPARKLE_SCALE)
        return self._sparkle[size]

    @staticmethod
    def _masks(masks: FaceMasks) -> np.ndarray:
        def build() -> np.ndarray:
            lips = masks.feathered("upper_lip", "lower_lip")
            # The feather must not spill onto the teeth: the mouth's own probability vetoes it.
            guard = np.clip(masks.prob("inner_mouth") * 2.0, 0.0, 1.0)
            lip = soft_threshold(lips * (1.0 - guard))
            # A soft specular band where light catches the lower lip's fullest part, plus a smaller one above.
            low, up = masks.part("lower_lip"), masks.part("upper_lip")
            hl = masks.ellipse(low.cx, low.cy - 0.1 * low.height, 0.3 * low.width, 0.45 * low.height, falloff=1.5)
            hl = np.maximum(hl, 0.5 * masks.ellipse(up.cx, up.cy, 0.2 * up.width, 0.45 * up.height, falloff=1.5))
            hl *= masks.prob("upper_lip", "lower_lip")
            return np.dstack([lip, hl * (lip > 0)])

        return masks.cached("lipstick", build)

    def _lip_masks(self, masks: FaceMasks) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
        """The lip and highlight masks warped into a frame rectangle, and that rectangle.

        With a mouth view, its sharper masks decide in the middle of the mouth crop and hand
        over to the face's own masks towards the crop's edge (the same window as the labels).
        """
        mouth = masks.mouth()
        crop = self._masks(masks)
        rect = masks.rect_of(crop[:, :, 0])
        if mouth is masks:
            return None if rect is None else (masks.warp(crop, rect), rect)
        crop_m = self._masks(mouth)
        rect_m = mouth.rect_of(crop_m[:, :, 0])
        rects = [r for r in (rect, rect_m) if r is not None]
        if not rects:
            return None
        rect = (min(r[0] for r in rects), min(r[1] for r in rects), max(r[2] for r in rects), max(r[3] for r in rects))
        win = mouth.warp(mouth.window(), rect)[..., None]
        return win * mouth.warp(crop_m, rect) + (1.0 - win) * masks.warp(crop, rect), rect

    def apply(self, frame: np.ndarray, masks: FaceMasks, spec: LayerSpec) -> None:
        """Shift the lips' mean colour to the shade, keep L* detail, shape highlights by finish."""
        if spec.intensity <= 0:
            return
        warped_rect = self._lip_masks(masks)
        if warped_rect is None:
            return
        warped, rect = warped_rect
        lip, hl = warped[:, :, 0], warped[:, :, 1]
        wsum = float(lip.sum())
        if wsum < 1e-3:
            return
        x0, y0, x1, y1 = rect
        region = frame[y0:y1, x0:x1]
        lab = rgb_to_lab(region)
        mean = (lab * lip[..., None]).reshape(-1, 3).sum(axis=0) / wsum
        target_lab = hex_to_lab(spec.color).astype(np.float32)
        bright, dark, gloss, sparkle = _FINISH[spec.finish]
        detail = lab[:, :, 0] - np.float32(mean[0])
        detail = np.where(detail > 0, detail * np.float32(bright), detail * np.float32(dark))
        out = np.empty_like(lab)
        out[:, :, 0] = target_lab[0] + detail + np.float32(gloss) * hl
        if sparkle:
            glitter = masks.warp(self._sparkle_for(masks.size), rect, scale=_SPARKLE_SCALE)
            out[:, :, 0] += np.float32(sparkle) * glitter * lip
        # Move the chroma's mean onto the shade, keeping the lips' own chroma variation.
        out[:, :, 1:] = lab[:, :, 1:] + (target_lab[1:] - mean[1:]).astype(np.float32)
        blend(region, lab_to_rgb(out), lip * np.float32(spec.intensity))
