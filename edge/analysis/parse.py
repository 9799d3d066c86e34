"""The parse step both paths share: crop a face box, run the parser, read the class map; and the mouth pass.

The live tracker (:mod:`edge.analysis.tracker`) and the still-image search
(:mod:`edge.analysis.still`) differ only in what they do between these steps
(temporal smoothing, or refinement and test-time augmentation).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from edge.contract import (
    CLASS_ID,
    FACE_CLASSES,
    MOUTH_CLASSES,
    CropGeometry,
    FaceBox,
    MouthCrop,
    crop_matrix,
    mouth_matrix,
    warp_crop,
)
from edge.types import FaceAnalysis, MouthView

if TYPE_CHECKING:
    from edge.config import AnalysisConfig
    from edge.runtime.base import Parser

_FACE_IDS = np.array([CLASS_ID[c] for c in FACE_CLASSES])
_MOUTH_IDS = np.array([CLASS_ID[c] for c in MOUTH_CLASSES])
_SKIN_ID = CLASS_ID["skin"]
_EYE_IDS = np.array([CLASS_ID["left_eye"], CLASS_ID["right_eye"]])


@dataclass
class CropParse:
    """One face crop and the parser's output on it.

    Attributes:
        box: the face box the crop was made from.
        crop_matrix: 2x3 affine, image pixels -> model input pixels.
        probs: float32 (S, S, C) class probabilities in output space.
        face: the model's face-present score.
        input_size: the model's input side (output stride = input_size // S).
        crop_ms: milliseconds spent cutting the crop.
        infer_ms: milliseconds spent in the parser.
    """

    box: FaceBox
    crop_matrix: np.ndarray
    probs: np.ndarray
    face: float
    input_size: int
    crop_ms: float = 0.0
    infer_ms: float = 0.0


class ParsedFace(NamedTuple):
    """A face read from a crop's class map, and the face box that class map finds (the next crop's)."""

    analysis: FaceAnalysis
    found: FaceBox


def parse_crop(parser: Parser, image: np.ndarray, box: FaceBox, geometry: CropGeometry | None = None) -> CropParse:
    """Cut the crop of ``box`` (the bundle's crop geometry unless ``geometry``) and parse it, timed."""
    size = parser.metadata.input.size
    t0 = time.monotonic()
    m = crop_matrix(box, geometry or parser.metadata.crop, size)
    crop = warp_crop(image, m, size)
    t1 = time.monotonic()
    out = parser(crop)
    t2 = time.monotonic()
    return CropParse(box, m, out.probs, out.face, size, (t1 - t0) * 1e3, (t2 - t1) * 1e3)


def read_face(parse: CropParse, probs: np.ndarray, min_pixels: int) -> ParsedFace | None:
    """The face analysis of a crop's (possibly smoothed or cleaned) ``probs``; None when too little face is seen."""
    labels = probs.argmax(-1).astype(np.uint8)
    analysis = FaceAnalysis(
        parse.box, parse.crop_matrix, probs, labels, parse.face, stride=parse.input_size // len(labels)
    )
    found = box_from_probs(probs, labels, analysis.output_to_image(), parse.box, min_pixels)
    return None if found is None else ParsedFace(analysis, found)


def _centroid(mask: np.ndarray) -> tuple[float, float] | None:
    ys, xs = np.nonzero(mask)
    if len(xs) < 2:
        return None
    return float(xs.mean()), float(ys.mean())


def _span(profile: np.ndarray) -> tuple[float, float] | None:
    """Sub-pixel extent of a 1-D profile above 0.5: where it crosses 0.5 on each side.

    Equals the hard bounding box (first/last pixel >= 0.5, +-0.5 px) for a crisp
    mask, but moves smoothly as probabilities change, so the tracker does not jump
    by whole output pixels from frame to frame.
    """
    above = profile >= 0.5
    if not above.any():
        return None
    n = len(profile)
    i0 = int(np.argmax(above))
    i1 = n - 1 - int(np.argmax(above[::-1]))

    def cross(a: int, b: int) -> float:
        pa, pb = float(profile[a]), float(profile[b])
        t = (0.5 - pa) / (pb - pa) if pb != pa else 0.5
        return a + t * (b - a)

    lo = cross(i0 - 1, i0) if i0 > 0 else -0.5
    hi = cross(i1, i1 + 1) if i1 < n - 1 else n - 0.5
    return lo, hi


def box_from_probs(
    probs: np.ndarray, labels: np.ndarray, m_out_to_img: np.ndarray, box: FaceBox, min_pixels: int
) -> FaceBox | None:
    """The face box (with roll) implied by class probabilities, in image pixels.

    Args:
        probs: (S, S, C) class probabilities in output space.
        labels: (S, S) their argmax.
        m_out_to_img: 2x3 affine from output pixels to image pixels.
        box: the box the crop was made from (its roll is the crop's frame).
        min_pixels: fewer face pixels than this means no face.
    """
    face_p = probs[..., _FACE_IDS].sum(-1)
    if int((face_p >= 0.5).sum()) < min_pixels:
        return None
    xs = _span(face_p.max(0))
    ys = _span(face_p.max(1))
    if xs is None or ys is None:
        return None
    u, v = (xs[0] + xs[1]) / 2.0, (ys[0] + ys[1]) / 2.0
    scale = float(np.hypot(*m_out_to_img[:, 0]))
    size = max(xs[1] - xs[0], ys[1] - ys[0]) * scale
    cx, cy = m_out_to_img @ np.array([u, v, 1.0])
    angle = box.angle_deg
    le = _centroid(labels == CLASS_ID["left_eye"])
    re = _centroid(labels == CLASS_ID["right_eye"])
    if le and re and re[0] - le[0] > 2:
        angle += math.degrees(math.atan2(re[1] - le[1], re[0] - le[0]))
    return FaceBox(float(cx), float(cy), float(size), float(angle))


def keep_one_mouth(probs: np.ndarray, threshold: float = 0.5, face: bool = True) -> np.ndarray:
    """Probabilities with stray lips handed to skin: a face has one mouth.

    On faces unlike the training data the model sometimes also reads a chin
    crease or a smile line as lips. Among the sizeable lips-and-mouth blobs, the
    mouth is the highest one below the eyes in a whole-face map (``face``), or
    the one nearest the centre of a mouth view. Another blob is kept only when
    it brings a part the mouth lacks (an upper lip cut off by teeth read as
    skin), and dropped when it repeats one (a second lower lip under the first).
    """
    import cv2

    parts = probs[..., _MOUTH_IDS]
    p = parts.sum(-1)
    mask = (p >= threshold).astype(np.uint8)
    # Blobs a pixel apart are one: a dark lip line can split a lip.
    n, comp = cv2.connectedComponents(cv2.dilate(mask, np.ones((3, 3), np.uint8)), connectivity=8)
    if n <= 2:
        return probs
    flat = comp.ravel()
    w = (parts * mask[..., None]).reshape(-1, parts.shape[-1])
    mass = np.stack([np.bincount(flat, weights=w[:, k], minlength=n) for k in range(w.shape[1])], 1)
    mass[0] = 0.0
    total = mass.sum(1)
    size = np.maximum(np.bincount(flat, minlength=n), 1)
    ys, xs = np.indices(comp.shape)
    cy = np.bincount(flat, weights=ys.ravel(), minlength=n) / size
    cx = np.bincount(flat, weights=xs.ravel(), minlength=n) / size
    if face:
        # The crop is upright: the mouth is below the eyes, and it is the highest sizeable blob there;
        # the misreads are under it (a chin crease) or beside it (smile lines).
        eyes = np.nonzero(np.isin(probs.argmax(-1), _EYE_IDS))[0]
        if len(eyes) and (total * (cy > eyes.mean())).max() > 0:
            total = total * (cy > eyes.mean())
        rank = np.where(total >= 0.3 * total.max(), cy, np.inf)
    else:
        # A mouth view is centred on the face map's mouth: the sizeable blob nearest its centre.
        c = (comp.shape[0] - 1) / 2.0
        rank = np.where(total >= 0.3 * total.max(), np.hypot(cy - c, cx - c), np.inf)
    rank[0] = np.inf
    main = int(rank.argmin())
    keep = np.zeros(n, bool)
    keep[main] = True
    for c in range(1, n):
        if c != main:
            k = int(mass[c].argmax())
            keep[c] = mass[main, k] < 0.3 * mass[c, k]
    drop = ~keep[comp] & (p > 0.05)
    if not drop.any():
        return probs
    out = probs.copy()
    out[..., _SKIN_ID] += np.where(drop, p, 0.0)
    out[..., _MOUTH_IDS] = np.where(drop[..., None], 0.0, parts)
    return out


def mouth_center(probs: np.ndarray, m_out_to_img: np.ndarray, min_pixels: int = 4) -> tuple[float, float] | None:
    """Image-pixel centroid of the lips and mouth in a class map, or None when they are not seen.

    Probability-weighted over confident pixels, so it moves smoothly instead of
    jumping a class-map pixel when one pixel's argmax flips.
    """
    p = probs[..., _MOUTH_IDS].sum(-1)
    if int((p >= 0.5).sum()) < min_pixels:
        return None
    w = np.where(p >= 0.3, p, 0.0)
    total = float(w.sum())
    ys, xs = np.indices(p.shape)
    u, v = float((w * xs).sum()) / total, float((w * ys).sum()) / total
    x, y = m_out_to_img @ np.array([u, v, 1.0])
    return float(x), float(y)


class MouthTarget(NamedTuple):
    """Where the mouth pass looks: the bundle's mouth crop and the lips' centre in image pixels."""

    crop: MouthCrop
    centre: tuple[float, float]


def mouth_target(parser: Parser, cfg: AnalysisConfig, face: FaceAnalysis) -> MouthTarget | None:
    """The mouth pass's target for a face's parse; None when the bundle has no mouth view, the config
    turns the pass off, or the parse shows no lips."""
    mouth = parser.metadata.mouth
    if mouth is None or not cfg.refine_mouth:
        return None
    centre = mouth_center(face.probs, face.output_to_image())
    return None if centre is None else MouthTarget(mouth, centre)


def parse_mouth(
    parser: Parser, image: np.ndarray, box: FaceBox, centre: tuple[float, float], mouth: MouthCrop
) -> MouthView:
    """Parse the zoomed mouth crop centred on ``centre`` (see :func:`mouth_center`): the refinement pass."""
    size = parser.metadata.input.size
    m = mouth_matrix(box, centre, mouth, size)
    out = parser(warp_crop(image, m, size))
    return MouthView(m, out.probs, stride=size // out.probs.shape[0])


def settle_mouth(view: MouthView) -> MouthView:
    """A mouth view with its stray lips handed to skin (:func:`keep_one_mouth` in mouth-view mode)."""
    view.probs = keep_one_mouth(view.probs, face=False)
    return view
