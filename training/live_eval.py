"""Score a bundle's live mirror on labelled photos played as camera sequences (``vanity eval --live``).

Each labelled photo becomes a reproducible 640×480 camera sequence: the face about 40 % of
the frame's width, moved by a known pose per frame (a drift with jitter of about ±4 px a
frame, a slow zoom, a roll within ±15°, a change of exposure gain) and sensor noise
(σ 3), all drawn from a seed and the photo's name. A *still* variant repeats the first
frame's pose with fresh noise only, so flicker on a face that does not move is measured too.

Every frame goes through the kiosk's own :class:`edge.pipeline.LivePipeline` (built by
``edge.daemon.build_pipeline`` from the configuration, so its detector, tracker, smoothing,
look and mouth pass are the kiosk's), one ``step`` per frame on a clock that advances
1/30 s a frame. The face analysis shown with a frame (``pipeline.face``) is painted into
the frame with ``edge.analysis.labels_to_image`` and scored against the human labels moved
by the same pose (nearest neighbour), as ``vanity eval`` scores stills
(``training.evaluation``: the same groups, pooled F1, unknown pixels left out).

Figures, per source and variant ("moving", "still"):

- F1 per group, pooled over every frame after the first ``warmup`` (a frame without a face
  costs all its pixels);
- flicker: the share of face pixels (those the human labels call anything but background)
  whose predicted label changes between two consecutive scored frames, both predictions
  warped back to the photo first so the known motion is taken out; pairs where either
  frame has no face are left to the frames-lost count. ``flicker_floor`` is the same figure
  for the human labels themselves (what resampling alone costs a perfect model);
- frames lost: frames with no face, over all frames (warm-up included), a sequence whose
  face is never found counting every frame;
- frames until the first face: how many frames went by before the first face (0: found
  on the first frame), median and max over the sequences where one was found.

Needs no TensorFlow: the bundle runs through the device's runtime chain.
"""

from __future__ import annotations

import itertools
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from edge.contract import CLASS_ID, IGNORE
from training.evaluation import GroupScore, score_photo, scored_sources

if TYPE_CHECKING:
    from edge.config import VanityConfig
    from edge.pipeline import LivePipeline

FRAME_W, FRAME_H = 640, 480
FACE_FRACTION = 0.40
"""The face's width (its labelled parts and skin) as a share of the frame's width at the start."""
FPS = 30.0
FRAMES = 12
WARMUP = 3
NOISE_SIGMA = 3.0
DRIFT_PX = 1.5
"""Steady drift per frame and axis, drawn once per sequence from ±DRIFT_PX."""
JITTER_PX = 2.5
"""Jitter per frame and axis, from ±JITTER_PX: with the drift, at most ±4 px a frame."""
START_OFFSET_PX = (40.0, 20.0)
MAX_OFFSET_PX = (96.0, 48.0)
"""The face's centre stays this close to the frame's (the drift turns back at the edge)."""
ROLL_START_DEG, ROLL_RATE_DEG, ROLL_MAX_DEG = 10.0, 0.5, 15.0
ZOOM_RATE = 0.01
"""Relative change of the face's size per frame, drawn from ±ZOOM_RATE."""
GAIN_START, GAIN_RATE, GAIN_LIMITS = (0.8, 1.2), 0.01, (0.6, 1.4)
VARIANTS = ("moving", "still")
START_T = 1000.0
"""The fake monotonic clock's first reading (any positive time)."""

PipelineFactory = Callable[[Callable[[], float]], "LivePipeline"]
Player = Callable[["CameraSequence"], "list[np.ndarray | None]"]
"""Plays one sequence and returns each frame's painted labels (None: no face): the kiosk
(``functools.partial(run_sequence, pipelines)``) or a peer (benchmarks/live_peer_mediapipe.py)."""
"""Builds a fresh live pipeline (a new customer) reading time from the given clock."""


@dataclass(frozen=True)
class Pose:
    """Where the camera sees the face in one frame."""

    offset: tuple[float, float]
    """The face's centre minus the frame's centre, in frame pixels."""
    zoom: float
    """The face's size relative to the sequence's first frame."""
    roll: float
    """Degrees, counter-clockwise as the image is shown."""
    gain: float
    """Exposure gain on the photo's pixels."""


@dataclass(frozen=True)
class SequenceFrame:
    """One camera frame with its human labels moved the same way."""

    image: np.ndarray
    """RGB uint8 (480, 640, 3), noise included."""
    truth: np.ndarray
    """uint8 (480, 640) contract classes; IGNORE where the labels say nothing or the photo does not reach."""
    matrix: np.ndarray
    """2×3 affine, photo pixels -> frame pixels."""


@dataclass(frozen=True)
class CameraSequence:
    """A labelled photo played as a camera sequence."""

    labels: np.ndarray
    """The photo's own human labels (its frame is where flicker is measured)."""
    frames: list[SequenceFrame]


@dataclass
class Flicker:
    """Face pixels compared between consecutive frames, and how many changed label."""

    changed: int = 0
    pixels: int = 0

    @property
    def pct(self) -> float:
        """Changed pixels in percent (NaN when nothing was compared)."""
        return 100.0 * self.changed / self.pixels if self.pixels else float("nan")

    def add(self, other: Flicker) -> None:
        """Pool another count into this one."""
        self.changed += other.changed
        self.pixels += other.pixels


@dataclass(frozen=True)
class SequenceResult:
    """What one sequence gave: lost frames, the first face, flicker (its scores go to the groups)."""

    frames: int
    lost: int
    first_face: int | None
    flicker: Flicker
    floor: Flicker


@dataclass
class LiveScore:
    """One source's scores in one variant ("moving" or "still")."""

    source: str
    variant: str
    sequences: int = 0
    frames: int = 0
    lost: int = 0
    never_found: int = 0
    first_face: list[int] = field(default_factory=list)
    groups: dict[str, GroupScore] = field(default_factory=dict)
    flicker: Flicker = field(default_factory=Flicker)
    floor: Flicker = field(default_factory=Flicker)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, r: SequenceResult) -> None:
        """Count one sequence in."""
        self.sequences += 1
        self.frames += r.frames
        self.lost += r.lost
        if r.first_face is None:
            self.never_found += 1
        else:
            self.first_face.append(r.first_face)
        self.flicker.add(r.flicker)
        self.floor.add(r.floor)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        ff = self.first_face
        return {
            "source": self.source,
            "variant": self.variant,
            "sequences": self.sequences,
            "frames": self.frames,
            "frames_lost": self.lost,
            "frames_lost_pct": round(100.0 * self.lost / self.frames, 3) if self.frames else None,
            "never_found": self.never_found,
            "frames_to_first_face": {
                "median": float(np.median(ff)) if ff else None,
                "max": int(max(ff)) if ff else None,
            },
            "f1": {k: _num(g.f1, 4) for k, g in self.groups.items()},
            "per_frame_f1": {k: _num(g.per_photo, 4) for k, g in self.groups.items()},
            "flicker_pct": _num(self.flicker.pct, 3),
            "flicker_floor_pct": _num(self.floor.pct, 3),
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "seconds": round(self.seconds, 1),
            "seconds_per_sequence": round(self.seconds / self.sequences, 3) if self.sequences else None,
        }


def _num(x: float, digits: int) -> float | None:
    """Rounded, or None for NaN (JSON has no NaN)."""
    return None if np.isnan(x) else round(x, digits)


# --------------------------------------------------------------------------- the camera sequence


def face_geometry(labels: np.ndarray) -> tuple[float, float, float]:
    """The face's centre (x, y) and width in the photo, from its labels (the photo's middle without any)."""
    from training.real_sources import FACE_IDS

    ys, xs = np.nonzero(np.isin(labels, FACE_IDS))
    h, w = labels.shape
    if xs.size < 100:  # e.g. a hair-only mask: assume a centred face
        return w / 2, h / 2, 0.45 * w
    lo, hi = np.percentile(xs, [1, 99])
    return float(xs.mean()), float(ys.mean()), float(max(hi - lo, 8.0))


def camera_poses(rng: np.random.Generator, frames: int) -> list[Pose]:
    """A random walk of the face's pose: drift and jitter, a slow zoom, a roll, a gain change."""
    limit = np.array(MAX_OFFSET_PX)
    off = rng.uniform(-1, 1, 2) * np.array(START_OFFSET_PX)
    drift = rng.uniform(-DRIFT_PX, DRIFT_PX, 2)
    roll0, droll = rng.uniform(-ROLL_START_DEG, ROLL_START_DEG), rng.uniform(-ROLL_RATE_DEG, ROLL_RATE_DEG)
    dzoom = rng.uniform(-ZOOM_RATE, ZOOM_RATE)
    gain0, dgain = rng.uniform(*GAIN_START), rng.uniform(-GAIN_RATE, GAIN_RATE)
    poses = []
    for t in range(frames):
        if t:
            off = off + drift + rng.uniform(-JITTER_PX, JITTER_PX, 2)
            out = np.abs(off) > limit
            drift[out] = -np.sign(off[out]) * np.abs(drift[out])  # turn back at the edge
            off = np.clip(off, -limit, limit)
        roll = float(np.clip(roll0 + droll * t, -ROLL_MAX_DEG, ROLL_MAX_DEG))
        gain = float(np.clip(gain0 + dgain * t, *GAIN_LIMITS))
        poses.append(Pose((float(off[0]), float(off[1])), float((1 + dzoom) ** t), roll, gain))
    return poses


def pose_matrix(pose: Pose, centre: tuple[float, float], scale: float) -> np.ndarray:
    """2×3 affine, photo -> frame: the photo's face centre to the frame's centre plus the offset, rolled and zoomed."""
    import cv2

    m = cv2.getRotationMatrix2D(centre, pose.roll, scale * pose.zoom)
    m[0, 2] += FRAME_W / 2 + pose.offset[0] - centre[0]
    m[1, 2] += FRAME_H / 2 + pose.offset[1] - centre[1]
    return m


def render_frame(photo: np.ndarray, labels: np.ndarray, m: np.ndarray, gain: float, rng: np.random.Generator):
    """The camera's frame (bilinear, gain, noise) and the labels moved the same way (nearest)."""
    import cv2

    size = (FRAME_W, FRAME_H)
    # Beyond the photo, a plain wall of its edge's median colour (a mirrored border would show a second face).
    edge = np.concatenate([photo[0], photo[-1], photo[:, 0], photo[:, -1]])
    wall = tuple(float(v) for v in np.median(edge, axis=0))
    img = cv2.warpAffine(photo, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=wall)
    noisy = img.astype(np.float32) * gain + rng.standard_normal(img.shape, np.float32) * NOISE_SIGMA
    image = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    truth = cv2.warpAffine(
        labels, m, size, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=int(IGNORE)
    )
    return SequenceFrame(image, truth, m)


def make_sequence(
    photo: np.ndarray, labels: np.ndarray, seed: int, name: str, frames: int = FRAMES, still: bool = False
) -> CameraSequence:
    """A labelled photo as a camera sequence, the same for the same seed and photo name.

    Args:
        photo: RGB uint8 (H, W, 3).
        labels: uint8 (H, W) contract classes, IGNORE where unknown.
        seed: the run's seed.
        name: the photo's name (each photo has its own motion and noise).
        frames: frames in the sequence.
        still: repeat the first frame's pose (fresh noise only) instead of moving.
    """
    tag = zlib.crc32(name.encode())
    poses = camera_poses(np.random.default_rng([seed, tag, 0]), frames)
    if still:
        poses = [poses[0]] * frames
    noise = np.random.default_rng([seed, tag, 2 if still else 1])
    cx, cy, width = face_geometry(labels)
    scale = FACE_FRACTION * FRAME_W / width
    out = [render_frame(photo, labels, pose_matrix(p, (cx, cy), scale), p.gain, noise) for p in poses]
    return CameraSequence(labels, out)


# --------------------------------------------------------------------------- the kiosk's live path


def kiosk_pipelines(cfg: VanityConfig) -> PipelineFactory:
    """The kiosk's pipeline as ``edge.daemon.build_pipeline`` builds it, fresh (a new customer) per call.

    The bundle, detector, catalogue, calibration and tone model are loaded once; each call
    wires a new :class:`LivePipeline` (tracker, smoothing and session start empty) over them.

    Raises:
        edge.daemon.DaemonError: a part of the configuration refused (says which).
    """
    from edge.daemon import build_pipeline
    from edge.pipeline import LivePipeline

    built = build_pipeline(cfg)

    def new(clock: Callable[[], float]) -> LivePipeline:
        return LivePipeline(
            built.cfg,
            built.parser,
            built.detector,
            built.renderer,
            built.catalog,
            built.source,
            clock=clock,
            calibration=built.calibration,
            tone_model=built.tone_model,
        )

    return new


def run_sequence(new_pipeline: PipelineFactory, seq: CameraSequence) -> list[np.ndarray | None]:
    """Each frame's painted labels as the kiosk showed them (None: no face), one ``step`` per frame at 30 fps."""
    from edge.analysis import labels_to_image

    now = [START_T]
    pipeline = new_pipeline(lambda: now[0])
    preds: list[np.ndarray | None] = []
    for i, fr in enumerate(seq.frames):
        now[0] = START_T + i / FPS
        pipeline.step(fr.image, now[0])
        face = pipeline.face  # the analysis rendered with this frame
        preds.append(None if face is None else labels_to_image([face], FRAME_H, FRAME_W))
    return preds


# --------------------------------------------------------------------------- scoring


def to_photo(labels: np.ndarray, m: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Frame labels warped back to the photo (nearest; IGNORE where the frame did not reach)."""
    import cv2

    return cv2.warpAffine(
        labels,
        m,
        (shape[1], shape[0]),
        flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=int(IGNORE),
    )


def flicker(in_photo: Iterable[np.ndarray | None], face: np.ndarray) -> Flicker:
    """Face pixels whose label changes between consecutive predictions (all in the photo's frame).

    Pairs where either prediction is None (no face) are left out; so are pixels either
    frame did not see (IGNORE).
    """
    out = Flicker()
    preds = list(in_photo)
    for a, b in itertools.pairwise(preds):
        if a is None or b is None:
            continue
        both = face & (a != IGNORE) & (b != IGNORE)
        out.pixels += int(np.count_nonzero(both))
        out.changed += int(np.count_nonzero(both & (a != b)))
    return out


def score_sequence(
    seq: CameraSequence,
    preds: list[np.ndarray | None],
    groups: dict[str, tuple[int, ...]],
    into: dict[str, GroupScore],
    warmup: int = WARMUP,
) -> SequenceResult:
    """Add the frames after ``warmup`` to the pooled F1 in ``into``; the sequence's losses and flicker."""
    blank = np.zeros((FRAME_H, FRAME_W), np.uint8)  # no face: every pixel background
    for fr, p in zip(seq.frames[warmup:], preds[warmup:], strict=True):
        score_photo(blank if p is None else p, fr.truth, groups, into)
    face = ~np.isin(seq.labels, (CLASS_ID["background"], IGNORE))
    shape = seq.labels.shape
    scored = list(zip(seq.frames[warmup:], preds[warmup:], strict=True))
    moved = flicker((None if p is None else to_photo(p, fr.matrix, shape) for fr, p in scored), face)
    floor = flicker((to_photo(fr.truth, fr.matrix, shape) for fr, _ in scored), face)
    found = [i for i, p in enumerate(preds) if p is not None]
    return SequenceResult(len(preds), len(preds) - len(found), found[0] if found else None, moved, floor)


def evaluate_live(
    play: Player,
    spec: str,
    frames: int = FRAMES,
    seed: int = 0,
    limit: int | None = None,
    warmup: int = WARMUP,
    progress: bool = True,
    skip_groups: Iterable[str] = (),
) -> list[LiveScore]:
    """Play every labelled photo of a data spec as a moving and a still sequence through ``play``.

    Args:
        skip_groups: label groups the player does not predict (scored as n/a, not as misses).

    Returns:
        Two LiveScores per source, "moving" then "still".

    Raises:
        ValueError: a bad spec, a source kind without human labels, or too few frames.
        FileNotFoundError: a source path is missing.
    """
    from training.real_sources import SCORED, SampleError

    if frames < warmup + 2:
        raise ValueError(f"--frames {frames}: need at least {warmup + 2} (the first {warmup} are warm-up)")
    skip = set(skip_groups)
    out: list[LiveScore] = []
    for source, kind, items in scored_sources(spec, limit):
        groups = {g: ids for g, ids in SCORED[kind].groups.items() if g not in skip}
        scores = {v: LiveScore(source, v) for v in VARIANTS}
        for item in _progress(items, f"live {kind}", progress):
            try:
                photo, labels = item.load()
            except SampleError as e:
                for s in scores.values():
                    s.skipped.append((str(item.key), str(e)))
                continue
            for variant, score in scores.items():
                t0 = time.monotonic()
                seq = make_sequence(photo, labels, seed, item.key.name, frames, still=variant == "still")
                score.add(score_sequence(seq, play(seq), groups, score.groups, warmup))
                score.seconds += time.monotonic() - t0
        out += scores.values()
    return out


def _progress(items: list, desc: str, on: bool) -> Iterable:
    if not on:
        return items
    import sys

    try:
        from tqdm import tqdm
    except ImportError:  # a peer's own venv may lack it
        return items
    return tqdm(items, desc=desc, unit="photo", file=sys.stderr, mininterval=2)


def table(scores: list[LiveScore]) -> list[str]:
    """Markdown lines: one row per source and variant, pooled F1 per group, flicker, losses, first face."""
    cols: list[str] = []
    for s in scores:
        cols += [g for g in s.groups if g not in cols]
    head = " | ".join([*cols, "flicker %", "frames lost", "first face (median / max)"])
    lines = [
        f"| source | variant | sequences | {head} |",
        "|---|---|---:|" + "---:|" * (len(cols) + 3),
    ]
    for s in scores:
        d = s.to_dict()
        cells = [f"{s.groups[c].f1:.3f}" if c in s.groups else "" for c in cols]
        ff = d["frames_to_first_face"]
        first = "—" if ff["median"] is None else f"{ff['median']:g} / {ff['max']}"
        lines.append(
            f"| {s.source} | {s.variant} | {s.sequences} | "
            + " | ".join(cells)
            + f" | {s.flicker.pct:.2f} | {s.lost} / {s.frames} | {first} |"
        )
    return lines
