"""Skin tone: Monk Skin Tone step and undertone, corrected for the colour of the light.

Method (the colour match's weights are fitted on synthetic faces with exact truth; the learned
tone model, step 5, on grouped real photos):

1. **Skin pixels.** The face's skin class with probability >= 0.8, eroded by one class-map
   pixel so nothing at a part's edge (brow, lips, hairline) leaks in. The frame is sampled
   in model-input space (128 x 128), where the skin mask lives.
2. **Illuminant.** Shades-of-grey (Finlayson & Trezzi 2004, Minkowski p = 6) over the
   scene in *linear* RGB: the frame decimated to ~160 pixels across, without the face's skin (the thing we
   measure must not vote for the light) and without clipped or near-black pixels (their
   colour is not the light's). A colour cast is a per-channel gain, and the p-norm of a
   gained image is the gained p-norm, so the estimate follows the cast exactly.
3. **Von Kries correction.** Each channel is divided by the estimate and scaled so the
   estimate becomes a fixed neutral grey of linear value ``REFERENCE_GREY``. The absolute
   normalisation (rather than preserving the camera's exposure) is deliberate: it removes
   exposure changes together with the cast, so a kiosk's auto-exposure hunting does not
   move the measured lightness either; the price is that L* is relative to the scene.
4. **Skin colour** (``skin_colour``). Lightness and chromaticity are measured apart,
   because the sensor's clipping affects them differently. Lightness: the median
   luminance of the skin above its darkest 15 % (shadows, pores, stray hair), a clipped
   pixel counting as brighter than any unclipped one (it is at least that bright), so
   light skin at a high exposure is not read darker. Chromaticity: the median of each
   channel over the luminance, over the unclipped pixels (shading scales a pixel's
   channels together, so its chromaticity is the skin's wherever nothing clipped; the red
   channel of light skin clips first and would turn it blue). Together: CIELAB, D65.
5. **Monk step.** Three ways, by what the exposure is known from:

   - **Calibrated** (a kiosk that has photographed its card): the nearest of the 10 Monk
     Skin Tone references (``edge.colour``, their sRGB values read as reflectance relative
     to the reference white) by a weighted CIELAB distance, ``MONK_WEIGHTS``: L*
     half-weighted and b* doubled, because Monk 1-4 differ by only 6 in L* but by 12 in b*.
   - **Learned** (any camera or photo, the default without a card): the learned tone model
     (``edge.tone_model``) maps the photo's measurements (``tone_features``: the skin against
     its own specular highlights, its saturation and white-balanced chromaticity, the
     camera's lightness) to a continuous Monk value. A colour match cannot rank people in
     ordinary photos: the swatches 1-4 are near-white, lighter than real skin's
     reflectance, and exposure moves a photo's skin as much as its tone does.
   - **Scene colour match** (no model loaded): the nearest swatch to the scene-normalised
     colour, unweighted.

   ``SkinTone.score`` is the continuous value the step is rounded from (for a colour
   match, the nearest step moved toward its nearer neighbour), which the kiosk smooths.
6. **Undertone.** From the hue angle h = atan2(b*, a*) of the skin: human skin lies around
   40-75 degrees; below ``COOL_BELOW`` (redder/pinker) is cool, above ``WARM_ABOVE``
   (more yellow/golden) is warm, neutral between.
7. **Kiosk calibration** (``edge.calibration``, ``vanity calibrate``). When the kiosk has
   photographed a grey or white card under its own light, steps 2-3 use the card instead:
   its per-channel gains turn camera values into reflectance, which is what a swatch's
   sRGB value is relative to the reference white. This fixes
   the light's colour *and* the exposure, so the estimate no longer depends on what the
   scene holds; it assumes the camera's exposure and white balance stay as they were
   when the card was shown.
8. **Confidence and uncertainty.** Confidence (0..1) falls with few skin pixels, uneven
   light on the face (a wide L* spread), clipped skin, and without calibration, and is 0
   for a colourless (black-and-white) photo. The uncertainty is +-0.5 Monk step with
   calibration, the learned model's own (the held-out spread of one person's photos)
   through it, and +-1.5 for the scene colour match. The kiosk and ``vanity analyze``
   advise by tone only above ``analysis.tone_min_confidence``.

Where it fails: see the README's "Skin tone and kiosk calibration" (the learned model's
held-out figures, and what it assumes).
"""

from __future__ import annotations

import functools
import math
from dataclasses import replace
from typing import NamedTuple

import cv2
import numpy as np

from edge.colour import LUMA, linear_lut, linear_to_lab, monk_lab
from edge.contract import CLASS_ID
from edge.tone_model import ToneModel, monk_of_score
from edge.types import FaceAnalysis, SkinTone, Undertone

MONK_WEIGHTS: dict[str, tuple[float, float, float]] = {"calibration": (0.5, 1.0, 2.0), "scene": (1.0, 1.0, 1.0)}
"""Weights of (L*, a*, b*) in the distance to a Monk reference, by the reference the exposure came from.

Fitted on synthetic faces (``benchmarks/tone_benchmark.py``'s generator, seed 1; the benchmark
reports seed 0). With a card the colour is exact and Monk 1-4, whose L* differ by only 6,
are told apart by b* (5 to 18); from the scene the exposure, and so L*, is the weaker part."""

COOL_BELOW = 52.0
"""Hue angle (degrees) below which the undertone is cool."""

WARM_ABOVE = 62.0
"""Hue angle (degrees) above which the undertone is warm."""

REFERENCE_GREY = 0.4
"""Linear value the scene's shades-of-grey estimate is corrected to (a light grey; fitted with ``MONK_WEIGHTS``)."""

COLOURLESS_BELOW = 3.0
"""Mean |R-G| + |G-B| (8-bit levels) of the face crop below which the photo has no colour to measure."""

MINKOWSKI_P = 6.0
SKIN_PROB = 0.8
MIN_SKIN_PIXELS = 40
_SHADOW_PCT = 15.0
_MIN_CHROMA_PIXELS = 10


def monk_distances(lab: np.ndarray | tuple[float, float, float], reference: str = "scene") -> np.ndarray:
    """Weighted distance from a CIELAB colour to each Monk reference, (10,).

    Args:
        lab: the skin's CIELAB.
        reference: what its exposure came from (a key of ``MONK_WEIGHTS``).
    """
    d = (monk_lab() - np.asarray(lab, np.float64)) * np.asarray(MONK_WEIGHTS[reference])
    return np.sqrt((d * d).sum(axis=1))


def monk_step(lab: np.ndarray | tuple[float, float, float], reference: str = "scene") -> int:
    """Nearest Monk step (1..10) to a CIELAB colour (see ``monk_distances``)."""
    return int(np.argmin(monk_distances(lab, reference))) + 1


def hue_angle(lab: np.ndarray | tuple[float, float, float]) -> float:
    """CIELAB hue angle in degrees, atan2(b*, a*)."""
    return math.degrees(math.atan2(float(lab[2]), float(lab[1])))


def undertone_of(lab: np.ndarray | tuple[float, float, float]) -> Undertone:
    """Warm, neutral or cool from the hue angle."""
    return _undertone_of_hue(hue_angle(lab))


_UNDERTONE_RANK = {"cool": 0, "neutral": 1, "warm": 2}


def _undertone_of_hue(h: float) -> Undertone:
    if h < COOL_BELOW:
        return "cool"
    if h > WARM_ABOVE:
        return "warm"
    return "neutral"


def estimate_illuminant(frame_rgb: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """Shades-of-grey estimate of the light's colour, linear RGB (3,), from a uint8 frame.

    Args:
        frame_rgb: uint8 RGB frame (already small is fine).
        exclude: optional bool mask of the frame's pixels not to use (e.g. the skin).
    """
    frame_rgb = np.ascontiguousarray(frame_rgb)
    lin = cv2.LUT(frame_rgb, linear_lut())
    hi = np.maximum(np.maximum(frame_rgb[:, :, 0], frame_rgb[:, :, 1]), frame_rgb[:, :, 2])
    ok = (hi < 250) & (hi > 8)  # clipped pixels lost their colour, near-black ones are noise
    if exclude is not None:
        keep = ok & ~exclude
        if keep.sum() >= 0.05 * ok.size:
            ok = keep
    if ok.sum() < 16:
        ok[...] = True
    if MINKOWSKI_P == 6.0:
        powered = lin * lin
        powered *= powered * powered  # x**6, much faster than np.power
    else:
        powered = np.power(lin, np.float32(MINKOWSKI_P))
    mean = np.array(cv2.mean(powered, mask=ok.view(np.uint8))[:3], np.float64)
    est = np.power(mean, 1.0 / MINKOWSKI_P)
    return np.maximum(est, 1e-4)


UNCERTAINTY = {"calibration": 0.5, "scene": 1.5}
"""Stated uncertainty (Monk steps) of an estimate by the reference its exposure came from."""


class _Crop:
    """The frame in the face's model-input space, warped once; pixels under any class-map mask.

    Args:
        frame_rgb: (H, W, 3) uint8 frame.
        face: the analysed face (its crop matrix, stride and class probabilities).
    """

    def __init__(self, frame_rgb: np.ndarray, face: FaceAnalysis):
        h, w = frame_rgb.shape[:2]
        self.probs = face.probs
        self.stride = int(face.stride)
        side = face.probs.shape[0] * self.stride
        self.image = cv2.warpAffine(frame_rgb, face.crop_matrix, (side, side), flags=cv2.INTER_LINEAR, borderValue=0)
        inside = cv2.warpAffine(np.full((h, w), 255, np.uint8), face.crop_matrix, (side, side), flags=cv2.INTER_NEAREST)
        self.inside = inside == 255

    @functools.cached_property
    def colourless(self) -> bool:
        """Whether the face's crop has no colour at all (a black-and-white photo, a monochrome camera)."""
        px = self.image[self.inside].astype(np.int16)
        if not px.size:
            return False
        # JPEG keeps a grey image's channels within a level or two of each other; skin is never that grey.
        return float(np.mean(np.abs(px[:, 0] - px[:, 1]) + np.abs(px[:, 1] - px[:, 2]))) < COLOURLESS_BELOW

    def pixels(self, mask: np.ndarray) -> np.ndarray:
        """Frame pixels (N, 3) uint8 under a class-map mask (only those that came from inside the frame)."""
        up = np.repeat(np.repeat(mask, self.stride, axis=0), self.stride, axis=1).astype(bool) & self.inside
        return self.image[up]

    def luminance(self, names: tuple[str, ...], prob: float, erode: bool = False) -> np.ndarray:
        """Linear luminance of the pixels where the classes' summed probability is at least ``prob``.

        With ``erode``, the mask loses one class-map pixel at its edge (nothing from a neighbouring part).
        """
        summed = np.sum([self.probs[:, :, CLASS_ID[n]] for n in names], axis=0)
        mask = (summed >= prob).astype(np.uint8)
        if erode:
            mask = cv2.erode(mask, np.ones((3, 3), np.uint8))
        return linear_lut()[self.pixels(mask)].astype(np.float64) @ LUMA


class SkinColour(NamedTuple):
    """The skin's colour from its pixels.

    Attributes:
        lab: CIELAB (L*, a*, b*) of the skin, after the gains.
        lightness: L* of every skin pixel above the shadow cut (for the spread of the light on it).
        clipped: share of skin pixels with a clipped channel.
    """

    lab: np.ndarray
    lightness: np.ndarray
    clipped: float


def skin_colour(pixels: np.ndarray, gains: np.ndarray) -> SkinColour | None:
    """CIELAB of skin from its 8-bit sRGB pixels, with per-channel gains to reflectance applied.

    Lightness and chromaticity are taken apart, because clipping affects them differently:

    - **Lightness**: the median luminance of the pixels above the darkest ``_SHADOW_PCT`` %
      (shadows, pores, stray hair). A clipped pixel counts as brighter than every unclipped
      one: its true value is at least what was recorded, so the median stays right while
      fewer than half the pixels are clipped (light skin at a high exposure).
    - **Chromaticity** (each channel over the luminance): the median over the unclipped pixels
      above the shadow cut. Shading scales a pixel's channels together, so its
      chromaticity is the skin's own wherever the sensor did not clip; a clipped pixel has
      lost it (the red channel clips first on skin).

    Returns None for fewer than ``MIN_SKIN_PIXELS`` pixels.
    """
    if pixels.shape[0] < MIN_SKIN_PIXELS:
        return None
    lin = linear_lut()[pixels].astype(np.float64) * gains
    y = lin @ LUMA
    clip = pixels.max(axis=1) >= 250
    order = np.where(clip, np.inf, y)
    lit = order >= np.percentile(np.where(clip, np.finfo(np.float64).max, y), _SHADOW_PCT)
    if int(lit.sum()) < MIN_SKIN_PIXELS // 2:
        return None
    lum = float(np.median(order[lit]))
    if not np.isfinite(lum):  # most of the skin clipped: its recorded values are a lower bound
        lum = float(np.median(y[lit]))
    # Shading does not change a pixel's chromaticity, so shadowed pixels stand in when the lit ones clipped.
    ok = lit & ~clip
    if int(ok.sum()) < _MIN_CHROMA_PIXELS:
        ok = ~clip if int((~clip).sum()) >= _MIN_CHROMA_PIXELS else lit
    chroma = np.median(lin[ok] / np.maximum(y[ok], 1e-6)[:, None], axis=0)
    lab = linear_to_lab(chroma * lum)
    lightness = linear_to_lab(lin[lit])[:, 0]
    return SkinColour(lab, lightness, float(clip.mean()))


def _skin_core(face: FaceAnalysis) -> tuple[np.ndarray, np.ndarray]:
    """(skin probability map float32, eroded confident-skin mask uint8) in class-map space."""
    skin = np.ascontiguousarray(face.probs[:, :, CLASS_ID["skin"]], np.float32)
    return skin, cv2.erode((skin >= SKIN_PROB).astype(np.uint8), np.ones((3, 3), np.uint8))


class _Scene(NamedTuple):
    """The frame decimated to ~160 pixels across, the face's skin in it (bool), and the light's colour (linear)."""

    small: np.ndarray
    skin: np.ndarray
    illuminant: np.ndarray


def _scene(frame_rgb: np.ndarray, face: FaceAnalysis, skin: np.ndarray) -> _Scene:
    """The frame decimated to ~160 pixels across, where the face's skin is in it, and the light's colour."""
    # Plain decimation: the light is a statistic of many pixels, and decimation commutes exactly
    # with per-channel gains.
    h, w = frame_rgb.shape[:2]
    step = max(1, round(max(h, w) / 160))
    small = frame_rgb[::step, ::step]
    sh, sw = small.shape[:2]
    skin_small = cv2.warpAffine(skin, face.output_to_image() / step, (sw, sh), flags=cv2.INTER_LINEAR) > 0.3
    return _Scene(small, skin_small, estimate_illuminant(small, skin_small))


def _check_frame(frame_rgb: np.ndarray) -> None:
    """Raise ValueError unless the frame is (H, W, 3) uint8."""
    if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 or frame_rgb.dtype != np.uint8:
        raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {frame_rgb.shape} {frame_rgb.dtype}")


def tone_features(frame_rgb: np.ndarray, face: FaceAnalysis) -> dict[str, float] | None:
    """The measurements the learned tone model (``edge.tone_model``) reads, or None with too little skin.

    All are logarithms of ratios or plain ratios, so most do not move with the exposure:

    - ``log_lum``: the skin's median linear luminance above its darkest 15 % (the camera's own
      exposure of it; the one that does move, and still the strongest single cue).
    - ``lum_over_nose_peak`` / ``lum_over_face_peak`` / ``lum_over_p98``: the skin against its
      own highlights (the nose's 99th percentile, the face's 99.5th, the skin's 98th). A
      specular highlight reflects the light itself whatever the skin, so deep skin sits
      further below it than light skin does, at any exposure.
    - ``p25_over_p50`` / ``p90_over_p50``: the shading's depth and the lit side's height,
      relative to the median.
    - ``saturation``: 1 - min/max of the skin's median 8-bit colour.
    - ``gb_balanced`` / ``rg_balanced``: the skin's log green/blue and red/green chromaticity
      against the scene's light (melanin absorbs blue most).
    - ``lips_over_skin``: the lips' median luminance over the skin's.
    - ``lum_over_scene_grey`` / ``lum_over_scene_p90``: the skin against the scene's
      shades-of-grey estimate and its brighter surfaces.

    A part the parse did not find (nose, lips) is NaN, and so is every colour measurement of a
    colourless (black-and-white) photo; the model fills them with its fitting medians, so
    such a photo is placed by its light alone.

    Raises:
        ValueError: if the frame is not (H, W, 3) uint8.
    """
    _check_frame(frame_rgb)
    skin, core = _skin_core(face)
    crop = _Crop(frame_rgb, face)
    px = crop.pixels(core)
    if px.shape[0] < MIN_SKIN_PIXELS:
        return None
    return _features(face, crop, px, _scene(frame_rgb, face, skin))


def _features(face: FaceAnalysis, crop: _Crop, px: np.ndarray, scene: _Scene) -> dict[str, float] | None:
    """``tone_features`` from the face's crop, its confident-skin pixels and the scene."""
    lin = linear_lut()[px].astype(np.float64)
    y = lin @ LUMA
    lit = y >= np.percentile(y, _SHADOW_PCT)
    lum = float(np.median(y[lit]))
    if lum <= 0:
        return None
    ok = lit & (px.max(axis=1) < 250)
    if int(ok.sum()) <= _MIN_CHROMA_PIXELS:
        ok = np.ones_like(ok)
    chroma = np.median(lin[ok] / np.maximum(y[ok], 1e-6)[:, None], axis=0)
    sog = scene.illuminant
    rest = linear_lut()[scene.small[~scene.skin]].astype(np.float64) @ LUMA
    rgb = np.median(px[lit], axis=0)
    nose = crop.luminance(("nose",), 0.6)
    lips = crop.luminance(("upper_lip", "lower_lip"), 0.6)
    whole = crop.luminance(("skin", "nose"), 0.7, erode=True)
    p25, p50, p90, p98 = np.percentile(y, [25, 50, 90, 98])

    def log_ratio(a: float, b: float) -> float:
        return math.log(a / b) if a > 0 and b > 0 else math.nan

    feats = {
        "log_lum": math.log(lum),
        "lum_over_nose_peak": log_ratio(lum, float(np.percentile(nose, 99))) if nose.size > 5 else math.nan,
        "lum_over_face_peak": log_ratio(float(np.median(whole)), float(np.percentile(whole, 99.5)))
        if whole.size >= MIN_SKIN_PIXELS
        else math.nan,
        "lum_over_p98": log_ratio(lum, float(p98)),
        "p25_over_p50": log_ratio(float(p25), float(p50)),
        "saturation": 1.0 - float(rgb.min()) / max(float(rgb.max()), 1.0),
        "gb_balanced": log_ratio(float(chroma[1]), float(chroma[2])) - math.log(sog[1] / sog[2]),
        "rg_balanced": log_ratio(float(chroma[0]), float(chroma[1])) - math.log(sog[0] / sog[1]),
        "lips_over_skin": log_ratio(float(np.median(lips)), lum) if lips.size >= 5 else math.nan,
        "lum_over_scene_grey": log_ratio(lum, float(sog @ LUMA)),
        "lum_over_scene_p90": log_ratio(lum, float(np.percentile(rest, 90))) if rest.size else math.nan,
        "p90_over_p50": log_ratio(float(p90), float(p50)),
    }
    if crop.colourless:
        feats.update(saturation=math.nan, gb_balanced=math.nan, rg_balanced=math.nan)
    return feats


def measure_tone(
    frame_rgb: np.ndarray, face: FaceAnalysis, calibration=None, model: ToneModel | None = None
) -> SkinTone | None:
    """Measure the face's skin tone, corrected for the light; None when too little skin is seen.

    Args:
        frame_rgb: (H, W, 3) uint8 RGB frame.
        face: the analysed face.
        calibration: the kiosk's ``edge.calibration.Calibration``, if it has one: its card
            fixes the white balance and the exposure exactly, and the Monk step is the
            nearest swatch to the skin's reflectance.
        model: the learned tone model (``edge.tone_model``); without a calibration it gives
            the Monk step from the photo's measurements. Without either, the step is the
            nearest swatch to the scene-normalised colour.

    Raises:
        ValueError: if the frame is not (H, W, 3) uint8.
    """
    _check_frame(frame_rgb)
    skin, core = _skin_core(face)
    if int(core.sum()) * 4 < MIN_SKIN_PIXELS:
        return None
    crop = _Crop(frame_rgb, face)
    pixels = crop.pixels(core)
    if pixels.shape[0] < MIN_SKIN_PIXELS:
        return None
    scene = None
    if calibration is not None:
        # The card turned camera values into reflectance, which is what a swatch's sRGB value is
        # relative to the reference white.
        gains = np.asarray(calibration.gains, np.float64)
        reference = "calibration"
    else:
        scene = _scene(frame_rgb, face, skin)
        gains = REFERENCE_GREY / scene.illuminant
        reference = "scene"

    colour = skin_colour(pixels, gains)
    if colour is None:
        return None
    lab, kept, clipped = colour
    lab_t = (float(lab[0]), float(lab[1]), float(lab[2]))
    score = monk_score(lab_t, reference)
    if scene is not None and model is not None:
        feats = _features(face, crop, pixels, scene)
        if feats is None:
            return None
        score, reference = model.score(feats), "learned"
    # Confidence: enough skin, an even light on it, nothing clipped, a good exposure reference, and
    # colour to measure at all (a black-and-white photo gets a step from its light, and no trust).
    spread = float(np.subtract(*np.percentile(kept, [75, 25])))
    confidence = (
        (0.0 if crop.colourless else 1.0)
        * min(1.0, kept.size / 400.0)
        * float(np.clip(1.0 - spread / 30.0, 0.0, 1.0))
        * (1.0 - min(1.0, 4.0 * clipped))
        * (1.0 if reference == "calibration" else 0.8)
    )
    return SkinTone(
        monk=monk_of_score(score),
        # A grey photo's hue is rounding noise: no undertone can be read from it.
        undertone="neutral" if crop.colourless else undertone_of(lab_t),
        lab=lab_t,
        confidence=round(confidence, 3),
        uncertainty=model.uncertainty if reference == "learned" and model is not None else UNCERTAINTY[reference],
        reference=reference,
        score=round(score, 3),
    )


def monk_score(lab: np.ndarray | tuple[float, float, float], reference: str = "scene") -> float:
    """Continuous Monk value of a colour: its nearest step, moved toward the nearer neighbour.

    Rounds to ``monk_step``: the move is d_near / (d_near + d_neighbour) < 0.5 of a step.
    """
    d = monk_distances(lab, reference)
    i = int(np.argmin(d))
    j = i - 1 if i == 9 or (i > 0 and d[i - 1] < d[i + 1]) else i + 1
    total = float(d[i] + d[j])
    frac = float(d[i]) / total if total > 0 else 0.0
    return float(i + 1 + (j - i) * min(frac, 0.5 - 1e-6))


class ToneSmoother:
    """Exponential moving average of the skin's Monk value and CIELAB, with hysteresis on the labels.

    The Monk step changes only when the smoothed continuous value (``SkinTone.score``) is past
    the rounding boundary by ``monk_margin`` steps; the undertone only when the hue is past
    its threshold by ``hue_margin`` degrees. So a skin sitting on a boundary does not make
    the kiosk's label flicker.

    Args:
        alpha: weight of the newest measurement (scaled by its confidence).
        monk_margin: Monk steps past the rounding boundary to switch step.
        hue_margin: degrees past a threshold to switch undertone.
    """

    def __init__(self, alpha: float = 0.1, monk_margin: float = 0.2, hue_margin: float = 2.0):
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.monk_margin = monk_margin
        self.hue_margin = hue_margin
        self._lab: np.ndarray | None = None
        self._score = 0.0
        self._confidence = 0.0
        self._state: SkinTone | None = None

    @property
    def value(self) -> SkinTone | None:
        """The current smoothed tone."""
        return self._state

    def reset(self) -> None:
        """Forget everything (a new customer)."""
        self._lab, self._state, self._score, self._confidence = None, None, 0.0, 0.0

    def update(self, tone: SkinTone) -> SkinTone:
        """Fold one measurement in; return the smoothed tone."""
        lab = np.asarray(tone.lab, np.float64)
        if tone.score is not None:
            score = tone.score
        else:  # a hand-made tone: its colour's place among the swatches
            score = monk_score(lab, tone.reference if tone.reference in MONK_WEIGHTS else "scene")
        if self._lab is None or self._state is None or tone.reference != self._state.reference:
            # The first measurement, or a new kind of reference (a calibration just made): start over.
            self._lab, self._score, self._confidence = lab, score, tone.confidence
            self._state = replace(tone, monk=monk_of_score(score), undertone=undertone_of(lab), score=round(score, 3))
            return self._state
        # A low-confidence frame moves the average less (but always a little, so it can recover).
        a = self.alpha * max(tone.confidence, 0.2)
        self._lab = (1.0 - a) * self._lab + a * lab
        self._score = (1.0 - a) * self._score + a * score
        self._confidence = (1.0 - a) * self._confidence + a * tone.confidence
        monk = self._state.monk
        if abs(self._score - monk) > 0.5 + self.monk_margin:
            monk = monk_of_score(self._score)
        undertone = self._state.undertone
        h = hue_angle(self._lab)
        candidate = _undertone_of_hue(h)
        if candidate != undertone:
            # Switch only if the hue is still on the new side after moving it back by the margin.
            back = -self.hue_margin if _UNDERTONE_RANK[candidate] > _UNDERTONE_RANK[undertone] else self.hue_margin
            if _undertone_of_hue(h + back) == candidate:
                undertone = candidate
        lab_t = (float(self._lab[0]), float(self._lab[1]), float(self._lab[2]))
        self._state = replace(
            tone,
            monk=monk,
            undertone=undertone,
            lab=lab_t,
            confidence=round(self._confidence, 3),
            score=round(self._score, 3),
        )
        return self._state
