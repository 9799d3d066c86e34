"""Soak the whole daemon: source -> analyze -> render -> encode -> MJPEG stream, watching memory and stalls.

Starts ``vanity run`` on the demo source (a loopback port, nothing leaves the machine),
reads ``/stream.mjpg`` with a client until ``--frames`` frames have arrived, polls the
API now and then like the kiosk page does, and samples the daemon's RSS every
``--sample-s`` seconds. The demo face leaves the frame periodically so the detector,
tracker and session reset paths run too.

Prints one JSON line: frames, duration, fps, RSS start/end/growth after the warm-up, the
longest gap between two streamed frames. Exits 1 if RSS grew by ``--max-growth-mb`` or
more, a gap exceeded ``--max-stall-s``, the daemon died or the run hit ``--max-seconds``.

Run: ``.venv/bin/python benchmarks/soak.py --frames 20000 [--model PATH]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.config import DEFAULT_MODEL  # noqa: E402


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for pid {pid}")


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StreamClient(threading.Thread):
    """Reads multipart JPEG parts from /stream.mjpg; records arrival times' largest gap."""

    def __init__(self, url: str, frames: int, warmup: int):
        super().__init__(name="soak-client", daemon=True)
        self.url, self.target, self.warmup = url, frames, warmup
        self.frames = 0
        self.bytes = 0
        self.max_gap_s = 0.0
        self.max_gap_at = 0
        self.t_first: float | None = None
        self.t_last: float | None = None
        self.t_warm: float | None = None
        self.error: str | None = None
        self.done = threading.Event()
        self._stop = threading.Event()

    def stop(self) -> None:
        """Ask the reader to end at its next frame."""
        self._stop.set()

    def run(self) -> None:
        try:
            with httpx.stream("GET", self.url + "/stream.mjpg", timeout=httpx.Timeout(10.0, read=10.0)) as r:
                r.raise_for_status()
                self._read(r.iter_raw(65536))
        except Exception as e:  # reported in the result
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.done.set()

    def _read(self, chunks) -> None:
        buf = bytearray()
        for chunk in chunks:
            buf += chunk
            while True:
                head_end = buf.find(b"\r\n\r\n")
                if head_end < 0:
                    break
                m = re.search(rb"Content-Length: (\d+)", bytes(buf[:head_end]), re.I)
                if m is None:
                    raise RuntimeError(f"multipart part without Content-Length: {bytes(buf[:200])!r}")
                size = int(m.group(1))
                end = head_end + 4 + size + 2  # body + CRLF
                if len(buf) < end:
                    break
                body = bytes(buf[head_end + 4 : head_end + 4 + size])
                del buf[:end]
                if body[:2] != b"\xff\xd8" or body[-2:] != b"\xff\xd9":
                    raise RuntimeError(f"frame {self.frames + 1} is not a complete JPEG")
                self._frame(len(body))
                if self.frames >= self.target or self._stop.is_set():
                    return

    def _frame(self, size: int) -> None:
        now = time.monotonic()
        if self.t_last is not None:
            gap = now - self.t_last
            if gap > self.max_gap_s:
                self.max_gap_s, self.max_gap_at = gap, self.frames
        else:
            self.t_first = now
        self.t_last = now
        self.frames += 1
        self.bytes += size
        if self.frames == self.warmup:
            self.t_warm = now


def metrics(url: str) -> dict[str, float]:
    """The daemon's /metrics as {name: value} (unlabelled samples only)."""
    out = {}
    for line in httpx.get(url + "/metrics", timeout=5).text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.partition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def write_config(path: Path, args, port: int) -> None:
    """The soak's daemon configuration."""
    path.write_text(
        "\n".join(
            [
                "[source]",
                'kind = "demo"',
                f"fps = {args.source_fps}",
                f"absent_every_s = {args.absent_every_s}",
                "",
                "[model]",
                f"path = {json.dumps(str(args.model))}",
                "",
                "[server]",
                'host = "127.0.0.1"',
                f"port = {port}",
                f"stream_fps = {args.stream_fps}",
                "",
                "[session]",
                f"reset_after_s = {args.reset_after_s}",
                "",
            ]
        )
    )


def main() -> int:
    """Run the soak; print one JSON line; return the exit code."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=20000, help="Streamed frames to receive.")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="Model bundle (.tflite with its .json).")
    ap.add_argument("--source-fps", type=float, default=120.0, help="Demo source frame rate.")
    ap.add_argument("--stream-fps", type=float, default=120.0, help="Most frames per second sent to the client.")
    ap.add_argument("--absent-every-s", type=float, default=30.0, help="The face leaves every this many seconds.")
    ap.add_argument("--reset-after-s", type=float, default=5.0, help="Session forgotten after this long with no face.")
    ap.add_argument("--warmup-frames", type=int, default=1000, help="RSS growth is measured after these frames.")
    ap.add_argument("--sample-s", type=float, default=5.0, help="RSS / API sampling period.")
    ap.add_argument("--max-seconds", type=float, default=1800.0, help="Give up after this long.")
    ap.add_argument("--max-growth-mb", type=float, default=10.0, help="Fail at this RSS growth after warm-up.")
    ap.add_argument("--max-stall-s", type=float, default=2.0, help="Fail when two frames are further apart.")
    ap.add_argument("--keep-log", action="store_true", help="Print the daemon log's path instead of deleting it.")
    args = ap.parse_args()
    if not Path(args.model).is_file():
        print(json.dumps({"error": f"model bundle {args.model} not found (use --model)"}))
        return 2
    if args.warmup_frames >= args.frames:
        ap.error("--warmup-frames must be below --frames")

    tmp = Path(tempfile.mkdtemp(prefix="vanity-soak-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cfg = tmp / "soak.toml"
    write_config(cfg, args, port)
    log = tmp / "daemon.log"
    result: dict = {"frames_target": args.frames, "source_fps": args.source_fps, "stream_fps": args.stream_fps}
    failures: list[str] = []
    samples: list[tuple[float, int, float]] = []  # (t, client frames, rss MiB)
    t_start = time.monotonic()
    with open(log, "wb") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "run", "--config", str(cfg)],
            stdout=logf,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    client = None
    t1 = time.monotonic()
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited {proc.returncode} at start: {log.read_text()[-1500:]}")
            if time.monotonic() - t_start > 120:
                raise RuntimeError("daemon not healthy within 120 s")
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        result["startup_s"] = round(time.monotonic() - t_start, 2)
        result["rss_startup_mb"] = round(rss_mb(proc.pid), 1)

        client = StreamClient(url, args.frames, args.warmup_frames)
        t0 = time.monotonic()
        client.start()
        deadline = t0 + args.max_seconds
        api_errors = 0
        unhealthy = 0
        while not client.done.wait(args.sample_s):
            if proc.poll() is not None:
                failures.append(f"daemon died (exit {proc.returncode})")
                break
            samples.append((time.monotonic() - t0, client.frames, rss_mb(proc.pid)))
            # Poll the API as the kiosk page does.
            try:
                with httpx.Client(base_url=url, timeout=5) as api:
                    unhealthy += api.get("/healthz").status_code != 200
                    api.get("/api/state").raise_for_status()
            except httpx.HTTPError:
                api_errors += 1
            if time.monotonic() > deadline:
                failures.append(f"gave up after {args.max_seconds:.0f} s at {client.frames} frames")
                client.stop()
                break
        client.done.wait(15)
        t1 = client.t_last or time.monotonic()
        if proc.poll() is None:
            samples.append((time.monotonic() - t0, client.frames, rss_mb(proc.pid)))
            m = metrics(url)
            result["pipeline_frames"] = int(m.get("vanity_frames_total", 0))
            result["source_dropped"] = int(m.get("vanity_dropped_frames_total", 0))
            result["client_dropped"] = int(m.get("vanity_client_dropped_frames_total", 0))
            result["detections"] = int(m.get("vanity_detections_total", 0))
            result["camera_gaps"] = int(m.get("vanity_camera_gaps_total", 0))
        result["api_errors"] = api_errors
        result["unhealthy_polls"] = unhealthy
    except (RuntimeError, OSError, httpx.HTTPError) as e:
        failures.append(f"{type(e).__name__}: {e}")
    finally:
        stop_t = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                failures.append("daemon did not stop on SIGTERM within 10 s")
            result["stop_s"] = round(time.monotonic() - stop_t, 2)

    frames = client.frames if client else 0
    duration = (t1 - client.t_first) if client and client.t_first else 0.0
    warm = [s for s in samples if s[1] >= args.warmup_frames]
    result.update(
        frames=frames,
        duration_s=round(duration, 1),
        fps=round((frames - 1) / duration, 2) if duration > 0 else 0.0,
        mjpeg_mb=round(client.bytes / 2**20, 1) if client else 0.0,
        max_gap_s=round(client.max_gap_s, 3) if client else None,
        max_gap_at_frame=client.max_gap_at if client else None,
        rss_samples=len(samples),
    )
    if client and client.error:
        failures.append(f"stream client: {client.error}")
    if frames < args.frames and not any(f.startswith("gave up") for f in failures):
        failures.append(f"only {frames} of {args.frames} frames arrived")
    if len(warm) >= 2:
        start, end = warm[0][2], warm[-1][2]
        growth = end - start
        hours = (warm[-1][0] - warm[0][0]) / 3600.0
        result.update(
            rss_start_mb=round(start, 1),
            rss_end_mb=round(end, 1),
            rss_max_mb=round(max(s[2] for s in warm), 1),
            rss_growth_mb=round(growth, 2),
            rss_growth_mb_per_h=round(growth / hours, 2) if hours > 0 else None,
        )
        if growth >= args.max_growth_mb:
            failures.append(f"RSS grew {growth:.1f} MiB after warm-up (limit {args.max_growth_mb})")
    else:
        failures.append("too few RSS samples after warm-up (run longer or lower --sample-s)")
    if client and client.max_gap_s > args.max_stall_s:
        failures.append(f"stall: {client.max_gap_s:.2f} s between frames (limit {args.max_stall_s})")
    result["ok"] = not failures
    result["failures"] = failures
    if args.keep_log:
        result["daemon_log"] = str(log)
    else:
        log.unlink(missing_ok=True)
        cfg.unlink(missing_ok=True)
        os.rmdir(tmp)
    print(json.dumps(result))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
