"""The learned face detector (BlazeFace, shipped in the package) and the rule that no face is invented.

Fixtures are generated: faces of the allowed photos (scikit-image's astronaut,
matplotlib's Grace Hopper) pasted, rolled and scaled, into synthetic scenes, and
scikit-image's face-free pictures. Nothing here needs ``../shared``.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edge.analysis import Analyzer, analyze_still
from edge.config import load_config
from edge.contract import FaceBox
from edge.detectors import Detection, make_detector, primary_face
from edge.runtime.fake import FakeParser
from tests.conftest import ROOT, synthetic_frame

# Face boxes (centre x, centre y, side) of the allowed photos: the teacher's landmarks' bounding box.
FACES = {"astronaut": (225.2, 123.3, 107.5), "grace_hopper": (263.8, 233.5, 201.0)}


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    import matplotlib.cbook as cbook
    from skimage.data import astronaut

    grace = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), cv2.IMREAD_COLOR)
    return {"astronaut": astronaut(), "grace_hopper": cv2.cvtColor(grace, cv2.COLOR_BGR2RGB)}


@pytest.fixture(scope="module")
def detector():
    return make_detector(load_config(None).detector)


def scene(width: int = 640, height: int = 480, seed: int = 0) -> np.ndarray:
    """A face-free backdrop: a lit gradient with blurred noise and a few shapes."""
    rng = np.random.default_rng(seed)
    gy = np.linspace(0.6, 1.0, height)[:, None, None]
    img = (np.array([120, 130, 140]) * gy + rng.normal(0, 12, (height, width, 3))).clip(0, 255).astype(np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), 2)
    for _ in range(6):
        c = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.rectangle(img, c, (c[0] + 80, c[1] + 50), tuple(int(v) for v in rng.integers(40, 220, 3)), -1)
    return img


def paste(canvas: np.ndarray, photo: np.ndarray, face, side: float, roll: float, at) -> tuple[float, float, float]:
    """Paste a photo's face at ``at`` with face box ``side`` px, rolled ``roll`` degrees counter-clockwise."""
    cx, cy, s = face
    m = cv2.getRotationMatrix2D((cx, cy), roll, side / s)
    m[:, 2] += np.array(at, float) - np.array([cx, cy])
    h, w = canvas.shape[:2]
    warped = cv2.warpAffine(photo, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    alpha = np.zeros((h, w), np.float32)
    cv2.ellipse(alpha, (round(at[0]), round(at[1])), (round(0.8 * side), round(0.95 * side)), -roll, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 0.08 * side)[..., None]
    canvas[:] = (canvas * (1 - alpha) + warped * alpha).astype(np.uint8)
    return float(at[0]), float(at[1]), float(side)


def matches(d: Detection, face: tuple[float, float, float]) -> bool:
    cx, cy, side = face
    return math.hypot(d.box.cx - cx, d.box.cy - cy) <= 0.5 * side and 0.5 <= d.box.size / side <= 2.0


# ----------------------------------------------------------------------------- the detector


def test_default_detector_is_blazeface_and_haar_is_an_explicit_choice():
    """Guards against a fresh install (make demo) still acquiring faces with the Haar cascade."""
    assert load_config(None).detector.kind == "blazeface"
    assert load_config(None, {"detector": {"kind": "haar"}}).detector.kind == "haar"


def test_haar_still_works_when_chosen(photos):
    """Guards against breaking the explicit Haar fallback: upright faces, score 1.0, no keypoints."""
    haar = make_detector(load_config(None, {"detector": {"kind": "haar"}}).detector)
    found = haar.search(photos["astronaut"])
    assert any(matches(d, FACES["astronaut"]) for d in found)
    assert all(d.score == 1.0 and d.keypoints is None and d.box.angle_deg == 0.0 for d in found)


@pytest.mark.parametrize("roll", [-45.0, -20.0, 0.0, 20.0, 45.0])
@pytest.mark.parametrize("name", sorted(FACES))
def test_rolled_face_found_in_one_pass_with_its_roll(detector, photos, name, roll):
    """Guards against a tilted head being missed (the cascade lost heads rolled past ~15 degrees), or found
    without its roll, which would crop it crooked.

    The face, 160 px, is rolled and pasted in a 640x480 scene; the one live pass must find it,
    its roll within 10 degrees of the truth (eye line measured upright: astronaut ~3, Grace ~1).
    """
    img = scene()
    face = paste(img, photos[name], FACES[name], 160.0, roll, (330.0, 230.0))
    found = detector.detect(img)
    assert len(found) == 1, found
    d = found[0]
    assert matches(d, face), (d.box, face)
    upright = {"astronaut": 3.0, "grace_hopper": 1.0}[name]
    assert abs(d.box.angle_deg - (upright - roll)) < 10.0, d.box.angle_deg
    assert 0.6 <= d.score <= 1.0
    assert d.keypoints is not None and d.keypoints.shape == (6, 2)


def test_group_picture_every_face_found_and_nothing_else(detector, photos):
    """Guards against a group photo losing people (the cascade found 2 of 6) or gaining false ones.

    Five faces of 60-150 px, rolled up to 45 degrees either way, in a 640x480 scene: the still
    search finds every one and nothing more, and the live kiosk still picks one customer.
    """
    img = scene(seed=3)
    spots = [
        ("astronaut", 70.0, 40.0, (100.0, 110.0)),
        ("grace_hopper", 60.0, -45.0, (300.0, 90.0)),
        ("astronaut", 150.0, -10.0, (330.0, 320.0)),
        ("grace_hopper", 100.0, 25.0, (540.0, 150.0)),
        ("grace_hopper", 80.0, -30.0, (110.0, 360.0)),
    ]
    faces = [paste(img, photos[n], FACES[n], side, roll, at) for n, side, roll, at in spots]
    found = detector.search(img)
    for f in faces:
        assert any(matches(d, f) for d in found), (f, [d.box for d in found])
    assert len(found) == len(faces), [d.box for d in found]
    best = primary_face(found, 640, 480)
    assert best is not None and matches(best, faces[2])  # the largest, nearest the centre


def test_face_filling_the_picture_is_found(detector, photos):
    """Guards against a close-up going unseen (the model knows faces up to about 60% of its input)."""
    cx, cy, s = FACES["grace_hopper"]
    half = int(0.6 * s)
    crop = np.ascontiguousarray(
        photos["grace_hopper"][int(cy) - half : int(cy) + half, int(cx) - half : int(cx) + half]
    )
    found = detector.search(crop)
    assert len(found) == 1 and matches(found[0], (half, half, s)), [d.box for d in found]


FACE_FREE = ("coffee", "chelsea", "rocket", "coins", "hubble_deep_field", "horse", "logo", "colorwheel", "moon")


@pytest.mark.parametrize("name", FACE_FREE)
def test_no_face_in_face_free_pictures(detector, name):
    """Guards against false faces (the cascade fired on clothing): scikit-image's face-free pictures, searched
    as stills at their own size and at the kiosk's 640x480, give nothing."""
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.dtype != np.uint8:
        img = img.astype(np.float32)
        img = (255 * (img - img.min()) / max(float(np.ptp(img)), 1e-9)).astype(np.uint8)
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    img = np.ascontiguousarray(img[..., :3])
    assert detector.search(img) == []
    assert detector.search(cv2.resize(img, (640, 480), interpolation=cv2.INTER_AREA)) == []


@pytest.mark.parametrize("seed", range(4))
def test_no_face_in_synthetic_scenes(detector, seed):
    """Guards against false faces on plain rooms: generated scenes and the fake source's empty frame."""
    assert detector.search(scene(seed=seed)) == []
    assert detector.detect(synthetic_frame(face=False, seed=seed)) == []


def test_shipped_model_travels_with_licence_and_provenance():
    """Guards against shipping a third-party model without its licence or a way to check where it came from."""
    from edge.detectors.blazeface import DETECTOR_DIR, VARIANTS, describe

    info = describe(load_config(None).detector)
    prov = json.loads((DETECTOR_DIR / "provenance.json").read_text())
    assert prov["package"] == "mediapipe" and prov["version"] == "0.10.21" and prov["license"] == "Apache-2.0"
    assert "Apache License" in (DETECTOR_DIR / "LICENSE").read_text()
    model = DETECTOR_DIR / VARIANTS["full_range"].file
    assert hashlib.sha256(model.read_bytes()).hexdigest() == info["sha256"]
    assert info["path_in_wheel"].startswith("mediapipe/modules/face_detection/")
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"data/**/*"' in pyproject  # package-data: edge/data/detector/ goes into the wheel


def test_altered_model_is_refused(monkeypatch, tmp_path):
    """Guards against running a detector model that is not the pinned file."""
    from edge.detectors import blazeface

    for f in blazeface.DETECTOR_DIR.iterdir():
        shutil.copy(f, tmp_path / f.name)
    model = tmp_path / blazeface.VARIANTS["full_range"].file
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    monkeypatch.setattr(blazeface, "DETECTOR_DIR", tmp_path)
    monkeypatch.setattr(blazeface, "PROVENANCE_FILE", tmp_path / "provenance.json")
    with pytest.raises(blazeface.DetectorModelError, match="SHA-256"):
        make_detector(load_config(None).detector)


# ----------------------------------------------------------------------------- no invented faces


def test_still_analysis_never_invents_a_face(detector):
    """Guards against the old centred-box guessing: a parser that calls every crop a face must still give no
    face on a picture where the detector finds none."""
    import skimage.data

    cfg = load_config(None).analysis  # FakeParser calls every crop a face: the worst case
    for img in (skimage.data.coffee(), skimage.data.chelsea(), scene(seed=5)):
        assert analyze_still(FakeParser(face=True), detector, cfg, np.ascontiguousarray(img)) == []


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True, timeout=180, cwd=ROOT
    )


def test_analyze_and_render_say_no_face_found(default_model, tmp_path):
    """Guards against `vanity analyze`/`render` painting a face-free photo or failing on it: exit 0, "no face
    found", an empty face list and an unlabelled (all background) map; render leaves the photo as it was."""
    import skimage.data

    src = tmp_path / "chelsea.png"
    cv2.imwrite(str(src), cv2.cvtColor(skimage.data.chelsea(), cv2.COLOR_RGB2BGR))
    labels = tmp_path / "labels.png"
    r = _cli("analyze", str(src), "--out", str(labels), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["faces"] == [] and doc["message"] == "no face found"
    lab = cv2.imread(str(labels), cv2.IMREAD_UNCHANGED)
    assert lab.shape == (300, 451) and lab.max() == 0
    r = _cli("analyze", str(src))
    assert r.returncode == 0 and "no face found" in r.stdout
    out = tmp_path / "r.png"
    r = _cli("render", str(src), "--look", "bold", "--out", str(out))
    assert r.returncode == 0 and "no face found" in r.stdout, r.stderr
    assert np.array_equal(cv2.imread(str(out)), cv2.imread(str(src)))


# ----------------------------------------------------------------------------- the live path


class _Stub:
    """A detector returning fixed detections, counting calls."""

    def __init__(self, found: list[Detection]):
        self.found, self.calls = found, 0

    def detect(self, frame):
        self.calls += 1
        return list(self.found)


class _Flaky:
    """FakeParser that answers "no face" on the listed calls (1-based)."""

    def __init__(self, fail_on: set[int]):
        self.inner = FakeParser(face=True)
        self.metadata = self.inner.metadata
        self.fail_on, self.calls = fail_on, 0

    def __call__(self, crop):
        self.calls += 1
        out = self.inner(crop)
        return type(out)(out.probs, 0.01) if self.calls in self.fail_on else out


def test_lost_track_is_reacquired_in_the_same_frame():
    """Guards against a customer vanishing from the mirror for frames after the tracker loses them: one
    detector pass on the same frame picks the face up again."""
    cfg = load_config(None, {"detector": {"kind": "fake", "box": None}, "analysis": {"idle_detect_every": 3}})
    det = _Stub([Detection(FaceBox(320.0, 240.0, 180.0, 0.0), 0.9)])
    an = Analyzer(_Flaky({2}), det, cfg.analysis)
    frame = synthetic_frame()
    assert an.analyze(frame).face is not None and det.calls == 1
    assert an.analyze(frame).face is not None, "lost track not re-acquired within the frame"
    assert det.calls == 2
    assert an.analyze(frame).face is not None and det.calls == 2  # tracking again: no detector


def test_acquisition_takes_the_eyes_roll_and_serves_one_customer():
    """Guards against a tilted customer's first crop being upright, or the kiosk switching between people."""
    cfg = load_config(None, {"detector": {"kind": "fake", "box": None}})
    side = Detection(FaceBox(80.0, 100.0, 90.0, 0.0), 0.99)
    customer = Detection(FaceBox(330.0, 250.0, 170.0, -25.0), 0.8)
    det = _Stub([side, customer])
    an = Analyzer(FakeParser(), det, cfg.analysis)
    fa = an.analyze(synthetic_frame()).face
    assert fa is not None and fa.box == customer.box
