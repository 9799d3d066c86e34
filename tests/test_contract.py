"""The model contract: geometry, class order and the bundle loader's refusals."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edge import contract
from edge.contract import (
    CLASSES,
    BundleError,
    BundleMetadata,
    CropGeometry,
    FaceBox,
    OutputSpec,
    crop_matrix,
    flip_permutation,
    invert_affine,
    load_bundle,
    write_metadata,
)
from edge.files import sha256_file


def test_flip_permutation_swaps_only_the_pairs():
    """Guards against a flip that mislabels brows/eyes or touches symmetric classes."""
    perm = flip_permutation()
    ids = {c: i for i, c in enumerate(CLASSES)}
    assert perm[ids["left_eye"]] == ids["right_eye"]
    assert perm[ids["right_eyebrow"]] == ids["left_eyebrow"]
    for c in ("background", "skin", "nose", "upper_lip", "inner_mouth", "lower_lip", "hair"):
        assert perm[ids[c]] == ids[c]
    assert (perm[perm] == np.arange(len(CLASSES))).all()


def test_crop_matrix_centres_and_scales_the_face_box():
    """Guards against crop geometry drift between training and the device."""
    geo = CropGeometry(scale=1.5, center_shift=0.0)
    box = FaceBox(300.0, 200.0, 100.0, 0.0)
    m = crop_matrix(box, geo, 128)
    centre = m @ np.array([300.0, 200.0, 1.0])
    assert np.allclose(centre, [64, 64])
    right = m @ np.array([350.0, 200.0, 1.0])
    assert math.isclose(right[0] - 64, 50 * 128 / 150, rel_tol=1e-6)


def test_mouth_matrix_centres_the_mouth_at_the_contract_zoom():
    """Guards against the device's mouth crop drifting from the one the model was trained on."""
    from edge.contract import MouthCrop, mouth_matrix

    box = FaceBox(300.0, 200.0, 100.0, 30.0)
    mouth = MouthCrop(scale=0.5)
    m = mouth_matrix(box, (310.0, 240.0), mouth, 128)
    assert np.allclose(m @ np.array([310.0, 240.0, 1.0]), [64, 64])
    # The side is scale x the face box, whatever the roll.
    assert math.isclose(float(np.hypot(*m[:, 0])), 128 / 50, rel_tol=1e-9)
    # Rolled like the face crop: the face's own "right" axis runs along the crop's x.
    right = m @ np.array([310.0 + math.cos(math.radians(30)), 240.0 + math.sin(math.radians(30)), 1.0])
    assert math.isclose(right[1], 64, abs_tol=1e-9) and right[0] > 64


def test_bundle_without_mouth_geometry_still_loads(tmp_path):
    """Guards against bundles made before the mouth refinement existed being refused (they just skip it)."""
    import json

    from edge.contract import BundleMetadata, OutputSpec, load_bundle, write_metadata
    from edge.files import sha256_file

    tfl = tmp_path / "m.tflite"
    tfl.write_bytes(b"model")
    outs = {r: OutputSpec(name=r, shape=[1], meaning=r) for r in ("parts", "face")}
    write_metadata(tfl, BundleMetadata(tflite_sha256=sha256_file(tfl), outputs=outs))
    raw = json.loads(tfl.with_suffix(".json").read_text())
    raw.pop("mouth")
    tfl.with_suffix(".json").write_text(json.dumps(raw))
    assert load_bundle(tfl).metadata.mouth is None


def test_crop_matrix_roll_makes_the_eye_line_horizontal():
    """Guards against a roll sign error that would tilt every crop twice as much."""
    geo = CropGeometry(scale=1.5, center_shift=0.0)
    angle = 20.0
    box = FaceBox(0.0, 0.0, 100.0, angle)
    m = crop_matrix(box, geo, 128)
    t = math.radians(angle)
    left = m @ np.array([-30 * math.cos(t), -30 * math.sin(t), 1.0])
    right = m @ np.array([30 * math.cos(t), 30 * math.sin(t), 1.0])
    assert abs(left[1] - right[1]) < 1e-6 and right[0] > left[0]
    inv = invert_affine(m)
    back = inv @ np.array([*right, 1.0])
    assert np.allclose(back, [30 * math.cos(t), 30 * math.sin(t)])


def _bundle(tmp_path, payload=b"not really a model"):
    tfl = tmp_path / "m.tflite"
    tfl.write_bytes(payload)
    meta = BundleMetadata(
        tflite_sha256=sha256_file(tfl),
        outputs={
            "parts": OutputSpec(name="parts", shape=[1, 64, 64, 11], meaning="probabilities"),
            "face": OutputSpec(name="face", shape=[1, 1], meaning="face probability"),
        },
    )
    write_metadata(tfl, meta)
    return tfl, meta


def test_bundle_round_trip(tmp_path):
    """Guards against metadata that does not survive being written and read back."""
    tfl, meta = _bundle(tmp_path)
    b = load_bundle(tfl)
    assert b.metadata == meta
    assert load_bundle(tmp_path).path == tfl  # a folder with one .tflite


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("tamper", "SHA-256 mismatch"),
        ("no_sidecar", "metadata missing"),
        ("schema", "unknown metadata schema_version"),
        ("garbage", "not valid JSON"),
        ("no_output", "invalid"),
    ],
)
def test_bundle_refusals_say_why(tmp_path, damage, message):
    """Guards against a device that runs a tampered or unknown bundle, or refuses without saying why."""
    tfl, _ = _bundle(tmp_path)
    side = contract.sidecar_path(tfl)
    raw = json.loads(side.read_text())
    if damage == "tamper":
        tfl.write_bytes(b"not really a model!")
    elif damage == "no_sidecar":
        side.unlink()
    elif damage == "schema":
        raw["schema_version"] = 99
        side.write_text(json.dumps(raw))
    elif damage == "garbage":
        side.write_text("{nope")
    elif damage == "no_output":
        raw["outputs"] = {"parts": raw["outputs"]["parts"]}
        raw["unexpected"] = 1
        side.write_text(json.dumps(raw))
    with pytest.raises(BundleError, match=message):
        load_bundle(tfl)


def test_missing_bundle_file(tmp_path):
    """Guards against a confusing error when the configured model path is wrong."""
    with pytest.raises(BundleError, match="model file not found"):
        load_bundle(tmp_path / "absent.tflite")
