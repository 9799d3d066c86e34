"""Tests of the makeup renderer on a drawn face whose class map is known exactly."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from edge.contract import CLASS_ID
from edge.makeup import LAYER_ORDER, LayerSpec, Look, Renderer, builtin_looks
from edge.makeup.synthetic import synthetic_face

SHADE = "#c2185b"  # a cool magenta, far from the drawn lips' own hue


@pytest.fixture(scope="module")
def scene():
    return synthetic_face(480, 640, face_px=200.0, skin="#c68e6a", seed=1)


def _look(kind: str, intensity: float = 1.0, finish: str = "satin", color: str = SHADE) -> Look:
    return Look(name="t", layers=[LayerSpec(kind=kind, color=color, intensity=intensity, finish=finish)])


def _mask(label_img: np.ndarray, *names: str) -> np.ndarray:
    return np.isin(label_img, [CLASS_ID[n] for n in names])


def _px_per_class_pixel(face) -> float:
    return float(np.hypot(*face.output_to_image()[:, 0]))


def _lab(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _hue(lab: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan2(lab[..., 2], lab[..., 1]))


def _hue_gap(a: np.ndarray | float, b: float) -> np.ndarray:
    return np.abs((np.asarray(a) - b + 180.0) % 360.0 - 180.0)


def test_lipstick_changes_only_lips_and_their_feather(scene):
    """Guards against a lipstick that bleeds over the chin, cheeks or the rest of the frame."""
    frame, face, labels = scene
    out = Renderer(feather_px=1.0).render(frame, face, _look("lipstick"))
    lips = _mask(labels, "upper_lip", "lower_lip")
    # Feather sigma is 0.5 class-map pixels; the soft threshold and bilinear warp reach ~2 pixels.
    margin = int(np.ceil(2.0 * _px_per_class_pixel(face)))
    near = cv2.dilate(lips.astype(np.uint8), np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)).astype(bool)
    changed = (out != frame).any(axis=2)
    assert not changed[~near].any(), f"{int(changed[~near].sum())} pixels changed away from the lips"
    assert changed[lips].mean() > 0.9, "most lip pixels should be painted"


def test_lipstick_moves_lip_hue_toward_shade(scene):
    """Guards against a lipstick that brightens/darkens but does not take the shade's colour."""
    frame, face, labels = scene
    lips = cv2.erode(_mask(labels, "upper_lip", "lower_lip").astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    shade_hue = float(_hue(_lab(np.array([[[0xC2, 0x18, 0x5B]]], np.uint8)))[0, 0])
    before = _hue_gap(np.median(_hue(_lab(frame))[lips]), shade_hue)
    for finish in ("matte", "satin", "gloss", "shimmer"):
        out = Renderer().render(frame, face, _look("lipstick", finish=finish))
        after = _hue_gap(np.median(_hue(_lab(out))[lips]), shade_hue)
        assert before > 20.0 and after < 0.3 * before, (finish, before, after)


@pytest.mark.parametrize("finish", ["matte", "satin", "gloss", "shimmer"])
def test_lipstick_never_paints_teeth(scene, finish):
    """Guards against the lip feather spilling onto the teeth (inner mouth)."""
    frame, face, labels = scene
    out = Renderer(feather_px=3.0).render(frame, face, _look("lipstick", finish=finish))
    k = int(np.ceil(_px_per_class_pixel(face)))  # one class-map pixel in from the mouth's edge
    teeth = cv2.erode(_mask(labels, "inner_mouth").astype(np.uint8), np.ones((2 * k + 1, 2 * k + 1), np.uint8))
    assert teeth.sum() > 50
    assert np.array_equal(out[teeth.astype(bool)], frame[teeth.astype(bool)])


def test_lipstick_keeps_texture_and_gloss_adds_highlight(scene):
    """Guards against a flat 'sticker' lipstick that erases the lips' texture and highlights."""
    frame, face, labels = scene
    lips = cv2.erode(_mask(labels, "upper_lip", "lower_lip").astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    r = Renderer()
    l_orig = _lab(frame)[..., 0][lips]
    l_by = {
        f: _lab(r.render(frame, face, _look("lipstick", finish=f)))[..., 0][lips] for f in ("matte", "satin", "gloss")
    }
    assert l_by["satin"].std() >= 0.6 * l_orig.std()
    assert l_by["matte"].std() >= 0.4 * l_orig.std()
    hi = {f: np.percentile(v, 98) - np.median(v) for f, v in l_by.items()}
    assert hi["gloss"] > hi["satin"] + 3.0, hi
    assert hi["matte"] < hi["satin"], hi


@pytest.mark.parametrize("kind", LAYER_ORDER)
def test_intensity_zero_changes_nothing(scene, kind):
    """Guards against a layer that alters the frame (rounding, colour round-trips) when switched off."""
    frame, face, _ = scene
    for finish in ("matte", "satin", "gloss", "shimmer"):
        out = Renderer().render(frame, face, _look(kind, intensity=0.0, finish=finish))
        assert np.array_equal(out, frame)


def test_all_layers_at_zero_and_empty_look_change_nothing(scene):
    """Guards against the renderer itself touching pixels when no layer is on."""
    frame, face, _ = scene
    zero = Look(name="z", layers=[LayerSpec(kind=k, color=SHADE, intensity=0.0) for k in LAYER_ORDER])
    r = Renderer()
    assert np.array_equal(r.render(frame, face, zero), frame)
    assert np.array_equal(r.render(frame, face, builtin_looks()["none"]), frame)


@pytest.mark.parametrize("kind", LAYER_ORDER)
def test_each_layer_paints_inside_the_face_roi_only(scene, kind):
    """Guards against a layer that does nothing, or writes outside the face's region of interest."""
    frame, face, labels = scene
    out = Renderer().render(frame, face, _look(kind, intensity=1.0, color="#3050d0"))
    changed = (out != frame).any(axis=2)
    assert changed.sum() > 30, f"{kind} changed only {int(changed.sum())} pixels"
    ys, xs = np.nonzero(labels > 0)
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    outside = changed.copy()
    outside[y0 - 20 : y1 + 20, x0 - 20 : x1 + 20] = False
    assert not outside.any()


def test_layers_land_on_their_parts(scene):
    """Guards against layers landing on the wrong part (blush on the eyes, liner on the cheek...)."""
    frame, face, labels = scene
    r = Renderer(feather_px=1.0)

    def changed(kind):
        return (r.render(frame, face, _look(kind, color="#3050d0")) != frame).any(axis=2)

    k = int(np.ceil(_px_per_class_pixel(face)))

    def inner(*names, edge=1):  # a part minus its soft edge (``edge`` class-map pixels)
        kernel = np.ones((2 * edge * k + 1, 2 * edge * k + 1), np.uint8)
        return cv2.erode(_mask(labels, *names).astype(np.uint8), kernel) > 0

    eyes = _mask(labels, "left_eye", "right_eye")
    ys, _ = np.nonzero(eyes)
    eye_top, eye_bottom = ys.min(), ys.max()
    blush = changed("blush")
    assert not (blush & inner("left_eye", "right_eye", "upper_lip", "lower_lip", "inner_mouth")).any()
    assert np.nonzero(blush)[0].min() > eye_bottom, "blush must sit below the eyes"
    shadow = changed("eyeshadow")
    assert np.nonzero(shadow)[0].mean() < eye_top + 2, "eyeshadow must sit on the upper lid"
    assert not (shadow & _mask(labels, "upper_lip", "lower_lip")).any()
    assert not (shadow & inner("hair", "left_eye", "right_eye")).any()
    liner = changed("eyeliner")
    ly = np.nonzero(liner)[0]
    assert ly.mean() < (eye_top + eye_bottom) / 2, "eyeliner follows the upper contour"
    assert liner.sum() < 0.6 * eyes.sum(), "eyeliner must be a thin line"
    brows = changed("brows")
    brow_px = _mask(labels, "left_eyebrow", "right_eyebrow")
    assert brows[brow_px].mean() > 0.9
    near_brows = cv2.dilate(brow_px.astype(np.uint8), np.ones((4 * k + 1, 4 * k + 1), np.uint8)) > 0
    assert not (brows & ~near_brows).any()
    found = changed("foundation")
    assert found[_mask(labels, "skin")].mean() > 0.8
    assert not (found & inner("left_eye", "right_eye", "inner_mouth")).any()
    # The skin's soft edge (the parser's probabilities are soft over ~2 class-map pixels) may be feathered.
    assert not (found & inner("hair", "background", edge=2)).any()


def test_render_is_deterministic_and_does_not_modify_input(scene):
    """Guards against flickering sparkle (random per frame) and against painting the caller's frame."""
    frame, face, _ = scene
    keep = frame.copy()
    look = builtin_looks()["evening"].model_copy(
        update={
            "layers": [*builtin_looks()["evening"].layers, LayerSpec(kind="lipstick", color=SHADE, finish="shimmer")]
        }
    )
    a = Renderer().render(frame, face, look)
    b = Renderer().render(frame, face, look)
    c = Renderer().render(frame, face, look)
    assert np.array_equal(a, b) and np.array_equal(b, c)
    assert np.array_equal(frame, keep)
    assert a is not frame


def test_face_partly_outside_frame_and_rolled(scene):
    """Guards against crashes or wrap-around when the ROI is clipped by the frame edge or the face is rolled."""
    for center, angle in (((30.0, 40.0), 0.0), ((620.0, 470.0), 15.0), ((320.0, 240.0), -20.0)):
        frame, face, _ = synthetic_face(480, 640, face_px=200.0, center=center, angle_deg=angle)
        out = Renderer().render(frame, face, builtin_looks()["evening"])
        assert out.shape == frame.shape and out.dtype == np.uint8
    frame, face, _ = synthetic_face(480, 640, face_px=200.0, center=(-400.0, -400.0))
    assert np.array_equal(Renderer().render(frame, face, builtin_looks()["bold"]), frame)


def test_models_validate():
    """Guards against bad colours, intensities or unknown keys reaching the renderer."""
    assert LayerSpec(kind="blush", color="#ABCDEF").color == "#abcdef"
    for bad in ({"color": "red"}, {"color": "#12345"}, {"intensity": 1.5}, {"intensity": -0.1}, {"finish": "velvet"}):
        with pytest.raises(ValidationError):
            LayerSpec(**{"kind": "lipstick", "color": "#aa0000", **bad})
    with pytest.raises(ValidationError):
        LayerSpec(kind="lipstick", color="#aa0000", opacity=1.0)
    with pytest.raises(ValidationError):
        LayerSpec(kind="glitter", color="#aa0000")
    with pytest.raises(ValueError):
        Renderer().render(np.zeros((10, 10), np.uint8), None, builtin_looks()["bold"])  # type: ignore[arg-type]


def test_builtin_looks():
    """Guards against the kiosk's default looks going missing."""
    looks = builtin_looks()
    assert {"natural", "bold", "evening", "none"} <= set(looks)
    assert looks["none"].layers == []
    assert all(name == look.name for name, look in looks.items())


def test_a_carried_parse_renders_as_if_painted_afresh_and_reuses_its_warps(scene, monkeypatch):
    """Guards against the renderer's reuse of a parse's masks (the frames between two parses) painting
    anything other than a fresh render of the face moved to the nearest whole pixel, or warping again."""
    from edge.analysis.motion import moved

    frame, face, _ = scene
    look = builtin_looks()["evening"]
    shifted = np.roll(frame, (-3, 7), axis=(0, 1))
    carried = moved(face, 7.2, -2.9)  # painted snapped to whole pixels: (7, -3)
    warm = Renderer()
    warm.render(frame, face, look)
    calls = []
    real = cv2.warpAffine
    monkeypatch.setattr(cv2, "warpAffine", lambda *a, **k: calls.append(1) or real(*a, **k))
    reused = warm.render(shifted, carried, look)
    monkeypatch.setattr(cv2, "warpAffine", real)
    fresh = Renderer().render(shifted, moved(face, 7.0, -3.0), look)
    assert np.array_equal(reused, fresh)
    assert not np.array_equal(reused, shifted)  # the look was painted
    assert len(calls) <= 2, f"{len(calls)} masks warped again"  # only what depends on the frame's pixels
