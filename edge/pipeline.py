"""The live path: a chain of stages, one frame at a time.

::

    source ─► FrameSlot ─► track ─────────────────────► measure ─► render ─────────────► encode ─► Broadcaster
    (camera,   (freshest    (detect only when lost,       (skin      (the session's look;   (flip,     (latest
    demo, …)   frame wins)  track, parse, refinement      tone)      "before" and split     JPEG)      EncodedFrame
                            passes the look needs)                   view are options)                 for viewers)

:class:`LivePipeline` owns every stage's state and timings. Two threads feed it: a capture
thread that only reads the source into the one-frame slot (overwritten frames are counted as
drops) and a processing thread that runs :meth:`LivePipeline.step`. A third, the health loop,
watches frame age and the model file (hot-swap) and feeds the systemd watchdog while frames
flow. The server reads :meth:`~LivePipeline.snapshot`, :meth:`~LivePipeline.metrics` and
:meth:`~LivePipeline.health`, and sends the commands :meth:`~LivePipeline.choose_look`,
:meth:`~LivePipeline.set_look` and :meth:`~LivePipeline.set_compare`. Every time is taken from
``time.monotonic()``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, NamedTuple, TypeVar

import numpy as np

from edge.looks import resolve_look
from edge.sources.base import SourceEnded
from edge.stats import RateMeter, StageStats, StageSummary
from edge.types import FaceAnalysis, MouthView, SkinTone

if TYPE_CHECKING:
    from edge.analysis.tracker import MouthRequest
    from edge.calibration import Calibration
    from edge.catalog import Catalog
    from edge.config import VanityConfig
    from edge.detectors import Detector
    from edge.makeup import Look, Renderer
    from edge.runtime.base import Parser
    from edge.sdnotify import Notifier
    from edge.sources.base import Source
    from edge.tone import ToneSmoother
    from edge.tone_model import ToneModel

log = logging.getLogger(__name__)

T = TypeVar("T")

CompareMode = Literal["off", "before", "split"]
"""What the mirror shows: the look (off), the face without makeup (before), or both halves (split)."""


# ---------------------------------------------------------------------- stage inputs and outputs


class Captured(NamedTuple):
    """A frame as the capture thread delivered it."""

    image: np.ndarray
    """RGB uint8 (H, W, 3)."""
    t: float
    """Monotonic time it was read."""


class ToneRequest(NamedTuple):
    """A skin-tone measurement asked for by the analysis stage (for the session it was asked in)."""

    image: np.ndarray
    face: FaceAnalysis
    session: Session


class AnalysedFrame(NamedTuple):
    """A frame after the analysis stage: what the render stage paints, and the side work it asked for."""

    image: np.ndarray
    face: FaceAnalysis | None
    t_captured: float | None
    t_started: float
    """Monotonic time its first stage began."""
    mouth: MouthRequest | None = None
    tone: ToneRequest | None = None


class RenderedFrame(NamedTuple):
    """A frame after the render stage: what the encode stage compresses."""

    image: np.ndarray
    t_captured: float | None
    t_started: float


@dataclass(frozen=True)
class EncodedFrame:
    """One shown image, encoded: what viewers, snapshots and the page's face boxes read."""

    jpeg: bytes
    width: int
    height: int
    seq: int
    """1 for the first frame published, then one more per frame."""
    t: float
    """Monotonic time it was published."""


@dataclass(frozen=True)
class RenderOptions:
    """How the render stage shows a frame: the look, and the before/after mode."""

    look: Look
    compare: CompareMode = "off"


class Mailbox(Generic[T]):
    """A bounded hand-over between two threads: when full, ``offer`` drops the oldest item and counts it.

    Depth 1 is "freshest frame wins". Depth 2 lets a stage whose cost alternates (a parsed frame,
    then a cheap carried one) catch up on the cheap frame instead of dropping one after the dear one.
    """

    def __init__(self, depth: int = 1) -> None:
        self._cond = threading.Condition()
        self._items: deque[T] = deque()
        self.depth = depth
        self.dropped = 0

    def offer(self, item: T) -> None:
        """Hand over an item (the oldest unread one goes when the box is full)."""
        with self._cond:
            if len(self._items) >= self.depth:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify()

    def take(self, timeout: float) -> T | None:
        """The oldest unread item, waiting up to ``timeout`` seconds; None if none came."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None


class FrameSlot(Mailbox[Captured]):
    """The capture thread's one-frame mailbox."""

    def put(self, frame: np.ndarray, t: float) -> None:
        """Offer a frame captured at monotonic time t."""
        self.offer(Captured(frame, t))


class Broadcaster:
    """The latest encoded frame for every viewer; viewers never block the pipeline."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: EncodedFrame | None = None

    def publish(self, jpeg: bytes, width: int, height: int, t: float) -> EncodedFrame:
        """Replace the frame (a slow viewer simply skips the ones it missed)."""
        with self._lock:
            seq = 1 if self._latest is None else self._latest.seq + 1
            self._latest = EncodedFrame(jpeg, width, height, seq, t)
            return self._latest

    def latest(self) -> EncodedFrame | None:
        """The newest frame, or None before the first."""
        with self._lock:
            return self._latest

    @property
    def seq(self) -> int:
        """Frames published so far."""
        latest = self._latest
        return 0 if latest is None else latest.seq


def render_shown(
    renderer: Renderer, frame: np.ndarray, face: FaceAnalysis | None, options: RenderOptions, flip: bool
) -> np.ndarray:
    """The render stage: the look on the face, or the face without it ("before"), or both halves (split).

    In split view the *shown* left half keeps the face without makeup, with a white divider; the
    image is flipped after rendering when ``flip`` is set, so that half is then the frame's right.
    """
    if face is None or options.compare == "before":
        return frame
    out = renderer.render(frame, face, options.look)
    if options.compare == "split":
        w = frame.shape[1]
        half = w // 2
        before = slice(w - half, w) if flip else slice(0, half)
        out[:, before] = frame[:, before]
        out[:, max(half - 1, 0) : half + 1] = 255
    return out


def encode_jpeg(image: np.ndarray, quality: int, flip: bool) -> bytes:
    """The encode stage: flip like a mirror when asked, then JPEG.

    Raises:
        RuntimeError: OpenCV could not encode the image.
    """
    import cv2

    if flip:
        image = cv2.flip(image, 1)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


# ---------------------------------------------------------------------- what the server reads


@dataclass
class Session:
    """The customer in front of the mirror. Forgotten after a while with no face."""

    look_name: str
    look: Look
    tone: SkinTone | None = None
    started: float = 0.0
    last_face: float = 0.0
    compare: CompareMode = "off"
    """Before/after; a new customer starts with the look shown."""


@dataclass(frozen=True)
class LiveSnapshot:
    """What the mirror sees and shows now: one consistent read for the server."""

    session: Session
    """A copy of the customer's session."""
    face: FaceAnalysis | None
    frame: EncodedFrame | None
    flipped: bool
    """Whether the shown image is flipped like a mirror (face boxes must be flipped too)."""
    tone_reliable: bool
    """Whether the tone is sure enough to recommend by (``analysis.tone_min_confidence``)."""
    reset_after_s: float
    camera: str
    fps: float
    now: float
    """The session clock's time of this snapshot."""


@dataclass(frozen=True)
class ModelInfo:
    """The parser in use."""

    name: str
    sha256: str
    runtime: str
    classes: tuple[str, ...]


@dataclass(frozen=True)
class PipelineMetrics:
    """Counters and stage latencies, for ``/metrics`` and ``vanity bench``."""

    fps: float
    frames: int
    dropped: int
    """Frames replaced before a stage took them (at capture, or between two pipelined stages)."""
    detections: int
    camera_gaps: int
    face_present: bool
    stages: dict[str, StageSummary]


@dataclass
class Health:
    """What /healthz and the watchdog look at."""

    healthy: bool
    reason: str
    camera: str
    fps: float
    last_frame_age_s: float | None
    model: str
    extras: dict[str, Any] = field(default_factory=dict)
    state: str = "ok"
    """A stable key for the health loop's change-only logging (``reason`` carries live numbers)."""


# ---------------------------------------------------------------------- the pipeline


class LivePipeline:
    """The daemon's live path. Build once; ``start``/``stop`` the threads, or call ``step``."""

    def __init__(
        self,
        cfg: VanityConfig,
        parser: Parser,
        detector: Detector,
        renderer: Renderer,
        catalog: Catalog | None,
        source: Source,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.monotonic,
        calibration: Calibration | None = None,
        tone_model: ToneModel | None = None,
    ) -> None:
        """Wire the stages; nothing runs until :meth:`start`.

        Raises:
            KeyError: ``cfg.render.look`` names no look.
        """
        from edge.analysis import Analyzer

        self.cfg = cfg
        self.source = source
        self.detector = detector
        self.renderer = renderer
        self.catalog = catalog
        self.calibration = calibration  # the kiosk's colour card measurement (edge.calibration), if any
        self.tone_model = tone_model  # the learned photo-to-Monk map (edge.tone_model), if any
        self.analyzer = Analyzer(parser, detector, cfg.analysis)
        # The mouth pass is a stage of its own: after the parse in step(), on its own thread when pipelined.
        self.analyzer.defer_mouth = True
        self._mouth_parser: Parser | None = None
        self.notifier = notifier
        # Set by the daemon: whether its HTTP server answers (the watchdog is fed only then too).
        self.server_alive: Callable[[], bool] | None = None
        self.clock = clock
        # Two frames deep before the analysis and the render, whose cost alternates between parsed and
        # carried frames; one before the encode and the side stages (the freshest wins).
        self.slot = FrameSlot(depth=2 if cfg.render.pipelined else 1)
        self._jobs: Mailbox[AnalysedFrame] = Mailbox(depth=2)
        self._rendered: Mailbox[RenderedFrame] = Mailbox()
        self._mouth_jobs: Mailbox[MouthRequest] = Mailbox()
        self._tone_jobs: Mailbox[ToneRequest] = Mailbox()
        self.out = Broadcaster()
        self.stats = StageStats()
        self.fps = RateMeter()
        self.frames = 0
        self.camera_state = "starting"
        self.camera_error = ""
        self.camera_gaps = 0
        self.last_frame_t: float | None = None
        self.face: FaceAnalysis | None = None
        self.model_path = Path(cfg.model.path)
        self.model_errors: list[str] = []
        self.model_swaps = 0
        # A refused bundle is final only once its files have stayed unchanged this long, so a
        # .tflite and .json replaced one after the other never log a transient hash mismatch.
        self.model_settle_s = 2.0
        self._model_sig = self._file_sig(self.model_path)
        self._bad_sig: tuple[Any, ...] | None = None
        self._pending_sig: tuple[Any, ...] | None = None
        self._pending_t = 0.0
        self._next_parser: Parser | None = None
        self._swap_lock = threading.Lock()
        self.frame_errors = 0
        self._last_frame_error = ("", 0.0)
        self.health_interval = 1.0
        self.pi_health = PiHealth()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._tone_smoother: ToneSmoother | None = None
        self.session = self._new_session()
        self._last_health: str | None = None
        self._last_pi: dict[str, bool] = {}

    # ------------------------------------------------------------------ commands

    def _new_session(self) -> Session:
        name = self.cfg.render.look
        return Session(name, resolve_look(name, self.catalog), started=self.clock())

    def choose_look(self, name: str) -> Look:
        """Wear a look by name (the catalogue's first, then the built-ins) from now on.

        Raises:
            KeyError: no such look.
        """
        look = resolve_look(name, self.catalog)
        self.set_look(look, name)
        return look

    def set_look(self, look: Look, name: str | None = None) -> None:
        """Apply a look from now on."""
        with self._lock:
            self.session.look = look
            self.session.look_name = name or look.name

    def set_compare(self, mode: CompareMode) -> None:
        """Before/after for this customer: the look (off), no makeup (before), or split view."""
        with self._lock:
            self.session.compare = mode

    # ------------------------------------------------------------------ reads

    def render_options(self) -> RenderOptions:
        """How the next frame is shown (the session's look and before/after mode)."""
        s = self.session
        return RenderOptions(s.look, s.compare)

    def snapshot(self) -> LiveSnapshot:
        """What the mirror sees and shows now."""
        with self._lock:
            session = dataclasses.replace(self.session)
        tone = session.tone
        return LiveSnapshot(
            session=session,
            face=self.face,
            frame=self.out.latest(),
            flipped=self.cfg.render.flip,
            tone_reliable=tone is not None and tone.confidence >= self.cfg.analysis.tone_min_confidence,
            reset_after_s=self.cfg.session.reset_after_s,
            camera=self.camera_state,
            fps=self.fps.rate(time.monotonic()),
            now=self.clock(),
        )

    def latest_frame(self) -> EncodedFrame | None:
        """The newest shown frame, or None before the first."""
        return self.out.latest()

    def metrics(self) -> PipelineMetrics:
        """Counters and per-stage latency over the recent window."""
        return PipelineMetrics(
            fps=self.fps.rate(time.monotonic()),
            frames=self.frames,
            dropped=self.slot.dropped + self._jobs.dropped + self._rendered.dropped,
            detections=self.analyzer.detections,
            camera_gaps=self.camera_gaps,
            face_present=self.face is not None,
            stages=self.stats.summary(),
        )

    def model_info(self) -> ModelInfo:
        """The parser in use."""
        parser = self.analyzer.parser
        meta = parser.metadata
        return ModelInfo(meta.name, meta.tflite_sha256, getattr(parser, "runtime_name", "?"), tuple(meta.classes))

    # ------------------------------------------------------------------ stages

    def _analyze(self, frame: np.ndarray, now: float) -> FaceAnalysis | None:
        """The tracking stage: detect (only when lost), track, parse, and the refinement passes the look reads."""
        # A refinement pass is run only while a worn layer reads it (not while "before" is shown).
        options = self.render_options()
        self.analyzer.mouth_wanted = options.compare != "before" and "mouth" in self.renderer.refinements(options.look)
        face, st = self.analyzer.analyze(frame, now)
        if st.skipped:  # idle frame: the detector rested, nothing was measured
            return face
        if st.detected:
            self.stats.add("detect", st.detect)
        self.stats.add("analyze", st.total)
        if not st.detected or face is not None:
            self.stats.add("analyze_track", st.track)
        if not st.carried:
            self.stats.add("infer", st.infer)
        if st.carried:
            self.stats.add("carry", st.carry)
        return face

    def _measure(self, frame: np.ndarray, face: FaceAnalysis | None, now: float) -> ToneRequest | None:
        """Starts or forgets the customer's session and sets ``face.tone``; asks for a tone measurement when due."""
        reset_after = self.cfg.session.reset_after_s
        if face is None:
            if now - self.session.last_face > reset_after and self.session.tone is not None:
                log.info("no face for %.0f s: session forgotten", reset_after)
                self._forget_session()
            return None
        if self.session.last_face == 0.0 or now - self.session.last_face > reset_after:
            self._forget_session()
        self.session.last_face = now
        face.tone = self.session.tone
        # Tone changes slowly; measuring it a few times a second keeps the hot loop light.
        if self.frames % self.cfg.analysis.tone_every == 0:
            return ToneRequest(frame, face, self.session)
        return None

    def tone_stage(self, req: ToneRequest) -> None:
        """Measure the skin tone and smooth it into the session it was asked for (a newer session ignores it)."""
        from edge.tone import ToneSmoother, measure_tone

        t0 = time.monotonic()
        tone = measure_tone(req.image, req.face, self.calibration, self.tone_model)
        self.stats.add("tone", (time.monotonic() - t0) * 1e3)
        if tone is None:
            return
        with self._lock:
            if self.session is not req.session:
                return
            if self._tone_smoother is None:
                self._tone_smoother = ToneSmoother(alpha=self.cfg.analysis.tone_ema)
            self.session.tone = self._tone_smoother.update(tone)
        req.face.tone = self.session.tone

    def mouth_stage(self, req: MouthRequest) -> MouthView | None:
        """The mouth pass a parse asked for (with its own interpreter when it runs on its own thread)."""
        t0 = time.monotonic()
        view = self.analyzer.run_mouth(req, self._mouth_parser)
        self.stats.add("mouth", (time.monotonic() - t0) * 1e3)
        return view

    def _forget_session(self) -> None:
        with self._lock:
            self.session = self._new_session()
            self._tone_smoother = None

    def step(self, frame: np.ndarray, t_captured: float | None = None) -> bytes:
        """Run every stage on one frame in turn and publish it; returns the JPEG."""
        job = self.analysis_stage(frame, t_captured)
        if job.mouth is not None and job.face is not None:
            job.face.mouth = self.mouth_stage(job.mouth) or job.face.mouth
        if job.tone is not None:
            self.tone_stage(job.tone)
        return self.encode_stage(self.render_stage(job))

    def _hand_off(self, job: AnalysedFrame) -> AnalysedFrame:
        """Pipelined: the side work a frame asked for goes to its own thread; the frame goes on to render."""
        if job.mouth is not None:
            self._mouth_jobs.offer(job.mouth)
        if job.tone is not None:
            self._tone_jobs.offer(job.tone)
        return job

    def analysis_stage(self, frame: np.ndarray, t_captured: float | None = None) -> AnalysedFrame:
        """Stage 1: detect/track/parse (or carry the last parse), and the skin tone."""
        if self._next_parser is not None:  # a hot-swapped model takes over between two frames
            with self._swap_lock:
                nxt, self._next_parser = self._next_parser, None
            if nxt is not None:
                self.analyzer.set_parser(nxt)
                if self._mouth_parser is not None:
                    clone = getattr(nxt, "clone", None)
                    self._mouth_parser = clone() if clone else None
        t0 = time.monotonic()
        now = self.clock()
        if t_captured is not None:
            self.stats.add("acquire", (t0 - t_captured) * 1e3)
        face = self._analyze(frame, now)
        self.face = face
        tone = self._measure(frame, face, now)
        mouth, self.analyzer.pending_mouth = self.analyzer.pending_mouth, None
        return AnalysedFrame(frame, face, t_captured, t0, mouth, tone)

    def render_stage(self, job: AnalysedFrame) -> RenderedFrame:
        """Stage 2: the session's look painted on the face (or the before/split view)."""
        t1 = time.monotonic()
        shown = render_shown(self.renderer, job.image, job.face, self.render_options(), self.cfg.render.flip)
        self.stats.add("render", (time.monotonic() - t1) * 1e3)
        return RenderedFrame(shown, job.t_captured, job.t_started)

    def encode_stage(self, done: RenderedFrame) -> bytes:
        """Stage 3: flip and JPEG, then publish to every viewer."""
        t2 = time.monotonic()
        jpeg = encode_jpeg(done.image, self.cfg.server.jpeg_quality, self.cfg.render.flip)
        t3 = time.monotonic()
        self.stats.add("encode", (t3 - t2) * 1e3)
        start = done.t_started if done.t_captured is None else done.t_captured
        self.stats.add("total", (t3 - start) * 1e3)
        self.out.publish(jpeg, done.image.shape[1], done.image.shape[0], t3)
        self.frames += 1
        self.fps.tick(t3)
        return jpeg

    # ------------------------------------------------------------------ threads

    def _capture_loop(self) -> None:
        cfg = self.cfg.health
        delay = cfg.reconnect_min_s
        opened = False
        while not self._stop.is_set():
            try:
                if not opened:
                    self.source.open()
                    opened = True
                    self._set_camera("ok", "")
                    delay = cfg.reconnect_min_s
                frame = self.source.read()
            except SourceEnded as e:  # played to its end: stays ended (no replay through the reconnect path)
                self._set_camera("ended", str(e))
                break
            except Exception as e:  # a camera error must never kill the daemon
                if opened:
                    self.camera_gaps += 1
                opened = False
                self._close_source()
                self._set_camera("reconnecting", str(e))
                self._stop.wait(delay)
                delay = min(delay * 2, cfg.reconnect_max_s)
                continue
            now = time.monotonic()
            self.last_frame_t = now
            self.slot.put(frame, now)
        self._close_source()

    def _close_source(self) -> None:
        try:
            self.source.close()
        except Exception:  # a camera that fails to close is reopened (or the daemon exits) anyway
            log.debug("camera %s: close failed", self.source.name, exc_info=True)

    def _set_camera(self, state: str, error: str) -> None:
        if state != self.camera_state:
            if state == "ok":
                log.info("camera %s: delivering frames", self.source.name)
            else:
                log.warning("camera %s: %s (%s)", self.source.name, state, error)
        self.camera_state, self.camera_error = state, error

    def _stage_loop(self, inbox: Mailbox[Any], work: Callable[[Any], Any], outbox: Mailbox[Any] | None) -> None:
        """One stage's thread: take the freshest item, work on it, hand the result on."""
        while not self._stop.is_set():
            got = inbox.take(0.5)
            if got is None:
                continue
            try:
                result = work(got)
            except Exception as e:
                self._frame_failed(e)
                continue
            if outbox is not None:
                outbox.offer(result)

    def _frame_failed(self, e: Exception) -> None:
        # One bad frame is skipped; the stream goes on. A repeating error is logged once a
        # minute, not 30 times a second.
        self.frame_errors += 1
        key, now = f"{type(e).__name__}: {e}", time.monotonic()
        last, t_last = self._last_frame_error
        if key != last or now - t_last > 60.0:
            self._last_frame_error = (key, now)
            log.error("frame processing failed (%d so far)", self.frame_errors, exc_info=e)

    def _workers(self) -> list[tuple[Callable[[], None], str]]:
        """The processing threads: three pipelined stages, or one that runs a frame's stages in turn."""
        if not self.cfg.render.pipelined:
            return [(lambda: self._stage_loop(self.slot, lambda c: self.step(c.image, c.t), None), "process")]
        clone = getattr(self.analyzer.parser, "clone", None)
        self._mouth_parser = clone() if clone else None  # one interpreter runs one call at a time
        analyse = lambda c: self._hand_off(self.analysis_stage(c.image, c.t))  # noqa: E731
        return [
            (lambda: self._stage_loop(self.slot, analyse, self._jobs), "analysis"),
            (lambda: self._stage_loop(self._mouth_jobs, self.mouth_stage, None), "mouth"),
            (lambda: self._stage_loop(self._tone_jobs, self.tone_stage, None), "tone"),
            (lambda: self._stage_loop(self._jobs, self.render_stage, self._rendered), "render"),
            (lambda: self._stage_loop(self._rendered, self.encode_stage, None), "encode"),
        ]

    def health_tick(self) -> Health:
        """One round of the health loop: model hot-swap, health, change-only logs, watchdog."""
        self.check_model()
        self.pi_health.get(self.pi_health.ttl_s)
        h = self.health()
        if h.state != self._last_health:
            (log.info if h.healthy else log.warning)("health: %s", h.reason)
            self._last_health = h.state
            if self.notifier:
                self.notifier.status(h.reason)
        pi: dict[str, bool] = {k: h.extras[k] for k in ("under_voltage", "throttling_now") if k in h.extras}
        if pi != self._last_pi:
            bad = [k for k, v in pi.items() if v]
            if bad:
                log.warning("raspberry pi: %s (throttled=%s)", ", ".join(bad), h.extras.get("throttled"))
            elif self._last_pi:
                log.info("raspberry pi: no longer under-voltage or throttled")
            self._last_pi = pi
        # The watchdog is fed only while frames flow and the server answers: a stuck camera,
        # pipeline or server gets the daemon restarted by systemd after WatchdogSec.
        if h.healthy and self.notifier and (self.server_alive is None or self.server_alive()):
            self.notifier.watchdog()
        return h

    def _health_loop(self) -> None:
        while not self._stop.wait(self.health_interval):
            try:
                self.health_tick()
            except Exception:  # the loop must survive; the watchdog is not fed this round
                log.exception("health check failed")

    def start(self) -> None:
        """Start the capture, processing and health threads."""
        self._stop.clear()
        for target, name in ((self._capture_loop, "capture"), *self._workers(), (self._health_loop, "health")):
            th = threading.Thread(target=target, name=f"vanity-{name}", daemon=True)
            th.start()
            self._threads.append(th)

    def stop(self, timeout: float = 1.5) -> None:
        """Stop every thread; returns within about ``timeout`` seconds."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for th in self._threads:
            th.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    # ------------------------------------------------------------------ model

    @staticmethod
    def _file_sig(path: Path) -> tuple[Any, ...]:
        """Identity of the bundle's two files; ``("missing",)`` when either is absent."""
        try:
            st = path.stat()
            side = path.with_suffix(".json").stat()
        except OSError:
            return ("missing",)
        return (st.st_mtime_ns, st.st_size, st.st_ino, side.st_mtime_ns, side.st_size, side.st_ino)

    @property
    def parser(self) -> Parser:
        """The parser the next frame will use (a swapped-in one before the hot loop picks it up)."""
        nxt = self._next_parser
        return self.analyzer.parser if nxt is None else nxt

    def check_model(self) -> bool:
        """Hot-swap: load the bundle again if its files changed. Returns True on a swap.

        The new bundle is validated and loaded here (off the hot loop) and handed to the
        processing thread, which switches between two frames. A bundle that fails is
        retried while its files keep changing (the .tflite and the .json are often
        replaced one after the other); once both have been unchanged for
        ``model_settle_s`` the refusal is final: logged once, recorded in
        ``model_errors``, and the running model carries on until either file changes again.
        """
        if not self.cfg.model.watch:
            return False
        sig = self._file_sig(self.model_path)
        if sig == self._model_sig or sig == self._bad_sig:
            return False
        from edge.contract import BundleError
        from edge.runtime import open_parser

        now = time.monotonic()
        try:
            if sig == ("missing",):
                raise BundleError(f"{self.model_path}: model file or its .json metadata is missing")
            parser = open_parser(self.model_path, self.cfg.model.runtime, self.cfg.model.threads)
        except Exception as e:
            if sig != self._pending_sig:
                self._pending_sig, self._pending_t = sig, now
            if now - self._pending_t < self.model_settle_s:
                log.debug("new model not loadable yet, retrying while its files change: %s", e)
                return False
            self._pending_sig = None
            self._bad_sig = sig
            msg = f"new model refused, keeping the running one: {e}"
            self.model_errors = [*self.model_errors[-19:], msg]
            log.error(msg)
            return False
        if self._file_sig(self.model_path) != sig:
            return False  # replaced again while loading: take the newest on the next check
        self._model_sig, self._bad_sig, self._pending_sig = sig, None, None
        if self._threads:
            with self._swap_lock:
                self._next_parser = parser
        else:
            self.analyzer.set_parser(parser)
        self.model_swaps += 1
        log.info("model swapped: %s (%s %s)", self.model_path, parser.metadata.name, parser.metadata.tflite_sha256[:12])
        return True

    # ------------------------------------------------------------------ state

    def health(self) -> Health:
        """Healthy only while frames are flowing. Never forks or blocks (Pi data is cached)."""
        now = time.monotonic()
        age = None if self.last_frame_t is None else now - self.last_frame_t
        meta = self.analyzer.parser.metadata
        fps = self.fps.rate(now)
        if self.camera_state != "ok":
            reason = f"camera {self.camera_state}: {self.camera_error}" if self.camera_error else "camera starting"
            healthy, state = False, f"camera-{self.camera_state}"
        elif age is None or age > self.cfg.health.max_frame_age_s:
            healthy, reason = False, "no frames" if age is None else f"last frame {age:.1f} s ago"
            state = "no-frames"
        elif (shown := self.out.latest()) is None or now - shown.t > self.cfg.health.max_frame_age_s:
            healthy, reason, state = False, "pipeline stalled", "stalled"
        else:
            healthy, reason, state = True, f"ok, {fps:.0f} fps", "ok"
        extras = {
            "camera_gaps": self.camera_gaps,
            "frame_errors": self.frame_errors,
            "model_swaps": self.model_swaps,
            "model_errors": self.model_errors[-3:],
        }
        # The health loop refreshes this every ttl_s; a request only refreshes a very stale value.
        extras.update(self.pi_health.get(3 * self.pi_health.ttl_s))
        model = f"{meta.name} {meta.tflite_sha256[:12]}"
        return Health(healthy, reason, self.camera_state, fps, age, model, extras, state)


THROTTLED_SYSFS = Path("devices/platform/soc/soc:firmware/get_throttled")
"""The firmware's throttling flags (hex), relative to /sys; read without forking vcgencmd."""

THROTTLE_BITS = {
    0: "under_voltage",
    1: "freq_capped",
    2: "throttling_now",
    3: "soft_temp_limit",
    16: "under_voltage_occurred",
    17: "freq_capped_occurred",
    18: "throttling_occurred",
    19: "soft_temp_limit_occurred",
}
"""Bits of ``vcgencmd get_throttled``: 0-3 are now, 16-19 since boot."""


def read_throttled(sys_root: Path = Path("/sys"), vcgencmd: str = "vcgencmd") -> int | None:
    """The throttling flags: from sysfs when the firmware exposes them, else ``vcgencmd``; None off a Pi."""
    try:
        return int((sys_root / THROTTLED_SYSFS).read_text().strip(), 16)
    except (OSError, ValueError):
        pass
    exe = shutil.which(vcgencmd)
    if exe is None:
        return None
    try:
        res = subprocess.run([exe, "get_throttled"], capture_output=True, text=True, timeout=1, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"throttled=(0x[0-9a-fA-F]+)", res.stdout)
    return int(m.group(1), 16) if m else None


def read_pi_health(sys_root: Path = Path("/sys"), vcgencmd: str = "vcgencmd") -> dict[str, Any]:
    """CPU temperature (°C) and throttling flags on a Raspberry Pi; what is available elsewhere."""
    out: dict[str, Any] = {}
    temp = sys_root / "class" / "thermal" / "thermal_zone0" / "temp"
    try:
        out["cpu_temp_c"] = int(temp.read_text().strip()) / 1000.0
    except (OSError, ValueError):
        pass
    flags = read_throttled(sys_root, vcgencmd)
    if flags is not None:
        out["throttled"] = hex(flags)
        out.update({name: bool(flags >> bit & 1) for bit, name in THROTTLE_BITS.items()})
    return out


class PiHealth:
    """:func:`read_pi_health`, cached: /healthz never forks ``vcgencmd`` per request, never blocks."""

    def __init__(
        self,
        sys_root: Path = Path("/sys"),
        vcgencmd: str = "vcgencmd",
        ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sys_root, self.vcgencmd, self.ttl_s, self.clock = Path(sys_root), vcgencmd, ttl_s, clock
        self.reads = 0
        self._value: dict[str, Any] = {}
        self._t: float | None = None
        self._lock = threading.Lock()

    def get(self, max_age_s: float | None = None) -> dict[str, Any]:
        """The last reading, refreshed first when older than ``max_age_s`` (default ``ttl_s``).

        When another thread is refreshing, the previous reading is returned at once.
        """
        max_age = self.ttl_s if max_age_s is None else max_age_s
        if (self._t is None or self.clock() - self._t >= max_age) and self._lock.acquire(blocking=False):
            try:
                self._value = read_pi_health(self.sys_root, self.vcgencmd)
                self._t = self.clock()
                self.reads += 1
            finally:
                self._lock.release()
        return dict(self._value)
