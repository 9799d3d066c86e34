"""The synthetic face generator: determinism, label sanity, left/right, negatives, framing."""

from __future__ import annotations

import numpy as np
import pytest

from edge.contract import (
    CLASS_ID,
    CLASSES,
    INPUT_SIZE,
    MOUTH_CLASSES,
    OUTPUT_STRIDE,
    CropGeometry,
    MouthCrop,
    face_box_from_labels,
)
from training import synth


@pytest.fixture(scope="module")
def batch() -> synth.SynthBatch:
    return synth.generate(60, seed=3)


def _centroid_x(labels: np.ndarray, cls: str) -> float:
    return float(np.nonzero(labels == CLASS_ID[cls])[1].mean())


def test_deterministic_by_seed():
    """Guards against hidden global randomness: the same seed must give the same bytes, another seed not."""
    a = synth.generate(4, seed=11)
    b = synth.generate(4, seed=11)
    c = synth.generate(4, seed=12)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)
    # Sample i does not depend on how the set is chunked.
    tail = synth.generate(2, seed=11, start=2)
    assert np.array_equal(tail.images, a.images[2:])


def test_shapes_and_label_range(batch):
    """Guards against a generator that drifts from the contract's resolutions or emits unknown class ids."""
    n = len(batch.face)
    out = INPUT_SIZE // OUTPUT_STRIDE
    assert batch.images.shape == (n, INPUT_SIZE, INPUT_SIZE, 3) and batch.images.dtype == np.uint8
    assert batch.labels.shape == (n, out, out) and batch.labels.dtype == np.uint8
    assert batch.labels.max() < len(CLASSES)
    assert set(np.unique(batch.face)) <= {0, 1}


def test_every_face_has_the_parts(batch):
    """Guards against faces missing lips, eyes, brows or skin (the makeup layers need all of them)."""
    views = 0
    for lab, f in zip(batch.labels, batch.face, strict=True):
        if not f:
            continue
        present = set(np.unique(lab).tolist())
        groups = [("upper_lip", "lower_lip")]
        if _is_mouth_view(lab):
            views += 1  # zoomed on the mouth: eyes and brows are out of view
        else:
            groups += [("left_eye", "right_eye"), ("left_eyebrow", "right_eyebrow")]
        for group in groups:
            assert any(CLASS_ID[c] in present for c in group), group
        assert CLASS_ID["skin"] in present
    assert 0 < views < len(batch.face) / 2


def _is_mouth_view(lab: np.ndarray) -> bool:
    # A face crop's lips cover at most ~2.5% of it, a mouth view's 4-15%.
    return bool(np.isin(lab, [CLASS_ID["upper_lip"], CLASS_ID["lower_lip"]]).mean() > 0.03)


def test_left_is_image_left():
    """Guards against swapped sides: the image-left brow and eye must carry the left_* ids."""
    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(40):
        _, lab = synth.render_face(rng)
        pairs = [("left_eye", "right_eye"), ("left_eyebrow", "right_eyebrow")]
        for a, b in pairs:
            if (lab == CLASS_ID[a]).sum() > 3 and (lab == CLASS_ID[b]).sum() > 3:
                assert _centroid_x(lab, a) < _centroid_x(lab, b)
                checked += 1
    assert checked > 40


def test_negatives_have_no_face():
    """Guards against negatives that contain face labels or claim a face."""
    rng = np.random.default_rng(0)
    for _ in range(10):
        img, lab = synth.render_negative(rng)
        assert img.shape == (INPUT_SIZE, INPUT_SIZE, 3)
        assert not lab.any()
    b = synth.generate(200, seed=1)
    neg = b.face == 0
    assert 0 < neg.sum() < 50
    assert not b.labels[neg].any()


def test_framing_matches_the_device_crop():
    """Guards against faces framed unlike the device crop: crop side / face-box side ~ CropGeometry().scale."""
    rng = np.random.default_rng(9)
    ratios = []
    for _ in range(40):
        _, lab = synth.render_face(rng)
        _, _, w, h = face_box_from_labels(lab)
        ratios.append(INPUT_SIZE / max(w, h))
    med = float(np.median(ratios))
    assert abs(med - CropGeometry().scale) < 0.2 * CropGeometry().scale
    assert min(ratios) > 0.6 * CropGeometry().scale and max(ratios) < 1.6 * CropGeometry().scale


def test_mouth_views_zoom_on_the_mouth():
    """Guards against mouth views framed unlike the device's refinement crop: the lips-and-mouth
    centroid must sit near the centre, and the zoom over the face crop must be the contract's
    (CropGeometry.scale / MouthCrop.scale, about 2.9x), with the eyes (nearly always) out of view."""
    mouth_ids = [CLASS_ID[c] for c in MOUTH_CLASSES]
    offsets, zooms, eyes = [], [], 0
    for i in range(30):
        # The same seed draws the same person; only the framing differs.
        _, face_lab = synth.render_face(synth.sample_rng(11, i))
        _, lab = synth.render_face(synth.sample_rng(11, i), mouth=MouthCrop())
        ys, xs = np.nonzero(np.isin(lab, mouth_ids))
        offsets.append(np.hypot(xs.mean() + 0.5 - INPUT_SIZE / 2, ys.mean() + 0.5 - INPUT_SIZE / 2) / INPUT_SIZE)
        fxs = np.nonzero(np.isin(face_lab, mouth_ids))[1]
        zooms.append((np.ptp(xs) + 1) / (np.ptp(fxs) + 1))
        eyes += bool(np.isin(lab, [CLASS_ID["left_eye"], CLASS_ID["right_eye"]]).any())
    expected = CropGeometry().scale / MouthCrop().scale
    assert np.median(offsets) < 0.1
    assert abs(np.median(zooms) - expected) < 0.15 * expected, np.median(zooms)
    assert eyes <= 6


def test_generated_sets_mix_in_mouth_views():
    """Guards against the generator dropping the mouth views the default bundle's refinement pass needs."""
    b = synth.generate(200, seed=4)
    zoomed = np.mean([_is_mouth_view(lab) for lab in b.labels])
    assert abs(zoomed - synth.MOUTH_FRACTION) < 0.1
