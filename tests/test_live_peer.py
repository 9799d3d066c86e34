"""The live peer (benchmarks/live_peer_mediapipe.py): MediaPipe FaceMesh's polygons painted as the contract's classes.

Guards against a peer that scores well or badly for the wrong reason: its landmark
polygons painted in the wrong place or with the wrong class. The easy mistakes are
MediaPipe's person-left painted as the contract's image-left (every eye and brow pixel
swapped), the lip rings cut or paired wrongly (upper and lower lip swapped, or the
inner mouth painted over closed lips), and rasterising that is not area-true.

The rasterisation tests need no MediaPipe and always run. The end-to-end test runs only
where ``mediapipe`` is importable (its own venv, ``pip install '.[peer]'``; never the
device install): a short camera sequence of the demo photo built by
``training.live_eval.make_sequence``, tracked by FaceMesh, must paint every part on
every frame, in the places a face has them. A few seconds.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.contract import CLASS_ID

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def peer_mod():
    """The benchmark as a module (benchmarks/ is not a package)."""
    name = "vanity_live_peer_mediapipe"
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "live_peer_mediapipe.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop(name, None)


def test_fill_paints_pixel_centres_inside_only(peer_mod):
    """A 4×3 box whose edges lie between pixel centres paints exactly 12 pixels; a polygon without area, none."""
    canvas = np.zeros((10, 10), np.uint8)
    peer_mod.fill(canvas, np.array([[1.5, 2.5], [5.5, 2.5], [5.5, 5.5], [1.5, 5.5]]), 7)
    assert np.count_nonzero(canvas) == 12
    assert np.array_equal(np.argwhere(canvas).min(0), [3, 2]) and np.array_equal(np.argwhere(canvas).max(0), [5, 5])
    closed_mouth = np.array([[1.0, 5.0], [5.0, 5.2], [9.0, 5.0], [5.0, 5.2]])  # there and back along one line
    flat = np.zeros((10, 10), np.uint8)
    peer_mod.fill(flat, closed_mouth, 7)
    assert not flat.any()


def test_chains_order_rings_and_polylines(peer_mod):
    """An eye-like ring comes back as one closed ring in order; a brow-like pair of polylines as two open paths."""
    ring = frozenset({(1, 2), (2, 3), (3, 4), (4, 1)})
    ((path, closed),) = peer_mod.chains(ring)
    assert closed and sorted(path) == [1, 2, 3, 4]
    assert all(frozenset(e) in {frozenset(x) for x in ring} for e in zip(path, path[1:] + path[:1], strict=True))
    pieces = peer_mod.chains(frozenset({(10, 11), (11, 12), (20, 21), (21, 22)}))
    assert sorted((sorted(p), c) for p, c in pieces) == [([10, 11, 12], False), ([20, 21, 22], False)]


def _centre(labels: np.ndarray, *names: str) -> np.ndarray:
    ys, xs = np.nonzero(np.isin(labels, [CLASS_ID[n] for n in names]))
    assert xs.size, f"{names} not painted"
    return np.array([xs.mean(), ys.mean()])


def test_facemesh_paints_parts_where_a_face_has_them(peer_mod):
    """On a moving camera sequence (roll within ±15°, unmirrored), every frame's parts are in a face's order.

    Brows above eyes above lips, upper lip above lower lip, the contract's left eye and
    brow on the image's left, every part inside the face oval's extent, no nose or hair.
    """
    pytest.importorskip("mediapipe")
    import cv2

    from training.live_eval import make_sequence

    try:
        peer = peer_mod.load_peer()
    except peer_mod.PeerUnavailable as e:
        pytest.skip(str(e))
    photo = cv2.cvtColor(cv2.imread(str(ROOT / "edge" / "data" / "demo" / "astronaut.jpg")), cv2.COLOR_BGR2RGB)
    labels = np.zeros(photo.shape[:2], np.uint8)
    labels[70:180, 178:272] = CLASS_ID["skin"]  # the face's extent, only to frame it as the evaluation does
    seq = make_sequence(photo, labels, seed=0, name="astronaut.jpg", frames=5)
    preds = peer_mod.run_sequence(peer, seq)
    assert all(p is not None for p in preds), "FaceMesh lost the demo face"
    for p in preds:
        assert p.shape == seq.frames[0].image.shape[:2]
        assert not np.isin(p, [CLASS_ID["nose"], CLASS_ID["hair"]]).any()
        brows = _centre(p, "left_eyebrow", "right_eyebrow")
        eyes = _centre(p, "left_eye", "right_eye")
        upper, lower = _centre(p, "upper_lip"), _centre(p, "lower_lip")
        assert brows[1] < eyes[1] < upper[1] < lower[1]
        assert _centre(p, "left_eye")[0] < _centre(p, "right_eye")[0]
        assert _centre(p, "left_eyebrow")[0] < _centre(p, "right_eyebrow")[0]
        face = np.argwhere(p != CLASS_ID["background"])
        skin = np.argwhere(p == CLASS_ID["skin"])
        assert (face.min(0) >= skin.min(0)).all() and (face.max(0) <= skin.max(0)).all()
        eye_px = np.count_nonzero(np.isin(p, [CLASS_ID["left_eye"], CLASS_ID["right_eye"]]))
        assert 0.005 < eye_px / face.shape[0] < 0.1
