"""Face analysis: acquire with a detector, then track from the parser's own output.

The detector is the expensive, rare path. Once a face is found, each frame's
class map gives the face box for the next frame's crop (as MediaPipe's face
mesh does); a One-Euro filter on the box and an EMA on the class
probabilities (in crop space) keep the masks still on a still face.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from edge.contract import (
    CLASS_ID,
    FACE_CLASSES,
    MOUTH_CLASSES,
    CropGeometry,
    FaceBox,
    MouthCrop,
    crop_matrix,
    flip_permutation,
    invert_affine,
    mouth_matrix,
    warp_crop,
)
from edge.types import FaceAnalysis, MouthView, mouth_window

_FACE_IDS = np.array([CLASS_ID[c] for c in FACE_CLASSES])
_MOUTH_IDS = np.array([CLASS_ID[c] for c in MOUTH_CLASSES])
_SKIN_ID = CLASS_ID["skin"]
_EYE_IDS = np.array([CLASS_ID["left_eye"], CLASS_ID["right_eye"]])


class OneEuro:
    """One-Euro filter (Casiez et al. 2012): little jitter when still, little lag when moving."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._x: float | None = None
        self._dx = 0.0
        self._t = 0.0

    @staticmethod
    def _alpha(cutoff: float, dt: float) -> float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: float, t: float) -> float:
        """Filter sample x taken at monotonic time t."""
        if self._x is None:
            self._x, self._t = x, t
            return x
        dt = max(t - self._t, 1e-3)
        dx = (x - self._x) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        cutoff = self.min_cutoff + self.beta * abs(self._dx)
        a = self._alpha(cutoff, dt)
        self._x = a * x + (1 - a) * self._x
        self._t = t
        return self._x

    def reset(self) -> None:
        """Forget the history (a new face)."""
        self._x = None
        self._dx = 0.0


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


def parse_mouth(parser, image: np.ndarray, box: FaceBox, centre: tuple[float, float], mouth: MouthCrop) -> MouthView:
    """Parse the zoomed mouth crop centred on ``centre`` (see :func:`mouth_center`): the refinement pass."""
    size = parser.metadata.input.size
    m = mouth_matrix(box, centre, mouth, size)
    out = parser(warp_crop(image, m, size))
    return MouthView(m, out.probs, stride=size // out.probs.shape[0])


@dataclass
class StageTimes:
    """Milliseconds spent in each analysis stage for one frame."""

    detect: float = 0.0
    crop: float = 0.0
    infer: float = 0.0
    post: float = 0.0
    mouth: float = 0.0
    detected: bool = False
    skipped: bool = False
    extras: dict[str, float] = field(default_factory=dict)


class Analyzer:
    """Detect, track, crop, parse and smooth; one instance per stream."""

    def __init__(self, parser, detector, cfg, geometry: CropGeometry | None = None):
        """Build from a loaded parser, a detector and an ``AnalysisConfig``."""
        self.parser = parser
        self.detector = detector
        self.cfg = cfg
        self.geometry = geometry or parser.metadata.crop
        self.size = parser.metadata.input.size
        self._box: FaceBox | None = None
        self._probs: np.ndarray | None = None
        self._mouth_probs: np.ndarray | None = None
        self._filters = [OneEuro(cfg.smooth_min_cutoff, cfg.smooth_beta) for _ in range(4)]
        self._mouth_filters = [OneEuro(cfg.smooth_min_cutoff, cfg.smooth_beta) for _ in range(2)]
        self._since_detect = 0
        self._idle_skip = 0
        self.mouth_wanted = True
        """Whether anything needs the mouth pass now (the kiosk clears it while no lipstick is worn)."""
        self.detections = 0
        self.last = StageTimes()

    @property
    def tracking(self) -> bool:
        """Whether a face is being tracked (no detector needed next frame)."""
        return self._box is not None

    def set_parser(self, parser) -> None:
        """Swap the model (hot-swap); the track is kept, smoothing restarts."""
        self.parser = parser
        self.geometry = parser.metadata.crop
        self.size = parser.metadata.input.size
        self._probs = None
        self._mouth_probs = None

    def reset(self) -> None:
        """Drop the track."""
        self._box = None
        self._probs = None
        self._mouth_probs = None
        for f in (*self._filters, *self._mouth_filters):
            f.reset()

    def _acquire(self, frame: np.ndarray, times: StageTimes) -> FaceBox | None:
        """One detector pass over the whole frame; the customer's face box (with the eyes' roll), or None."""
        from edge.detectors import primary_face

        t0 = time.monotonic()
        found = self.detector.detect(frame)
        times.detect += (time.monotonic() - t0) * 1e3
        times.detected = True
        self.detections += 1
        self._since_detect = 0
        best = primary_face(found, frame.shape[1], frame.shape[0])
        return None if best is None else best.box

    def analyze(self, frame: np.ndarray, now: float | None = None) -> FaceAnalysis | None:
        """Analyse one RGB frame; None when no face is present.

        A face the tracker loses (its parse no longer finds one) is looked for
        again with one detector pass on the same frame, so a customer who moved
        fast is back without a lost frame.
        """
        times = StageTimes()
        self.last = times
        now = time.monotonic() if now is None else now
        box = self._box
        redetect = self.cfg.redetect_every and self._since_detect >= self.cfg.redetect_every
        if box is None and self._idle_skip > 0:
            # Nobody in view: look for a face only every few frames, to keep an idle kiosk cool.
            self._idle_skip -= 1
            times.skipped = True
            return None
        fresh = False
        if box is None or redetect:
            found = self._acquire(frame, times)
            if found is None and box is None:
                self._idle_skip = self.cfg.idle_detect_every - 1
                return None
            if found is not None and box is None:
                box, fresh = found, True
                for f in self._filters:
                    f.reset()
        self._since_detect += 1
        result = self._parse(frame, box, times)
        if result is None and not fresh:
            # The track is lost: re-acquire within this frame.
            self.reset()
            box = self._acquire(frame, times)
            result = None if box is None else self._parse(frame, box, times)
        if result is None:
            self.reset()
            return None
        analysis, next_box = result
        t0 = time.monotonic()
        vals = [f(v, now) for f, v in zip(self._filters, next_box, strict=True)]
        self._box = FaceBox(*vals)
        times.post += (time.monotonic() - t0) * 1e3
        analysis.mouth = self._refine_mouth(frame, self._box, analysis, times, now)
        return analysis

    def _parse(self, frame: np.ndarray, box: FaceBox, times: StageTimes) -> tuple[FaceAnalysis, FaceBox] | None:
        t0 = time.monotonic()
        m = crop_matrix(box, self.geometry, self.size)
        crop = warp_crop(frame, m, self.size)
        t1 = time.monotonic()
        out = self.parser(crop)
        t2 = time.monotonic()
        times.crop += (t1 - t0) * 1e3
        times.infer += (t2 - t1) * 1e3
        if out.face < self.cfg.face_threshold:
            times.post += (time.monotonic() - t2) * 1e3
            return None
        a = self.cfg.mask_ema
        probs = out.probs if self._probs is None else a * out.probs + (1 - a) * self._probs
        self._probs = probs
        probs = keep_one_mouth(probs)
        labels = probs.argmax(-1).astype(np.uint8)
        stride = self.size // labels.shape[0]
        analysis = FaceAnalysis(box, m, probs, labels, out.face, stride=stride)
        next_box = box_from_probs(probs, labels, analysis.output_to_image(), box, self.cfg.min_face_pixels)
        times.post += (time.monotonic() - t2) * 1e3
        if next_box is None:
            return None
        # The class map's face box is the contract's face box; keep the roll continuous.
        return analysis, next_box

    def _refine_mouth(
        self, frame: np.ndarray, box: FaceBox, analysis: FaceAnalysis, times: StageTimes, now: float
    ) -> MouthView | None:
        mouth = self.parser.metadata.mouth
        centre = None
        t0 = time.monotonic()
        if mouth is not None and self.cfg.refine_mouth and self.mouth_wanted:
            centre = mouth_center(analysis.probs, analysis.output_to_image())
        if centre is None:  # no pass this frame: the next one starts its smoothing afresh
            self._mouth_probs = None
            for f in self._mouth_filters:
                f.reset()
            return None
        # The crop's placement is filtered like the face box, so the EMA below blends aligned maps.
        centre = (self._mouth_filters[0](centre[0], now), self._mouth_filters[1](centre[1], now))
        view = parse_mouth(self.parser, frame, box, centre, mouth)
        # The mouth crop follows the lips, so its class map is smoothed in its own space, like the face's.
        if self._mouth_probs is not None and self._mouth_probs.shape == view.probs.shape:
            a = self.cfg.mask_ema
            view.probs = a * view.probs + (1 - a) * self._mouth_probs
        self._mouth_probs = view.probs
        view.probs = keep_one_mouth(view.probs, face=False)
        times.mouth = (time.monotonic() - t0) * 1e3
        return view


class FlipAveraged:
    """A parser that also parses the mirrored crop and averages the two (for stills: twice the inferences).

    A horizontal flip swaps the image-left and image-right parts, so the mirrored
    class map is flipped back and its left/right classes swapped before averaging.
    """

    def __init__(self, parser):
        self.parser = parser
        self.metadata = parser.metadata
        self._perm = flip_permutation(tuple(parser.metadata.classes))

    def __call__(self, crop: np.ndarray):
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
    parser, image: np.ndarray, box: FaceBox, centre: tuple[float, float], mouth: MouthCrop, zooms=STILL_MOUTH_ZOOMS
) -> MouthView:
    """The mouth pass at several crop sizes, averaged in the middle size's class-map space."""
    import cv2

    views = [parse_mouth(parser, image, box._replace(size=box.size * z), centre, mouth) for z in zooms]
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


def _parse_at(parser, image: np.ndarray, box: FaceBox, cfg) -> tuple[FaceAnalysis, FaceBox] | None:
    """Parse the crop of ``box``: the analysis and the face box its class map finds, or None (no face)."""
    size = parser.metadata.input.size
    m = crop_matrix(box, parser.metadata.crop, size)
    out = parser(warp_crop(image, m, size))
    if out.face < cfg.face_threshold:
        return None
    labels = out.probs.argmax(-1).astype(np.uint8)
    fa = FaceAnalysis(box, m, out.probs, labels, out.face, stride=size // labels.shape[0])
    nb = box_from_probs(out.probs, labels, fa.output_to_image(), box, cfg.min_face_pixels)
    return None if nb is None else (fa, _within(nb, image))


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


def analyze_still(parser, detector, cfg, image: np.ndarray, refine: int = 2) -> list[FaceAnalysis]:
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
        box = found
        # Keep the parse whose crop agreed best with its own face box: on a face unlike the
        # training data the refinement can drift (skin bleeding into a grey background grows
        # the box every pass).
        best: tuple[float, FaceAnalysis, FaceBox] | None = None
        for _ in range(refine + 1):
            step = _parse_at(parser, image, box, cfg)
            if step is None:
                break
            fa, nb = step
            nb = _near(nb, found)
            cost = disagreement(box, nb)
            if best is None or cost <= best[0] + 0.02:  # ties go to the later, more refined parse
                best = (cost, fa, nb)
            box = nb
        if best is None:
            continue
        _, result, box = best
        result.probs = keep_one_mouth(result.probs)
        result.labels = result.probs.argmax(-1).astype(np.uint8)
        mouth = parser.metadata.mouth
        centre = mouth_center(result.probs, result.output_to_image())
        if mouth is not None and cfg.refine_mouth and centre is not None:
            zooms = STILL_MOUTH_ZOOMS if cfg.still_tta else (1.0,)
            result.mouth = parse_mouth_zooms(parser, image, box, centre, mouth, zooms)
            result.mouth.probs = keep_one_mouth(result.mouth.probs, face=False)
        faces.append((best[0], result))
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


def _warp_planes(probs: np.ndarray, m: np.ndarray, width: int, height: int) -> np.ndarray:
    """Warp (S, S, C) class-map planes to the image (bilinear; 0 outside the crop)."""
    import cv2

    out = np.zeros((height, width, probs.shape[2]), np.float32)
    for c in range(probs.shape[2]):
        out[..., c] = cv2.warpAffine(
            np.ascontiguousarray(probs[..., c], np.float32),
            m,
            (width, height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0.0,
        )
    return out


def image_probs(face: FaceAnalysis, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A face's class probabilities warped to the frame, with its mouth view blended in.

    Returns:
        (probs float32 (H, W, C), inside bool (H, W): pixels the face crop covers).
    """
    import cv2

    m = face.output_to_image()
    # Warp probabilities (not labels) so edges land at sub-pixel accuracy.
    probs = _warp_planes(face.probs, m, width, height)
    inside = (
        cv2.warpAffine(
            np.ones(face.probs.shape[:2], np.float32),
            m,
            (width, height),
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0.0,
        )
        > 0.5
    )
    if face.mouth is not None:
        mm = face.mouth.output_to_image()
        win = cv2.warpAffine(
            mouth_window(face.mouth.probs.shape[0]), mm, (width, height), flags=cv2.INTER_LINEAR, borderValue=0.0
        )[..., None]
        probs = probs * (1.0 - win) + _warp_planes(face.mouth.probs, mm, width, height) * win
    return probs, inside


def labels_to_image(faces: list[FaceAnalysis], height: int, width: int) -> np.ndarray:
    """One label image the size of the frame: each face's class map (and mouth view) warped back.

    Pixels outside every face crop are 0 (background). Where crops overlap,
    the face with the higher class confidence at that pixel wins.
    """
    out = np.zeros((height, width), np.uint8)
    best = np.zeros((height, width), np.float32)
    for fa in faces:
        probs, inside = image_probs(fa, height, width)
        lab = probs.argmax(-1).astype(np.uint8)
        conf = probs.max(-1) * (lab > 0)
        take = inside & (conf > best)
        out[take] = lab[take]
        best[take] = conf[take]
    return out
