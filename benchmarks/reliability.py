"""A bounded reliability probe of the running daemon, loopback only: clients held, load, floods, signals.

Starts ``vanity run`` on 127.0.0.1 (a free port; nothing leaves the machine) under the open-file
limit systemd gives a service by default (``--nofile 1024``), then, in order:

1. **latency**: p50 of ``GET /api/state`` on fresh connections and on one keep-alive connection;
2. **load**: ``--streams`` MJPEG readers and ``--pollers`` keep-alive API clients for ``--seconds``:
   frames per second per reader, API requests per second, and whether one reader more is refused
   (``server.max_streams``) while ``/healthz`` still answers;
3. **flood**: ``--flood`` sockets that each send half a request and then nothing; while they are
   open, ``/healthz`` is asked ``--probes`` times (each must answer 200 within 1 s);
4. **resources**: RSS and open file descriptors before and after, the log's size;
5. **stop**: SIGTERM, how long the exit took and its status.

Prints one JSON object. Exits 1 if a check failed: ``/healthz`` slower than 1 s (or failing) during
the flood, a log over 1 MB, descriptors not back within 8 of the start, an exit status other
than 0 or an exit slower than 2 s.

Run: ``.venv/bin/python benchmarks/reliability.py [--source demo] [--streams 8] [--flood 1100]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import statistics
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

HOST = "127.0.0.1"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for pid {pid}")


def open_fds(pid: int) -> int:
    """Open file descriptors of a process (Linux)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def p50_ms(samples: list[float]) -> float:
    """Median in milliseconds of durations in seconds."""
    return round(statistics.median(samples) * 1e3, 2)


class Daemon:
    """``vanity run`` on loopback under an open-file limit; its output goes to a log file."""

    def __init__(self, args, tmp: Path):
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log = tmp / "daemon.log"
        cfg = tmp / "vanity.toml"
        cfg.write_text(
            f'[model]\npath = {json.dumps(str(args.model))}\nthreads = 1\n\n[server]\nhost = "{HOST}"\n'
            f"port = {self.port}\nmax_streams = {args.max_streams}\n"
        )
        nofile = args.nofile

        def limit() -> None:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(nofile, hard), hard))

        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        with open(self.log, "wb") as logf:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edge.cli", "run", "--config", str(cfg), "--source", args.source],
                stdout=logf,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env=env,
                preexec_fn=limit,
            )

    def wait_healthy(self, timeout: float) -> None:
        """Until /healthz answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited {self.proc.returncode}: {self.log.read_text()[-1500:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"daemon not healthy in {timeout} s: {self.log.read_text()[-1500:]}")

    def stop(self, timeout: float = 10.0) -> tuple[float, int]:
        """SIGTERM; (seconds to exit, exit status)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return time.monotonic() - t0, self.proc.returncode


def raw_get(port: int, path: str, timeout: float) -> int | None:
    """Status of ``GET path`` on a fresh connection (plain socket: the client costs nothing); None on failure."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    return None
                data += chunk
            return int(data.split(b" ", 2)[1])
    except (OSError, ValueError, IndexError):
        return None


def healthz_time(port: int, timeout: float = 1.0) -> float | None:
    """Seconds for /healthz on a fresh connection to answer 200; None if it did not within ``timeout``."""
    t0 = time.monotonic()
    ok = raw_get(port, "/healthz", timeout) == 200
    took = time.monotonic() - t0
    return took if ok and took <= timeout else None


def _read_response(s: socket.socket) -> int:
    """Read one HTTP/1.1 response with a Content-Length from ``s``; its status."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-response")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    fields = dict(ln.partition(b":")[::2] for ln in head.split(b"\r\n")[1:])
    length = int({k.lower(): v for k, v in fields.items()}[b"content-length"])
    while len(body) < length:
        body += s.recv(65536)
    return int(head.split(b" ", 2)[1])


def latency(port: int, n: int) -> dict[str, float]:
    """p50 of GET /api/state on fresh connections and on one keep-alive connection (plain sockets both)."""
    fresh, kept = [], []
    request = f"GET /api/state HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(request)
        _read_response(s)
        for _ in range(n):  # alternated, so that both see the same load on the machine
            t0 = time.perf_counter()
            raw_get(port, "/api/state", 5)
            fresh.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            s.sendall(request)
            _read_response(s)
            kept.append(time.perf_counter() - t0)
    return {"fresh_p50_ms": p50_ms(fresh), "keep_alive_p50_ms": p50_ms(kept)}


class Reader(threading.Thread):
    """An MJPEG viewer counting the frames it receives (frame boundaries by the multipart marker)."""

    def __init__(self, url: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.url, self.stop_evt, self.frames, self.status, self.error = url, stop, 0, None, None

    def run(self) -> None:
        try:
            with httpx.stream("GET", self.url + "/stream.mjpg", timeout=10) as r:
                self.status = r.status_code
                if r.status_code != 200:
                    return
                for chunk in r.iter_raw(65536):
                    self.frames += chunk.count(b"--vanityframe")
                    if self.stop_evt.is_set():
                        return
        except Exception as e:  # reported in the result
            self.error = f"{type(e).__name__}: {e}"


class Poller(threading.Thread):
    """A keep-alive API client asking for /api/state as fast as it is answered."""

    def __init__(self, url: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.url, self.stop_evt, self.requests, self.errors = url, stop, 0, 0

    def run(self) -> None:
        with httpx.Client(timeout=5) as c:
            while not self.stop_evt.is_set():
                try:
                    self.errors += c.get(self.url + "/api/state").status_code >= 500
                    self.requests += 1
                except httpx.HTTPError:
                    self.errors += 1


def load(url: str, port: int, streams: int, pollers: int, seconds: float) -> dict:
    """Readers and pollers together for ``seconds``; one reader more must be refused."""
    stop = threading.Event()
    readers = [Reader(url, stop) for _ in range(streams)]
    for r in readers:
        r.start()
    time.sleep(1.0)  # every reader connected and past its first frames
    extra = Reader(url, stop)
    extra.start()
    extra.join(5)
    polls = [Poller(url, stop) for _ in range(pollers)]
    start_frames = [r.frames for r in readers]
    t0 = time.monotonic()
    for p in polls:
        p.start()
    health = []
    while time.monotonic() - t0 < seconds:
        health.append(healthz_time(port, 2.0))
        time.sleep(0.5)
    took = time.monotonic() - t0
    fps = [(r.frames - f0) / took for r, f0 in zip(readers, start_frames, strict=True)]
    stop.set()
    for t in [*readers, *polls]:
        t.join(5)
    ok_health = [h for h in health if h is not None]
    return {
        "streams_held": sum(r.status == 200 and r.error is None for r in readers),
        "stream_over_limit_status": extra.status,
        "stream_fps_min": round(min(fps), 1) if fps else 0.0,
        "stream_fps_mean": round(sum(fps) / len(fps), 1) if fps else 0.0,
        "api_req_per_s": round(sum(p.requests for p in polls) / took, 1),
        "api_errors": sum(p.errors for p in polls),
        "healthz_under_load_max_ms": round(max(ok_health) * 1e3, 1) if ok_health else None,
        "healthz_under_load_failed": len(health) - len(ok_health),
    }


def flood(port: int, sockets: int, probes: int, hold_s: float) -> dict:
    """``sockets`` half-sent requests held open while /healthz is probed on fresh connections."""
    held: list[socket.socket] = []
    refused = 0
    t0 = time.monotonic()
    for _ in range(sockets):
        if refused >= 10:  # the daemon stopped accepting: bounded, not a minute of connect timeouts
            break
        s = socket.socket()
        s.settimeout(0.5)
        try:
            s.connect((HOST, port))
            s.sendall(f"GET /api/state HTTP/1.1\r\nHost: {HOST}\r\nX-Slow: ".encode())
            held.append(s)
        except OSError:
            refused += 1
            s.close()
    opened_s = time.monotonic() - t0
    times = []
    deadline = time.monotonic() + hold_s
    for _ in range(probes):
        times.append(healthz_time(port, 1.0))
        time.sleep(max(0.0, min(0.5, deadline - time.monotonic())))
    while time.monotonic() < deadline:
        time.sleep(0.1)
    closed_by_server = 0
    for s in held:
        try:
            s.setblocking(False)
            closed_by_server += s.recv(1) == b""
        except BlockingIOError:
            pass
        except OSError:
            closed_by_server += 1
        s.close()
    ok = [t for t in times if t is not None]
    return {
        "flood_sockets": sockets,
        "flood_connect_failed": refused,
        "flood_open_s": round(opened_s, 2),
        "flood_closed_by_server": closed_by_server,
        "healthz_during_flood_ok": len(ok),
        "healthz_during_flood_failed": len(times) - len(ok),
        "healthz_during_flood_max_ms": round(max(ok) * 1e3, 1) if ok else None,
    }


def main() -> int:
    """Run the probe; print one JSON object; return the exit code."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default="demo", help="Source of the daemon (demo, fake, ...).")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="Model bundle (.tflite with its .json).")
    ap.add_argument("--nofile", type=int, default=1024, help="The daemon's open-file limit (systemd's default).")
    ap.add_argument("--streams", type=int, default=8, help="MJPEG readers held during the load phase.")
    ap.add_argument("--max-streams", type=int, default=8, help="The daemon's server.max_streams.")
    ap.add_argument("--pollers", type=int, default=4, help="Keep-alive API clients during the load phase.")
    ap.add_argument("--seconds", type=float, default=10.0, help="Length of the load phase.")
    ap.add_argument("--flood", type=int, default=1100, help="Idle half-request sockets in the flood.")
    ap.add_argument("--probes", type=int, default=10, help="/healthz probes during the flood.")
    ap.add_argument("--hold-s", type=float, default=8.0, help="How long the flood's sockets stay open.")
    ap.add_argument("--keep-log", action="store_true", help="Keep the daemon's log and print its path.")
    args = ap.parse_args()
    if not args.model.is_file():
        print(json.dumps({"error": f"model bundle {args.model} not found (use --model)"}))
        return 2
    # The flood's sockets are this process's files too.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.flood + args.streams + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    tmp = Path(tempfile.mkdtemp(prefix="vanity-reliability-"))
    d = Daemon(args, tmp)
    result: dict = {"source": args.source, "nofile": args.nofile}
    failures: list[str] = []
    try:
        d.wait_healthy(90)
        time.sleep(1.0)
        pid = d.proc.pid
        result.update(rss_mb_before=round(rss_mb(pid), 1), fds_before=open_fds(pid))
        result.update(latency(d.port, 30))
        result.update(load(d.url, d.port, args.streams, args.pollers, args.seconds))
        log_before_flood = d.log.stat().st_size
        result.update(flood(d.port, args.flood, args.probes, args.hold_s))
        result["log_growth_during_flood_bytes"] = d.log.stat().st_size - log_before_flood
        time.sleep(2.0)
        result.update(rss_mb_after=round(rss_mb(pid), 1), fds_after=open_fds(pid))
        metrics = httpx.get(d.url + "/metrics", timeout=2).text
        for name in ("vanity_connections_evicted_total", "vanity_connections_timed_out_total"):
            for line in metrics.splitlines():
                if line.startswith(name + " "):
                    result[name] = float(line.split()[1])
    except Exception as e:  # reported, then the daemon is stopped
        failures.append(f"{type(e).__name__}: {e}")
    finally:
        took, status = d.stop()
        result.update(sigterm_exit_s=round(took, 2), sigterm_status=status, log_bytes=d.log.stat().st_size)

    if result.get("healthz_during_flood_failed", 1):
        failures.append("/healthz did not answer within 1 s during the flood")
    if result["log_bytes"] > 1_000_000:
        failures.append(f"log grew to {result['log_bytes']} bytes")
    if "fds_after" in result and result["fds_after"] > result["fds_before"] + 8:
        failures.append(f"file descriptors {result['fds_before']} -> {result['fds_after']}")
    if status != 0 or took > 2.0:
        failures.append(f"SIGTERM: status {status} after {took:.2f} s")
    result["failures"] = failures
    if args.keep_log:
        result["log"] = str(d.log)
    print(json.dumps(result, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
