"""The live peer: MediaPipe FaceMesh in tracking mode on the camera sequences of ``vanity eval --live``.

Usage (in the peer's own venv; see docs/live-peer.md)::

    nice -n 15 .cache/peer-venv/bin/python benchmarks/live_peer_mediapipe.py \\
        --data celebamask:../shared/data/celebamask-hq-sample@holdout [--frames 12] [--seed 0] [--limit N] [--json]

Every labelled photo of the data spec becomes exactly the sequences ``vanity eval --live``
plays (``training.live_eval.make_sequence``: the same motion, noise, still variant and
held-out split, from the same seed and photo name). Each sequence gets a fresh FaceMesh
(a new customer) in tracking mode: ``static_image_mode=False``, ``max_num_faces=1``,
``refine_landmarks=True``, default confidences, frames fed in order at 30 fps. The
landmark polygons of MediaPipe's own connection sets are rasterised into the contract's
classes (``edge.contract.CLASSES``) and scored by ``training.live_eval.score_sequence``:
pooled F1 per part after the warm-up frames, flicker with the motion taken out, frames
lost, frames until the first face.

The rasterisation (``paint``), painted in this order, later parts on top:

- skin: ``FACEMESH_FACE_OVAL``. The oval covers the nose, which is therefore skin, and
  FaceMesh has no hair: nose and hair are not scored (``n/a``), and the skin F1 pays for
  the nose;
- brows: ``FACEMESH_{LEFT,RIGHT}_EYEBROW`` (two polylines each, joined into one outline);
- eyes: ``FACEMESH_{LEFT,RIGHT}_EYE`` (with ``refine_landmarks`` the contour is refined);
- lips: ``FACEMESH_LIPS`` is two rings, the outer and the inner lip contour. Both are cut
  at the mouth's corners (their extreme points along the eye line); the upper lip lies
  between the two upper arcs, the lower lip between the two lower arcs;
- inner mouth: inside the inner lip contour.

A pixel belongs to a polygon when its centre does (even-odd rule), so a closed mouth,
whose inner contour has no area, paints no inner mouth. MediaPipe's "left" is the
person's left, which is image-right in these unmirrored frames; the contract's "left" is
image-left, so ``FACEMESH_RIGHT_*`` is painted as ``left_*`` and vice versa.

MediaPipe is an optional dependency (``pip install '.[peer]'``), never part of the
device install. ``mediapipe==0.10.21`` needs numpy<2 and protobuf<5, so it lives in a
venv of its own. Newer wheels have no ``mediapipe.solutions`` and ship no FaceLandmarker
``.task`` model; with those this script stops and says so unless ``--task-model`` names
a local ``.task`` file (then the Tasks FaceLandmarker runs in VIDEO mode). Nothing is
downloaded at run time.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.contract import CLASS_ID  # noqa: E402
from training.live_eval import (  # noqa: E402
    FPS,
    FRAMES,
    WARMUP,
    CameraSequence,
    LiveScore,
    evaluate_live,
)

NOT_PREDICTED = ("nose", "hair")
"""Groups FaceMesh has no region for: left out of the scores, shown as n/a."""

Edges = frozenset[tuple[int, int]]
Landmarks = Callable[[np.ndarray, int], np.ndarray | None]
"""One tracker: (RGB frame, frame index) -> (N, 2) landmarks in pixels (x, y; pixel centres at integers) or None."""


class PeerUnavailable(RuntimeError):
    """The installed MediaPipe cannot run the peer without a model file it does not ship."""


# --------------------------------------------------------------------------- MediaPipe


@dataclass(frozen=True)
class Topology:
    """MediaPipe's connection sets, as the wheel ships them (person's left/right, as MediaPipe names them)."""

    oval: Edges
    person_left_eye: Edges
    person_right_eye: Edges
    person_left_brow: Edges
    person_right_brow: Edges
    lips: Edges


@dataclass(frozen=True)
class Peer:
    """How to make a fresh tracker, and what it is."""

    api: str
    version: str
    topology: Topology
    open: Callable[[], AbstractContextManager[Landmarks]]
    """A context manager yielding a fresh ``Landmarks`` tracker (a new customer)."""


def _legacy_peer(mp) -> Peer:
    """``mediapipe.solutions.face_mesh`` in tracking mode with refined landmarks."""
    from mediapipe.python.solutions import face_mesh
    from mediapipe.python.solutions import face_mesh_connections as c

    topo = Topology(
        c.FACEMESH_FACE_OVAL,
        c.FACEMESH_LEFT_EYE,
        c.FACEMESH_RIGHT_EYE,
        c.FACEMESH_LEFT_EYEBROW,
        c.FACEMESH_RIGHT_EYEBROW,
        c.FACEMESH_LIPS,
    )

    @contextmanager
    def fresh() -> Iterator[Landmarks]:
        # process() stamps the frames itself, 33 333 µs apart: 30 fps, as the sequences run.
        with face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=True) as fm:

            def track(frame: np.ndarray, _i: int) -> np.ndarray | None:
                res = fm.process(frame)
                if not res.multi_face_landmarks:
                    return None
                lm = res.multi_face_landmarks[0].landmark
                return _to_pixels([(p.x, p.y) for p in lm], frame.shape)

            yield track

    return Peer("mediapipe.solutions.face_mesh (legacy), tracking mode", mp.__version__, topo, fresh)


def _tasks_peer(mp, model: Path) -> Peer:
    """The Tasks FaceLandmarker in VIDEO mode on a local ``.task`` model (not exercised on 0.10.21)."""
    from mediapipe.tasks.python import BaseOptions, vision

    conn = vision.FaceLandmarksConnections

    def edges(cs) -> Edges:
        return frozenset((c.start, c.end) for c in cs)

    topo = Topology(
        edges(conn.FACE_LANDMARKS_FACE_OVAL),
        edges(conn.FACE_LANDMARKS_LEFT_EYE),
        edges(conn.FACE_LANDMARKS_RIGHT_EYE),
        edges(conn.FACE_LANDMARKS_LEFT_EYEBROW),
        edges(conn.FACE_LANDMARKS_RIGHT_EYEBROW),
        edges(conn.FACE_LANDMARKS_LIPS),
    )
    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(model)),
        running_mode=vision.RunningMode.VIDEO,
        num_faces=1,
    )

    @contextmanager
    def fresh() -> Iterator[Landmarks]:
        with vision.FaceLandmarker.create_from_options(options) as fl:

            def track(frame: np.ndarray, i: int) -> np.ndarray | None:
                image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
                res = fl.detect_for_video(image, round(1000 * i / FPS))
                if not res.face_landmarks:
                    return None
                return _to_pixels([(p.x, p.y) for p in res.face_landmarks[0]], frame.shape)

            yield track

    return Peer(f"mediapipe.tasks FaceLandmarker, VIDEO mode ({model.name})", mp.__version__, topo, fresh)


def load_peer(task_model: Path | None = None) -> Peer:
    """The installed MediaPipe's tracker: the legacy face mesh if the wheel has it, else the Tasks FaceLandmarker.

    Raises:
        PeerUnavailable: MediaPipe is not installed, or it has only the Tasks API and no
            ``.task`` model is inside the wheel or given with ``task_model``.
    """
    try:
        import mediapipe as mp
    except ImportError as e:
        raise PeerUnavailable(
            f"mediapipe is not importable ({e}). Install the peer in its own venv: "
            "python3.11 -m venv .cache/peer-venv && .cache/peer-venv/bin/pip install '.[peer]'"
        ) from e
    try:
        from mediapipe.python.solutions import face_mesh  # noqa: F401
    except ImportError:
        pass
    else:
        return _legacy_peer(mp)
    shipped = sorted(Path(mp.__file__).parent.rglob("face_landmarker*.task"))
    model = task_model or (shipped[0] if shipped else None)
    if model is None or not model.is_file():
        raise PeerUnavailable(
            f"mediapipe {mp.__version__} has no mediapipe.solutions.face_mesh, and its Tasks FaceLandmarker "
            "needs a face_landmarker.task model that the wheel does not ship; this benchmark downloads nothing. "
            "Install mediapipe==0.10.21 (pip install '.[peer]'), or pass --task-model FILE."
        )
    return _tasks_peer(mp, model)


def _to_pixels(xy: list[tuple[float, float]], shape: tuple[int, ...]) -> np.ndarray:
    """MediaPipe's normalised coordinates (0 and 1 at the image's edges) -> pixel coordinates (centres at integers)."""
    h, w = shape[:2]
    return np.asarray(xy, np.float64) * (w, h) - 0.5


# --------------------------------------------------------------------------- polygons


def chains(edges: Edges) -> list[tuple[list[int], bool]]:
    """An edge set's connected pieces as ordered vertex lists, each with whether it is a closed ring.

    Raises:
        ValueError: a vertex with more than two edges (not a set of rings and polylines).
    """
    nbrs: dict[int, list[int]] = {}
    for a, b in edges:
        nbrs.setdefault(a, []).append(b)
        nbrs.setdefault(b, []).append(a)
    if any(len(v) > 2 for v in nbrs.values()):
        raise ValueError("a connection set with a branch: not rings and polylines")
    out: list[tuple[list[int], bool]] = []
    seen: set[int] = set()
    # Polylines from one of their ends first, then whatever is left is rings.
    for start in sorted(nbrs, key=lambda v: (len(nbrs[v]), v)):
        if start in seen:
            continue
        path, prev, cur = [start], None, start
        seen.add(start)
        while True:
            nxt = [n for n in nbrs[cur] if n != prev and n not in seen]
            if not nxt:
                break
            prev, cur = cur, nxt[0]
            path.append(cur)
            seen.add(cur)
        closed = len(nbrs[start]) == 2 and path[0] in nbrs[path[-1]] and len(path) > 2
        out.append((path, closed))
    return out


def ring(edges: Edges) -> list[int]:
    """The one closed ring of an edge set (an eye, the face oval).

    Raises:
        ValueError: the set is not exactly one ring.
    """
    pieces = chains(edges)
    if len(pieces) != 1 or not pieces[0][1]:
        raise ValueError(f"expected one ring, got {[(len(p), c) for p, c in pieces]}")
    return pieces[0][0]


def brow_outline(edges: Edges, lm: np.ndarray) -> list[int]:
    """A brow's outline from its two polylines (upper and lower edge), joined end to nearest end."""
    (a, _), (b, _) = chains(edges)

    def gap(p: int, q: int) -> float:
        return float(np.hypot(*(lm[p] - lm[q])))

    same = gap(a[-1], b[-1]) + gap(a[0], b[0])
    crossed = gap(a[-1], b[0]) + gap(a[0], b[-1])
    return a + (b[::-1] if same <= crossed else b)


def _area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def lip_outlines(edges: Edges, lm: np.ndarray, axis: np.ndarray, eyes: np.ndarray):
    """(upper lip, lower lip, inner mouth) outlines from FACEMESH_LIPS's outer and inner ring.

    Each ring is cut at the mouth's corners, its extreme vertices along ``axis`` (the eye
    line, image-left eye -> image-right eye). Of the two arcs between them, the upper one is
    the one whose points lie nearer the eyes' midpoint ``eyes``.
    """
    rings = [p for p, closed in chains(edges) if closed]
    if len(rings) != 2:
        raise ValueError(f"FACEMESH_LIPS: expected two rings, got {len(rings)}")
    outer, inner = sorted(rings, key=lambda r: -_area(lm[r]))

    def arcs(r: list[int]) -> tuple[list[int], list[int]]:
        """(upper, lower) arcs of a ring, each running from the image-left corner to the image-right one."""
        proj = lm[r] @ axis
        i, j = int(np.argmin(proj)), int(np.argmax(proj))
        n = len(r)
        one = [r[(i + k) % n] for k in range((j - i) % n + 1)]
        two = [r[(i - k) % n] for k in range((i - j) % n + 1)]
        d1 = float(np.linalg.norm(lm[one].mean(0) - eyes))
        d2 = float(np.linalg.norm(lm[two].mean(0) - eyes))
        return (one, two) if d1 <= d2 else (two, one)

    ou, ol = arcs(outer)
    iu, il = arcs(inner)
    return ou + iu[::-1], ol + il[::-1], inner


def fill(canvas: np.ndarray, pts: np.ndarray, value: int) -> None:
    """Set every pixel whose centre lies inside the polygon ``pts`` (x, y; even-odd rule) to ``value``.

    Exact and area-true: a polygon without area (a closed mouth's inner contour) sets no pixel.
    """
    h, w = canvas.shape
    x0, y0 = max(0, math.floor(pts[:, 0].min())), max(0, math.floor(pts[:, 1].min()))
    x1, y1 = min(w - 1, math.ceil(pts[:, 0].max())), min(h - 1, math.ceil(pts[:, 1].max()))
    if x1 < x0 or y1 < y0:
        return
    p, q = pts, np.roll(pts, -1, axis=0)
    ys = np.arange(y0, y1 + 1, dtype=np.float64)[:, None]
    lo, hi = np.minimum(p[:, 1], q[:, 1]), np.maximum(p[:, 1], q[:, 1])
    cross = (ys >= lo) & (ys < hi)  # half-open, so a vertex on a row is counted once
    dy = np.where(q[:, 1] == p[:, 1], 1.0, q[:, 1] - p[:, 1])
    xi = p[:, 0] + (ys - p[:, 1]) * (q[:, 0] - p[:, 0]) / dy
    cols = x1 - x0 + 1
    at = np.clip(np.ceil(xi) - x0, 0, cols).astype(np.int64)  # first pixel at or right of the crossing
    rows = np.broadcast_to(np.arange(ys.shape[0])[:, None], at.shape)
    flips = np.zeros((ys.shape[0], cols + 1), np.int32)
    np.add.at(flips, (rows[cross], at[cross]), 1)
    inside = (np.cumsum(flips, axis=1)[:, :cols] & 1).astype(bool)
    canvas[y0 : y1 + 1, x0 : x1 + 1][inside] = value


def paint(lm: np.ndarray, shape: tuple[int, int], topo: Topology) -> np.ndarray:
    """One face's landmarks (pixels) -> (H, W) uint8 contract classes, background elsewhere.

    Order: skin (face oval, nose included), brows, eyes, upper and lower lip, inner mouth.
    MediaPipe's person-right parts are the contract's image-left ones (the frames are not mirrored).
    """
    out = np.full(shape, CLASS_ID["background"], np.uint8)
    fill(out, lm[ring(topo.oval)], CLASS_ID["skin"])
    fill(out, lm[brow_outline(topo.person_right_brow, lm)], CLASS_ID["left_eyebrow"])
    fill(out, lm[brow_outline(topo.person_left_brow, lm)], CLASS_ID["right_eyebrow"])
    left_eye, right_eye = ring(topo.person_right_eye), ring(topo.person_left_eye)
    fill(out, lm[left_eye], CLASS_ID["left_eye"])
    fill(out, lm[right_eye], CLASS_ID["right_eye"])
    a, b = lm[left_eye].mean(0), lm[right_eye].mean(0)
    axis = (b - a) / max(float(np.linalg.norm(b - a)), 1e-6)
    upper, lower, inner = lip_outlines(topo.lips, lm, axis, (a + b) / 2)
    fill(out, lm[upper], CLASS_ID["upper_lip"])
    fill(out, lm[lower], CLASS_ID["lower_lip"])
    fill(out, lm[inner], CLASS_ID["inner_mouth"])
    return out


# --------------------------------------------------------------------------- the sequences


def run_sequence(peer: Peer, seq: CameraSequence) -> list[np.ndarray | None]:
    """Each frame's painted labels (None: no face), a fresh tracker for the sequence, frames in order."""
    preds: list[np.ndarray | None] = []
    with peer.open() as track:
        for i, fr in enumerate(seq.frames):
            lm = track(fr.image, i)
            preds.append(None if lm is None else paint(lm, fr.image.shape[:2], peer.topology))
    return preds


def evaluate_peer(
    peer: Peer,
    spec: str,
    frames: int = FRAMES,
    seed: int = 0,
    limit: int | None = None,
    warmup: int = WARMUP,
    progress: bool = True,
) -> list[LiveScore]:
    """``training.live_eval.evaluate_live`` with the peer in place of the kiosk's pipeline: two LiveScores per source.

    Raises:
        ValueError: a bad spec, a source kind without human labels, or too few frames.
        FileNotFoundError: a source path is missing.
    """
    play = functools.partial(run_sequence, peer)
    return evaluate_live(play, spec, frames, seed, limit, warmup, progress, skip_groups=NOT_PREDICTED)


# --------------------------------------------------------------------------- reports


def _all_groups(scores: Iterable[LiveScore]) -> list[str]:
    """The groups the sources' labels can score (background aside), in SCORED's order, n/a ones included."""
    from training.real_sources import SCORED

    cols: list[str] = []
    for s in scores:
        kind = s.source.split(":", 1)[0]
        names = list(SCORED[kind].groups) if kind in SCORED else list(s.groups)
        cols += [g for g in names if g not in cols and g != "background"]
    return cols


def to_dict(s: LiveScore, cols: list[str]) -> dict:
    """``LiveScore.to_dict`` with the groups FaceMesh cannot paint as None (n/a)."""
    d = s.to_dict()
    for key in ("f1", "per_frame_f1"):
        d[key] = {g: d[key].get(g) for g in [*cols, *(k for k in d[key] if k not in cols)]}
    d["not_predicted"] = [g for g in NOT_PREDICTED if g in cols]
    return d


def table(scores: list[LiveScore]) -> list[str]:
    """Markdown lines, as ``training.live_eval.table``, with n/a for nose and hair and the flicker floor."""
    cols = _all_groups(scores)
    head = " | ".join([*cols, "flicker % (floor)", "frames lost", "first face (median / max)"])
    lines = [f"| source | variant | sequences | {head} |", "|---|---|---:|" + "---:|" * (len(cols) + 3)]
    for s in scores:
        d = s.to_dict()
        cells = [f"{s.groups[c].f1:.3f}" if c in s.groups else "n/a" for c in cols]
        ff = d["frames_to_first_face"]
        first = "—" if ff["median"] is None else f"{ff['median']:g} / {ff['max']}"
        never = f" ({s.never_found} never found)" if s.never_found else ""
        lines.append(
            f"| {s.source} | {s.variant} | {s.sequences} | "
            + " | ".join(cells)
            + f" | {s.flicker.pct:.2f} ({s.floor.pct:.2f}) | {s.lost} / {s.frames}{never} | {first} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="data spec, as vanity eval --live (e.g. celebamask:DIR@holdout)")
    ap.add_argument("--frames", type=int, default=FRAMES, help=f"frames per sequence (default {FRAMES})")
    ap.add_argument("--seed", type=int, default=0, help="seed of the motion and the noise (default 0)")
    ap.add_argument("--limit", type=int, default=None, help="at most N photos per source")
    ap.add_argument("--task-model", type=Path, default=None, help="a local face_landmarker.task (Tasks API only)")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of a Markdown table")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = ap.parse_args(argv)
    try:
        peer = load_peer(args.task_model)
    except PeerUnavailable as e:
        print(f"live_peer_mediapipe: {e}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    try:
        scores = evaluate_peer(peer, args.data, args.frames, args.seed, args.limit, progress=not args.quiet)
    except (ValueError, FileNotFoundError) as e:
        print(f"live_peer_mediapipe: {e}", file=sys.stderr)
        return 2
    wall = time.monotonic() - t0
    if args.json:
        cols = _all_groups(scores)
        report = {
            "peer": {
                "name": "MediaPipe FaceMesh",
                "api": peer.api,
                "mediapipe_version": peer.version,
                "settings": {"static_image_mode": False, "max_num_faces": 1, "refine_landmarks": True},
            },
            "data": args.data,
            "frames": args.frames,
            "warmup": WARMUP,
            "seed": args.seed,
            "limit": args.limit,
            "wall_seconds": round(wall, 1),
            "scores": [to_dict(s, cols) for s in scores],
        }
        print(json.dumps(report, indent=2))
    else:
        print(f"MediaPipe FaceMesh {peer.version}: {peer.api}; {args.frames} frames, seed {args.seed}\n")
        print("\n".join(table(scores)))
        print(f"\nwall time {wall:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
