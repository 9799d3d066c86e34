"""The live tracker: acquire with a detector, then track from the parser's own output.

The detector is the expensive, rare path. Once a face is found, each frame's
class map gives the face box for the next frame's crop (as MediaPipe's face
mesh does); a One-Euro filter on the box and an EMA on the class
probabilities (in crop space) keep the masks still on a still face.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

import edge.analysis.parse as shared
from edge.analysis.motion import FaceMotion, align_probs, blend_aligned, moved, moved_view
from edge.contract import CropGeometry, FaceBox, MouthCrop
from edge.detectors import Detector, primary_face
from edge.types import FaceAnalysis, MouthView, output_to_image

if TYPE_CHECKING:
    from edge.config import AnalysisConfig
    from edge.runtime.base import Parser

log = logging.getLogger(__name__)


class OneEuro:
    """One-Euro filter (Casiez et al. 2012): little jitter when still, little lag when moving."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._x: float | None = None
        self._dx = 0.0
        self._t = 0.0

    @staticmethod
    def _alpha(cutoff: float, dt: float) -> float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: float, t: float) -> float:
        """Filter sample x taken at monotonic time t."""
        if self._x is None:
            self._x, self._t = x, t
            return x
        dt = max(t - self._t, 1e-3)
        dx = (x - self._x) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        cutoff = self.min_cutoff + self.beta * abs(self._dx)
        a = self._alpha(cutoff, dt)
        self._x = a * x + (1 - a) * self._x
        self._t = t
        return self._x

    def reset(self) -> None:
        """Forget the history (a new face)."""
        self._x = None
        self._dx = 0.0


@dataclass
class StageTimes:
    """Milliseconds spent in each analysis stage for one frame.

    Attributes:
        detect: the detector's full-frame pass (acquisition), when it ran.
        crop: cutting the face crop.
        infer: the parser on the face crop.
        post: reading the class map and smoothing the face box.
        mouth: the mouth refinement pass (its crop and inference), when it ran.
        carry: measuring the face's motion and moving the last parse (a frame between parses).
        detected: whether the detector ran this frame.
        skipped: an idle frame: no face was tracked and the detector rested.
        carried: a frame between parses: the last parse was moved with the face, nothing parsed.
    """

    detect: float = 0.0
    crop: float = 0.0
    infer: float = 0.0
    post: float = 0.0
    mouth: float = 0.0
    carry: float = 0.0
    detected: bool = False
    skipped: bool = False
    carried: bool = False

    @property
    def track(self) -> float:
        """Milliseconds of the tracking path: crop, parse, read, mouth pass or carry (no detector)."""
        return self.crop + self.infer + self.post + self.mouth + self.carry

    @property
    def total(self) -> float:
        """Milliseconds of the whole analysis, the detector's pass included when it ran."""
        return self.track + (self.detect if self.detected else 0.0)


class MouthRequest(NamedTuple):
    """A mouth pass asked for by a parse: run now (``Analyzer.run_mouth``), or later on another thread."""

    frame: np.ndarray
    box: FaceBox
    centre: tuple[float, float]
    """Where the mouth crop is centred (smoothed like the face box)."""
    lips: tuple[float, float]
    """Where the face's parse saw the lips (unsmoothed): later parses move the view by how far these moved."""
    crop: MouthCrop
    generation: int
    """The track it belongs to: a pass that finishes after the track was lost is dropped."""


class TrackResult(NamedTuple):
    """One frame's analysis: the tracked face (None when no face is present) and what each stage cost."""

    face: FaceAnalysis | None
    times: StageTimes


class Analyzer:
    """Detect, track, crop, parse and smooth; one instance per stream."""

    def __init__(
        self, parser: Parser, detector: Detector, cfg: AnalysisConfig, geometry: CropGeometry | None = None
    ) -> None:
        """Build from a loaded parser, a detector and an ``AnalysisConfig``."""
        self.parser = parser
        self.detector = detector
        self.cfg = cfg
        self.geometry = geometry or parser.metadata.crop
        self._box: FaceBox | None = None
        self._probs: np.ndarray | None = None
        self._mouth_probs: np.ndarray | None = None
        self._probs_at: np.ndarray | None = None  # output -> image affine of the smoothed face map
        self._shift: tuple[float, float] | None = None  # the face's motion since the last parse, this parse
        self._filters = [OneEuro(cfg.smooth_min_cutoff, cfg.smooth_beta) for _ in range(4)]
        self._mouth_filters = [OneEuro(cfg.smooth_min_cutoff, cfg.smooth_beta) for _ in range(2)]
        self._since_detect = 0
        self._idle_skip = 0
        self._motion = FaceMotion()
        self._last: FaceAnalysis | None = None
        self._since_parse = 0
        self._parses_since_acquire = 0
        self._since_mouth = 0
        self._mouth_view: tuple[MouthView, tuple[float, float]] | None = None
        self._generation = 0
        # The mouth view is written by the analysis thread (moving it) and the mouth stage's (a new pass).
        self._mouth_lock = threading.Lock()
        self.pending_mouth: MouthRequest | None = None
        """A mouth pass the last parse asked for, when ``defer_mouth``: the caller runs it (``run_mouth``)."""
        self.defer_mouth = False
        """Leave the mouth pass to the caller (the pipeline runs it after the parse, or on its own thread)."""
        self.mouth_wanted = True
        """Whether anything needs the mouth pass now (the kiosk clears it while no lipstick is worn)."""
        self.detections = 0

    @property
    def tracking(self) -> bool:
        """Whether a face is being tracked (no detector needed next frame)."""
        return self._box is not None

    def set_parser(self, parser: Parser) -> None:
        """Swap the model (hot-swap); the track is kept, smoothing restarts."""
        self.parser = parser
        self.geometry = parser.metadata.crop
        self._probs = None
        self._mouth_probs = None
        self._last = None

    def reset(self) -> None:
        """Drop the track."""
        self._box = None
        self._probs = None
        self._probs_at = None
        self._last = None
        with self._mouth_lock:
            self._mouth_probs = None
            self._mouth_view = None
            self._generation += 1
        self.pending_mouth = None
        self._motion.reset()
        for f in (*self._filters, *self._mouth_filters):
            f.reset()

    def _acquire(self, frame: np.ndarray, times: StageTimes) -> FaceBox | None:
        """One detector pass over the whole frame; the customer's face box (with the eyes' roll), or None."""
        t0 = time.monotonic()
        found = self.detector.detect(frame)
        times.detect += (time.monotonic() - t0) * 1e3
        times.detected = True
        self.detections += 1
        self._since_detect = 0
        best = primary_face(found, frame.shape[1], frame.shape[0])
        return None if best is None else best.box

    def analyze(self, frame: np.ndarray, now: float | None = None) -> TrackResult:
        """Analyse one RGB frame: the face (None when no face is present) and the stage timings.

        A face the tracker loses (its parse no longer finds one) is looked for
        again with one detector pass on the same frame, so a customer who moved
        fast is back without a lost frame.
        """
        times = StageTimes()
        now = time.monotonic() if now is None else now
        box = self._box
        redetect = self.cfg.redetect_every and self._since_detect >= self.cfg.redetect_every
        if box is None and self._idle_skip > 0:
            # Nobody in view: look for a face only every few frames, to keep an idle kiosk cool.
            self._idle_skip -= 1
            times.skipped = True
            return TrackResult(None, times)
        settled = self._parses_since_acquire >= self.cfg.settle_parses
        if box is not None and not redetect and settled and self._since_parse + 1 < self.cfg.parse_every:
            carried = self._carry(frame, times)
            if carried is not None:
                return TrackResult(carried, times)
        fresh = False
        if box is None or redetect:
            found = self._acquire(frame, times)
            if found is None and box is None:
                self._idle_skip = self.cfg.idle_detect_every - 1
                return TrackResult(None, times)
            if found is not None and box is None:
                box, fresh = found, True
                self._parses_since_acquire = 0
                for f in self._filters:
                    f.reset()
        assert box is not None  # a tracked box, or the one just acquired
        self._since_detect += 1
        self._shift = self._parse_shift(frame, times) if not fresh else None
        parsed = self._parse(frame, box, times)
        if parsed is None and not fresh:
            log.debug("track lost at %s: re-acquiring within the frame", box)
            self.reset()
            box = self._acquire(frame, times)
            parsed = None if box is None else self._parse(frame, box, times)
        if parsed is None:
            self.reset()
            return TrackResult(None, times)
        t0 = time.monotonic()
        vals = [f(v, now) for f, v in zip(self._filters, parsed.found, strict=True)]
        self._box = FaceBox(*vals)
        times.post += (time.monotonic() - t0) * 1e3
        parsed.analysis.mouth = self._refine_mouth(frame, self._box, parsed.analysis, times, now)
        self._remember(frame, parsed.analysis, times)
        return TrackResult(parsed.analysis, times)

    def _remember(self, frame: np.ndarray, face: FaceAnalysis, times: StageTimes) -> None:
        """Keep a parsed face, and its patch, for the frames until the next parse."""
        self._since_parse = 0
        self._parses_since_acquire += 1
        if self.cfg.parse_every <= 1:
            return
        t0 = time.monotonic()
        self._last = face
        assert self._box is not None
        self._motion.reference(frame, self._box)
        times.carry += (time.monotonic() - t0) * 1e3

    def _carry(self, frame: np.ndarray, times: StageTimes) -> FaceAnalysis | None:
        """A frame between parses: the last parse moved as far as the face moved; None parses instead."""
        if self._last is None or self._box is None:
            return None
        t0 = time.monotonic()
        d = self._motion.shift(frame)
        if d is None:  # no sure match (a fast turn, a face leaving): parse this frame
            return None
        self._since_parse += 1
        self._since_detect += 1
        face = moved(self._last, *d)
        # The next parse's crop starts where the face is now, not where it was.
        self._box = face.box
        times.carry += (time.monotonic() - t0) * 1e3
        times.carried = True
        return face

    def _parse_shift(self, frame: np.ndarray, times: StageTimes) -> tuple[float, float] | None:
        """How far the face moved since the last parse (None when not measured: parsing every frame)."""
        if self.cfg.parse_every <= 1:
            return None
        t0 = time.monotonic()
        d = self._motion.shift(frame)
        times.carry += (time.monotonic() - t0) * 1e3
        return d

    def _smoothed(self, crop: shared.CropParse, here: np.ndarray) -> np.ndarray:
        """The new class map (placed in the image by ``here``) blended with the last one (EMA); the last one
        first moved with the face when its motion was measured, so the blend mixes the same face pixels."""
        prev, a = self._probs, self.cfg.mask_ema
        if prev is None:
            return crop.probs
        d = self._shift
        if d is not None and self._probs_at is not None:
            at = self._probs_at.copy()
            at[:, 2] += d
            return blend_aligned(crop.probs, *align_probs(prev, at, here), a)
        return a * crop.probs + (1 - a) * prev

    def _parse(self, frame: np.ndarray, box: FaceBox, times: StageTimes) -> shared.ParsedFace | None:
        """The shared parse step, with the class probabilities smoothed (see ``_smoothed``)."""
        crop = shared.parse_crop(self.parser, frame, box, self.geometry)
        times.crop += crop.crop_ms
        times.infer += crop.infer_ms
        t0 = time.monotonic()
        if crop.face < self.cfg.face_threshold:
            times.post += (time.monotonic() - t0) * 1e3
            return None
        here = output_to_image(crop.crop_matrix, crop.input_size // len(crop.probs))
        probs = self._smoothed(crop, here)
        self._probs, self._probs_at = probs, here
        # The class map's face box is the contract's face box; it gives the next frame's crop.
        parsed = shared.read_face(crop, shared.keep_one_mouth(probs), self.cfg.min_face_pixels)
        times.post += (time.monotonic() - t0) * 1e3
        return parsed

    def _refine_mouth(
        self, frame: np.ndarray, box: FaceBox, analysis: FaceAnalysis, times: StageTimes, now: float
    ) -> MouthView | None:
        """The mouth view for this parse: a new pass when due (run now, or deferred), else the last one moved."""
        t0 = time.monotonic()
        target = shared.mouth_target(self.parser, self.cfg, analysis) if self.mouth_wanted else None
        if target is None:  # no pass this frame: the next one starts its smoothing afresh
            with self._mouth_lock:
                self._mouth_probs = None
                self._mouth_view = None
                self._generation += 1
            for f in self._mouth_filters:
                f.reset()
            return None
        # The last view, where the face is now (shown until a new pass lands; a new pass blends with it).
        view = self._follow_mouth(target.centre)
        if self._mouth_view is None or self._since_mouth + 1 >= self.cfg.mouth_every:
            self._since_mouth = 0
            # The crop's placement is filtered like the face box, so a crop-space EMA blends aligned maps;
            # when parses are spaced (the blend is aligned by the face's motion) the crop goes where the lips are.
            centre = target.centre
            if self.cfg.parse_every <= 1:
                centre = (self._mouth_filters[0](centre[0], now), self._mouth_filters[1](centre[1], now))
            req = MouthRequest(frame, box, centre, target.centre, target.crop, self._generation)
            if self.defer_mouth:
                self.pending_mouth = req
            else:
                view = self.run_mouth(req)
                times.mouth = (time.monotonic() - t0) * 1e3
                return view
        else:
            self._since_mouth += 1
        times.post += (time.monotonic() - t0) * 1e3
        return view

    def _follow_mouth(self, lips: tuple[float, float]) -> MouthView | None:
        """The last mouth view, moved as far as the face moved since the last parse (as the frames between
        parses are), else as far as the parse's lips moved; it stays where it is moved to."""
        with self._mouth_lock:
            got, d = self._mouth_view, self._shift
            if got is None or d is None:
                return self.carried_mouth(lips)
            view = moved_view(got[0], *d)
            self._mouth_view = (view, lips)
            return view

    def carried_mouth(self, lips: tuple[float, float]) -> MouthView | None:
        """The last mouth view, moved as far as the lips (as the face's parse sees them) moved since its pass."""
        got = self._mouth_view
        if got is None:
            return None
        last, at = got
        return last if at == lips else moved_view(last, lips[0] - at[0], lips[1] - at[1])

    def run_mouth(self, req: MouthRequest, parser: Parser | None = None) -> MouthView | None:
        """Run a mouth pass (with ``parser``: another interpreter, for another thread); it becomes the last view.

        Returns None when the track it belongs to has been lost meanwhile.
        """
        view = shared.parse_mouth(parser or self.parser, req.frame, req.box, req.centre, req.crop)
        with self._mouth_lock:
            if req.generation != self._generation:
                return None
            # The mouth crop follows the lips, so its class map is smoothed in its own space, like the face's.
            prev, last = self._mouth_probs, self._mouth_view
            if prev is not None and prev.shape == view.probs.shape:
                a = self.cfg.mask_ema
                if self.cfg.parse_every > 1 and last is not None:  # the last view was moved with the face
                    aligned = align_probs(prev, last[0].output_to_image(), view.output_to_image())
                    view.probs = blend_aligned(view.probs, *aligned, a)
                else:
                    view.probs = a * view.probs + (1 - a) * prev
            self._mouth_probs = view.probs
            view = shared.settle_mouth(view)
            self._mouth_view = (view, req.lips)
            return view
