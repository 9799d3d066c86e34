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
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.sources.base import SourceEnded
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
    state: str = "ok"
    """A stable key for the health loop's change-only logging (``reason`` carries live numbers)."""


class Mirror:
    """The daemon's pipeline. Build once; ``start``/``stop`` the threads, or call ``step``."""

    def __init__(
        self, cfg, parser, detector, renderer, catalog, source, notifier=None, clock=time.monotonic, calibration=None
    ):
        """Wire the stages; nothing runs until :meth:`start`."""
        from edge.analysis import Analyzer

        self.cfg = cfg
        self.source = source
        self.renderer = renderer
        self.catalog = catalog
        self.calibration = calibration  # the kiosk's colour card measurement (edge.calibration), if any
        self.analyzer = Analyzer(parser, detector, cfg.analysis)
        self.notifier = notifier
        # Set by the daemon: whether its HTTP server answers (the watchdog is fed only then too).
        self.server_alive: Callable[[], bool] | None = None
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
        self.model_swaps = 0
        # A refused bundle is final only once its files have stayed unchanged this long, so a
        # .tflite and .json replaced one after the other never log a transient hash mismatch.
        self.model_settle_s = 2.0
        self._model_sig = self._file_sig(self.model_path)
        self._bad_sig: tuple | None = None
        self._pending_sig: tuple | None = None
        self._pending_t = 0.0
        self._next_parser = None
        self._swap_lock = threading.Lock()
        self.frame_errors = 0
        self._last_frame_error = ("", 0.0)
        self.health_interval = 1.0
        self.pi_health = PiHealth()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._tone_smoother = None
        self.session = self._new_session()
        self._last_health: str | None = None
        self._last_pi: dict[str, bool] = {}

    # ------------------------------------------------------------------ session

    def _new_session(self) -> Session:
        name = self.cfg.render.look
        return Session(name, self.resolve_look(name), started=self.clock())

    def resolve_look(self, name: str):
        """A look by name: the catalogue's first, then the built-ins; KeyError if neither has it."""
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
        # Only lipstick reads the mouth view: without it (or while "before" is shown) the inference is wasted.
        look = self.session.look
        self.analyzer.mouth_wanted = not self.session.compare and any(
            layer.kind == "lipstick" and layer.intensity > 0 for layer in getattr(look, "layers", ())
        )
        face, st = self.analyzer.analyze(frame, now)
        if st.skipped:  # idle frame: the detector rested, nothing was measured
            return face
        if st.detected:
            self.stats.add("detect", st.detect)
        self.stats.add("analyze", st.total)
        if not st.detected or face is not None:
            self.stats.add("analyze_track", st.track)
        self.stats.add("infer", st.infer)
        if st.mouth:
            self.stats.add("mouth", st.mouth)
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
            tone = measure_tone(frame, face, self.calibration)
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
        if self._next_parser is not None:  # a hot-swapped model takes over between two frames
            with self._swap_lock:
                nxt, self._next_parser = self._next_parser, None
            self.analyzer.set_parser(nxt)
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
            except SourceEnded as e:  # played to its end: stays ended (no replay through the reconnect path)
                self._set_camera("ended", str(e))
                break
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
            except Exception as e:
                # One bad frame is skipped; the stream goes on. A repeating error is logged
                # once a minute, not 30 times a second.
                self.frame_errors += 1
                key, now = f"{type(e).__name__}: {e}", time.monotonic()
                last, t_last = self._last_frame_error
                if key != last or now - t_last > 60.0:
                    self._last_frame_error = (key, now)
                    log.exception("frame processing failed (%d so far)", self.frame_errors)

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
        pi = {k: h.extras[k] for k in ("under_voltage", "throttling_now") if k in h.extras}
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
    def _file_sig(path: Path) -> tuple:
        """Identity of the bundle's two files; ``("missing",)`` when either is absent."""
        try:
            st = path.stat()
            side = path.with_suffix(".json").stat()
        except OSError:
            return ("missing",)
        return (st.st_mtime_ns, st.st_size, st.st_ino, side.st_mtime_ns, side.st_size, side.st_ino)

    @property
    def parser(self):
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
        elif self.out.seq == 0 or now - self.out.t > self.cfg.health.max_frame_age_s:
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
        self, sys_root: Path = Path("/sys"), vcgencmd: str = "vcgencmd", ttl_s: float = 5.0, clock=time.monotonic
    ):
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
