"""Between two parses: how far the face moved, and the last parse carried along with it.

The live loop parses the face on every Nth shown frame only (``analysis.parse_every``); on the
frames between, the masks must still sit on the face. A phase correlation of a small grey
patch around the face (64x64, a few hundred thousand instructions) measures the shift since
the last parse, and the last analysis is moved by it — far cheaper than a parse, and steadier
than holding the masks where the face was.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edge.contract import FaceBox
from edge.types import FaceAnalysis, MouthView

PATCH = 64
"""Side of the grey patch that is correlated (pixels)."""

MARGIN = 1.2
"""The patch covers this many face-box sizes (some background: a moving edge is what locates the face)."""

MAX_SHIFT = 0.25
"""A measured shift larger than this share of the patch is not trusted (the face left or changed)."""


class FaceMotion:
    """The face's translation since the reference frame (the last parsed one)."""

    def __init__(self) -> None:
        self._ref: np.ndarray | None = None
        self._rect: tuple[int, int, int, int] | None = None
        self._window: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the reference (the track was lost)."""
        self._ref = None
        self._rect = None

    def _patch(self, frame: np.ndarray) -> np.ndarray | None:
        import cv2

        assert self._rect is not None
        x0, y0, x1, y1 = self._rect
        roi = frame[y0:y1, x0:x1]
        if roi.shape[0] < 8 or roi.shape[1] < 8:
            return None
        # Grey first, then one pyramid step (a cheap low-pass) before the linear resize: a sixth of
        # INTER_AREA's cost, and the halved patch still does not alias.
        grey = cv2.pyrDown(cv2.cvtColor(roi, cv2.COLOR_RGB2GRAY))
        return cv2.resize(grey, (PATCH, PATCH), interpolation=cv2.INTER_LINEAR).astype(np.float32)

    def reference(self, frame: np.ndarray, box: FaceBox) -> None:
        """Remember the face around ``box`` in this (parsed) frame."""
        import cv2

        h, w = frame.shape[:2]
        half = MARGIN * box.size / 2.0
        x0, y0 = max(int(box.cx - half), 0), max(int(box.cy - half), 0)
        x1, y1 = min(int(box.cx + half), w), min(int(box.cy + half), h)
        self._rect = (x0, y0, x1, y1)
        self._ref = self._patch(frame) if x1 > x0 and y1 > y0 else None
        if self._window is None:
            self._window = cv2.createHanningWindow((PATCH, PATCH), cv2.CV_32F)

    def shift(self, frame: np.ndarray) -> tuple[float, float] | None:
        """Image pixels the face moved since the reference; None without a reference or a sure match."""
        import cv2

        if self._ref is None or self._rect is None:
            return None
        cur = self._patch(frame)
        if cur is None:
            return None
        (sx, sy), response = cv2.phaseCorrelate(self._ref, cur, self._window)
        if response < 0.05 or max(abs(sx), abs(sy)) > MAX_SHIFT * PATCH:
            return None
        x0, y0, x1, y1 = self._rect
        return sx * (x1 - x0) / PATCH, sy * (y1 - y0) / PATCH


def _moved_matrix(m: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """An image -> crop affine for the image content shifted by (dx, dy)."""
    out = np.array(m, dtype=np.float64, copy=True)
    out[:, 2] -= out[:, :2] @ np.array([dx, dy])
    return out


def moved_view(view: MouthView, dx: float, dy: float) -> MouthView:
    """A mouth view moved (dx, dy) image pixels (its class map unchanged)."""
    return MouthView(_moved_matrix(view.crop_matrix, dx, dy), view.probs, view.stride)


def moved(face: FaceAnalysis, dx: float, dy: float) -> FaceAnalysis:
    """The analysis of ``face`` moved by (dx, dy) image pixels: the same class maps, placed where the face
    is now (the renderer snaps a moved copy to whole pixels and reuses the masks it warped for the parse)."""
    box = FaceBox(face.box.cx + dx, face.box.cy + dy, face.box.size, face.box.angle_deg)
    mouth = None if face.mouth is None else moved_view(face.mouth, dx, dy)
    return dataclasses.replace(
        face, box=box, crop_matrix=_moved_matrix(face.crop_matrix, dx, dy), mouth=mouth, extras=dict(face.extras)
    )


def align_probs(prev: np.ndarray, prev_out_to_img: np.ndarray, out_to_img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities of an earlier class map resampled into this one's pixels (same image place).

    Both maps are placed in the image by their output -> image affines; with the earlier one already
    moved as far as the face moved, the blend of the two is a blend of the same face's pixels.

    Returns:
        The resampled map, and (S, S) float32 coverage: 1 where the earlier map saw the pixel, 0 where
        it did not (the strip the motion uncovered; blend nothing in there).
    """
    import cv2

    from edge.contract import invert_affine

    # This map's output pixel -> image -> the earlier map's output pixel.
    back = invert_affine(prev_out_to_img)
    m = back[:, :2] @ out_to_img[:, :2]
    t = back[:, :2] @ out_to_img[:, 2] + back[:, 2]
    dst_to_src = np.hstack([m, t[:, None]])
    size = (prev.shape[1], prev.shape[0])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    # A coverage plane rides along, and OpenCV warps at most four channels at a time.
    planes = np.concatenate([prev, np.ones((*prev.shape[:2], 1), prev.dtype)], axis=-1)
    parts = [
        cv2.warpAffine(np.ascontiguousarray(planes[..., i : i + 4]), dst_to_src, size, flags=flags, borderValue=0)
        for i in range(0, planes.shape[-1], 4)
    ]
    out = np.dstack([p if p.ndim == 3 else p[..., None] for p in parts])
    return out[..., :-1], out[..., -1]


FLOOR = 1.0 / 512
"""Probabilities below half the int8 output's step are the blend's residue, not the model's: set to 0, so an
old part's faint trail (resampled, so a pixel wider each parse) never widens the masks' rectangles."""


def blend_aligned(new: np.ndarray, prev: np.ndarray, covered: np.ndarray, weight_new: float) -> np.ndarray:
    """The EMA of a new class map and an aligned earlier one; the new one alone where the earlier did not reach."""
    keep = (np.float32(1.0 - weight_new) * covered)[..., None]
    out = new + keep * (prev - new)
    out[out < FLOOR] = 0.0
    return out
