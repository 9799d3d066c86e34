"""The labelling teacher: installs offline models, labels the allowed real photos plausibly, skips loudly.

Real photos used: scikit-image's ``astronaut`` and matplotlib's ``grace_hopper.jpg`` only
(the project's allowed set); ``coffee`` and flat/gray images are the face-less negatives.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, no_tf_env

cv2 = pytest.importorskip("cv2")


def _grace_hopper_path() -> Path:
    import matplotlib.cbook as cbook

    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def _grace_hopper() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(_grace_hopper_path())), cv2.COLOR_BGR2RGB)


def _astronaut() -> np.ndarray:
    from skimage.data import astronaut

    return astronaut()


@pytest.fixture(scope="session", params=["astronaut", "grace_hopper"])
def labelled(request, teacher, artifacts):
    """(name, image, faces) for each allowed photo; saves a visual-check overlay to the artifacts."""
    from training.teacher import label_image, merge_labels, overlay

    image = _astronaut() if request.param == "astronaut" else _grace_hopper()
    faces = label_image(image, teacher)
    if faces:
        vis = overlay(image, merge_labels(faces, image.shape[:2]))
        cv2.imwrite(str(artifacts / f"teacher_{request.param}.png"), cv2.cvtColor(vis, cv2.COLOR_RGB2BGR))
    return request.param, image, faces


# --------------------------------------------------------------------------- no model needed


def test_missing_teacher_says_how_to_install(tmp_path):
    from training.teacher import Teacher, TeacherMissing

    with pytest.raises(TeacherMissing, match="make teacher"):
        Teacher(tmp_path / "nowhere")


def test_tampered_teacher_is_refused(tmp_path):
    from training.teacher import Teacher, TeacherMissing
    from training.teacher_assets import DETECTOR_FILE, LANDMARK_FILE

    for name in (LANDMARK_FILE, DETECTOR_FILE):
        (tmp_path / name).write_bytes(b"not a model")
    with pytest.raises(TeacherMissing, match="SHA-256"):
        Teacher(tmp_path)


def test_install_refuses_a_wheel_with_other_models(tmp_path):
    from training.teacher_assets import TEACHER_FILES, TeacherInstallError, install_teacher

    whl = tmp_path / "mediapipe-0.10.21-cp311-cp311-fake.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        for inner in TEACHER_FILES:
            zf.writestr(inner, b"different bytes")
    with pytest.raises(TeacherInstallError, match="SHA-256"):
        install_teacher(tmp_path / "t", wheel=whl)
    empty = tmp_path / "mediapipe-0.10.21-py3-none-any.whl"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("mediapipe/__init__.py", "")
    with pytest.raises(TeacherInstallError, match="has no"):
        install_teacher(tmp_path / "t", wheel=empty)
    assert not (tmp_path / "t").exists()


def test_install_from_a_local_wheel_writes_provenance(tmp_path, teacher_dir):
    """Re-pack the installed files as a wheel: the offline install path verifies and records them."""
    from training.teacher_assets import MANIFEST_FILE, TEACHER_FILES, install_teacher, teacher_files_ok

    whl = tmp_path / "mediapipe-0.10.21-cp311-cp311-local.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        for inner, (name, _) in TEACHER_FILES.items():
            zf.write(teacher_dir / name, inner)
    dest = install_teacher(tmp_path / "t", wheel=whl)
    assert teacher_files_ok(dest)
    manifest = json.loads((dest / MANIFEST_FILE).read_text())
    assert manifest["mediapipe_version"] == "0.10.21"
    assert set(manifest["files"]) == {name for name, _ in TEACHER_FILES.values()}


# --------------------------------------------------------------------------- the allowed real photos


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    assert xs.size, "empty region"
    return np.array([xs.mean(), ys.mean()])


def test_finds_exactly_one_face(labelled):
    name, image, faces = labelled
    assert len(faces) == 1, f"{name}: {len(faces)} faces"
    f = faces[0]
    assert f.score >= 0.99
    assert f.landmarks.shape == (468, 3)
    assert f.labels.shape == image.shape[:2] and f.labels.dtype == np.uint8
    _x, _y, w, h = f.box
    assert 60 <= w <= 300 and 60 <= h <= 300, f.box
    assert abs(f.roll_deg) < 15


def test_lips_are_low_in_the_face_and_redder_than_skin(labelled):
    from edge.contract import CLASS_ID

    name, image, faces = labelled
    f = faces[0]
    x, y, w, h = f.box
    lips = np.isin(f.labels, [CLASS_ID["upper_lip"], CLASS_ID["lower_lip"]])
    ys, xs = np.nonzero(lips)
    assert ys.size > 50
    # The lips' centre lies in the lower third of the face box and no lip pixel is in its upper half
    # (a smile lifts the mouth corners a little above the 2/3 line).
    assert _centroid(lips)[1] >= y + 2 * h / 3, name
    assert ys.min() >= y + h / 2 and ys.max() <= y + h, name
    assert xs.min() >= x - 1 and xs.max() <= x + w + 1, name

    def redness(mask: np.ndarray) -> float:
        px = image[mask].astype(np.float64)
        return float((px[:, 0] - px[:, 1]).mean())

    assert redness(lips) > redness(f.labels == CLASS_ID["skin"]) + 5, name


def test_left_right_and_brows_above_eyes(labelled):
    from edge.contract import CLASS_ID

    name, _image, faces = labelled
    lab = faces[0].labels
    c = {k: _centroid(lab == CLASS_ID[k]) for k in ("left_eye", "right_eye", "left_eyebrow", "right_eyebrow")}
    assert c["left_eye"][0] < c["right_eye"][0], name
    assert c["left_eyebrow"][0] < c["right_eyebrow"][0], name
    assert c["left_eyebrow"][1] < c["left_eye"][1], name
    assert c["right_eyebrow"][1] < c["right_eye"][1], name
    # Each brow sits over its own eye.
    for side in ("left", "right"):
        assert abs(c[f"{side}_eyebrow"][0] - c[f"{side}_eye"][0]) < abs(c["left_eye"][0] - c["right_eye"][0]) / 2


def test_whole_mask_is_plausible(labelled):
    from edge.contract import CLASS_ID, CLASSES, face_box_from_labels

    name, _image, faces = labelled
    f = faces[0]
    counts = np.bincount(f.labels.ravel(), minlength=len(CLASSES))
    assert f.labels.max() < len(CLASSES)
    face_counts = {c: int(counts[CLASS_ID[c]]) for c in CLASSES if c not in ("background", "hair")}
    assert max(face_counts, key=face_counts.get) == "skin", face_counts
    for c in ("left_eyebrow", "right_eyebrow", "left_eye", "right_eye", "nose", "upper_lip", "lower_lip"):
        assert face_counts[c] > 30, (name, c, face_counts)
    assert counts[CLASS_ID["hair"]] == 0  # the teacher does not label hair
    # The nose lies between the eyes and above the mouth.
    nose = _centroid(f.labels == CLASS_ID["nose"])
    eyes = [_centroid(f.labels == CLASS_ID[k]) for k in ("left_eye", "right_eye")]
    lips = _centroid(np.isin(f.labels, [CLASS_ID["upper_lip"], CLASS_ID["lower_lip"]]))
    assert eyes[0][0] < nose[0] < eyes[1][0]
    assert max(e[1] for e in eyes) < nose[1] < lips[1]
    # The contract's face box of the mask is the teacher's face box (within rounding).
    box = face_box_from_labels(f.labels)
    assert box is not None and np.allclose(box, f.box, atol=3)


def test_faceless_images_give_no_faces(teacher):
    from skimage.data import coffee

    from training.teacher import label_image

    assert label_image(coffee(), teacher) == []
    assert label_image(np.full((240, 320, 3), 128, np.uint8), teacher) == []
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert label_image(noise, teacher) == []


def test_min_face_drops_small_faces(teacher):
    from training.teacher import label_image

    assert len(label_image(_astronaut(), teacher, min_face=40)) == 1
    assert label_image(_astronaut(), teacher, min_face=200) == []


def test_flipped_photo_swaps_left_and_right(teacher):
    """A mirrored photo's labels are the mirrored labels with the pairs swapped (contract.flip_permutation)."""
    from edge.contract import CLASS_ID, flip_permutation
    from training.teacher import label_image

    image = _astronaut()
    a = label_image(image, teacher)[0].labels
    b = label_image(np.ascontiguousarray(image[:, ::-1]), teacher)[0].labels
    expected = flip_permutation()[a[:, ::-1]]
    for k in ("left_eye", "right_eye", "left_eyebrow", "right_eyebrow"):
        inter = np.logical_and(expected == CLASS_ID[k], b == CLASS_ID[k]).sum()
        union = np.logical_or(expected == CLASS_ID[k], b == CLASS_ID[k]).sum()
        assert inter / union > 0.5, k


def test_rolled_face_follows_the_eye_line(teacher):
    """A face rolled by 30 degrees is found; its roll is measured and left/right hold along the eye line."""
    from edge.contract import CLASS_ID
    from training.teacher import label_image

    m = cv2.getRotationMatrix2D((225, 125), 30, 1.0)  # counter-clockwise on screen
    image = cv2.warpAffine(_astronaut(), m, (512, 512), borderMode=cv2.BORDER_REFLECT)
    faces = label_image(image, teacher)
    assert len(faces) == 1
    f = faces[0]
    assert abs(f.roll_deg - -30) < 8, f.roll_deg
    left, right = (_centroid(f.labels == CLASS_ID[k]) for k in ("left_eye", "right_eye"))
    assert right[0] - left[0] > 0 and right[1] < left[1]  # the image-right eye is now higher


def test_small_face_in_a_large_photo_is_found_by_tiling(teacher):
    from training.teacher import label_image

    small = cv2.resize(_astronaut(), None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)
    canvas = np.full((1200, 1600, 3), 90, np.uint8)
    canvas[700 : 700 + small.shape[0], 1100 : 1100 + small.shape[1]] = small
    faces = label_image(canvas, teacher, min_face=20)
    assert len(faces) == 1
    x, y, w, _h = faces[0].box
    assert 1100 < x < 1100 + small.shape[1] and 700 < y < 700 + small.shape[0] and w > 20


# --------------------------------------------------------------------------- folders and the command


def _photo_folder(tmp_path: Path) -> Path:
    from skimage.data import coffee

    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "astronaut.png"), cv2.cvtColor(_astronaut(), cv2.COLOR_RGB2BGR))
    shutil.copy(_grace_hopper_path(), photos / "hopper.jpg")
    cv2.imwrite(str(photos / "coffee.jpg"), cv2.cvtColor(coffee(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(photos / "gray.png"), np.full((200, 300, 3), 128, np.uint8))
    (photos / "notes.txt").write_text("not a photo\n")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return photos


@pytest.mark.slow
def test_label_folder_writes_layout_and_reports_skips(tmp_path, teacher_dir):
    from edge.contract import CLASSES
    from training.teacher import label_folder

    photos = _photo_folder(tmp_path)
    out = tmp_path / "dataset"
    report = label_folder(photos, out, teacher=teacher_dir)

    assert report.labelled == 2
    assert report.faces == {photos / "astronaut.png": 1, photos / "hopper.jpg": 1}
    skipped = dict(report.skipped)
    assert set(skipped) == {photos / n for n in ("coffee.jpg", "gray.png", "notes.txt", "broken.jpg")}
    assert "no face" in skipped[photos / "coffee.jpg"] and "no face" in skipped[photos / "gray.png"]
    assert "not an image" in skipped[photos / "notes.txt"]
    assert "not an image" in skipped[photos / "broken.jpg"]

    assert sorted(p.name for p in (out / "images").iterdir()) == ["astronaut.png", "hopper.png"]
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["astronaut.png", "hopper.png"]
    for stem, src in (("astronaut", _astronaut()), ("hopper", _grace_hopper())):
        img = cv2.cvtColor(cv2.imread(str(out / "images" / f"{stem}.png")), cv2.COLOR_BGR2RGB)
        assert np.array_equal(img, src)  # a lossless copy of the decoded photo
        mask = cv2.imread(str(out / "masks" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        assert mask.ndim == 2 and mask.dtype == np.uint8 and mask.shape == src.shape[:2]
        assert mask.max() < len(CLASSES) and (mask == 1).sum() > 1000

    meta = json.loads((out / "teacher.json").read_text())
    assert meta["mediapipe_version"] == "0.10.21"
    assert meta["classes"] == list(CLASSES)
    assert len(meta["files"]["face_landmark.tflite"]) == 64
    assert meta["runs"][-1]["labelled"] == 2

    # Existing outputs are kept unless asked.
    before = (out / "masks" / "astronaut.png").stat().st_mtime_ns
    again = label_folder(photos, out, teacher=teacher_dir)
    assert again.labelled == 0
    assert "already labelled" in dict(again.skipped)[photos / "astronaut.png"]
    assert (out / "masks" / "astronaut.png").stat().st_mtime_ns == before
    forced = label_folder(photos, out, teacher=teacher_dir, overwrite=True)
    assert forced.labelled == 2
    assert len(json.loads((out / "teacher.json").read_text())["runs"]) == 3


def test_label_folder_without_teacher_fails_before_writing(tmp_path):
    from training.teacher import TeacherMissing, label_folder

    photos = tmp_path / "photos"
    photos.mkdir()
    with pytest.raises(TeacherMissing, match="make teacher"):
        label_folder(photos, tmp_path / "out", teacher=tmp_path / "no-teacher")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_vanity_label_command_without_tensorflow(tmp_path, teacher_dir):
    """`vanity label` runs where TensorFlow cannot be imported (LiteRT only), and exits 2 without a teacher."""
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "astronaut.jpg"), cv2.cvtColor(_astronaut(), cv2.COLOR_RGB2BGR))
    (photos / "readme.md").write_text("hello")
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "edge.cli", "label", str(photos), "--out", str(out), "--teacher", str(teacher_dir)]
    proc = subprocess.run(cmd, env=no_tf_env(), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "readme.md" in proc.stderr
    assert (out / "masks" / "astronaut.png").is_file() and (out / "images" / "astronaut.png").is_file()

    cmd[-1] = str(tmp_path / "missing")
    proc = subprocess.run(cmd, env=no_tf_env(), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "make teacher" in proc.stderr
