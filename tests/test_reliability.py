"""A kiosk that runs for months unattended: health, hot-swap, outages, bad input, signals, watchdog."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from edge.pipeline import THROTTLED_SYSFS, LivePipeline, PiHealth, read_pi_health
from edge.sdnotify import Notifier
from tests.conftest import ROOT, free_port

# ---------------------------------------------------------------------- helpers


def _wait(cond, timeout: float, what: str, poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _mirror(cfg, parser=None, notifier=None) -> LivePipeline:
    """A LivePipeline over the config's source and detector (FakeParser unless a parser is given)."""
    from edge.catalog import load_catalog
    from edge.detectors import make_detector
    from edge.makeup import Renderer
    from edge.runtime.fake import FakeParser
    from edge.sources import make_source

    return LivePipeline(
        cfg,
        parser or FakeParser(),
        make_detector(cfg.detector),
        Renderer(feather_px=cfg.render.feather_px),
        load_catalog(cfg.catalog),
        make_source(cfg.source),
        notifier=notifier,
    )


def _with(cfg, **sections):
    """A copy of cfg with some fields of some sections changed."""
    return cfg.model_copy(update={k: getattr(cfg, k).model_copy(update=v) for k, v in sections.items()})


def _fake_vcgencmd(bin_dir: Path, output: str, calls: Path) -> Path:
    """A `vcgencmd` on PATH that prints ``output`` and counts its calls."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "vcgencmd"
    exe.write_text(f'#!/bin/sh\necho "$1" >> "{calls}"\necho "{output}"\n')
    exe.chmod(0o755)
    return exe


def _calls(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


# ---------------------------------------------------------------------- Raspberry Pi health


@pytest.fixture
def pi_root(tmp_path) -> Path:
    """A fake /sys with a CPU temperature of 61.2 °C."""
    zone = tmp_path / "sys" / "class" / "thermal" / "thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "temp").write_text("61234\n")
    return tmp_path / "sys"


def test_pi_health_reads_temperature_and_vcgencmd_flags(pi_root, tmp_path, monkeypatch):
    """Guards against /healthz hiding an overheating or under-powered Pi (the usual months-later failure)."""
    calls = tmp_path / "calls"
    _fake_vcgencmd(tmp_path / "bin", "throttled=0x50005", calls)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    h = read_pi_health(pi_root)
    assert h["cpu_temp_c"] == pytest.approx(61.234)
    assert h["throttled"] == "0x50005"
    # 0x50005: under-voltage and throttled now, and both have happened since boot.
    assert h["under_voltage"] and h["throttling_now"]
    assert h["under_voltage_occurred"] and h["throttling_occurred"]
    assert not h["freq_capped"] and not h["soft_temp_limit"] and not h["freq_capped_occurred"]
    assert _calls(calls) == 1


def test_pi_health_prefers_sysfs_to_forking_vcgencmd(pi_root, tmp_path, monkeypatch):
    """Guards against forking a process for what the firmware already exposes in sysfs."""
    calls = tmp_path / "calls"
    _fake_vcgencmd(tmp_path / "bin", "throttled=0xdead", calls)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    node = pi_root / THROTTLED_SYSFS
    node.parent.mkdir(parents=True)
    node.write_text("50000\n")
    h = read_pi_health(pi_root)
    assert h["throttled"] == "0x50000" and h["under_voltage_occurred"] and not h["under_voltage"]
    assert _calls(calls) == 0


def test_pi_health_is_empty_off_a_pi(tmp_path):
    """Guards against health failing (or inventing values) on a machine that is not a Pi."""
    assert read_pi_health(tmp_path, vcgencmd="vanity-no-such-vcgencmd") == {}


def test_healthz_does_not_fork_vcgencmd_per_request(fake_pipeline, pi_root, tmp_path, monkeypatch):
    """Guards against a kiosk page polling /healthz forking `vcgencmd` on every request."""
    from fastapi.testclient import TestClient

    from edge.server import create_app

    calls = tmp_path / "calls"
    _fake_vcgencmd(tmp_path / "bin", "throttled=0x0", calls)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    now = [100.0]
    fake_pipeline.pi_health = PiHealth(pi_root, ttl_s=5.0, clock=lambda: now[0])
    with TestClient(create_app(fake_pipeline, fake_pipeline.cfg)) as client:
        for _ in range(30):
            body = client.get("/healthz").json()
        assert body["cpu_temp_c"] == pytest.approx(61.234) and body["throttled"] == "0x0"
        assert _calls(calls) == 1
        # The health loop refreshes every ttl_s; requests alone refresh only a stale value.
        now[0] += 6.0
        fake_pipeline.health_tick()
        client.get("/healthz")
        assert _calls(calls) == 2
        now[0] += 6.0
        for _ in range(10):
            client.get("/healthz")
        assert _calls(calls) == 2
        now[0] += 10.0
        client.get("/healthz")
        assert _calls(calls) == 3


# ---------------------------------------------------------------------- health loop: logs and watchdog


def test_steady_health_logs_once(fake_pipeline, caplog):
    """Guards against log spam: a steady state (fps wobbling) must log one line, not one per second."""
    caplog.set_level(logging.INFO, logger="edge.pipeline")
    fake_pipeline.health_interval = 0.02
    fake_pipeline.start()
    try:
        _wait(lambda: fake_pipeline.health().healthy, 5, "frames")
        time.sleep(1.2)  # ~60 health rounds
        assert fake_pipeline.health().healthy
    finally:
        fake_pipeline.stop()
    health = [r.getMessage() for r in caplog.records if r.getMessage().startswith("health:")]
    assert sum(m.startswith("health: ok") for m in health) == 1, health
    assert len(health) <= 2, health  # at most a "camera starting" before the first frame
    camera = [r.getMessage() for r in caplog.records if r.getMessage().startswith("camera ")]
    assert camera == ["camera fake: delivering frames"]


def test_watchdog_is_not_fed_while_frames_stop(fake_cfg):
    """Guards against feeding systemd's watchdog while the camera is dead (no restart would ever come)."""
    cfg = _with(
        fake_cfg,
        source={"fail_after": 40, "fail_for": 0},
        health={"reconnect_min_s": 0.05, "reconnect_max_s": 0.1, "max_frame_age_s": 0.3},
    )
    notifier = Notifier(address="")
    m = _mirror(cfg, notifier=notifier)
    m.health_interval = 0.02
    m.start()
    try:
        _wait(lambda: "WATCHDOG=1" in notifier.sent, 5, "the first WATCHDOG=1")
        _wait(lambda: any(s.startswith("STATUS=camera") for s in notifier.sent), 5, "the outage status")
        fed = list(notifier.sent).count("WATCHDOG=1")
        time.sleep(0.6)  # ~30 health rounds, all unhealthy
        assert not m.health().healthy
        sent = list(notifier.sent)
    finally:
        m.stop()
    assert sent.count("WATCHDOG=1") == fed, "the watchdog was fed while no frames flowed"
    outage = next(i for i, s in enumerate(sent) if s.startswith("STATUS=camera"))
    assert "WATCHDOG=1" not in sent[outage:]
    assert "WATCHDOG=1" in sent[:outage]


def test_health_loop_survives_an_error(fake_pipeline, caplog):
    """Guards against one failing health round killing the loop (and so the watchdog) for good."""
    calls = {"n": 0}
    real = fake_pipeline.check_model

    def flaky():
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk hiccup")
        return real()

    fake_pipeline.check_model = flaky
    fake_pipeline.health_interval = 0.02
    fake_pipeline.start()
    try:
        _wait(lambda: calls["n"] >= 5, 5, "health rounds after the error")
    finally:
        fake_pipeline.stop()
    assert any("health check failed" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------- model hot-swap (real bundle)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _variant(model: Path, name: str) -> tuple[bytes, bytes]:
    """Another valid bundle: the same network padded (a different hash), with its own sidecar."""
    data = model.read_bytes() + b"\0" * 64
    meta = json.loads(model.with_suffix(".json").read_text())
    meta.update(name=name, tflite_sha256=hashlib.sha256(data).hexdigest())
    return data, json.dumps(meta, indent=2).encode()


@pytest.fixture
def bundle(default_model, tmp_path) -> Path:
    """A private copy of the default bundle that a test may replace."""
    path = tmp_path / "model" / "vanity.tflite"
    path.parent.mkdir()
    shutil.copy(default_model, path)
    shutil.copy(default_model.with_suffix(".json"), path.with_suffix(".json"))
    return path


@pytest.fixture
def swap_mirror(fake_cfg, bundle):
    """A LivePipeline running the real bundle copy, threads not started."""
    from edge.runtime import open_parser

    cfg = _with(fake_cfg, model={"path": bundle, "threads": 1}, source={"fps": 60})
    m = _mirror(cfg, parser=open_parser(bundle, "auto", 1))
    yield m
    m.stop()


def _sample_gaps(m: LivePipeline, stop: threading.Event, out: dict) -> None:
    last_seq, last_t = m.out.seq, time.monotonic()
    out["max_gap"] = 0.0
    while not stop.is_set():
        now = time.monotonic()
        if m.out.seq != last_seq:
            last_seq, last_t = m.out.seq, now
        out["max_gap"] = max(out["max_gap"], now - last_t)
        time.sleep(0.005)


def test_hot_swap_keeps_the_stream_flowing(swap_mirror, bundle, caplog):
    """Guards against a model update dropping the stream, or a half-copied bundle being logged as refused."""
    m = swap_mirror
    m.health_interval = 0.05
    old = m.parser
    m.start()
    gaps: dict = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_gaps, args=(m, stop, gaps), daemon=True)
    try:
        _wait(lambda: m.out.seq >= 5, 20, "frames")
        sampler.start()
        data, side = _variant(bundle, "vanity-next")
        _write_atomic(bundle, data)  # the .tflite first ...
        time.sleep(0.3)  # ... several health rounds see the new model with the old sidecar ...
        _write_atomic(bundle.with_suffix(".json"), side)  # ... then its metadata
        _wait(lambda: m.analyzer.parser is not old, 10, "the swap")
        seq = m.out.seq
        _wait(lambda: m.out.seq >= seq + 5, 10, "frames after the swap")
    finally:
        stop.set()
        m.stop()
    assert m.analyzer.parser.metadata.name == "vanity-next"
    assert "vanity-next" in m.health().model
    assert m.model_swaps == 1 and m.model_errors == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert gaps["max_gap"] < 1.0, f"the stream stalled {gaps['max_gap']:.2f} s during the swap"


def test_half_replaced_bundle_is_retried_and_refused_once(swap_mirror, bundle, caplog):
    """Guards against a transient hash mismatch being final (or logged every second) mid-replacement."""
    m = swap_mirror
    old = m.parser
    data, side = _variant(bundle, "vanity-next")
    _write_atomic(bundle, data)
    # Within the settle time: not refused, not logged; the old model runs.
    assert m.check_model() is False
    assert m.model_errors == [] and m.parser is old
    # Files unchanged for longer than the settle time: refused once, however often checked.
    m.model_settle_s = 0.0
    for _ in range(5):
        assert m.check_model() is False
    assert len(m.model_errors) == 1 and "SHA-256 mismatch" in m.model_errors[0]
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
    assert m.parser is old
    # The sidecar arrives: retried and swapped.
    _write_atomic(bundle.with_suffix(".json"), side)
    assert m.check_model() is True
    assert m.parser is not old and m.parser.metadata.name == "vanity-next"


@pytest.mark.parametrize("corruption", ["garbage", "tampered", "sidecar-removed"])
def test_bad_new_bundle_is_refused_and_old_keeps_running(swap_mirror, bundle, default_model, corruption):
    """Guards against a broken model update taking the kiosk down instead of being refused."""
    m = swap_mirror
    m.health_interval = 0.05
    m.model_settle_s = 0.2
    old = m.parser
    m.start()
    try:
        _wait(lambda: m.health().healthy, 20, "frames")
        if corruption == "garbage":
            junk = os.urandom(50_000)
            meta = json.loads(bundle.with_suffix(".json").read_text())
            meta["tflite_sha256"] = hashlib.sha256(junk).hexdigest()
            _write_atomic(bundle, junk)
            _write_atomic(bundle.with_suffix(".json"), json.dumps(meta).encode())
            reason = "cannot load this model"
        elif corruption == "tampered":
            data = bytearray(bundle.read_bytes())
            data[len(data) // 2] ^= 0xFF
            _write_atomic(bundle, bytes(data))
            reason = "SHA-256 mismatch"
        else:
            bundle.with_suffix(".json").unlink()
            reason = "missing"
        _wait(lambda: m.model_errors, 10, "the refusal")
        assert len(m.model_errors) == 1 and reason in m.model_errors[0], m.model_errors
        assert m.analyzer.parser is old
        seq = m.out.seq
        _wait(lambda: m.out.seq >= seq + 5, 10, "frames after the refusal")
        h = m.health()
        assert h.healthy and h.extras["model_errors"] == m.model_errors
        # A good bundle replacing the bad one is picked up.
        data, side = _variant(default_model, "vanity-fixed")
        _write_atomic(bundle.with_suffix(".json"), side)
        _write_atomic(bundle, data)
        _wait(lambda: m.analyzer.parser is not old, 10, "the good bundle")
        assert m.analyzer.parser.metadata.name == "vanity-fixed"
        assert len(m.model_errors) == 1
    finally:
        m.stop()


# ---------------------------------------------------------------------- the daemon


def _toml(d: dict) -> str:
    lines = []
    for section, values in d.items():
        lines.append(f"[{section}]")
        for k, v in values.items():
            lines.append(f"{k} = {json.dumps(v)}")
    return "\n".join(lines) + "\n"


def test_daemon_recovers_from_a_camera_outage(default_model, tmp_path):
    """Guards against a camera glitch killing the daemon, /healthz lying during it, or logs leaving stdout."""
    port = free_port()
    cfg = tmp_path / "vanity.toml"
    cfg.write_text(
        _toml(
            {
                "source": {"kind": "fake", "fps": 60, "fail_after": 150, "fail_for": 3},
                "detector": {"kind": "fake", "box": [220, 140, 200, 200]},
                "model": {"path": str(default_model), "threads": 1},
                "server": {"port": port},
                "health": {"max_frame_age_s": 0.5, "reconnect_min_s": 0.3, "reconnect_max_s": 1.0},
            }
        )
    )
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    url = f"http://127.0.0.1:{port}"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "run", "--config", str(cfg)], stdout=o, stderr=e, cwd=ROOT
        )
    try:
        seen: list[tuple[int, str]] = []

        def status() -> bool:
            assert proc.poll() is None, err.read_text()[-2000:]
            try:
                r = httpx.get(url + "/healthz", timeout=1)
            except httpx.HTTPError:
                return False
            body = r.json()
            if not seen or seen[-1] != (r.status_code, body["camera"]):
                seen.append((r.status_code, body["camera"]))
            return re.search(r"2.*5.*2", "".join(str(c)[0] for c, _ in seen)) is not None

        _wait(status, 60, "healthy, then 503, then healthy again", poll=0.05)
        assert (503, "reconnecting") in seen, seen
        health = httpx.get(url + "/healthz", timeout=2).json()
        assert health["camera_gaps"] == 1 and health["camera"] == "ok"
        metrics = httpx.get(url + "/metrics", timeout=2).text
        assert re.search(r"^vanity_camera_gaps_total 1$", metrics, re.M), metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    stdout = out.read_text()
    # Logs go to stdout (journald), on state changes only.
    assert "camera fake: reconnecting" in stdout and stdout.count("camera fake: reconnecting") == 1
    assert stdout.count("camera fake: delivering frames") == 2
    assert "vanity." not in err.read_text()


def _cli(args: list[str], tmp_path: Path, trace: str | None = None, timeout: float = 60):
    """Run `vanity ...`; with ``trace``, under strace for those syscalls (returns the trace too)."""
    cmd = [sys.executable, "-m", "edge.cli", *args]
    log = tmp_path / "strace.log"
    if trace:
        cmd = ["strace", "-f", "-qq", "-e", f"trace={trace}", "-o", str(log), *cmd]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    return res, (log.read_text() if trace else "")


def _strace_works() -> bool:
    if shutil.which("strace") is None:
        return False
    return subprocess.run(["strace", "-qq", "-o", "/dev/null", "true"], capture_output=True).returncode == 0


@pytest.mark.parametrize("kind", ["invalid", "not-toml"])
def test_malformed_config_exits_2_listing_each_error_and_starts_nothing(tmp_path, kind):
    """Guards against a typo in the config starting a half-configured kiosk, or an error without its location."""
    bad = tmp_path / "bad.toml"
    if kind == "invalid":
        bad.write_text(
            '[server]\nport = "eighty"\n\n[source]\nkind = "fake"\nfps = -5\n\n[render]\ncolour = "red"\n'
            "\n[health]\nmax_frame_age_s = 0\n"
        )
        wanted = ["server.port", "source.fake.fps", "render.colour", "health.max_frame_age_s"]
    else:
        bad.write_text("[server]\nport = = 8080\n")
        wanted = ["bad.toml", "line 2"]
    trace = "bind,listen" if _strace_works() else None
    res, syscalls = _cli(["run", "--config", str(bad)], tmp_path, trace)
    assert res.returncode == 2, res.stdout + res.stderr
    for where in wanted:
        assert where in res.stderr, f"{where!r} not reported: {res.stderr}"
    assert "Traceback" not in res.stderr
    assert "serving" not in res.stdout and "camera" not in res.stdout
    if trace:
        assert "bind(" not in syscalls and "listen(" not in syscalls, syscalls[-2000:]


def _fake_bundle(path: Path, data: bytes, **meta_over) -> None:
    """A bundle whose sidecar is well-formed and pins ``data`` (unless overridden)."""
    from edge.runtime.fake import FakeParser

    meta = FakeParser().metadata.model_copy(update={"tflite_sha256": hashlib.sha256(data).hexdigest()})
    raw = json.loads(meta.model_dump_json())
    raw.update(meta_over)
    path.write_bytes(data)
    path.with_suffix(".json").write_text(json.dumps(raw))


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("garbage", "cannot load this model"),
        ("hash-mismatch", "SHA-256 mismatch"),
        ("unknown-schema", "unknown metadata schema_version"),
        ("no-sidecar", "metadata missing"),
        ("missing", "model file not found"),
    ],
)
def test_bad_bundle_at_start_exits_2_with_the_reason(tmp_path, case, reason):
    """Guards against the daemon starting (or crash-looping with a traceback) on a corrupt or mismatched bundle."""
    model = tmp_path / "m.tflite"
    junk = os.urandom(4096)
    if case == "garbage":
        _fake_bundle(model, junk)
    elif case == "hash-mismatch":
        _fake_bundle(model, junk, tflite_sha256="ab" * 32)
    elif case == "unknown-schema":
        _fake_bundle(model, junk, schema_version=99)
    elif case == "no-sidecar":
        model.write_bytes(junk)
    res, _ = _cli(["run", "--source", "fake", "--model", str(model), "--port", str(free_port())], tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "model bundle refused" in res.stderr and reason in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert "serving" not in res.stdout


class _StreamReader(threading.Thread):
    """A viewer of /stream.mjpg; records how its stream ended."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.bytes, self.error = url, 0, None
        self.connected = threading.Event()

    def run(self):
        try:
            with httpx.stream("GET", self.url + "/stream.mjpg", timeout=10) as r:
                for chunk in r.iter_bytes():
                    self.bytes += len(chunk)
                    self.connected.set()
        except Exception as e:  # recorded for the assertion
            self.error = e


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_daemon_within_2_s(default_model, daemon_factory, sig):
    """Guards against systemd SIGKILLing a daemon that is slow to stop (e.g. held open by a viewer)."""
    d = daemon_factory(["--source", "fake", "--model", str(default_model)])
    d.wait_healthy(90)
    viewer = _StreamReader(d.url)
    viewer.start()
    assert viewer.connected.wait(10), "no stream"
    took = d.stop(sig)
    viewer.join(5)
    log = d.log.read_text()
    assert took < 2.0, f"stopped in {took:.2f} s: {log[-2000:]}"
    assert d.proc.returncode == 0, log[-2000:]  # SIGTERM like SIGINT: a clean stop, not 143
    assert "stopped in" in log
    # The viewer's stream ended cleanly, not by a cancelled task.
    assert viewer.error is None, viewer.error
    assert "Traceback" not in log and "ERROR" not in log, log[-2000:]
