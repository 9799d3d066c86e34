"""The face detector's figures: recall, faces in group pictures, false faces, speed.

Run (after ``make .venv/.dev``)::

    .venv/bin/python benchmarks/eval_detector.py                 # everything, markdown tables
    .venv/bin/python benchmarks/eval_detector.py --only speed    # one part
    .venv/bin/python benchmarks/eval_detector.py --detector haar # the old cascade, for comparison

Parts:

- ``photos``: recall on faces >= 80 px wide, one face per photo, where the face's
  box comes from human labels: ``../shared/data`` (read in place, never copied:
  CelebAMask-HQ masks, LFW Part Labels, Helen landmarks) and the allowed photos
  (scikit-image's ``astronaut``, matplotlib's ``grace_hopper.jpg``, each also
  rolled by +-25 and +-45 degrees; scikit-image's ``lfw_subset`` faces are 25 px,
  so they are reported apart, enlarged to 100 px).
- ``groups``: pictures made by pasting 3-8 faces (shared and allowed photos),
  each rolled by up to +-45 degrees and 60-200 px wide, into backgrounds with no
  face; every pasted face must be found, and nothing else.
- ``free``: false faces on scikit-image's face-free pictures, ``lfw_subset``'s
  non-face crops, and synthetic backgrounds.
- ``empty``: the live path (detector + parser, as the kiosk runs them) over
  10,000 frames of the demo's empty scenes (the ``fake-empty`` source and the
  ``demo`` source's backdrop), with camera noise: frames with a face reported.
- ``speed``: full-frame acquisition (one ``detect`` call) on 640x480 demo frames.

A face counts as found when a detection's centre lies within half the labelled
box's side of its centre and its size is within 0.5-2x of it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data"
MIN_RECALL_SIDE = 80
"""Faces at least this wide count for the recall figure."""

# CelebAMask-HQ ids that are "the face" in the contract's sense (skin incl. ears, parts, glasses).
_CELEBA_FACE = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)

FACE_FREE = (
    "coffee",
    "chelsea",
    "rocket",
    "coins",
    "hubble_deep_field",
    "horse",
    "brick",
    "grass",
    "gravel",
    "immunohistochemistry",
    "retina",
    "page",
    "text",
    "clock",
    "moon",
    "logo",
    "colorwheel",
    "cell",
    "checkerboard",
    "binary_blobs",
)
"""scikit-image pictures without a face (``camera`` and ``astronaut`` have one)."""


# ----------------------------------------------------------------------------- images


def _rgb(img: np.ndarray) -> np.ndarray:
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.dtype != np.uint8:
        img = (255 * (img - img.min()) / (np.ptp(img) + 1e-9)).astype(np.uint8)
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    return np.ascontiguousarray(img[..., :3])


def _read(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"{path}: unreadable")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def grace_hopper() -> np.ndarray:
    """matplotlib's sample photo."""
    import matplotlib.cbook as cbook

    return _read(Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))


def _square(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float]:
    return (x0 + x1) / 2, (y0 + y1) / 2, float(max(x1 - x0, y1 - y0))


# Face boxes of the allowed photos (centre x, centre y, side): the bounding box of the teacher's 468 landmarks.
ALLOWED_BOXES = {"astronaut": (225.2, 123.3, 107.5), "grace_hopper": (263.8, 233.5, 201.0)}


def labelled_photos(limit: int | None = None) -> Iterator[tuple[str, str, np.ndarray, tuple[float, float, float]]]:
    """(set, name, RGB image, face box cx, cy, side) for every human-labelled shared photo."""
    import cv2

    cm = SHARED / "celebamask-hq-sample"
    for p in sorted((cm / "images").glob("*.jpg"))[:limit]:
        try:
            from PIL import Image  # the masks are palette PNGs: PIL keeps the class ids

            mask = np.asarray(Image.open(cm / "masks" / (p.stem + ".png")))
        except OSError:
            continue
        ys, xs = np.nonzero(np.isin(mask, _CELEBA_FACE))
        if len(xs) < 50:
            continue
        img = _read(p)
        k = img.shape[1] / mask.shape[1]
        yield (
            "celebamask-hq",
            p.stem,
            img,
            tuple(v * k for v in _square(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)),
        )
    lfw = SHARED / "lfw"
    for p in sorted((lfw / "parts_lfw_funneled_gt").glob("*.png"))[:limit]:
        person = p.stem.rsplit("_", 1)[0]
        photo = lfw / "lfw_funneled" / person / (p.stem + ".jpg")
        lab = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if lab is None or not photo.is_file():
            continue
        skin = (lab[..., 1] > 128) & (lab[..., 2] < 128) & (lab[..., 0] < 128)
        ys, xs = np.nonzero(skin)
        if len(xs) < 50:
            continue
        yield "lfw-parts", p.stem, _read(photo), _square(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    helen = SHARED / "helen-subset"
    if (helen / "helen.mat").is_file():
        import scipy.io

        mat = scipy.io.loadmat(str(helen / "helen.mat"))
        n = mat["imgs"].shape[1]
        for i in range(n if limit is None else min(n, limit)):
            name = str(mat["imgs"][0, i][0])
            pts = np.asarray(mat["Pts"][0, i], np.float64)
            try:
                img = _read(helen / "img" / name)
            except OSError:
                continue
            yield "helen", name, img, _square(pts[0].min(), pts[1].min(), pts[0].max(), pts[1].max())


def rotate(img: np.ndarray, box: tuple[float, float, float], deg: float) -> tuple[np.ndarray, tuple]:
    """The image rolled by ``deg`` about its centre (same size), and the face box moved with it."""
    import cv2

    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    out = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    cx, cy = m @ np.array([box[0], box[1], 1.0])
    return out, (float(cx), float(cy), box[2])


def allowed_photos() -> Iterator[tuple[str, str, np.ndarray, tuple[float, float, float]]]:
    """The allowed real photos, upright and rolled by +-25 and +-45 degrees."""
    from skimage.data import astronaut

    for name, img in (("astronaut", astronaut()), ("grace_hopper", grace_hopper())):
        for deg in (0, 25, -25, 45, -45):
            r, b = rotate(img, ALLOWED_BOXES[name], deg)
            yield "allowed", f"{name}@{deg}", r, b


def found(dets, box: tuple[float, float, float]) -> bool:
    """Whether a detection matches the labelled box (centre within half its side, size 0.5-2x)."""
    cx, cy, side = box
    for d in dets:
        b = d.box
        if math.hypot(b.cx - cx, b.cy - cy) <= 0.5 * side and 0.5 <= b.size / side <= 2.0:
            return True
    return False


# ----------------------------------------------------------------------------- parts


def eval_photos(det, limit: int | None) -> dict:
    """Recall on labelled faces >= 80 px, per set."""
    sets: dict[str, dict] = {}
    misses: list[str] = []
    scores: list[float] = []
    for which, name, img, box in [*labelled_photos(limit), *allowed_photos()]:
        s = sets.setdefault(which, {"faces": 0, "found": 0, "smaller": 0})
        if box[2] < MIN_RECALL_SIDE:
            s["smaller"] += 1
            continue
        dets = det.search(img)
        s["faces"] += 1
        if found(dets, box):
            s["found"] += 1
            scores.append(max(d.score for d in dets))
        else:
            misses.append(f"{which}/{name}")
    # scikit-image's lfw_subset: 100 faces of 25 px, enlarged to 100 px (blurry), each in a grey 200 px frame.
    import cv2
    from skimage.data import lfw_subset

    sub = lfw_subset()
    s = sets.setdefault("lfw_subset (25 px, enlarged to 100)", {"faces": 0, "found": 0, "smaller": 0})
    for i in range(100):
        face = cv2.resize(_rgb(sub[i]), (100, 100), interpolation=cv2.INTER_CUBIC)
        canvas = np.full((200, 200, 3), 128, np.uint8)
        canvas[50:150, 50:150] = face
        s["faces"] += 1
        s["found"] += found(det.search(canvas), (100.0, 100.0, 100.0))
    for s in sets.values():
        s["recall"] = s["found"] / s["faces"] if s["faces"] else None
    main = [v for k, v in sets.items() if not k.startswith("lfw_subset")]
    total = {"faces": sum(v["faces"] for v in main), "found": sum(v["found"] for v in main)}
    total["recall"] = total["found"] / max(total["faces"], 1)
    sc = np.array(scores) if scores else np.zeros(1)
    return {
        "sets": sets,
        "total": total,
        "misses": misses[:50],
        "score_of_found": {"min": float(sc.min()), "p5": float(np.percentile(sc, 5)), "median": float(np.median(sc))},
    }


def paste_pool(per_set: int = 150) -> list[tuple[np.ndarray, tuple[float, float, float]]]:
    """Face photos with their boxes to paste: shared CelebAMask-HQ and Helen faces, and the allowed photos."""
    from skimage.data import astronaut

    pool = [(img, box) for which, _, img, box in labelled_photos(per_set) if which in ("celebamask-hq", "helen")]
    return pool + [(astronaut(), ALLOWED_BOXES["astronaut"]), (grace_hopper(), ALLOWED_BOXES["grace_hopper"])] * 5


def backgrounds(rng: np.random.Generator, width: int, height: int) -> Iterator[tuple[str, np.ndarray]]:
    """Face-free scenes: scikit-image's pictures resized, and synthetic ones (noise, gradients, shapes, the
    fake source's empty room)."""
    import cv2
    import skimage.data as data

    from edge.sources.fake import draw_scene

    for name in FACE_FREE:
        try:
            img = _rgb(getattr(data, name)())
        except Exception:  # an image that needs the optional pooch download
            continue
        yield f"skimage:{name}", cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    yield "synthetic:empty-room", draw_scene(width, height, 0.0, False)
    for i in range(12):
        kind = i % 4
        if kind == 0:  # coloured noise, blurred
            img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            img = cv2.GaussianBlur(img, (0, 0), 1 + i)
        elif kind == 1:  # gradient
            gx = np.linspace(0, 1, width)[None, :, None]
            gy = np.linspace(0, 1, height)[:, None, None]
            c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
            img = (c0 * (1 - gx) * (1 - gy) + c1 * gx * gy + 60 * gy).clip(0, 255).astype(np.uint8)
        elif kind == 2:  # random ellipses and rectangles: blobs that look like eyes and mouths at a glance
            img = np.full((height, width, 3), rng.integers(60, 200, 3), np.uint8)
            for _ in range(40):
                col = tuple(int(v) for v in rng.integers(0, 256, 3))
                c = (int(rng.integers(0, width)), int(rng.integers(0, height)))
                if rng.random() < 0.5:
                    ax = (int(rng.integers(5, 80)), int(rng.integers(5, 80)))
                    cv2.ellipse(img, c, ax, float(rng.uniform(0, 180)), 0, 360, col, -1)
                else:
                    cv2.rectangle(img, c, (c[0] + int(rng.integers(5, 120)), c[1] + int(rng.integers(5, 120))), col, -1)
        else:  # skin-coloured blobs with dark dots (a face's colours without a face's layout)
            img = np.full((height, width, 3), (200, 160, 130), np.uint8)
            img = cv2.add(img, rng.integers(0, 40, (height, width, 3), dtype=np.uint8))
            for _ in range(30):
                c = (int(rng.integers(0, width)), int(rng.integers(0, height)))
                cv2.circle(img, c, int(rng.integers(2, 10)), (40, 30, 20), -1)
        yield f"synthetic:{['noise', 'gradient', 'shapes', 'skin-dots'][kind]}-{i}", img


def paste(canvas: np.ndarray, img: np.ndarray, box, side: float, roll: float, at: tuple[float, float]) -> tuple:
    """Paste the face of ``img`` (box cx, cy, side) at ``at`` with that side and roll; feathered ellipse."""
    import cv2

    cx, cy, s = box
    k = side / s
    m = cv2.getRotationMatrix2D((cx, cy), roll, k)
    m[:, 2] += np.array(at) - np.array([cx, cy])
    h, w = canvas.shape[:2]
    warped = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    alpha = np.zeros((h, w), np.float32)
    cv2.ellipse(alpha, (round(at[0]), round(at[1])), (round(0.8 * side), round(0.95 * side)), -roll, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 0.08 * side)[..., None]
    canvas[:] = (canvas * (1 - alpha) + warped * alpha).astype(np.uint8)
    return (float(at[0]), float(at[1]), float(side))


def eval_groups(det, n_pictures: int, seed: int = 0) -> dict:
    """Group pictures: several faces rolled up to +-45 degrees, 60-200 px; all must be found, nothing else."""
    rng = np.random.default_rng(seed)
    bgs = list(backgrounds(rng, 1280, 960))
    pool = paste_pool()
    out = {"pictures": 0, "faces": 0, "found": 0, "false": 0, "misses": []}
    for i in range(n_pictures):
        big = i % 2 == 1
        w, h = (1280, 960) if big else (640, 480)
        n = int(rng.integers(5, 9)) if big else int(rng.integers(3, 5))
        import cv2

        canvas = cv2.resize(bgs[i % len(bgs)][1], (w, h), interpolation=cv2.INTER_AREA).copy()
        faces = [pool[k] for k in rng.choice(len(pool), size=n, replace=False)]
        placed: list[tuple] = []
        for img, box in faces:
            side = float(rng.uniform(60, 200 if big else 150))
            for _ in range(50):  # a free spot: faces do not overlap
                at = (float(rng.uniform(side, w - side)), float(rng.uniform(side, h - side)))
                if all(math.hypot(at[0] - p[0], at[1] - p[1]) > 1.1 * (side + p[2]) for p in placed):
                    break
            else:
                continue
            placed.append(paste(canvas, img, box, side, float(rng.uniform(-45, 45)), at))
        dets = det.search(canvas)
        out["pictures"] += 1
        for p in placed:
            out["faces"] += 1
            if found(dets, p):
                out["found"] += 1
            else:
                out["misses"].append(f"picture {i} ({w}x{h}): face at {p[0]:.0f},{p[1]:.0f} side {p[2]:.0f}")
        for d in dets:
            b = d.box
            if not any(math.hypot(b.cx - p[0], b.cy - p[1]) <= 0.5 * p[2] for p in placed):
                out["false"] += 1
    out["recall"] = out["found"] / max(out["faces"], 1)
    return out


def eval_free(det) -> dict:
    """False faces on face-free pictures (at their own size, and at 640x480) and lfw_subset's non-faces."""
    import cv2
    import skimage.data as data
    from skimage.data import lfw_subset

    rng = np.random.default_rng(1)
    rows = []
    for name in FACE_FREE:
        try:
            img = _rgb(getattr(data, name)())
        except Exception:
            continue
        rows.append((f"skimage:{name} (own size)", len(det.search(img))))
    for name, img in backgrounds(rng, 640, 480):
        rows.append((f"{name} (640x480)", len(det.search(img))))
    sub = lfw_subset()
    nonfaces = 0
    for i in range(100, 200):
        crop = cv2.resize(_rgb(sub[i]), (100, 100), interpolation=cv2.INTER_CUBIC)
        canvas = np.full((200, 200, 3), 128, np.uint8)
        canvas[50:150, 50:150] = crop
        nonfaces += len(det.search(canvas))
    rows.append(("lfw_subset non-face crops (100, enlarged)", nonfaces))
    return {"images": len(rows), "false_faces": sum(n for _, n in rows), "by_image": {k: n for k, n in rows if n}}


def _empty_scene(kind: str) -> np.ndarray:
    """A 640x480 frame of the source's empty scene: ``fake-empty``, or the demo's backdrop while nobody is there."""
    from edge.config import load_config
    from edge.sources import make_source
    from edge.sources.demo import DemoSource

    if kind == "fake":
        src = make_source(load_config(None, {"source": {"kind": "fake", "face": False, "fps": 1000}}).source)
    else:
        # Created and opened at 0 s, read at 8 s: inside the absent part of a 10 s cycle.
        calls = [0]

        def clock() -> float:
            calls[0] += 1
            return 0.0 if calls[0] <= 2 else 8.0

        cfg = load_config(None, {"source": {"kind": "demo", "fps": 240, "absent_every_s": 10.0}}).source
        src = DemoSource(cfg, clock=clock)
    src.open()
    try:
        return src.read()
    finally:
        src.close()


def eval_empty(cfg, frames: int) -> dict:
    """The live path on the demo's empty scenes: frames where a face was reported."""
    from edge.analysis import Analyzer
    from edge.detectors import make_detector
    from edge.runtime import open_parser

    parser = open_parser(cfg.model.path, cfg.model.runtime, cfg.model.threads)
    det = make_detector(cfg.detector)
    analysis = cfg.analysis.model_copy(update={"idle_detect_every": 1})  # look on every frame
    rng = np.random.default_rng(2)
    out = {}

    class Counting:
        """The detector, counting the faces it reports."""

        found = 0

        def detect(self, frame):
            out = det.detect(frame)
            self.found += len(out)
            return out

    for name, scene in (("fake-empty", _empty_scene("fake")), ("demo backdrop", _empty_scene("demo"))):
        counting = Counting()
        an = Analyzer(parser, counting, analysis)
        faces = 0
        for _ in range(frames // 2):
            # Camera noise, exposure drift and a shake, so no two frames are alike.
            frame = scene.astype(np.float32) * rng.uniform(0.8, 1.2) + 4 * rng.standard_normal(scene.shape, np.float32)
            frame = np.roll(frame.clip(0, 255).astype(np.uint8), tuple(rng.integers(-8, 9, 2)), (0, 1))
            faces += an.analyze(frame).face is not None
        out[name] = {"frames": frames // 2, "detections": counting.found, "frames_with_face": faces}
    out["total_frames"] = sum(v["frames"] for v in out.values())
    return out


def eval_speed(det, n: int = 300) -> dict:
    """Full-frame acquisition on 640x480 demo frames: p50/p95 ms of one ``detect`` call (wall clock).

    The Haar cascade runs right after on the same frames, so on a machine shared
    with another job their ratio says roughly what the quiet machine would show.
    """
    import cv2

    from edge.config import load_config
    from edge.detectors import make_detector
    from edge.sources import make_source

    src = make_source(load_config(None, {"source": {"kind": "demo", "fps": 240}}).source)
    src.open()
    frames = [src.read() for _ in range(30)]
    src.close()
    haar = make_detector(load_config(None, {"detector": {"kind": "haar"}}).detector)
    for f in frames[:10]:
        det.detect(f)
        haar.detect(f)
    ts: dict[str, list[float]] = {"detector": [], "haar": []}
    busy0 = _cpu_busy()
    for name, d, calls in (("detector", det, n), ("haar", haar, n // 5)):  # the cascade is slow: fewer calls
        for i in range(calls):
            t0 = time.perf_counter()
            d.detect(frames[i % len(frames)])
            ts[name].append((time.perf_counter() - t0) * 1e3)
    busy1 = _cpu_busy()
    others = None if busy0 is None or busy1 is None else (busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1e-9)
    load = None
    try:
        load = float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        pass
    out = {
        k: {"p50_ms": float(np.percentile(v, 50)), "p95_ms": float(np.percentile(v, 95)), "calls": len(v)}
        for k, v in ts.items()
    }
    out["loadavg_1min"] = load
    out["other_cpu_share"] = None if others is None else max(0.0, float(others))
    out["cpus"] = cv2.getNumberOfCPUs()
    return out


def _cpu_busy() -> tuple[float, float] | None:
    """CPU seconds used so far by other processes than this one, and CPU seconds elapsed, machine-wide.

    Their change over a run says whether the run itself was quiet (the load average
    lags by a minute). None where ``/proc/stat`` is not readable.
    """
    import resource

    try:
        fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = sum(fields[:8]) / tick  # user nice system idle iowait irq softirq steal, in CPU seconds
    busy = total - (fields[3] + fields[4]) / tick
    own = resource.getrusage(resource.RUSAGE_SELF)
    return busy - own.ru_utime - own.ru_stime, total


def model_macs(path: Path) -> int:
    """Multiply-accumulates of one inference of a .tflite (convolutions and fully connected layers)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    shapes = {t["index"]: tuple(t["shape"]) for t in it.get_tensor_details()}
    macs = 0
    for op in it._get_ops_details():
        name = op["op_name"]
        if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        out = shapes[op["outputs"][0]]
        w = shapes[op["inputs"][1]]
        if name == "CONV_2D":
            macs += int(np.prod(out)) * w[1] * w[2] * w[3]
        elif name == "DEPTHWISE_CONV_2D":
            macs += int(np.prod(out)) * w[1] * w[2]
        else:
            macs += int(np.prod(out)) * w[-1]
    return macs


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Command line; prints markdown tables (and JSON with ``--json``)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=["photos", "groups", "free", "empty", "speed"], action="append")
    ap.add_argument("--detector", default="blazeface", help="detector kind: blazeface (default) or haar")
    ap.add_argument("--limit", type=int, default=None, help="at most this many photos per shared set")
    ap.add_argument("--groups", type=int, default=40, help="group pictures to make")
    ap.add_argument("--frames", type=int, default=10_000, help="empty-scene frames for the live path")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    parts = args.only or ["photos", "groups", "free", "empty", "speed"]

    from edge.config import load_config
    from edge.detectors import describe_detector, make_detector

    cfg = load_config(None, {"detector": {"kind": args.detector}})
    det = make_detector(cfg.detector)
    res: dict = {"detector": describe_detector(cfg.detector)}
    if "photos" in parts:
        if not SHARED.is_dir():
            print(f"note: {SHARED} not found; only the allowed photos are scored", file=sys.stderr)
        r = res["photos"] = eval_photos(det, args.limit)
        print(f"\n### Recall on faces >= {MIN_RECALL_SIDE} px (one face per photo)\n")
        print("| photos | faces | found | recall |\n|---|---:|---:|---:|")
        for k, v in r["sets"].items():
            print(f"| {k} | {v['faces']} | {v['found']} | {v['recall']:.3f} |")
        t = r["total"]
        print(f"| **all but lfw_subset** | {t['faces']} | {t['found']} | **{t['recall']:.3f}** |")
        print(f"\nmisses: {r['misses'][:20]}\nscore of found faces: {r['score_of_found']}")
    if "groups" in parts:
        r = res["groups"] = eval_groups(det, args.groups)
        print("\n### Group pictures (faces 60-200 px, rolled up to +-45 degrees)\n")
        print(
            f"{r['pictures']} pictures, {r['faces']} faces, {r['found']} found (recall {r['recall']:.3f}), "
            f"{r['false']} false faces"
        )
        for m in r["misses"][:20]:
            print(f"  missed: {m}")
    if "free" in parts:
        r = res["free"] = eval_free(det)
        print(f"\n### False faces on face-free pictures\n\n{r['images']} pictures: {r['false_faces']} false faces")
        for k, n in r["by_image"].items():
            print(f"  {k}: {n}")
    if "empty" in parts:
        r = res["empty"] = eval_empty(cfg, args.frames)
        print("\n### The live path on empty scenes\n")
        for k, v in r.items():
            if isinstance(v, dict):
                print(f"{k}: {v['frames']} frames, {v['detections']} detections, {v['frames_with_face']} with a face")
    if "speed" in parts:
        r = res["speed"] = eval_speed(det)
        d, h = r["detector"], r["haar"]
        print("\n### Full-frame acquisition, 640x480 (one detect call)\n")
        print(f"{args.detector}: p50 {d['p50_ms']:.2f} ms, p95 {d['p95_ms']:.2f} ms")
        print(f"haar (same frames, right after): p50 {h['p50_ms']:.2f} ms, p95 {h['p95_ms']:.2f} ms")
        print(f"load average during the run: {r['loadavg_1min']} on {r['cpus']} CPUs")
        if r["other_cpu_share"] is not None:
            print(f"other processes used {100 * r['other_cpu_share']:.0f} % of the CPUs during the run")
        if args.detector == "blazeface":
            from edge.detectors.blazeface import DETECTOR_DIR, VARIANTS

            macs = model_macs(DETECTOR_DIR / VARIANTS[cfg.detector.model].file)
            r["macs"] = macs
            print(f"model: {macs / 1e6:.1f} M MACs per inference (float32)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
