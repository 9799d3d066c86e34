"""Still images: every face the detector's search finds, refined from its own parse, with test-time augmentation.

``vanity analyze``/``render`` and ``vanity eval`` use this path; it keeps no
temporal state, and can afford more inferences per face than the live tracker.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np

import edge.analysis.parse as shared
from edge.contract import FaceBox, MouthCrop, flip_permutation, invert_affine
from edge.detectors import Detector
from edge.runtime.base import ParseOutput
from edge.types import FaceAnalysis, MouthView

if TYPE_CHECKING:
    from edge.config import AnalysisConfig
    from edge.runtime.base import Parser

log = logging.getLogger(__name__)


class FlipAveraged:
    """A parser that also parses the mirrored crop and averages the two (for stills: twice the inferences).

    A horizontal flip swaps the image-left and image-right parts, so the mirrored
    class map is flipped back and its left/right classes swapped before averaging.
    """

    def __init__(self, parser: Parser) -> None:
        self.parser = parser
        self.metadata = parser.metadata
        self.runtime_name = getattr(parser, "runtime_name", "?")
        self._perm = flip_permutation(tuple(parser.metadata.classes))

    def __call__(self, crop: np.ndarray) -> ParseOutput:
        """Average of the crop's and the mirrored crop's parse."""
        a = self.parser(crop)
        b = self.parser(np.ascontiguousarray(crop[:, ::-1]))
        back = b.probs[:, ::-1][..., self._perm]
        # Output pixel u is input pixel s*u; mirrored, that is input W-1-s*u, which falls a
        # fraction (s-1)/s of an output pixel beyond the mirrored map's pixel: interpolate.
        s = crop.shape[1] // a.probs.shape[1]
        f = (s - 1) / s
        if f:
            back = (1.0 - f) * back + f * np.concatenate([back[:, :1], back[:, :-1]], axis=1)
        probs = 0.5 * (a.probs + back)
        return type(a)(np.ascontiguousarray(probs, np.float32), 0.5 * (a.face + b.face))


STILL_MOUTH_ZOOMS: tuple[float, ...] = (0.8, 0.9, 1.0, 1.1, 1.2)
"""Mouth crop sizes (times the contract's) averaged for still images: the lips' outline varies a
little with the crop's zoom, and a still image can afford a few more inferences."""


def parse_mouth_zooms(
    parser: Parser,
    image: np.ndarray,
    box: FaceBox,
    centre: tuple[float, float],
    mouth: MouthCrop,
    zooms: tuple[float, ...] = STILL_MOUTH_ZOOMS,
) -> MouthView:
    """The mouth pass at several crop sizes, averaged in the middle size's class-map space."""
    import cv2

    views = [shared.parse_mouth(parser, image, box._replace(size=box.size * z), centre, mouth) for z in zooms]
    ref = views[len(views) // 2]
    if len(views) == 1:  # no test-time augmentation: nothing to resample
        return ref
    s = ref.probs.shape[0]
    img_to_ref = invert_affine(ref.output_to_image())
    acc = np.zeros_like(ref.probs)
    weight = np.zeros((s, s), np.float32)
    for v in views:
        o2i = v.output_to_image()
        m = np.hstack([img_to_ref[:, :2] @ o2i[:, :2], (img_to_ref[:, :2] @ o2i[:, 2] + img_to_ref[:, 2])[:, None]])
        # A smaller crop covers only the middle of the reference: weigh each view by where it has pixels.
        weight += cv2.warpAffine(np.ones((s, s), np.float32), m, (s, s), flags=cv2.INTER_LINEAR, borderValue=0.0)
        for c in range(acc.shape[2]):
            acc[..., c] += cv2.warpAffine(
                np.ascontiguousarray(v.probs[..., c]), m, (s, s), flags=cv2.INTER_LINEAR, borderValue=0.0
            )
    return MouthView(ref.crop_matrix, (acc / np.maximum(weight, 1e-6)[..., None]).astype(np.float32), ref.stride)


def _within(box: FaceBox, image: np.ndarray) -> FaceBox:
    """A face box no larger than 1.25x the image: a face that runs off a close-up's edges cannot be measured."""
    return box._replace(size=min(box.size, 1.25 * max(image.shape[:2])))


def _parse_at(parser: Parser, image: np.ndarray, box: FaceBox, cfg: AnalysisConfig) -> shared.ParsedFace | None:
    """The shared parse step on the crop of ``box``, unsmoothed: None when the model sees no face there."""
    crop = shared.parse_crop(parser, image, box)
    if crop.face < cfg.face_threshold:
        return None
    parsed = shared.read_face(crop, crop.probs, cfg.min_face_pixels)
    return None if parsed is None else parsed._replace(found=_within(parsed.found, image))


STILL_DRIFT = (0.8, 1.25, 0.2)
"""How far a still's refinement may move the crop from the detector's box: least and most size ratio, and
centre shift in detector box sides. Where the model reads a grey background or grey hair as skin, its own
face box grows pass after pass; the detector's box does not."""


def _near(box: FaceBox, anchor: FaceBox) -> FaceBox:
    """``box`` held within :data:`STILL_DRIFT` of the detector's ``anchor``."""
    lo, hi, shift = STILL_DRIFT
    size = min(max(box.size, lo * anchor.size), hi * anchor.size)
    dx, dy = box.cx - anchor.cx, box.cy - anchor.cy
    d = math.hypot(dx, dy)
    k = min(1.0, shift * anchor.size / d) if d > 0 else 1.0
    return FaceBox(anchor.cx + k * dx, anchor.cy + k * dy, size, box.angle_deg)


def disagreement(box: FaceBox, parsed: FaceBox) -> float:
    """How far the face box a crop's parse finds is from the box the crop was made from (0: a fixed point)."""
    return abs(math.log(parsed.size / box.size)) + math.hypot(parsed.cx - box.cx, parsed.cy - box.cy) / box.size


def _refine(
    parser: Parser, image: np.ndarray, found: FaceBox, cfg: AnalysisConfig, refine: int
) -> tuple[float, FaceAnalysis, FaceBox] | None:
    """Re-crop a detection from its own parse ``refine`` times: (disagreement, parse, its box) of the parse whose
    crop agreed best with its own face box, or None when the model does not parse the crop as a face."""
    box = found
    # Keep the best-agreeing parse: on a face unlike the training data the refinement can drift
    # (skin bleeding into a grey background grows the box every pass).
    best: tuple[float, FaceAnalysis, FaceBox] | None = None
    for _ in range(refine + 1):
        step = _parse_at(parser, image, box, cfg)
        if step is None:
            break
        nb = _near(step.found, found)
        cost = disagreement(box, nb)
        if best is None or cost <= best[0] + 0.02:  # ties go to the later, more refined parse
            best = (cost, step.analysis, nb)
        box = nb
    return best


def analyze_still(
    parser: Parser, detector: Detector, cfg: AnalysisConfig, image: np.ndarray, refine: int = 2
) -> list[FaceAnalysis]:
    """Analyse every face in a still image (no temporal state); an image without a face gives [].

    Faces come only from the detector's still-image search (``detector.search``:
    every face it scores as one, rolled heads included); nothing is guessed where
    it found none. Each detection is refined ``refine`` times by re-cropping from
    the class map's own face box, the same geometry the tracker uses, and a face
    whose crop the model does not parse as a face is dropped. With
    ``cfg.still_tta`` every parse also averages the crop's mirror image, and the
    mouth pass is averaged over a few crop sizes (:data:`STILL_MOUTH_ZOOMS`).
    """
    search = getattr(detector, "search", detector.detect)
    boxes = [d.box for d in search(image)]
    if cfg.still_tta:
        parser = FlipAveraged(parser)
    faces: list[tuple[float, FaceAnalysis]] = []
    for found in boxes:
        best = _refine(parser, image, found, cfg, refine)
        if best is None:
            log.debug("detection %s dropped: its crop does not parse as a face", found)
            continue
        cost, result, box = best
        result.probs = shared.keep_one_mouth(result.probs)
        result.labels = result.probs.argmax(-1).astype(np.uint8)
        target = shared.mouth_target(parser, cfg, result)
        if target is not None:
            zooms = STILL_MOUTH_ZOOMS if cfg.still_tta else (1.0,)
            result.mouth = shared.settle_mouth(parse_mouth_zooms(parser, image, box, target.centre, target.crop, zooms))
        faces.append((cost, result))
    return _one_per_place(faces)


def _one_per_place(scored: list[tuple[float, FaceAnalysis]]) -> list[FaceAnalysis]:
    """One face per place, best settled first: a face whose centre lies inside a kept face's box is the same
    person found twice (two detections whose refinements converged)."""
    kept: list[FaceAnalysis] = []
    for _, fa in sorted(scored, key=lambda t: t[0]):
        b = fa.box
        if all(math.hypot(b.cx - k.box.cx, b.cy - k.box.cy) > 0.5 * max(k.box.size, b.size) for k in kept):
            kept.append(fa)
    return kept
