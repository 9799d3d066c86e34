"""The mouth refinement pass: a zoomed crop on the lips, parsed by the same model, blended back."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edge.analysis import Analyzer, analyze_still, labels_to_image
from edge.analysis.paint import image_probs
from edge.analysis.parse import keep_one_mouth, mouth_center
from edge.config import load_config
from edge.contract import CLASS_ID, CLASSES, CropGeometry, FaceBox, MouthCrop, crop_matrix, invert_affine, mouth_matrix
from edge.detectors.fake import FakeDetector
from edge.makeup import LayerSpec, Look, Renderer
from edge.makeup.synthetic import synthetic_face
from edge.runtime.fake import FakeParser
from edge.types import FaceAnalysis, MouthView, mouth_window
from tests.conftest import synthetic_frame

N = len(CLASSES)


def _cfg(**analysis):
    return load_config(None, {"detector": {"kind": "fake", "box": [220, 140, 200, 200]}, "analysis": analysis})


def _one_hot(label: str, size: int = 64) -> np.ndarray:
    p = np.zeros((size, size, N), np.float32)
    p[..., CLASS_ID[label]] = 1.0
    return p


def test_mouth_center_is_the_lips_centroid_in_the_image():
    """Guards against a refinement crop centred off the mouth (it would cut the lips off)."""
    probs = _one_hot("skin")
    probs[40:44, 20:30] = 0
    probs[40:44, 20:30, CLASS_ID["upper_lip"]] = 1.0
    m = np.array([[2.0, 0.0, 100.0], [0.0, 2.0, 50.0]])
    cx, cy = mouth_center(probs, m)
    assert (cx, cy) == pytest.approx((100 + 2 * 24.5, 50 + 2 * 41.5))
    assert mouth_center(_one_hot("skin"), m) is None  # no mouth seen: no refinement


def test_still_analysis_runs_the_mouth_pass_when_the_bundle_offers_it():
    """Guards against the refinement pass being skipped (blurry lips) or run for bundles not trained for it."""
    frame = synthetic_frame()
    cfg = _cfg(still_tta=False)  # one inference per parse, to count them
    det = FakeDetector(cfg.detector)
    with_mouth = FakeParser(mouth=True)
    (face,) = analyze_still(with_mouth, det, cfg.analysis, frame)
    assert face.mouth is not None and face.mouth.probs.shape == face.probs.shape
    # The crop is centred on the face pass's lips, at the contract's zoom.
    centre = mouth_center(face.probs, face.output_to_image())
    assert np.allclose(face.mouth.crop_matrix @ np.array([*centre, 1.0]), [64, 64])
    side = np.hypot(*invert_affine(face.mouth.crop_matrix)[:, 0]) * 128
    assert side == pytest.approx(MouthCrop().scale * face.box.size, rel=0.2)
    assert with_mouth.calls == 3 + 1  # face pass + 2 refinements, then the mouth

    without = FakeParser(mouth=False)
    (face,) = analyze_still(without, det, cfg.analysis, frame)
    assert face.mouth is None and without.calls == 3
    off = FakeParser(mouth=True)
    (face,) = analyze_still(off, det, _cfg(refine_mouth=False, still_tta=False).analysis, frame)
    assert face.mouth is None and off.calls == 3


def test_tracker_refines_every_frame_and_times_it():
    """Guards against the hot loop losing the mouth view while tracking, or hiding its cost."""
    cfg = _cfg(parse_every=1, mouth_every=1)
    parser = FakeParser(mouth=True)
    an = Analyzer(parser, FakeDetector(cfg.detector), cfg.analysis)
    for i in range(5):
        face, times = an.analyze(synthetic_frame(seed=i), now=i / 30)
        assert face is not None and face.mouth is not None
        assert times.mouth > 0.0
    assert parser.calls == 10  # one face pass and one mouth pass per frame


def test_mouth_pass_runs_on_every_second_parse_and_its_view_follows_the_face():
    """Guards against paying the mouth inference on every parse, or a skipped parse's lips left where they were."""
    cfg = _cfg(parse_every=1, mouth_every=2)
    parser = FakeParser(mouth=True)
    an = Analyzer(parser, FakeDetector(cfg.detector), cfg.analysis)
    frame = synthetic_frame()
    views, calls = [], []
    for _ in range(4):
        before = parser.calls
        face, _ = an.analyze(frame, now=len(views) / 30)
        assert face is not None and face.mouth is not None
        views.append(face.mouth)
        calls.append(parser.calls - before)
    assert calls == [2, 1, 2, 1]  # face + mouth, face only, ...
    # A carried view is the last pass's class map, placed by the face box's move since that pass.
    assert views[1].probs is views[0].probs
    moved_by = views[1].output_to_image()[:, 2] - views[0].output_to_image()[:, 2]
    assert np.all(np.abs(moved_by) < 0.05 * 200)  # the face (200 px) holds still: the view barely moves


def test_between_mouth_passes_the_view_moves_with_the_face():
    """Guards against lips painted where they were two parses ago on a face that moved since."""
    cfg = _cfg(parse_every=2, settle_parses=0, mouth_every=2)
    parser = FakeParser(mouth=True)
    an = Analyzer(parser, FakeDetector(cfg.detector), cfg.analysis)
    frame = synthetic_frame()
    step = (6, 4)
    views = []
    for i in range(5):  # parse (pass), carry, parse (no pass), carry, parse (pass)
        moved_frame = np.roll(frame, (step[1] * i, step[0] * i), axis=(0, 1))
        face, times = an.analyze(moved_frame, now=i / 30)
        assert face is not None and face.mouth is not None
        views.append((face.mouth, times.carried))
    assert [c for _, c in views] == [False, True, False, True, False]
    origin = [v.output_to_image()[:, 2] for v, _ in views]
    assert views[2][0].probs is views[0][0].probs  # no pass on the second parse
    assert origin[2] - origin[0] == pytest.approx([2 * step[0], 2 * step[1]], abs=1.0)
    assert origin[3] - origin[0] == pytest.approx([3 * step[0], 3 * step[1]], abs=1.0)


def test_mouth_view_wins_in_the_middle_and_fades_at_its_edge():
    """Guards against a visible seam: the mouth view must decide near the lips and hand over smoothly."""
    w = mouth_window(64)
    assert w[32, 32] == pytest.approx(1.0) and w[0, 32] < 0.05 and w[32, 0] < 0.05
    assert np.all(np.diff(w[32, :32]) >= 0)  # rises monotonically toward the middle

    box = FaceBox(320.0, 240.0, 200.0)
    face = FaceAnalysis(box, crop_matrix(box, CropGeometry()), _one_hot("skin"), np.ones((64, 64), np.uint8), 0.99)
    centre = (320.0, 300.0)
    mm = mouth_matrix(box, centre, MouthCrop())
    face.mouth = MouthView(mm, _one_hot("upper_lip"))
    labels = labels_to_image([face], 480, 640)
    assert labels[300, 320] == CLASS_ID["upper_lip"]
    half = MouthCrop().scale * box.size / 2
    assert labels[300, int(320 + half - 2)] == CLASS_ID["skin"]  # the face's parse at the crop's edge
    assert labels[150, 320] == CLASS_ID["skin"]  # and everywhere outside it
    probs, inside = image_probs(face, 480, 640)
    around = probs[int(300 - half) : int(300 + half), int(320 - half) : int(320 + half)]
    assert inside[300, 320] and np.allclose(
        around.sum(-1), 1.0, atol=2e-3
    )  # a distribution (OpenCV warps in fixed point)


def test_lipstick_follows_the_mouth_view():
    """Guards against lipstick painted from the coarse face map when a sharper mouth view exists."""
    frame, face, _ = synthetic_face(480, 640, face_px=200.0, seed=3)
    look = Look(name="t", layers=[LayerSpec(kind="lipstick", color="#1060ff", intensity=1.0)])
    lips = np.isin(face.probs.argmax(-1), [CLASS_ID["upper_lip"], CLASS_ID["lower_lip"]])
    ys, xs = np.nonzero(lips)
    cx, cy = face.output_to_image() @ np.array([xs.mean(), ys.mean(), 1.0])
    # A mouth view that says the lips are only a small disc (radius 10 px) at the mouth's centre.
    mm = mouth_matrix(face.box, (cx, cy), MouthCrop())
    inv = invert_affine(mm)
    centres = np.indices((64, 64))[::-1].reshape(2, -1).T * 2.0 + 0.5  # output pixel centres, input px
    img = centres @ inv[:, :2].T + inv[:, 2]
    disc = (np.hypot(img[:, 0] - cx, img[:, 1] - cy) < 10.0).reshape(64, 64)
    view = _one_hot("skin")
    view[disc] = 0.0
    view[disc, CLASS_ID["lower_lip"]] = 1.0
    refined = dataclasses.replace(face, mouth=MouthView(mm, view))

    r = Renderer()
    plain = r.render(frame, face, look)
    sharp = r.render(frame, refined, look)
    changed_plain = np.abs(plain.astype(int) - frame).sum(-1) > 30
    changed_sharp = np.abs(sharp.astype(int) - frame).sum(-1) > 30
    yy, xx = np.indices(frame.shape[:2])
    r_px = np.hypot(xx - cx, yy - cy)
    assert changed_sharp[r_px < 7].mean() > 0.9  # the mouth view's lips are painted
    corners = changed_plain & (r_px > 15)  # the face map's lips away from the disc
    assert corners.sum() > 100 and changed_sharp[corners].mean() < 0.05


def test_kiosk_runs_the_mouth_pass_only_while_lipstick_is_worn(fake_cfg):
    """Guards against paying a second inference per frame on a Pi when no layer reads the mouth view."""
    from edge.catalog import load_catalog
    from edge.detectors import make_detector
    from edge.makeup import Renderer
    from edge.pipeline import LivePipeline
    from edge.sources import make_source

    parser = FakeParser(mouth=True)
    det, source = make_detector(fake_cfg.detector), make_source(fake_cfg.source)
    every = fake_cfg.analysis.model_copy(update={"parse_every": 1, "mouth_every": 1})
    fake_cfg = fake_cfg.model_copy(update={"analysis": every})
    mirror = LivePipeline(fake_cfg, parser, det, Renderer(), load_catalog(fake_cfg.catalog), source)
    mirror.step(synthetic_frame())  # the customer arrives: a session starts with the default look
    mirror.set_look(Look(name="cheeks", layers=[LayerSpec(kind="blush", color="#e07070")]))
    parser.calls = 0
    for i in range(3):
        mirror.step(synthetic_frame(seed=i))
    assert parser.calls == 3 and mirror.face.mouth is None
    mirror.set_look(Look(name="lips", layers=[LayerSpec(kind="lipstick", color="#c2185b")]))
    for i in range(3):
        mirror.step(synthetic_frame(seed=i))
    assert parser.calls == 3 + 6 and mirror.face.mouth is not None
    mirror.set_compare("before")  # "before": no makeup shown, so no mouth pass either
    mirror.step(synthetic_frame())
    assert parser.calls == 3 + 6 + 1 and mirror.face.mouth is None


def test_flip_averaging_swaps_sides_back():
    """Guards against the mirrored parse being averaged in without mirroring the crop, un-flipping
    the map and swapping left/right classes (the eyes would smear across both sides)."""
    from edge.analysis.still import FlipAveraged
    from edge.runtime.base import ParseOutput

    class LeftOnly:
        """Sees a 'left eye' wherever the crop is bright in its left half."""

        metadata = FakeParser().metadata

        def __call__(self, crop):
            probs = _one_hot("skin")
            bright = crop[::2, ::2, 0] > 128
            bright[:, 32:] = False
            probs[bright] = 0.0
            probs[bright, CLASS_ID["left_eye"]] = 1.0
            return ParseOutput(probs, 0.9)

    crop = np.full((128, 128, 3), 255, np.uint8)
    crop[:, 88:108] = 0  # dark in the right half (class-map columns 44..53); the mirror has it on the left
    out = FlipAveraged(LeftOnly())(crop)
    assert out.probs[10, 5, CLASS_ID["left_eye"]] == pytest.approx(0.5)  # the direct view's left eye
    assert out.probs[10, 5, CLASS_ID["skin"]] == pytest.approx(0.5)  # the mirror saw it dark there
    assert out.probs[10, 58, CLASS_ID["right_eye"]] == pytest.approx(0.5)  # the mirror's "left" is image-right
    assert out.probs[10, 48, CLASS_ID["skin"]] == pytest.approx(1.0)  # dark: neither view
    assert np.allclose(out.probs.sum(-1), 1.0) and out.face == pytest.approx(0.9)


def test_lipstick_outside_the_mouth_view_comes_from_the_face():
    """Guards against a hard cut at the mouth crop's border: lips the mouth view does not cover
    (a wide smile, a crop placed off the mouth) are still painted from the face's own map."""
    frame, face, _ = synthetic_face(480, 640, face_px=200.0, seed=3)
    look = Look(name="t", layers=[LayerSpec(kind="lipstick", color="#1060ff", intensity=1.0)])
    lips = np.isin(face.probs.argmax(-1), [CLASS_ID["upper_lip"], CLASS_ID["lower_lip"]])
    ys, xs = np.nonzero(lips)
    cx, cy = face.output_to_image() @ np.array([xs.mean(), ys.mean(), 1.0])
    away = mouth_matrix(face.box, (cx, cy - 80.0), MouthCrop())  # covers the nose, not the lips
    refined = dataclasses.replace(face, mouth=MouthView(away, _one_hot("skin")))
    r = Renderer()
    plain = r.render(frame, face, look)
    shifted = r.render(frame, refined, look)
    assert (np.abs(plain.astype(int) - frame).sum(-1) > 30).sum() > 200  # the lips are painted
    assert np.abs(plain.astype(int) - shifted).max() <= 1  # exactly as without the view (float rounding)


def test_mouth_zooms_are_averaged_in_register():
    """Guards against the still-image mouth views being averaged out of register (a wrong matrix
    composition would smear or shift the lips)."""
    from edge.analysis.still import parse_mouth_zooms
    from edge.runtime.base import ParseOutput

    class Bright:
        """Calls bright crop pixels 'upper_lip', the rest skin."""

        metadata = FakeParser(mouth=True).metadata

        def __call__(self, crop):
            probs = _one_hot("skin")
            lip = crop[::2, ::2, 0] > 128
            probs[lip] = 0.0
            probs[lip, CLASS_ID["upper_lip"]] = 1.0
            return ParseOutput(probs, 0.9)

    image = np.zeros((480, 640, 3), np.uint8)
    image[290:300, 280:360] = 255  # a band of "lips" a little off the crop centre
    box = FaceBox(320.0, 240.0, 200.0)
    view = parse_mouth_zooms(Bright(), image, box, (320.0, 280.0), MouthCrop())
    labels = labels_to_image([FaceAnalysis(box, crop_matrix(box, CropGeometry()), _one_hot("skin"), None, 0.9,
                                           mouth=view)], 480, 640)  # fmt: skip
    lips = labels == CLASS_ID["upper_lip"]
    band = np.zeros_like(lips)
    band[290:300, 280:360] = True
    assert (lips & band).sum() / (lips | band).sum() > 0.85


def _face_map() -> np.ndarray:
    """A skin class map with eyes at row 20 and lips around row 42."""
    p = _one_hot("skin")
    for cls, x in (("left_eye", 20), ("right_eye", 44)):
        p[19:22, x - 4 : x + 4] = 0.0
        p[19:22, x - 4 : x + 4, CLASS_ID[cls]] = 1.0
    for cls, rows in (("upper_lip", slice(40, 42)), ("lower_lip", slice(42, 45))):
        p[rows, 24:40] = 0.0
        p[rows, 24:40, CLASS_ID[cls]] = 1.0
    return p


def _put(p: np.ndarray, cls: str, rows: slice, cols: slice, value: float = 0.9) -> None:
    p[rows, cols] = (1.0 - value) * np.eye(N, dtype=np.float32)[CLASS_ID["skin"]]
    p[rows, cols, CLASS_ID[cls]] = value


def test_a_second_lower_lip_under_the_mouth_becomes_skin():
    """Guards against a chin crease read as lips: lipstick would be painted on the chin."""
    p = _face_map()
    _put(p, "lower_lip", slice(49, 53), slice(20, 44))  # a deep crease, read as more lip than the lips
    out = keep_one_mouth(p)
    lab = out.argmax(-1)
    assert (lab[49:53, 20:44] == CLASS_ID["skin"]).all()
    assert np.array_equal(lab[40:45], p.argmax(-1)[40:45])  # the mouth itself is untouched
    assert np.allclose(out.sum(-1), 1.0)


def test_an_upper_lip_split_off_by_teeth_is_kept():
    """Guards against dropping half the mouth when the teeth between the lips read as skin."""
    p = _one_hot("skin")
    _put(p, "upper_lip", slice(38, 40), slice(26, 38))
    _put(p, "lower_lip", slice(44, 48), slice(24, 40))
    assert np.array_equal(keep_one_mouth(p).argmax(-1), p.argmax(-1))


def test_the_mouth_is_the_blob_below_the_eyes():
    """Guards against choosing a misread patch between the brows as the mouth because it is larger."""
    p = _face_map()
    _put(p, "lower_lip", slice(8, 14), slice(22, 42))  # bigger than the real lips
    lab = keep_one_mouth(p).argmax(-1)
    assert (lab[8:14, 22:42] == CLASS_ID["skin"]).all()
    assert (lab[42:45, 24:40] == CLASS_ID["lower_lip"]).all()


def test_a_mouth_view_keeps_the_lips_it_is_centred_on():
    """Guards against the refinement pass moving the lips onto a crease at the edge of its crop."""
    p = _one_hot("skin")
    _put(p, "upper_lip", slice(28, 31), slice(20, 44))
    _put(p, "lower_lip", slice(31, 35), slice(20, 44))
    _put(p, "lower_lip", slice(54, 60), slice(10, 54))  # bigger, but at the crop's edge
    lab = keep_one_mouth(p, face=False).argmax(-1)
    assert (lab[54:60, 10:54] == CLASS_ID["skin"]).all()
    assert (lab[31:35, 20:44] == CLASS_ID["lower_lip"]).all()


def test_a_deferred_mouth_pass_does_not_move_the_last_view_twice():
    """Guards against the last mouth view drifting away from the lips by one face motion per pass when the
    pass runs elsewhere (the pipeline's mouth stage): it must move exactly as far as the face moved."""
    cfg = _cfg(parse_every=2, settle_parses=0, mouth_every=1)
    an = Analyzer(FakeParser(mouth=True), FakeDetector(cfg.detector), cfg.analysis)
    an.defer_mouth = True
    frame = synthetic_frame()
    an.analyze(frame, now=0.0)
    first_view = an.run_mouth(an.pending_mouth)
    an.analyze(np.roll(frame, 5, axis=1), now=1 / 30)  # carried
    third, _ = an.analyze(np.roll(frame, 10, axis=1), now=2 / 30)  # parsed: a pass is asked for again
    assert an.pending_mouth is not None and third.mouth is not None
    moved_by = third.mouth.output_to_image()[:, 2] - first_view.output_to_image()[:, 2]
    assert moved_by == pytest.approx([10, 0], abs=1.5)  # not 20: moved once per parse
