"""Data specs, the LaPa / CelebAMask-HQ / folder readers, malformed samples, and the flip augmentation."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.contract import CLASS_ID, CLASSES, INPUT_SIZE, OUTPUT_STRIDE, flip_permutation
from training import data

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))
import make_face_trees as trees

OUT = INPUT_SIZE // OUTPUT_STRIDE


def _cx(labels: np.ndarray, cls: str) -> float:
    return float(np.nonzero(labels == CLASS_ID[cls])[1].mean())


def _assert_sides(labels: np.ndarray) -> None:
    for a, b in (("left_eye", "right_eye"), ("left_eyebrow", "right_eyebrow")):
        if (labels == CLASS_ID[a]).sum() > 2 and (labels == CLASS_ID[b]).sum() > 2:
            assert _cx(labels, a) < _cx(labels, b), f"{a} should be image-left of {b}"


# --------------------------------------------------------------------------- specs


@pytest.mark.parametrize(
    "spec",
    ["", "synth", "synth:0", "synth:-3", "synth:abc", "faces:/x", "lapa:", "synth:10+", "folder"],
)
def test_bad_specs_raise_value_error(spec):
    """Guards against a typo in --data silently training on nothing (or on the wrong thing)."""
    with pytest.raises(ValueError):
        data.parse_spec(spec)


def test_spec_parsing():
    """Guards against sources being dropped or mis-parsed when joined with '+'."""
    s = data.parse_spec("synth:20000+folder:data/teacher + lapa:/d/LaPa+celebamask:~/c")
    assert [x.kind for x in s] == ["synth", "folder", "lapa", "celebamask"]
    assert s[0].count == 20000
    assert s[1].path == Path("data/teacher")
    assert "~" not in str(s[3].path)


def test_missing_path_is_file_not_found(tmp_path):
    """Guards against a missing dataset folder being reported as 'no samples' instead of by its path."""
    with pytest.raises(FileNotFoundError, match="nope"):
        data.load_split(f"folder:{tmp_path / 'nope'}", cache=False)


# --------------------------------------------------------------------------- flip


def test_flip_permutation_swaps_left_and_right():
    """Guards against a flip that moves the image-left brow/eye to the right but keeps its left_* id."""
    lab = np.zeros((8, 8), np.uint8)
    lab[2, 1] = CLASS_ID["left_eyebrow"]
    lab[3, 1] = CLASS_ID["left_eye"]
    lab[2, 6] = CLASS_ID["right_eyebrow"]
    lab[3, 6] = CLASS_ID["right_eye"]
    lab[5, 3] = CLASS_ID["nose"]
    flipped = flip_permutation()[lab[:, ::-1]]
    # The brow that was image-left (column 1) is now at column 6, the image's right: right_eyebrow.
    assert flipped[2, 6] == CLASS_ID["right_eyebrow"] and flipped[2, 1] == CLASS_ID["left_eyebrow"]
    assert flipped[3, 6] == CLASS_ID["right_eye"] and flipped[3, 1] == CLASS_ID["left_eye"]
    assert flipped[5, 4] == CLASS_ID["nose"]


tf_missing = importlib.util.find_spec("tensorflow") is None


@pytest.mark.skipif(tf_missing, reason="needs TensorFlow")
def test_augmentation_flip_keeps_left_on_the_left():
    """Guards against the tf.data flip forgetting to swap classes: after any augmentation the image-left
    brow/eye must still be labelled left_* (and the labels stay valid class ids)."""
    import tensorflow as tf

    from training import synth

    b = synth.generate(6, seed=2)
    fn = data._augment_fn(INPUT_SIZE, OUTPUT_STRIDE)
    tf.random.set_seed(0)
    flips = 0
    for i in range(len(b.face)):
        for _ in range(4):
            img, lab, _ = fn(tf.constant(b.images[i]), tf.constant(b.labels[i]), tf.constant(b.face[i]))
            lab = lab.numpy()
            assert img.dtype == tf.uint8 and img.shape == (INPUT_SIZE, INPUT_SIZE, 3)
            assert lab.shape == (OUT, OUT) and lab.max() < len(CLASSES)
            if b.face[i]:
                _assert_sides(lab)
            flips += 1
    assert flips == 24


# --------------------------------------------------------------------------- readers


def test_folder_reader(tmp_path):
    """Guards against the folder reader mis-pairing images and masks or cropping unlike the device."""
    trees.make_folder(tmp_path / "teacher", n=6)
    split = data.load_split(f"folder:{tmp_path / 'teacher'}", val_fraction=0.34, cache=False)
    # Each photo gives its face crop, then its mouth view; the split is by photo.
    assert len(split.train) + len(split.val) == 12 and len(split.val) == 4
    for arr in (split.train, split.val):
        assert arr.images.shape[1:] == (INPUT_SIZE, INPUT_SIZE, 3) and arr.labels.shape[1:] == (OUT, OUT)
        assert (arr.face == 1).all()
        for lab in arr.labels[0::2]:
            _assert_sides(lab)
            assert (lab == CLASS_ID["skin"]).mean() > 0.15  # the face fills the crop as on the device
        for face_lab, mouth_lab in zip(arr.labels[0::2], arr.labels[1::2], strict=True):
            # Zoomed about 3x on the mouth: the lips cover several times the class-map pixels.
            assert _lips_area(mouth_lab) > 4 * _lips_area(face_lab)
    assert split.summary.sources[0].skipped == 0


def _lips_area(lab: np.ndarray) -> int:
    return int(np.isin(lab, [CLASS_ID["upper_lip"], CLASS_ID["lower_lip"]]).sum())


def test_mouth_view_matches_device_geometry():
    """Guards against training mouth views framed unlike the device's refinement crop (centred on the
    lips-and-mouth centroid, side = MouthCrop.scale x the face box), which would teach the wrong zoom."""
    from edge.contract import MOUTH_CLASSES, MouthCrop, mouth_matrix, warp_crop

    photo, labels = trees.face_photo(4)
    box = data.face_box_for(labels)
    mouth_ids = [CLASS_ID[c] for c in MOUTH_CLASSES]
    offsets = []
    for seed in range(20):
        img, lab = data.mouth_crop_sample(photo, labels, np.random.default_rng(seed))
        assert img.shape == (INPUT_SIZE, INPUT_SIZE, 3) and lab.shape == (OUT, OUT)
        ys, xs = np.nonzero(np.isin(lab, mouth_ids))
        offsets.append(((xs.mean() + 0.5) / OUT - 0.5, (ys.mean() + 0.5) / OUT - 0.5))
    # The jitter models the first parse's error (3% of the face = 6% of the mouth crop): small, not systematic.
    off = np.array(offsets)
    assert np.median(np.hypot(*off.T)) < 0.12 and np.all(np.abs(off.mean(0)) < 0.04)

    class NoJitter:
        def normal(self, loc, scale, size=None):
            return np.full(size, float(loc)) if size is not None else float(loc)

    # Without the jitter the sample is exactly the device's crop: the face box from the labels,
    # centred on the mouth classes' centroid (pixel centres at integer coordinates).
    img, _ = data.mouth_crop_sample(photo, labels, NoJitter())
    ys, xs = np.nonzero(np.isin(labels, mouth_ids))
    expected = warp_crop(photo, mouth_matrix(box, (xs.mean(), ys.mean()), MouthCrop(), INPUT_SIZE))
    assert np.array_equal(img, expected)
    no_mouth = np.where(np.isin(labels, mouth_ids), CLASS_ID["skin"], labels).astype(np.uint8)
    assert data.mouth_crop_sample(photo, no_mouth, np.random.default_rng(0)) is None


def test_crop_matches_device_geometry():
    """Guards against training crops framed differently from the device's crop_face."""
    from edge.contract import CropGeometry, FaceBox, crop_face, face_box_from_labels

    photo, labels = trees.face_photo(4)
    img, lab = data.crop_sample(photo, labels)
    box = data.face_box_for(labels)
    _, _, w, h = face_box_from_labels(labels)
    assert box.size == max(w, h)
    assert np.array_equal(img, crop_face(photo, box, CropGeometry()))
    # Labels follow the same matrix: the image-left eye is still image-left and parts land where they were.
    _assert_sides(lab)
    assert isinstance(box, FaceBox)


def test_lapa_reader_uses_its_split(tmp_path):
    """Guards against LaPa's test split leaking into training, or its train/val split being ignored."""
    trees.make_lapa(tmp_path / "LaPa", n_train=4, n_val=2, n_test=3)
    split = data.load_split(f"lapa:{tmp_path / 'LaPa'}", cache=False)
    assert (len(split.train), len(split.val)) == (8, 4)  # face crop + mouth view per photo
    assert split.summary.sources[0].found == 6
    for lab in split.train.labels:
        _assert_sides(lab)


def test_celebamask_reader_maps_parts_and_sides(tmp_path):
    """Guards against CelebAMask's person-left l_eye/l_brow being labelled image-left, and the 19 parts
    being mapped wrongly (neck must become background, 1024-px photos must match 512-px masks)."""
    trees.make_celebamask(tmp_path / "CelebAMask-HQ", n=4)
    split = data.load_split(f"celebamask:{tmp_path / 'CelebAMask-HQ'}", val_fraction=0.25, cache=False)
    assert len(split.train) + len(split.val) == 8
    assert split.summary.skipped == []
    for lab in np.concatenate([split.train.labels[0::2], split.val.labels[0::2]]):
        _assert_sides(lab)
        for c in ("skin", "nose", "hair"):
            assert (lab == CLASS_ID[c]).any(), c
    # And the same photo read from the folder layout gives the same labels (the mapping is lossless here).
    trees.make_folder(tmp_path / "same", n=4)
    ref = data.load_split(f"folder:{tmp_path / 'same'}", val_fraction=0.25, cache=False)
    a = np.concatenate([split.train.labels[0::2], split.val.labels[0::2]])
    b = np.concatenate([ref.train.labels[0::2], ref.val.labels[0::2]])
    assert np.mean(np.sort(a.reshape(4, -1), 0) == np.sort(b.reshape(4, -1), 0)) > 0.97


def test_celebamask_person_left_is_image_right(tmp_path):
    """Guards against reading l_eye as the image-left eye: a mask tree with l_ on the image-LEFT
    (wrong per CelebAMask's convention) must be reported as swapped, not silently mislabelled."""
    root = tmp_path / "C"
    trees.make_celebamask(root, n=1)
    folder = root / "CelebAMask-HQ-mask-anno" / "0"
    for a, b in (("l_eye", "r_eye"), ("l_brow", "r_brow")):
        pa, pb = folder / f"00000_{a}.png", folder / f"00000_{b}.png"
        tmp = folder / "tmp.png"
        pa.rename(tmp)
        pb.rename(pa)
        tmp.rename(pb)
    with pytest.raises(data.DataError):
        data.load_split(f"celebamask:{root}", cache=False)


# --------------------------------------------------------------------------- malformed samples


def _break_samples(root: Path) -> dict[str, str]:
    """Break four samples of a folder tree in four ways; returns stem -> expected reason fragment."""
    (root / "images" / "face000.jpg").write_bytes(b"not a jpeg")
    (root / "masks" / "face001.png").unlink()
    cv2.imwrite(str(root / "masks" / "face002.png"), np.zeros((50, 60), np.uint8) + 1)
    bad = cv2.imread(str(root / "masks" / "face003.png"), cv2.IMREAD_UNCHANGED)
    bad[0, 0] = 42
    cv2.imwrite(str(root / "masks" / "face003.png"), bad)
    return {"face000": "unreadable", "face001": "missing", "face002": "size", "face003": "out of range"}


def test_malformed_samples_are_reported_and_skipped(tmp_path):
    """Guards against broken samples being silently dropped or mislabelled: each is reported with its path."""
    root = tmp_path / "f"
    trees.make_folder(root, n=7)
    expected = _break_samples(root)
    split = data.load_split(f"folder:{root}", val_fraction=0.0, cache=False)
    assert len(split.train) == 6  # 3 good photos, each with its mouth view
    reasons = dict(split.summary.skipped)
    assert len(reasons) == 4
    for stem, frag in expected.items():
        (path,) = [p for p in reasons if stem in p]
        assert frag in reasons[path], (stem, reasons[path])
    assert split.summary.sources[0].skipped == 4
    assert split.summary.to_dict()["skipped_total"] == 4


def test_strict_mode_raises_with_the_path(tmp_path):
    """Guards against strict mode training on a partly broken data set."""
    root = tmp_path / "f"
    trees.make_folder(root, n=3)
    (root / "masks" / "face001.png").unlink()
    with pytest.raises(data.DataError, match="face001"):
        data.load_split(f"folder:{root}", strict=True, cache=False)


# --------------------------------------------------------------------------- pipelines


def test_val_split_is_plain_and_deterministic():
    """Guards against augmented or reshuffled validation data for the conversion gate (which rebuilds it)."""
    a, b = (data.load_split("synth:40", seed=5, val_fraction=0.25, cache=False).val.take(np.arange(3)) for _ in "ab")
    assert a.images.shape == (3, INPUT_SIZE, INPUT_SIZE, 3) and a.labels.shape == (3, OUT, OUT) and a.face.shape == (3,)
    for x, y in zip((a.images, a.labels, a.face), (b.images, b.labels, b.face), strict=True):
        assert np.array_equal(x, y)
    from training import synth

    ref = synth.generate(3, seed=5)  # validation = the first samples of the seeded set
    assert np.array_equal(a.images, ref.images)


@pytest.mark.skipif(tf_missing, reason="needs TensorFlow")
def test_arrays_dataset_yields_model_batches():
    """Guards against the pipeline's element structure drifting from what model.fit and the loss expect."""
    split = data.load_split("synth:24", val_fraction=0.25, seed=1)
    train = data.arrays_dataset(split.train, batch_size=4, shuffle=True, augment=True, seed=1)
    val = data.arrays_dataset(split.val, batch_size=4, shuffle=False, augment=False)
    x, y = next(iter(train))
    assert x.dtype.name == "uint8" and tuple(x.shape) == (4, INPUT_SIZE, INPUT_SIZE, 3)
    assert tuple(y["parts"].shape) == (4, OUT, OUT) and tuple(y["face"].shape) == (4, 1)
    assert split.summary.train == 18 and split.summary.val == 6
    vx, _ = next(iter(val))
    assert vx.shape[0] == 4
