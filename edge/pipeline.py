"""The hot loop: source -> latest-frame slot -> analyze -> render -> encode -> outputs.

One class, :class:`Mirror`, with short stage methods. Two threads: a capture
thread that only reads the source into a one-frame slot (the freshest frame
wins; overwritten frames are counted as drops), and a processing thread that
runs the stages. A third, the health loop, watches frame age, the model file
(hot-swap) and feeds the systemd watchdog while frames flow. Every time is
taken from ``time.monotonic()``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.stats import RateMeter, StageStats
from edge.types import FaceAnalysis, SkinTone

log = logging.getLogger("vanity.pipeline")

STAGES = ("acquire", "detect", "analyze", "tone", "render", "encode", "total")


class FrameSlot:
    """A one-frame mailbox: ``put`` replaces an unread frame and counts the drop."""

    def __init__(self):
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._t = 0.0
        self._seq = 0
        self.dropped = 0

    def put(self, frame: np.ndarray, t: float) -> None:
        """Offer a frame captured at monotonic time t."""
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame, self._t = frame, t
            self._seq += 1
            self._cond.notify()

    def take(self, timeout: float) -> tuple[np.ndarray, float] | None:
        """The newest unread frame, waiting up to ``timeout`` seconds."""
        with self._cond:
            if self._frame is None:
                self._cond.wait(timeout)
            if self._frame is None:
                return None
            frame, t = self._frame, self._t
            self._frame = None
            return frame, t


class Broadcaster:
    """The latest encoded frame for every viewer; viewers never block the pipeline."""

    def __init__(self):
        self._lock = threading.Lock()
        self.jpeg: bytes = b""
        self.seq = 0
        self.t = 0.0

    def publish(self, jpeg: bytes, t: float) -> None:
        """Replace the frame (a slow viewer simply skips the ones it missed)."""
        with self._lock:
            self.jpeg, self.t = jpeg, t
            self.seq += 1

    def latest(self) -> tuple[int, bytes]:
        """(sequence number, JPEG bytes)."""
        with self._lock:
            return self.seq, self.jpeg


@dataclass
class Session:
    """The customer in front of the mirror. Forgotten after a while with no face."""

    look_name: str
    look: Any
    tone: SkinTone | None = None
    started: float = 0.0
    last_face: float = 0.0
    compare: bool = False


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


class Mirror:
    """The daemon's pipeline. Build once; ``start``/``stop`` the threads, or call ``step``."""

    def __init__(self, cfg, parser, detector, renderer, catalog, source, notifier=None, clock=time.monotonic):
        """Wire the stages; nothing runs until :meth:`start`."""
        from edge.analysis import Analyzer

        self.cfg = cfg
        self.source = source
        self.renderer = renderer
        self.catalog = catalog
        self.analyzer = Analyzer(parser, detector, cfg.analysis)
        self.notifier = notifier
        self.clock = clock
        self.slot = FrameSlot()
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
        self._model_sig = self._file_sig(self.model_path)
        self._bad_sig: tuple | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._tone_smoother = None
        self.session = self._new_session()
        self._last_health: tuple[bool, str] | None = None

    # ------------------------------------------------------------------ session

    def _new_session(self) -> Session:
        name = self.cfg.render.look
        return Session(name, self._resolve_look(name), started=self.clock())

    def _resolve_look(self, name: str):
        from edge.makeup import builtin_looks

        if self.catalog is not None:
            try:
                return self.catalog.look(name)
            except KeyError:
                pass
        looks = builtin_looks()
        if name not in looks:
            raise KeyError(f"unknown look {name!r}")
        return looks[name]

    def set_look(self, look, name: str | None = None) -> None:
        """Apply a look (a ``Look`` object) from now on."""
        with self._lock:
            self.session.look = look
            self.session.look_name = name or getattr(look, "name", "custom")

    def set_compare(self, on: bool) -> None:
        """Before/after: when on, the stream shows the face without makeup."""
        with self._lock:
            self.session.compare = bool(on)

    # ------------------------------------------------------------------ stages

    def _acquire(self, timeout: float = 0.5) -> tuple[np.ndarray, float] | None:
        return self.slot.take(timeout)

    def _analyze(self, frame: np.ndarray, now: float) -> FaceAnalysis | None:
        face = self.analyzer.analyze(frame, now)
        st = self.analyzer.last
        if st.detected:
            self.stats.add("detect", st.detect)
        self.stats.add("analyze", st.crop + st.infer + st.post + (st.detect if st.detected else 0.0))
        if not st.detected or face is not None:
            self.stats.add("analyze_track", st.crop + st.infer + st.post)
        self.stats.add("infer", st.infer)
        return face

    def _measure(self, frame: np.ndarray, face: FaceAnalysis | None, now: float) -> None:
        if face is None:
            if now - self.session.last_face > self.cfg.session.reset_after_s and self.session.tone is not None:
                log.info("no face for %.0f s: session forgotten", self.cfg.session.reset_after_s)
                self.session = self._new_session()
                self._tone_smoother = None
            return
        if self.session.last_face == 0.0 or now - self.session.last_face > self.cfg.session.reset_after_s:
            self.session = self._new_session()
            self._tone_smoother = None
        self.session.last_face = now
        # Tone changes slowly; measuring every 5th frame keeps the hot loop light.
        if self.frames % 5 == 0:
            from edge.tone import ToneSmoother, measure_tone

            t0 = time.monotonic()
            tone = measure_tone(frame, face)
            if tone is not None:
                if self._tone_smoother is None:
                    self._tone_smoother = ToneSmoother(alpha=self.cfg.analysis.tone_ema)
                self.session.tone = self._tone_smoother.update(tone)
            self.stats.add("tone", (time.monotonic() - t0) * 1e3)
        face.tone = self.session.tone

    def _render(self, frame: np.ndarray, face: FaceAnalysis | None) -> np.ndarray:
        if face is None or self.session.compare:
            return frame
        return self.renderer.render(frame, face, self.session.look)

    def _encode(self, image: np.ndarray) -> bytes:
        import cv2

        if self.cfg.render.mirror:
            image = cv2.flip(image, 1)
        ok, buf = cv2.imencode(
            ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.cfg.server.jpeg_quality]
        )
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return buf.tobytes()

    def step(self, frame: np.ndarray, t_captured: float | None = None) -> bytes:
        """Run every stage on one frame and publish it; returns the JPEG."""
        t0 = time.monotonic()
        now = self.clock()
        if t_captured is not None:
            self.stats.add("acquire", (t0 - t_captured) * 1e3)
        face = self._analyze(frame, now)
        self.face = face
        self._measure(frame, face, now)
        t1 = time.monotonic()
        shown = self._render(frame, face)
        t2 = time.monotonic()
        jpeg = self._encode(shown)
        t3 = time.monotonic()
        self.stats.add("render", (t2 - t1) * 1e3)
        self.stats.add("encode", (t3 - t2) * 1e3)
        self.stats.add("total", (t3 - t0) * 1e3 + ((t0 - t_captured) * 1e3 if t_captured else 0.0))
        self.out.publish(jpeg, t3)
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
            except Exception as e:  # a camera error must never kill the daemon
                if opened:
                    self.camera_gaps += 1
                opened = False
                try:
                    self.source.close()
                except Exception:
                    pass
                self._set_camera("reconnecting", str(e))
                self._stop.wait(delay)
                delay = min(delay * 2, cfg.reconnect_max_s)
                continue
            now = time.monotonic()
            self.last_frame_t = now
            self.slot.put(frame, now)
        try:
            self.source.close()
        except Exception:
            pass

    def _set_camera(self, state: str, error: str) -> None:
        if state != self.camera_state:
            if state == "ok":
                log.info("camera %s: delivering frames", self.source.name)
            else:
                log.warning("camera %s: %s (%s)", self.source.name, state, error)
        self.camera_state, self.camera_error = state, error

    def _process_loop(self) -> None:
        while not self._stop.is_set():
            got = self._acquire()
            if got is None:
                continue
            frame, t = got
            try:
                self.step(frame, t)
            except Exception:
                # One bad frame is logged and skipped; the stream goes on.
                log.exception("frame processing failed")

    def _health_loop(self) -> None:
        while not self._stop.wait(1.0):
            self.check_model()
            h = self.health()
            key = (h.healthy, h.reason)
            if key != self._last_health:
                (log.info if h.healthy else log.warning)("health: %s", h.reason)
                self._last_health = key
                if self.notifier:
                    self.notifier.status(h.reason)
            if h.healthy and self.notifier:
                self.notifier.watchdog()

    def start(self) -> None:
        """Start the capture, processing and health threads."""
        self._stop.clear()
        for target, name in (
            (self._capture_loop, "capture"),
            (self._process_loop, "process"),
            (self._health_loop, "health"),
        ):
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
    def _file_sig(path: Path) -> tuple | None:
        try:
            st = path.stat()
            side = path.with_suffix(".json").stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino, side.st_mtime_ns, side.st_size, side.st_ino)

    def check_model(self) -> bool:
        """Hot-swap: load the bundle again if its files changed. Returns True on a swap."""
        if not self.cfg.model.watch:
            return False
        sig = self._file_sig(self.model_path)
        if sig is None or sig == self._model_sig or sig == self._bad_sig:
            return False
        from edge.runtime import open_parser

        try:
            parser = open_parser(self.model_path, self.cfg.model.runtime, self.cfg.model.threads)
        except Exception as e:
            self._bad_sig = sig
            msg = f"new model refused, keeping the running one: {e}"
            self.model_errors.append(msg)
            log.error(msg)
            return False
        self.analyzer.set_parser(parser)
        self._model_sig = sig
        self._bad_sig = None
        log.info("model swapped: %s (%s)", self.model_path, parser.metadata.tflite_sha256[:12])
        return True

    # ------------------------------------------------------------------ state

    def health(self) -> Health:
        """Healthy only while frames are flowing."""
        now = time.monotonic()
        age = None if self.last_frame_t is None else now - self.last_frame_t
        meta = self.analyzer.parser.metadata
        fps = self.fps.rate(now)
        if self.camera_state != "ok":
            reason = f"camera {self.camera_state}: {self.camera_error}" if self.camera_error else "camera starting"
            healthy = False
        elif age is None or age > self.cfg.health.max_frame_age_s:
            healthy, reason = False, "no frames" if age is None else f"last frame {age:.1f} s ago"
        elif self.out.seq == 0 or now - self.out.t > self.cfg.health.max_frame_age_s:
            healthy, reason = False, "pipeline stalled"
        else:
            healthy, reason = True, f"ok, {fps:.0f} fps"
        extras = {"camera_gaps": self.camera_gaps, "model_errors": self.model_errors[-3:]}
        extras.update(read_pi_health())
        return Health(healthy, reason, self.camera_state, fps, age, f"{meta.name} {meta.tflite_sha256[:12]}", extras)


def read_pi_health(sys_root: Path = Path("/sys"), vcgencmd: str = "vcgencmd") -> dict[str, Any]:
    """CPU temperature (°C) and throttling flags on a Raspberry Pi; {} elsewhere."""
    out: dict[str, Any] = {}
    temp = sys_root / "class" / "thermal" / "thermal_zone0" / "temp"
    try:
        out["cpu_temp_c"] = int(temp.read_text().strip()) / 1000.0
    except (OSError, ValueError):
        pass
    import shutil
    import subprocess

    if shutil.which(vcgencmd):
        try:
            res = subprocess.run([vcgencmd, "get_throttled"], capture_output=True, text=True, timeout=1)
            val = res.stdout.strip().split("=")[-1]
            flags = int(val, 16)
            out["throttled"] = hex(flags)
            out["under_voltage"] = bool(flags & 0x1)
            out["throttling_now"] = bool(flags & 0x4)
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
    return out
