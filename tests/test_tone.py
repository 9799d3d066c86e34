"""Tests of the skin-tone measurement: light-cast stability, ordering, refusal, smoothing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.colour import MONK_HEX, hex_to_lab, hex_to_linear, linear_to_srgb, srgb_to_linear
from edge.contract import CLASSES, CropGeometry, FaceBox, crop_matrix
from edge.makeup.synthetic import synthetic_face
from edge.tone import ToneSmoother, measure_tone, monk_step, skin_colour, undertone_of
from edge.types import FaceAnalysis, SkinTone

# Blackbody colours as 8-bit sRGB (Mitchell Charity's blackbody table, 10-degree CMFs).
BLACKBODY = {3000: (255, 180, 107), 5500: (255, 236, 224), 6500: (255, 249, 253)}


def cast(frame: np.ndarray, kelvin: int, reference: int = 5500) -> np.ndarray:
    """Relight a frame: per-channel gains (linear light) from the blackbody at ``kelvin`` relative to ``reference``.

    Gains are scaled so the largest is 1, as a camera exposing for its brightest channel
    would, so nothing clips.
    """
    gains = srgb_to_linear(np.array(BLACKBODY[kelvin]) / 255.0) / srgb_to_linear(np.array(BLACKBODY[reference]) / 255.0)
    gains /= gains.max()
    lin = srgb_to_linear(frame / 255.0) * gains
    return np.clip(np.round(linear_to_srgb(lin) * 255.0), 0, 255).astype(np.uint8)


def face_from_ellipses(image: np.ndarray, box_xywh, ellipses) -> FaceAnalysis:
    """A FaceAnalysis whose only skin is the hand-chosen ellipses (image pixels)."""
    box = FaceBox.from_xywh(*box_xywh)
    m = crop_matrix(box, CropGeometry())
    empty = FaceAnalysis(box, m, np.zeros((64, 64, len(CLASSES)), np.float32), np.zeros((64, 64), np.uint8), 0.99)
    mask = np.zeros(image.shape[:2], np.float32)
    for cx, cy, ax, ay in ellipses:
        cv2.ellipse(mask, (cx, cy), (ax, ay), 0, 0, 360, 1.0, -1)
    to_out = np.linalg.inv(np.vstack([empty.output_to_image(), [0, 0, 1]]))[:2]
    skin = cv2.warpAffine(mask, to_out, (64, 64), flags=cv2.INTER_LINEAR)
    probs = np.zeros((64, 64, len(CLASSES)), np.float32)
    probs[..., 1], probs[..., 0] = skin, 1.0 - skin
    return FaceAnalysis(box, m, probs, (skin > 0.5).astype(np.uint8), 0.99)


def _photos():
    from training.real import allowed_photos

    photos = allowed_photos()
    astronaut, grace_rgb = photos["astronaut"], photos["grace_hopper"]
    return {
        # Cheeks and forehead, chosen by eye; the face boxes roughly frame each face.
        "astronaut": (astronaut, (175, 55, 100, 120), [(197, 135, 12, 10), (252, 133, 12, 10), (225, 88, 18, 6)]),
        "grace_hopper": (grace_rgb, (185, 120, 160, 210), [(215, 258, 18, 14), (310, 258, 18, 14), (262, 160, 30, 10)]),
    }


SYNTHETIC_SKINS = ["#f3e7db", "#eadaba", "#d7bd96", "#c68e6a", "#a07e56", "#825c43", "#604134", "#3a312a"]


@pytest.mark.parametrize("skin", SYNTHETIC_SKINS)
def test_synthetic_face_is_stable_under_warm_and_cool_light(skin):
    """Guards against the Monk step or undertone following the room's light instead of the skin."""
    frame, face, _ = synthetic_face(skin=skin, seed=3)
    tones = {k: measure_tone(cast(frame, k) if k else frame, face) for k in (None, 3000, 6500)}
    assert all(t is not None for t in tones.values())
    warm, cool, plain = tones[3000], tones[6500], tones[None]
    assert abs(warm.monk - cool.monk) <= 1, tones
    assert abs(warm.monk - plain.monk) <= 1 and abs(cool.monk - plain.monk) <= 1, tones
    assert warm.undertone == cool.undertone == plain.undertone, tones


@pytest.mark.parametrize("skin", [h for h in MONK_HEX if h not in ("#f6ede4", "#292420")])
def test_synthetic_monk_reference_measures_its_own_step(skin):
    """Guards against a calibration drift: a face painted in a Monk reference on a grey scene reads that step ±1."""
    frame, face, _ = synthetic_face(skin=skin, seed=4)
    tone = measure_tone(frame, face)
    assert tone is not None and abs(tone.monk - (MONK_HEX.index(skin) + 1)) <= 1, tone


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_real_photo_is_stable_under_warm_and_cool_light(name):
    """Guards against cast sensitivity on real skin (texture, shading, a real scene's colours)."""
    image, box, ellipses = _photos()[name]
    face = face_from_ellipses(image, box, ellipses)
    tones = [measure_tone(img, face) for img in (image, cast(image, 3000), cast(image, 6500))]
    assert all(t is not None for t in tones)
    monks = [t.monk for t in tones]
    assert max(monks) - min(monks) <= 1, tones
    assert len({t.undertone for t in tones}) == 1, tones
    assert 1 <= tones[0].monk <= 7, tones  # both sitters are light-skinned; a deep reading means a broken pipeline


def test_lighter_skin_gets_lower_monk_step():
    """Guards against an inverted or non-monotonic scale."""
    steps = [measure_tone(*synthetic_face(skin=s, seed=5)[:2]).monk for s in SYNTHETIC_SKINS]
    assert steps == sorted(steps), steps
    assert steps[0] < steps[-1]


def test_no_skin_gives_none():
    """Guards against inventing a tone from the background when the parser saw no skin."""
    frame, face, _ = synthetic_face(seed=6)
    probs = np.zeros_like(face.probs)
    probs[..., 0] = 1.0
    empty = FaceAnalysis(face.box, face.crop_matrix, probs, np.zeros_like(face.labels), 0.2)
    assert measure_tone(frame, empty) is None
    # A face whose crop is entirely off the frame has no visible skin either.
    _, off, _ = synthetic_face(center=(-500.0, -500.0))
    assert measure_tone(frame, off) is None
    with pytest.raises(ValueError):
        measure_tone(frame[..., 0], face)


def test_monk_references_and_undertone_thresholds():
    """Guards against a broken distance (references must map to themselves) and swapped undertone thresholds."""
    for i, h in enumerate(MONK_HEX):
        assert monk_step(hex_to_lab(h)) == i + 1
    assert undertone_of((60.0, 20.0, 20.0 * np.tan(np.radians(45)))) == "cool"
    assert undertone_of((60.0, 20.0, 20.0 * np.tan(np.radians(57)))) == "neutral"
    assert undertone_of((60.0, 10.0, 10.0 * np.tan(np.radians(70)))) == "warm"


def _tone(lab) -> SkinTone:
    return SkinTone(monk=monk_step(lab), undertone=undertone_of(lab), lab=tuple(lab), confidence=1.0)


def test_smoother_does_not_flicker_on_a_boundary_but_follows_a_real_change():
    """Guards against the kiosk's Monk/undertone label flickering from frame to frame."""
    # Two colours either side of the neutral/warm hue threshold (62 deg) and of a Monk boundary.
    a = np.array([62.0, 12.0, 12.0 * np.tan(np.radians(60.5))])
    b = np.array([64.5, 12.0, 12.0 * np.tan(np.radians(63.5))])
    assert (_tone(a).undertone, _tone(b).undertone) == ("neutral", "warm")
    smoother = ToneSmoother(alpha=0.5)
    labels = {(smoother.update(_tone(a if i % 2 else b)).monk, smoother.value.undertone) for i in range(40)}
    assert len(labels) == 1, labels
    deep = np.array(hex_to_lab("#604134"))
    for _ in range(40):
        out = smoother.update(_tone(deep))
    assert out.monk == 8
    smoother.reset()
    assert smoother.value is None


def _swatch_pixels(skin: str, exposure: float, n: int = 4000, seed: int = 0) -> np.ndarray:
    """8-bit sRGB pixels of a shaded skin of one colour at an exposure: shading 0.55-1.45, 10 % dark hairs."""
    rng = np.random.default_rng(seed)
    shade = rng.uniform(0.55, 1.45, n)
    shade[: n // 10] = 0.05
    lin = hex_to_linear(skin)[None, :] * shade[:, None] * exposure
    return np.clip(np.round(linear_to_srgb(lin) * 255.0), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("skin", MONK_HEX[:5])
def test_skin_colour_survives_clipping_of_light_skin(skin):
    """Guards against clipped light skin reading darker or a different hue: over-exposed so that
    about 30 % of the skin clips (red first), the lightness must count those pixels as bright and
    the chromaticity come from the unclipped ones, so the estimate stays on the painted Monk step."""
    exposure = 0.955 / (hex_to_linear(skin).max() * 1.15)  # the lit third of the skin clips
    pixels = _swatch_pixels(skin, exposure)
    assert (pixels.max(axis=1) >= 250).mean() > 0.2  # the case this guards: much of the skin clipped
    colour = skin_colour(pixels, np.full(3, 1.0 / exposure))
    assert colour is not None and colour.clipped > 0.1
    assert np.abs(colour.lab - hex_to_lab(skin)).max() < 2.5, (colour.lab, hex_to_lab(skin))
    assert monk_step(colour.lab, "calibration") == MONK_HEX.index(skin) + 1


def test_skin_colour_ignores_shadows_and_needs_enough_skin():
    """Guards against shadows and stray hair darkening the estimate, and against a colour from a handful of pixels."""
    pixels = _swatch_pixels("#825c43", 1.0)
    colour = skin_colour(pixels, np.ones(3))
    assert colour is not None and abs(colour.lab[0] - hex_to_lab("#825c43")[0]) < 1.5
    assert skin_colour(pixels[-30:], np.ones(3)) is None


def test_smoother_keeps_the_reference_of_its_measurements():
    """Guards against a calibrated kiosk's smoothed tone being reported (and matched) as an uncalibrated one."""
    lab = hex_to_lab(MONK_HEX[2])
    tone = SkinTone(
        monk=monk_step(lab, "calibration"),
        undertone=undertone_of(lab),
        lab=tuple(lab),
        confidence=1.0,
        uncertainty=0.5,
        reference="calibration",
    )
    smoother = ToneSmoother(alpha=0.5)
    for _ in range(5):
        out = smoother.update(tone)
    assert (out.reference, out.uncertainty, out.monk) == ("calibration", 0.5, 3)
