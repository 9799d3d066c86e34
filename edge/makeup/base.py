"""The layer interface, the look models and the per-face mask cache shared by the layers.

Every mask is built in the model's class-map space (``face.probs``, S x S), where
the face is upright and small, then warped into a sub-rectangle of the frame with
``cv2.warpAffine`` and ``face.output_to_image()``. Nothing outside the face's
region of interest is read or written.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

import cv2
import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from edge.colour import hex_to_rgb
from edge.contract import CLASS_ID
from edge.types import FaceAnalysis, MouthView, mouth_window

LayerKind = Literal["lipstick", "blush", "eyeshadow", "eyeliner", "brows", "foundation"]
Finish = Literal["matte", "satin", "gloss", "shimmer"]
Refinement = Literal["mouth"]
"""An extra parse a layer reads: ``mouth`` is the zoomed mouth view (:class:`edge.types.MouthView`)."""

LAYER_ORDER: tuple[str, ...] = ("foundation", "blush", "eyeshadow", "eyeliner", "brows", "lipstick")
"""Order in which layers are painted, as a make-up artist would (base first, lips last)."""

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def _check_hex(value: str) -> str:
    if not _HEX.match(value):
        raise ValueError(f"{value!r} is not a '#rrggbb' colour")
    return value.lower()


HexColor = Annotated[str, AfterValidator(_check_hex)]
"""A ``#rrggbb`` colour, normalised to lower case."""


class LayerSpec(BaseModel):
    """One product applied to the face."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: LayerKind = Field(description="Which layer paints it.")
    color: HexColor = Field(description="Shade as '#rrggbb' (sRGB).")
    intensity: float = Field(0.6, ge=0.0, le=1.0, description="Opacity of the layer; 0 leaves the frame untouched.")
    finish: Finish = Field("satin", description="Surface finish; lipstick uses it for highlights and sparkle.")
    sku: str | None = Field(None, description="Catalogue product this layer shows, if any.")


class Look(BaseModel):
    """A named set of layers."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Machine name, unique among looks.")
    title: str = Field("", description="Human title shown on the kiosk.")
    layers: list[LayerSpec] = Field(default_factory=list, description="Layers; painted in LAYER_ORDER.")


# ----------------------------------------------------------------------------- colour helpers


# Full-range BT.601 YCbCr: a linear opponent space, so a tint toward a shade (a lerp per
# channel) is one affine RGB -> RGB map, applied in a single pass with cv2.transform.
_RGB2YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_YCC2RGB = np.linalg.inv(_RGB2YCC)


def tint_transform(color: str, w_luma: float, w_chroma: float, luma_offset: float = 0.0) -> np.ndarray:
    """3x4 affine RGB map moving luma by ``w_luma`` and chroma by ``w_chroma`` toward a shade.

    Args:
        color: the shade '#rrggbb'.
        w_luma: 0 keeps each pixel's luma, 1 replaces it by the shade's.
        w_chroma: the same for chroma (Cb, Cr).
        luma_offset: constant added to luma (0..255 units) after the lerp.
    """
    shade = _RGB2YCC @ hex_to_rgb(color).astype(np.float64)
    w = np.diag([w_luma, w_chroma, w_chroma])
    a = _YCC2RGB @ (np.eye(3) - w) @ _RGB2YCC
    b = _YCC2RGB @ (w @ shade + np.array([luma_offset, 0.0, 0.0]))
    return np.hstack([a, b[:, None]]).astype(np.float32)


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of a float or uint8 RGB image, float32."""
    return cv2.transform(np.asarray(rgb, np.float32), _RGB2YCC[:1].astype(np.float32))


def soft_threshold(mask: np.ndarray, floor: float = 0.03) -> np.ndarray:
    """Zero a mask's faint tail and rescale the rest to keep it continuous.

    Gaussian tails are tiny but non-zero; without this, far pixels would round
    to a changed value and the "only the face is touched" guarantee would leak.
    """
    return np.maximum(mask - np.float32(floor), 0.0) * np.float32(1.0 / (1.0 - floor))


def smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Hermite step from 0 at ``lo`` to 1 at ``hi``."""
    t = np.clip((x - np.float32(lo)) * np.float32(1.0 / (hi - lo)), 0.0, 1.0)
    return t * t * (np.float32(3.0) - np.float32(2.0) * t)


def tint_regions(
    frame: np.ndarray,
    masks: FaceMasks,
    mask: np.ndarray,
    spec: LayerSpec,
    lightness: float,
    chroma: float,
    lift: float = 0.0,
) -> None:
    """Tint the frame under a crop-space mask toward ``spec``'s shade, in place, one region per side.

    Args:
        lightness: share of the luma moved toward the shade's.
        chroma: share of the chroma moved toward the shade's.
        lift: luma added where the mask is full (a pearly finish), fading with it.
    """
    tint = tint_transform(spec.color, lightness, chroma)
    for reg in masks.regions(mask):
        region = reg.view(frame)
        src = region.astype(np.float32)
        target: np.ndarray = cv2.transform(src, tint)
        if lift:
            target += (np.float32(lift) * reg.mask)[..., None]  # equal RGB add = luma only
        blend(region, target, reg.mask * np.float32(spec.intensity), src=src)


def blend(region: np.ndarray, target: np.ndarray, alpha: np.ndarray, src: np.ndarray | None = None) -> None:
    """Write ``region + alpha * (target - region)`` back into the uint8 ``region`` in place.

    Where ``alpha`` is exactly 0 the pixel keeps its exact value (bit-identical).

    Args:
        region: uint8 (h, w, 3) pixels, modified in place.
        target: float32 (h, w, 3) colours in 0..255; a float32 array is used as scratch (overwritten).
        alpha: float32 (h, w) opacity.
        src: ``region`` as float32, when the caller already has it.
    """
    if src is None:
        src = region.astype(np.float32)
    if target.dtype == np.float32 and target.flags.writeable and target.base is None:
        out = np.subtract(target, src, out=target)
    else:
        out = np.subtract(target, src, dtype=np.float32)
    out *= alpha[..., None]
    out += src
    out += np.float32(0.5)  # round half up; exact integers stay exact
    np.clip(out, 0.0, 255.0, out=out)
    region[...] = out.astype(np.uint8)


# ----------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class Part:
    """A face part's extent in class-map pixels (from probabilities above 0.5)."""

    cx: float
    cy: float
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        """Horizontal extent."""
        return self.x1 - self.x0 + 1.0

    @property
    def height(self) -> float:
        """Vertical extent."""
        return self.y1 - self.y0 + 1.0


# Where the contract's crop geometry puts the parts of a frontal face on a 64-pixel map;
# used when the parser misses a part (closed eyes, occlusion) so layers still land sensibly.
_DEFAULT_PARTS_64: dict[str, tuple[float, float, float, float]] = {
    "left_eye": (24, 29, 4, 2),
    "right_eye": (40, 29, 4, 2),
    "left_eyebrow": (24, 23.5, 5, 1.5),
    "right_eyebrow": (40, 23.5, 5, 1.5),
    "nose": (32, 36, 3, 5),
    "upper_lip": (32, 44, 7, 1.5),
    "lower_lip": (32, 47, 7, 2),
}


@dataclass(frozen=True)
class Region:
    """A sub-rectangle of the frame and a mask warped into it."""

    x0: int
    y0: int
    x1: int
    y1: int
    mask: np.ndarray

    def view(self, frame: np.ndarray) -> np.ndarray:
        """The frame's pixels under this region (a view, writable)."""
        return frame[self.y0 : self.y1, self.x0 : self.x1]


def _support(mask: np.ndarray) -> np.ndarray:
    """Where a crop-space mask (H, W) or (H, W, C) is non-zero, as one bool (H, W) map."""
    return np.asarray(mask > 0 if mask.ndim == 2 else (mask > 0).any(axis=2))


class CropMemo:
    """The crop-space masks of the last few class maps, kept across frames (one per renderer).

    Keyed by the class map's identity: the live loop hands the same array to the frames that
    show one parse, so their masks are built once.
    """

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        self._entries: list[tuple[np.ndarray, float, dict[str, object]]] = []

    def get(self, probs: np.ndarray, sigma: float) -> dict[str, object]:
        """The mask cache of this class map at this feather (a new empty one the first time)."""
        for p, sg, known in self._entries:
            if p is probs and sg == sigma:
                return known
        fresh: dict[str, object] = {}
        self._entries = [(probs, sigma, fresh), *self._entries[: self.keep - 1]]
        return fresh


class FaceMasks:
    """Per-face, per-frame cache of masks in class-map space, warped on demand.

    Layers share one instance per ``render`` call, so each mask (skin, lips, ...)
    is built once per frame however many layers use it.

    Args:
        face: the analysed face.
        frame_shape: the frame's shape (H, W, ...).
        feather_px: Gaussian feather sigma in model-input (crop) pixels.
    """

    def __init__(
        self,
        face: FaceAnalysis | MouthView,
        frame_shape: tuple[int, ...],
        feather_px: float,
        memo: CropMemo | None = None,
    ):
        self._face = face
        self._feather_px = feather_px
        self._memo = memo
        probs = np.asarray(face.probs, np.float32)
        if probs.ndim != 3 or probs.shape[0] != probs.shape[1]:
            raise ValueError(f"face.probs must be (S, S, C), got {probs.shape}")
        self.size = probs.shape[0]
        self.unit = self.size / 64.0  # class-map pixels per pixel of the 64-pixel reference layout
        self.stride = float(face.stride)
        self.sigma = float(feather_px) / self.stride  # feather in class-map pixels
        # Crop-space masks depend only on the class map and the feather: a frame that shows the last
        # parse moved (between two parses) reuses them, and only the warps into the frame are redone.
        self._cache: dict[str, object] = {} if memo is None else memo.get(face.probs, self.sigma)
        if "planes" not in self._cache:
            # Channel-first and contiguous: every mask reads whole class planes.
            self._cache["planes"] = np.ascontiguousarray(probs.transpose(2, 0, 1))
        self.planes: np.ndarray = self._cache["planes"]  # type: ignore[assignment]
        self.out_to_img = face.output_to_image()
        self._offset = self._whole_pixel_offset()
        h, w = frame_shape[:2]
        self.frame_hw = (h, w)
        self.roi = self._roi(w, h)
        self._mouth: FaceMasks | None = None

    def _whole_pixel_offset(self) -> tuple[int, int] | None:
        """Whole pixels this view sits from the first view of the same class map (None: not a moved copy).

        A parse carried between frames (``edge.analysis.motion.moved``) is the same class map moved.
        Its placement is snapped to whole pixels from the first view's (at most half a pixel on
        screen), so the masks warped for that view are reused, moved, instead of warped again.
        """
        if self._memo is None:
            return None
        ref = self._cache.setdefault("ref_out_to_img", self.out_to_img)
        assert isinstance(ref, np.ndarray)
        if not np.allclose(self.out_to_img[:, :2], ref[:, :2], atol=1e-9):
            return None
        whole = np.round(self.out_to_img[:, 2] - ref[:, 2])
        self.out_to_img = ref.copy()
        self.out_to_img[:, 2] += whole
        return int(whole[0]), int(whole[1])

    def mouth(self) -> FaceMasks:
        """Masks in the face's zoomed mouth view when it has one (lips several times sharper), else these."""
        mouth = getattr(self._face, "mouth", None)
        if mouth is None:
            return self
        if self._mouth is None:
            # The same feather on screen: the mouth view's class-map pixels are smaller in the frame.
            ratio = float(np.hypot(*self.out_to_img[:, 0])) / float(np.hypot(*mouth.output_to_image()[:, 0]))
            self._mouth = FaceMasks(mouth, (*self.frame_hw,), self._feather_px * ratio, self._memo)
        return self._mouth

    def window(self) -> np.ndarray:
        """(S, S) weight of this view where it overlays the face's (1 for a face's own masks)."""
        if isinstance(self._face, MouthView):
            return self.cached("window", lambda: mouth_window(self.size))
        return self.cached("window", lambda: np.ones((self.size, self.size), np.float32))

    # -- region of interest and warping

    def _roi(self, w: int, h: int) -> tuple[int, int, int, int] | None:
        s = self.size
        quad = np.array([[-0.5, -0.5, 1], [s - 0.5, -0.5, 1], [s - 0.5, s - 0.5, 1], [-0.5, s - 0.5, 1]])
        pts = quad @ self.out_to_img.T
        x0, y0 = np.floor(pts.min(axis=0)).astype(int)
        x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            return None
        return int(x0), int(y0), int(x1), int(y1)

    def rect_of(self, mask: np.ndarray, margin: float = 1.0) -> tuple[int, int, int, int] | None:
        """Frame rectangle (clipped to the ROI) covering every pixel a crop-space mask can reach."""
        if self.roi is None:
            return None
        support = _support(mask)
        bx, by, bw, bh = cv2.boundingRect(support.view(np.uint8))
        if bw == 0 or bh == 0:
            return None
        return self._frame_rect(bx - margin, by - margin, bx + bw - 1 + margin, by + bh - 1 + margin)

    def _frame_rect(self, u0: float, v0: float, u1: float, v1: float) -> tuple[int, int, int, int] | None:
        pts = np.array([[u0, v0, 1], [u1, v0, 1], [u1, v1, 1], [u0, v1, 1]]) @ self.out_to_img.T
        rx0, ry0, rx1, ry1 = self.roi  # type: ignore[misc]
        x0 = max(math.floor(pts[:, 0].min()), rx0)
        y0 = max(math.floor(pts[:, 1].min()), ry0)
        x1 = min(math.ceil(pts[:, 0].max()) + 1, rx1)
        y1 = min(math.ceil(pts[:, 1].max()) + 1, ry1)
        if x1 <= x0 or y1 <= y0:
            return None
        return x0, y0, x1, y1

    def rects_of(self, mask: np.ndarray, margin: float = 1.0) -> list[tuple[int, int, int, int]]:
        """Like ``rect_of``, but one rectangle per side of the face when the two do not overlap.

        Paired parts (cheeks, lids, brows, eyes) would otherwise drag the whole band between
        them (nose, glabella) through the colour maths. The rectangles are disjoint and
        together cover every pixel the mask reaches, so the full mask can be warped into each.
        """
        if self.roi is None:
            return []
        support = _support(mask)
        mid = round(0.5 * (self.part("left_eye").cx + self.part("right_eye").cx))
        rects = []
        for lo, hi in ((0, mid), (mid, self.size)):
            bx, by, bw, bh = cv2.boundingRect(np.ascontiguousarray(support[:, lo:hi]).view(np.uint8))
            if bw and bh:
                r = self._frame_rect(lo + bx - margin, by - margin, lo + bx + bw - 1 + margin, by + bh - 1 + margin)
                if r is not None:
                    rects.append(r)
        if len(rects) == 2:
            (a0, b0, a1, b1), (c0, d0, c1, d1) = rects
            if a0 < c1 and c0 < a1 and b0 < d1 and d0 < b1:  # overlap (e.g. a rolled face): one rectangle
                whole = self.rect_of(mask, margin)
                return [whole] if whole is not None else []
        return rects

    def warp(
        self,
        mask: np.ndarray,
        rect: tuple[int, int, int, int],
        shift: tuple[float, float] = (0.0, 0.0),
        scale: float = 1.0,
    ) -> np.ndarray:
        """Warp a class-map-space mask (or a ``scale`` times finer pattern) into a frame rectangle.

        Args:
            mask: (S*scale, S*scale[, k]) float32 map.
            rect: (x0, y0, x1, y1) in frame pixels.
            shift: sample the map at (u + du, v + dv) class-map pixels, i.e. move it by -shift.
            scale: map pixels per class-map pixel.
        """
        x0, y0, x1, y1 = rect
        key = None
        if self._offset is not None:
            ox, oy = self._offset
            key = f"warp:{id(mask)}:{x0 - ox},{y0 - oy},{x1 - ox},{y1 - oy}:{shift}:{scale}"
            done = self._cache.get(key)
            if done is not None:
                return done[1]  # type: ignore[index]
        out = self._warp(mask, rect, shift, scale)
        if key is not None:
            out.flags.writeable = False  # shared with the next frames that show this parse
            self._cache[key] = (mask, out)  # holding the mask keeps its id from naming another array
        return out

    def _warp(
        self, mask: np.ndarray, rect: tuple[int, int, int, int], shift: tuple[float, float], scale: float
    ) -> np.ndarray:
        x0, y0, x1, y1 = rect
        m = self.out_to_img.copy()
        a = m[:, :2]
        if scale != 1.0:
            # Map pixel p sits at class-map coordinate (p + 0.5) / scale - 0.5.
            pre = np.array([[1.0 / scale, 0.0, 0.5 / scale - 0.5], [0.0, 1.0 / scale, 0.5 / scale - 0.5]])
            m = np.hstack([a @ pre[:, :2], (a @ pre[:, 2] + m[:, 2])[:, None]])
            a = m[:, :2]
        if shift != (0.0, 0.0):
            # Sampling src(q + d) is the forward map q -> A (q - d) + b; d in map pixels.
            m[:, 2] -= a @ (np.asarray(shift, np.float64) * scale)
        m[:, 2] -= (x0, y0)
        return cv2.warpAffine(
            mask, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )

    def region(self, mask: np.ndarray) -> Region | None:
        """Warp a crop-space mask into the smallest frame rectangle it touches."""
        rect = self.rect_of(mask)
        if rect is None:
            return None
        return Region(*rect, self.warp(mask, rect))

    def regions(self, mask: np.ndarray) -> list[Region]:
        """Warp a crop-space mask of a paired part into one region per side (see ``rects_of``)."""
        return [Region(*r, self.warp(mask, r)) for r in self.rects_of(mask)]

    # -- class-map masks

    def prob(self, *names: str) -> np.ndarray:
        """Sum of class probabilities, clipped to 0..1, (S, S) float32 (cached)."""
        key = "p:" + ",".join(names)
        if key not in self._cache:
            m = self.planes[CLASS_ID[names[0]]].copy()
            for n in names[1:]:
                m += self.planes[CLASS_ID[n]]
            self._cache[key] = np.clip(m, 0.0, 1.0)
        return self._cache[key]  # type: ignore[return-value]

    def blur(self, mask: np.ndarray, factor: float = 1.0) -> np.ndarray:
        """Gaussian feather of ``factor`` times the configured sigma."""
        sigma = self.sigma * factor
        if sigma <= 0.05:
            return mask
        return cv2.GaussianBlur(mask, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)

    def feathered(self, *names: str) -> np.ndarray:
        """Feathered class mask (cached)."""
        key = "f:" + ",".join(names)
        if key not in self._cache:
            self._cache[key] = self.blur(self.prob(*names))
        return self._cache[key]  # type: ignore[return-value]

    def cached(self, key: str, build) -> np.ndarray:
        """Build a mask once per frame."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]  # type: ignore[return-value]

    def part(self, name: str) -> Part:
        """Centre and extent of a part; the reference layout's when the parser missed it."""
        key = "part:" + name
        if key not in self._cache:
            p = self.planes[CLASS_ID[name]]
            w = p * (p > 0.5)
            cols, rows = w.sum(axis=0), w.sum(axis=1)
            total = float(cols.sum())
            xs, ys = np.flatnonzero(cols), np.flatnonzero(rows)
            if total > 1.0 and xs.size >= 2:
                idx = np.arange(self.size, dtype=np.float32)
                part = Part(
                    float(cols @ idx) / total,
                    float(rows @ idx) / total,
                    float(xs[0]),
                    float(ys[0]),
                    float(xs[-1]),
                    float(ys[-1]),
                )
            else:
                cx, cy, ax, ay = (v * self.unit for v in _DEFAULT_PARTS_64[name])
                part = Part(cx, cy, cx - ax, cy - ay, cx + ax, cy + ay)
            self._cache[key] = part
        return self._cache[key]  # type: ignore[return-value]

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Class-map pixel coordinates (x, y), float32 (cached)."""
        if "grid" not in self._cache:
            ys, xs = np.mgrid[0 : self.size, 0 : self.size].astype(np.float32)
            self._cache["grid"] = (xs, ys)
        return self._cache["grid"]  # type: ignore[return-value]

    def ellipse(self, cx: float, cy: float, ax: float, ay: float, angle_deg: float = 0.0, falloff: float = 2.0):
        """A soft elliptical blob ``exp(-falloff * r^2)`` in class-map space, r = 1 on the axes."""
        xs, ys = self.grid()
        t = math.radians(angle_deg)
        c, s = np.float32(math.cos(t)), np.float32(math.sin(t))
        dx, dy = xs - np.float32(cx), ys - np.float32(cy)
        u = (c * dx + s * dy) * np.float32(1.0 / ax)
        v = (-s * dx + c * dy) * np.float32(1.0 / ay)
        return np.exp(-np.float32(falloff) * (u * u + v * v))


class Layer(ABC):
    """One kind of makeup. Instances are cached by the renderer and must be stateless per frame."""

    kind: ClassVar[str]
    refinements: ClassVar[frozenset[Refinement]] = frozenset()
    """The refinement passes this layer reads; the live tracker runs a pass only while a worn layer needs it."""

    @abstractmethod
    def apply(self, frame: np.ndarray, masks: FaceMasks, spec: LayerSpec) -> None:
        """Paint ``spec`` onto ``frame`` (uint8 RGB, modified in place) inside the face's ROI."""
