"""Readers for the real-face layouts as published, their hold-out splits, and ``vanity eval``.

Every fixture is drawn here: no photo from ../shared is needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from edge.contract import CLASS_ID, IGNORE
from edge.drawn import FACE_LAYOUT, draw_face_labels
from training import real_sources as rs
from training.data import load_split, parse_spec

ROOT = Path(__file__).resolve().parent.parent

# Contract class -> CelebAMask-HQ palette id (the inverse of the reader's table, sides included).
TO_PALETTE = {0: 0, 1: 1, 6: 2, 5: 4, 4: 5, 3: 6, 2: 7, 8: 10, 7: 11, 9: 12, 10: 13}


def draw_face(size: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A drawn face photo and its contract labels (image-left eye on the left)."""
    rng = np.random.default_rng(seed)
    lab = draw_face_labels(size)
    colours = rng.integers(20, 235, (11, 3)).astype(np.uint8)
    colours[CLASS_ID["skin"]] = (205, 160, 135)
    img = colours[lab]
    return img, lab


def write_palette(path: Path, palette_ids: np.ndarray) -> None:
    im = Image.fromarray(palette_ids.astype(np.uint8), mode="P")
    im.putpalette([v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)])
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def write_rgb(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def make_celebamask(root: Path, n: int = 10, swap: tuple[int, ...] = ()) -> Path:
    """A CelebAMask-HQ palette folder of drawn faces; faces in ``swap`` use image sides for l_/r_."""
    lut = np.zeros(256, np.uint8)
    for k, v in TO_PALETTE.items():
        lut[k] = v
    for i in range(n):
        img, lab = draw_face(seed=i)
        ids = lut[lab]
        if i in swap:
            ids = np.array([0, 1, 2, 3, 5, 4, 7, 6, *range(8, 256)], np.uint8)[ids]
        write_rgb(root / "images" / f"face{i:03d}.jpg", img)
        write_palette(root / "masks" / f"face{i:03d}.png", ids)
    return root


class FakeTeacher(rs.TeacherCache):
    """A teacher that 'labels' every photo with the drawn face's parts (hair unknown, as the real one)."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.calls = 0

    def _label(self, image):
        self.calls += 1
        _, lab = draw_face(image.shape[0])
        lab = lab.copy()
        lab[np.isin(lab, [CLASS_ID["hair"], CLASS_ID["background"]])] = IGNORE
        return lab


def test_celebamask_palette_maps_parts_and_sides(tmp_path):
    """Guards against reading the person's left eye as the image-left one, and against dropping
    the masks whose annotator used the image's sides (they are relabelled instead)."""
    root = make_celebamask(tmp_path / "cm", n=3, swap=(1,))
    items = rs.celebamask_palette_items(root)
    assert len(items) == 3
    for it in items:
        img, lab = it.load()
        _, truth = draw_face()
        assert img.shape[:2] == lab.shape
        np.testing.assert_array_equal(lab, truth)


def test_celebamask_glasses_and_earrings_are_unknown(tmp_path):
    """Guards against teaching 'background' (or any part) where the mask only says 'glasses'."""
    _, lab = draw_face()
    ids = np.vectorize(TO_PALETTE.get)(lab).astype(np.uint8)
    ids[10:20, 10:20] = 3  # eyeglasses
    ids[30:40, 10:20] = 15  # earring
    write_rgb(tmp_path / "images" / "a.jpg", draw_face()[0])
    write_palette(tmp_path / "masks" / "a.png", ids)
    _, got = rs.celebamask_palette_items(tmp_path)[0].load()
    assert (got[10:20, 10:20] == IGNORE).all() and (got[30:40, 10:20] == IGNORE).all()


def test_bad_palette_mask_is_skipped_with_its_reason(tmp_path):
    """Guards against a corrupt mask crashing a training run or being read as labels."""
    root = make_celebamask(tmp_path / "cm", n=4)
    (root / "masks" / "face001.png").write_bytes(b"not a png")
    bad = np.full((256, 256), 40, np.uint8)
    write_palette(root / "masks" / "face002.png", bad)
    split = load_split(f"celebamask:{root}", val_fraction=0.0, cache=False)
    reasons = dict(split.summary.skipped)
    assert len(reasons) == 2
    assert "unreadable" in reasons[str(root / "images" / "face001.jpg")]
    assert "out of range" in reasons[str(root / "images" / "face002.jpg")]
    assert len(split.train) == 2 * 2  # two faces, each with its mouth view


def test_holdout_split_is_fixed_and_disjoint(tmp_path):
    """Guards against validation faces leaking into training (a split that moves with the seed)."""
    root = make_celebamask(tmp_path / "cm", n=30)
    train = {it.key for it in rs.celebamask_palette_items(root, "train")}
    held = {it.key for it in rs.celebamask_palette_items(root, "holdout")}
    assert train and held and not (train & held)
    assert train | held == {it.key for it in rs.celebamask_palette_items(root)}
    assert held == {it.key for it in rs.celebamask_palette_items(root, "holdout")}


def test_spec_parses_split_and_repeat():
    """Guards against '@holdout' being taken as part of the path, or a typo silently reading everything."""
    (src,) = parse_spec("celebamask:/d/cm@train*4")
    assert (src.kind, str(src.path), src.split, src.repeat) == ("celebamask", "/d/cm", "train", 4)
    assert str(src) == "celebamask:/d/cm@train*4"
    with pytest.raises(ValueError, match="unknown split"):
        parse_spec("lfw:/d/lfw@validation")


def make_lfw(root: Path) -> Path:
    """Two people: Ann (training list) and Bob (validation list, and one photo in the training list)."""
    rows = {"train": [], "validation": []}
    for name, n, listed in (("Ann_A", 2, "train"), ("Bob_B", 2, "validation")):
        for k in range(1, n + 1):
            img, lab = draw_face(250, seed=k)
            stem = f"{name}_{k:04d}"
            write_rgb(root / "lfw_funneled" / name / f"{stem}.jpg", img)
            parts = np.zeros((250, 250, 3), np.uint8)
            parts[..., 2] = 255  # blue: background
            face = np.isin(lab, [c for c in range(1, 10)])
            parts[face] = (0, 255, 0)
            parts[lab == CLASS_ID["hair"]] = (255, 0, 0)
            parts[:30, :30] = (255, 0, 0)  # a human "hair" patch the teacher would call nothing
            write_rgb(root / "parts_lfw_funneled_gt" / f"{stem}.png", parts)
            which = listed if k == 1 else "train"
            rows[which].append(f"lfw_funneled/{name}/{stem}.jpg\tparts_lfw_funneled_gt/{stem}.png")
    rows["train"].append("lfw_funneled/Gone_G/Gone_G_0001.jpg\tparts_lfw_funneled_gt/Gone_G_0001.png")
    for k, v in rows.items():
        (root / f"{k}.txt").write_text("\n".join(v) + "\n")
    return root


def test_lfw_human_labels_win_and_people_are_held_out(tmp_path):
    """Guards against the teacher overriding a human 'hair'/'background' pixel, against a face pixel
    outside the teacher's oval becoming skin, and against one person straddling the split."""
    root = make_lfw(tmp_path / "lfw")
    cache = FakeTeacher(tmp_path / "cache")
    train = rs.lfw_items(root, "train", cache)
    held = rs.lfw_items(root, "holdout", cache)
    assert {it.key.parent.name for it in train} == {"Ann_A"}
    assert {it.key.parent.name for it in held} == {"Bob_B"}  # both of Bob's photos, one listed for training
    assert len(held) == 2
    _, lab = train[0].load()
    _, truth = draw_face(250, seed=1)
    assert (lab[:30, :30] == CLASS_ID["hair"]).all()
    assert (lab[truth == CLASS_ID["background"]] != CLASS_ID["skin"]).all()
    inner = cv2.erode((truth == CLASS_ID["upper_lip"]).astype(np.uint8), np.ones((3, 3)))
    assert (lab[inner > 0] == CLASS_ID["upper_lip"]).all()  # the teacher's part, where the human says "face"
    calls = cache.calls
    rs.lfw_items(root, "train", cache)[0].load()
    assert cache.calls == calls  # cached: the teacher runs once per photo


def test_teacher_band_blurs_part_edges_only(tmp_path):
    """Guards against training on the teacher's part outlines, which are about a pixel off."""
    _, lab = draw_face()
    s = lab.shape[0] / 64  # the drawn layout's units
    part = {p.cls: p for p in FACE_LAYOUT}
    nose, lip = part["nose"], part["upper_lip"]
    banded = rs.ignore_band(lab.copy(), face_width=2 * part["skin"].ax * s)
    assert (banded[lab != banded] == IGNORE).all()
    assert banded[round(nose.cy * s), round(nose.cx * s)] == CLASS_ID["nose"]  # the middle of a part is kept
    corner = round(lip.cy * s), round((lip.cx - lip.ax) * s)
    assert lab[corner] == CLASS_ID["upper_lip"] and banded[corner] == IGNORE  # the lips' corner is not


def test_hair_set_says_hair_or_not_only(tmp_path):
    """Guards against reading 'not hair' as 'background' (it may be skin, ears or neck)."""
    root = tmp_path / "hair"
    for split, i in (("train", 1), ("test", 2)):
        img, lab = draw_face(seed=i)
        write_rgb(root / split / "original" / f"{i}.jpg", img)
        write_rgb(
            root / split / "mask" / f"{i}_hair.png", np.repeat(((lab == 10) * 255).astype(np.uint8)[..., None], 3, -1)
        )
    cache = FakeTeacher(tmp_path / "cache")
    (item,) = rs.celebahair_items(root, "train", cache)
    assert item.key.name == "1.jpg"
    _, lab = item.load()
    _, truth = draw_face(seed=1)
    assert (lab[truth == CLASS_ID["hair"]] == CLASS_ID["hair"]).all()
    assert (lab[truth == CLASS_ID["background"]] == IGNORE).all()
    assert [it.key.name for it in rs.celebahair_items(root, "holdout", cache)] == ["2.jpg"]


def test_copies_of_held_out_photos_are_dropped_from_other_sources(tmp_path):
    """Guards against a held-out CelebA-HQ face reaching training through another CelebA-derived set."""
    cm = make_celebamask(tmp_path / "cm", n=12)
    held = rs.celebamask_palette_items(cm, "holdout")
    assert held
    copy = cv2.resize(cv2.imread(str(held[0].key)), (512, 512))  # re-encoded and rescaled, as the sets ship it
    folder = tmp_path / "mine"
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    cv2.imwrite(str(folder / "images" / "copy.png"), copy)
    cv2.imwrite(str(folder / "masks" / "copy.png"), cv2.resize(draw_face()[1], (512, 512), interpolation=0))
    other = draw_face(seed=99)
    cv2.imwrite(str(folder / "images" / "other.png"), cv2.cvtColor(other[0], cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "masks" / "other.png"), other[1])
    split = load_split(f"celebamask:{cm}@train+folder:{folder}", val_fraction=0.0, cache=False)
    assert split.summary.sources[1].found == 1  # only "other"


def test_score_photo_pools_pixels_and_leaves_out_unknown():
    """Guards against unknown pixels counting as errors, or left/right being scored apart."""
    from training.evaluation import score_photo

    truth = np.array([[1, 2, 3, IGNORE]], np.uint8)
    pred = np.array([[1, 3, 2, 5]], np.uint8)
    groups = {"skin": (1,), "brows": (2, 3)}
    into = {}
    score_photo(pred, truth, groups, into)
    assert into["skin"].f1 == 1.0 and into["brows"].f1 == 1.0
    score_photo(np.array([[0, 0, 2, 0]], np.uint8), truth, groups, into)
    assert into["skin"].tp == 1 and into["skin"].fn == 1
    assert into["brows"].tp == 3 and into["brows"].fn == 1


@pytest.mark.usefixtures("default_model")
def test_vanity_eval_scores_the_bundle_on_a_labelled_folder(tmp_path, default_model):
    """Guards against `vanity eval` scoring against the wrong labels or size: a drawn face whose box is
    given scores its skin well above chance; a source without human labels is refused."""
    root = make_celebamask(tmp_path / "cm", n=2)
    _, lab = draw_face()
    ys, xs = np.nonzero(np.isin(lab, list(range(1, 10))))
    box = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
    cfg = tmp_path / "vanity.toml"
    cfg.write_text(f'[detector]\nkind = "fake"\nbox = {json.dumps(box)}\n')
    cmd = [sys.executable, "-m", "edge.cli", "eval", str(default_model), "--data", f"celebamask:{root}", "--json"]
    r = subprocess.run([*cmd, "--config", str(cfg)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    (score,) = json.loads(r.stdout)["scores"]
    assert score["photos"] == 2 and score["faces_found"] == 2
    assert set(score["f1"]) == {"skin", "nose", "eyes", "brows", "lips", "inner_mouth", "hair", "background"}
    assert score["f1"]["skin"] > 0.5
    bad = subprocess.run(
        [sys.executable, "-m", "edge.cli", "eval", str(default_model), "--data", "synth:10"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert bad.returncode == 2 and "celebamask" in bad.stderr


def test_make_model_without_the_data_says_what_is_missing(tmp_path, capsys):
    """Guards against `make model` starting an hour of work, or a traceback, when the faces are not there."""
    from convert.default_model import main

    (tmp_path / "lfw").mkdir()
    code = main(["--data-root", str(tmp_path), "--out", str(tmp_path / "b.tflite"), "--run-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert "celebamask-hq-sample" in err and "celeba-hair" in err and "lfw," not in err
    assert not (tmp_path / "r").exists()
