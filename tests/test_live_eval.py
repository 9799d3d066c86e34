"""``vanity eval --live``: labelled photos played as camera sequences through the kiosk's live pipeline.

Every fixture is drawn here: no photo from ../shared is needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.contract import CLASS_ID, IGNORE
from edge.drawn import draw_face_labels
from training import live_eval as le

ROOT = Path(__file__).resolve().parent.parent
PARTS = {"skin", "nose", "eyes", "brows", "lips", "inner_mouth", "hair"}

# Contract class -> CelebAMask-HQ palette id (the reader's table inverted, sides included).
TO_PALETTE = {0: 0, 1: 1, 6: 2, 5: 4, 4: 5, 3: 6, 2: 7, 8: 10, 7: 11, 9: 12, 10: 13}


def drawn_photo(size: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A drawn face photo (a skin-coloured face, other parts in random colours) and its contract labels."""
    rng = np.random.default_rng(seed)
    lab = draw_face_labels(size)
    colours = rng.integers(20, 235, (11, 3)).astype(np.uint8)
    colours[CLASS_ID["skin"]] = (205, 160, 135)
    return colours[lab], lab


def marked_photo() -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """A grey photo with a skin disc and one white 5×5 dot labelled nose at a known, off-centre place."""
    lab = np.zeros((240, 320), np.uint8)
    cv2.circle(lab, (160, 120), 90, CLASS_ID["skin"], -1)
    x, y = 120, 90
    lab[y - 2 : y + 3, x - 2 : x + 3] = CLASS_ID["nose"]
    img = np.full((240, 320, 3), 90, np.uint8)
    img[lab == CLASS_ID["nose"]] = 255
    return img, lab, (x, y)


def make_celebamask(root: Path, n: int = 1) -> Path:
    """A CelebAMask-HQ folder of drawn faces; masks are 8-bit greyscale PNGs of palette ids (no Pillow)."""
    lut = np.zeros(256, np.uint8)
    for k, v in TO_PALETTE.items():
        lut[k] = v
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        img, lab = drawn_photo(seed=i)
        assert cv2.imwrite(str(root / "images" / f"face{i}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        assert cv2.imwrite(str(root / "masks" / f"face{i}.png"), lut[lab])
    return root


def fake_pipelines(box: list[float] | None, made: list | None = None) -> le.PipelineFactory:
    """Live pipelines over the fake parser and a fake detector returning ``box`` (None: never a face)."""
    from edge.catalog import load_catalog
    from edge.config import load_config
    from edge.detectors import make_detector
    from edge.makeup import Renderer
    from edge.pipeline import LivePipeline
    from edge.runtime.fake import FakeParser
    from edge.sources import make_source

    cfg = load_config(None, {"source": {"kind": "fake"}, "detector": {"kind": "fake", "box": box}})

    def new(clock):
        p = LivePipeline(
            cfg, FakeParser(), make_detector(cfg.detector), Renderer(), load_catalog(cfg.catalog),
            make_source(cfg.source), clock=clock,
        )  # fmt: skip
        if made is not None:
            made.append((p, clock))
        return p

    return new


def test_sequence_is_reproducible_from_the_seed_and_the_still_one_does_not_move():
    """Guards against a run that cannot be repeated (same seed, other frames), a seed that changes
    nothing, or a "still" sequence that moves (its flicker would not be a still face's)."""
    img, lab = drawn_photo()
    a = le.make_sequence(img, lab, seed=3, name="a.jpg", frames=6)
    b = le.make_sequence(img, lab, seed=3, name="a.jpg", frames=6)
    c = le.make_sequence(img, lab, seed=4, name="a.jpg", frames=6)
    for x, y in zip(a.frames, b.frames, strict=True):
        assert (x.image == y.image).all() and (x.truth == y.truth).all()
    assert not (a.frames[3].image == c.frames[3].image).all()
    assert a.frames[0].image.shape == (480, 640, 3) and a.frames[0].truth.shape == (480, 640)
    steps = [np.abs(y.matrix[:, 2] - x.matrix[:, 2]).max() for x, y in zip(a.frames, a.frames[1:], strict=False)]
    assert 0 < max(steps) < 12  # moving, by a few pixels a frame (the roll and zoom add a little)
    still = le.make_sequence(img, lab, seed=3, name="a.jpg", frames=6, still=True)
    assert all((f.matrix == still.frames[0].matrix).all() for f in still.frames)
    assert all((f.truth == still.frames[0].truth).all() for f in still.frames)
    noise = still.frames[1].image.astype(int) - still.frames[0].image.astype(int)
    assert 0 < np.abs(noise).mean() < 6  # fresh sensor noise only
    xs = np.nonzero(np.isin(a.frames[0].truth, [CLASS_ID["skin"]]))[1]
    assert 0.3 < (np.percentile(xs, 99) - np.percentile(xs, 1)) / 640 < 0.5  # the face about 40 % of the width


def test_the_labels_move_exactly_with_the_image():
    """Guards against scoring against labels moved differently from the frame (a transposed or
    inverted matrix, a half-pixel offset): a white dot labelled nose lands where its label lands."""
    img, lab, (x, y) = marked_photo()
    seq = le.make_sequence(img, lab, seed=1, name="dot.png", frames=8)
    for fr in seq.frames:
        ys, xs = np.nonzero(fr.image.max(-1) > 200)
        ty, tx = np.nonzero(fr.truth == CLASS_ID["nose"])
        assert abs(xs.mean() - tx.mean()) < 0.75 and abs(ys.mean() - ty.mean()) < 0.75
        px, py = fr.matrix @ np.array([x, y, 1.0])
        assert abs(px - tx.mean()) < 0.75 and abs(py - ty.mean()) < 0.75
        back = le.to_photo(fr.truth, fr.matrix, lab.shape)
        assert back[y, x] == CLASS_ID["nose"]
    assert (seq.frames[0].truth == IGNORE).any()  # beyond the photo: not scored


def test_flicker_is_zero_for_the_same_labels_and_counts_a_change():
    """Guards against a flicker figure that is never zero, or misses a changed label, or counts
    a frame without a face (that is a lost frame) or a background pixel as flicker."""
    truth = np.zeros((10, 10), np.uint8)
    truth[2:8, 2:8] = CLASS_ID["skin"]
    face = truth != CLASS_ID["background"]
    a = truth.copy()
    assert le.flicker([a, a.copy(), a.copy()], face).changed == 0
    b = a.copy()
    b[4, 4] = CLASS_ID["nose"]
    b[0, 0] = CLASS_ID["hair"]  # background in the truth: not a face pixel
    f = le.flicker([a, b], face)
    assert f.changed == 1 and f.pixels == 36 and f.pct == pytest.approx(100 / 36)
    assert le.flicker([a, None, b], face).pixels == 0
    c = b.copy()
    c[5, 5] = IGNORE  # not seen in one frame: left out
    assert le.flicker([a, c], face).pixels == 35


def test_each_frame_is_one_kiosk_step_on_a_30_fps_clock():
    """Guards against the evaluation bypassing the kiosk's LivePipeline, reusing one customer's
    tracker for the next photo, or a clock that does not advance 1/30 s a frame."""
    img, lab = drawn_photo()
    made: list = []
    new = fake_pipelines([192.0, 112.0, 256.0, 256.0], made)
    seq = le.make_sequence(img, lab, seed=0, name="f.jpg", frames=6)
    preds = le.run_sequence(new, seq)
    le.run_sequence(new, seq)
    assert len(made) == 2 and made[0][0] is not made[1][0]
    pipeline, clock = made[0]
    assert pipeline.frames == 6 and clock() == pytest.approx(le.START_T + 5 / 30)
    assert all(p is not None and p.shape == (480, 640) for p in preds)
    r = le.score_sequence(seq, preds, {"skin": (CLASS_ID["skin"],)}, {})
    assert r.lost == 0 and r.first_face == 0


def test_a_face_never_found_counts_every_frame_as_lost(tmp_path):
    """Guards against a photo whose face is never found being skipped (its frames would flatter
    the F1 and the losses): all its frames are lost, and all its face pixels missed."""
    root = make_celebamask(tmp_path / "cm", n=2)
    moving, still = le.evaluate_live(
        partial(le.run_sequence, fake_pipelines(None)), f"celebamask:{root}", frames=6, progress=False
    )
    for s in (moving, still):
        d = s.to_dict()
        assert (s.variant, s.sequences, s.frames, s.lost, s.never_found) == (s.variant, 2, 12, 12, 2)
        assert d["frames_to_first_face"] == {"median": None, "max": None}
        assert s.groups["skin"].tp == 0 and s.groups["skin"].fn > 0 and d["f1"]["skin"] == 0.0
    assert (moving.variant, still.variant) == ("moving", "still")


def test_palette_masks_are_read_without_pillow(tmp_path, monkeypatch):
    """Guards against `vanity eval` in a plain install (no Pillow) dying with ModuleNotFoundError
    on a CelebAMask-HQ palette mask: OpenCV reads the palette indices."""
    Image = pytest.importorskip("PIL.Image")
    from training.real_sources import celebamask_palette_items

    root = make_celebamask(tmp_path / "cm", n=1)
    ids = cv2.imread(str(root / "masks" / "face0.png"), cv2.IMREAD_GRAYSCALE)
    im = Image.fromarray(ids, mode="P")
    im.putpalette([v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)])
    im.save(root / "masks" / "face0.png")
    monkeypatch.setitem(sys.modules, "PIL", None)  # `import PIL` now fails, as in a plain install
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    (item,) = celebamask_palette_items(root)
    _, lab = item.load()
    assert (lab == drawn_photo()[1]).all()


@pytest.mark.usefixtures("default_model")
def test_vanity_eval_live_json(tmp_path, default_model):
    """Guards against `vanity eval --live --json` failing or printing something other than one JSON
    object with a moving and a still row, per-part F1, flicker, losses and the first face."""
    root = make_celebamask(tmp_path / "cm", n=1)
    cfg = tmp_path / "vanity.toml"
    cfg.write_text('[detector]\nkind = "fake"\nbox = [192.0, 112.0, 256.0, 256.0]\n')
    cmd = [sys.executable, "-m", "edge.cli", "eval", str(default_model), "--data", f"celebamask:{root}"]
    opts = ["--live", "--json", "--frames", "5", "--seed", "1", "--config", str(cfg)]
    r = subprocess.run([*cmd, *opts], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["live"] == {"frames": 5, "seed": 1}
    assert [s["variant"] for s in out["scores"]] == ["moving", "still"]
    for s in out["scores"]:
        assert set(s["f1"]) >= PARTS and s["sequences"] == 1 and s["frames"] == 5
        assert {"flicker_pct", "flicker_floor_pct", "frames_lost", "frames_to_first_face"} <= set(s)
    bad = subprocess.run([*cmd, "--frames", "5"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "--live" in bad.stderr and "Traceback" not in bad.stderr
