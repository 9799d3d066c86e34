"""Hardening: slow and idle clients, hostile pages on this machine, configs that pass the check but break the kiosk."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import typing
from argparse import Namespace
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from edge.config import ConfigError, VanityConfig, load_config
from edge.server import create_app
from tests.conftest import ROOT, free_port, no_tf_env, synthetic_frame

# ---------------------------------------------------------------------- helpers


def _with(cfg, **sections):
    """A copy of cfg with some fields of some sections changed."""
    return cfg.model_copy(update={k: getattr(cfg, k).model_copy(update=v) for k, v in sections.items()})


def _probe():
    """The reliability benchmark (benchmarks/reliability.py) as a module: the tests use its probes."""
    spec = importlib.util.spec_from_file_location("vanity_reliability", ROOT / "benchmarks" / "reliability.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@contextlib.contextmanager
def _serving(mirror, cfg, token: str | None = None):
    """The app behind the daemon's own uvicorn configuration, in a thread; yields (port, guard, server)."""
    from edge.daemon import BACKLOG, graceful_server, server_config
    from edge.netguard import ConnectionGuard

    guard = ConnectionGuard(cfg.server.max_connections, cfg.server.header_timeout_s)
    config = server_config(create_app(mirror, cfg, token=token, guard=guard), cfg, guard)
    server = graceful_server(config)
    sock = config.bind_socket()
    sock.listen(BACKLOG)
    th = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    th.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield sock.getsockname()[1], guard, server
    finally:
        server.should_exit = True
        th.join(5)


def _half_request(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    return s


def _closed_within(s: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``s`` (None if it stayed open)."""
    t0 = time.monotonic()
    s.settimeout(seconds)
    try:
        while s.recv(4096):
            pass
    except TimeoutError:
        return None
    except OSError:
        pass
    return time.monotonic() - t0


def _main(monkeypatch, capsys, *argv: str) -> tuple[int, str, str]:
    """Run the `vanity` entry point in-process; (exit status, stdout, stderr)."""
    from edge import cli

    monkeypatch.setattr(sys, "argv", ["vanity", *argv])
    with pytest.raises(SystemExit) as e:
        cli.main()
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


# ---------------------------------------------------------------------- 1. idle connections


def test_flood_of_idle_sockets_leaves_healthz_answering(default_model, tmp_path):
    """Guards against 1,100 half-sent requests under a 1024-file limit locking everyone out (and 78 MB of log)."""
    probe = _probe()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1400:
        pytest.skip(f"this process may open only {hard} files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1400) if soft != resource.RLIM_INFINITY else soft, hard))
    args = Namespace(model=default_model, nofile=1024, max_streams=8, source="fake")
    d = probe.Daemon(args, tmp_path)
    try:
        d.wait_healthy(90)
        result = probe.flood(d.port, sockets=1100, probes=5, hold_s=3.0)
        assert result["healthz_during_flood_failed"] == 0, result
        assert result["healthz_during_flood_max_ms"] < 1000, result
        # The guard closed the flood's sockets; nobody was left holding the daemon's descriptors.
        assert result["flood_closed_by_server"] >= 1000, result
        assert probe.healthz_time(d.port, 1.0) is not None
    finally:
        took, status = d.stop()
    log = d.log.read_text()
    assert d.log.stat().st_size < 1_000_000
    assert "out of system resource" not in log and "Traceback" not in log, log[-2000:]
    assert status == 0 and took < 2.0


def test_request_must_arrive_within_the_header_timeout(fake_pipeline, fake_cfg):
    """Guards against a client that trickles a request byte by byte holding a connection forever."""
    cfg = _with(fake_cfg, server={"header_timeout_s": 1.0})
    with _serving(fake_pipeline, cfg) as (port, guard, _):
        silent = _half_request(port)
        trickle = _half_request(port)
        stop = threading.Event()

        def drip():
            while not stop.is_set():
                with contextlib.suppress(OSError):
                    trickle.send(b"x")
                time.sleep(0.2)

        threading.Thread(target=drip, daemon=True).start()
        try:
            for s in (silent, trickle):
                took = _closed_within(s, 4.0)
                assert took is not None and took < 3.0, "a half-sent request kept its connection"
        finally:
            stop.set()
            silent.close()
            trickle.close()
        assert guard.stats.timed_out >= 2
        # A whole request is not cut, however long its response takes to read.
        assert httpx.get(f"http://127.0.0.1:{port}/api/catalog", timeout=5).status_code == 200


def test_connection_cap_closes_idle_ones_and_keeps_answering(fake_pipeline, fake_cfg):
    """Guards against idle sockets using up every connection so that /healthz (and the page) cannot get in."""
    cfg = _with(fake_cfg, server={"max_connections": 8, "max_streams": 2})
    probe = _probe()
    with _serving(fake_pipeline, cfg) as (port, guard, _):
        idle = [_half_request(port) for _ in range(30)]
        try:
            t0 = time.monotonic()
            assert probe.raw_get(port, "/healthz", 1.0) in (200, 503)  # answered (the fake camera is not started)
            assert time.monotonic() - t0 < 1.0
            assert len(guard) <= 8 and guard.stats.evicted >= 22
            # The oldest idle sockets were the ones closed.
            assert _closed_within(idle[0], 1.0) is not None
        finally:
            for s in idle:
                s.close()


def test_live_channels_beyond_the_limit_get_503_and_health_stays_open(fake_pipeline, fake_cfg):
    """Guards against viewers without limit starving the pipeline, or a full house locking out /healthz."""
    fake_pipeline.step(synthetic_frame())
    cfg = _with(fake_cfg, server={"max_streams": 2})
    probe = _probe()
    with _serving(fake_pipeline, cfg) as (port, _, _):
        held = []
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            assert s.recv(64).startswith(b"HTTP/1.1 200"), "a viewer within the limit was refused"
            held.append(s)
        try:
            assert probe.raw_get(port, "/stream.mjpg", 2.0) == 503
            assert probe.raw_get(port, "/api/events", 2.0) == 503
            assert probe.raw_get(port, "/healthz", 1.0) in (200, 503)
            assert probe.raw_get(port, "/frame.jpg", 1.0) == 200
        finally:
            for s in held:
                s.close()
        # Closed viewers give their slots back.
        deadline = time.monotonic() + 5
        while probe.raw_get(port, "/metrics", 1.0) == 200 and time.monotonic() < deadline:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            if "vanity_live_channels 0" in text:
                break
            time.sleep(0.1)
        assert "vanity_live_channels 0" in text


def test_watchdog_starves_while_the_server_does_not_answer(fake_pipeline):
    """Guards against feeding systemd's watchdog while nobody can reach the page (it would never restart)."""
    from edge.sdnotify import Notifier

    notifier = Notifier(address="")
    fake_pipeline.notifier = notifier
    answering = [False]
    fake_pipeline.server_alive = lambda: answering[0]
    fake_pipeline.health_interval = 0.02
    fake_pipeline.start()
    try:
        deadline = time.monotonic() + 10
        while not fake_pipeline.health().healthy and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        assert fake_pipeline.health().healthy and "WATCHDOG=1" not in notifier.sent
        answering[0] = True
        deadline = time.monotonic() + 5
        while "WATCHDOG=1" not in notifier.sent and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        fake_pipeline.stop()
    assert "WATCHDOG=1" in notifier.sent


def test_server_probe_needs_an_http_answer(fake_pipeline, fake_cfg):
    """Guards against a liveness probe that counts a server accepting but never answering as alive."""
    from edge.netguard import ServerProbe

    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(8)  # the kernel accepts; nothing ever answers
    try:
        assert ServerProbe("127.0.0.1", mute.getsockname()[1], timeout_s=0.3).ok() is False
    finally:
        mute.close()
    with _serving(fake_pipeline, fake_cfg) as (port, _, _):
        now = [0.0]
        probe = ServerProbe("0.0.0.0", port, every_s=5.0, clock=lambda: now[0])
        assert probe.ok() is True and probe.host == "127.0.0.1"
    assert probe.ok() is True  # cached for every_s
    now[0] = 6.0
    assert probe.ok() is False and probe.failures == 1


def test_repeating_errors_are_rate_limited():
    """Guards against an error repeated every second with a traceback (accept out of files) filling the disk."""
    from edge.netguard import RateLimitFilter

    now = [0.0]
    f = RateLimitFilter(every_s=60.0, clock=lambda: now[0])
    logger = logging.getLogger("vanity.test.ratelimit")
    logger.propagate = False
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    logger.addFilter(f)
    try:
        for i in range(1000):
            now[0] = i * 0.05
            try:
                raise OSError(24, "Too many open files")
            except OSError:
                logger.exception("socket.accept() out of system resource\nsocket: <fd=%d>", 7)
        logger.error("another message")
        now[0] = 100.0
        logger.exception("socket.accept() out of system resource\nsocket: <fd=%d>", 7)
    finally:
        logger.removeHandler(handler)
        logger.removeFilter(f)
    assert len(records) == 3
    assert "999 more like this" in records[2].getMessage()


# ---------------------------------------------------------------------- 2. configs that pass the check


def _float_fields():
    """(section, kind or None, field) for every float setting, union members included."""
    for section, info in VanityConfig.model_fields.items():
        ann = info.annotation
        members = typing.get_args(typing.get_args(ann)[0]) if typing.get_origin(ann) is typing.Annotated else ()
        models = members or ((ann,) if isinstance(ann, type) and hasattr(ann, "model_fields") else ())
        for model in models:
            kind = model.model_fields["kind"].default if "kind" in model.model_fields else None
            for name, f in model.model_fields.items():
                if f.annotation in (float, float | None):
                    yield section, kind, name


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan], ids=["inf", "-inf", "nan"])
@pytest.mark.parametrize(("section", "kind", "name"), list(_float_fields()))
def test_every_number_must_be_finite(section, kind, name, value):
    """Guards against `inf` passing validation (reset_after_s = inf: every /api/state a 500; photos kept forever)."""
    over = {section: {name: value, **({"kind": kind} if kind else {})}}
    if kind in ("image", "video"):
        over[section]["path"] = "x"
    with pytest.raises(ConfigError) as e:
        load_config(None, over)
    assert any(f"{section}." in err and name in err for err in e.value.errors), e.value.errors


def test_infinite_numbers_in_toml_fail_config_check(tmp_path, monkeypatch, capsys):
    """Guards against `vanity config check` passing `inf` (and `config show` printing `Infinity`, not JSON)."""
    p = tmp_path / "vanity.toml"
    p.write_text('[session]\nreset_after_s = inf\n[snapshots]\nexpire_hours = inf\n[server]\nhost = "kiosk"\n')
    code, out, err = _main(monkeypatch, capsys, "config", "check", str(p))
    assert code == 2, out + err
    for where in ("session.reset_after_s", "snapshots.expire_hours", "server.host"):
        assert where in err, err
    code, out, err = _main(monkeypatch, capsys, "config", "show", "--config", str(p))
    assert code == 2 and "Infinity" not in out


def test_config_check_refuses_what_run_refuses(tmp_path, monkeypatch, capsys):
    """Guards against a config that passes `vanity config check` and then fails `vanity run` on the kiosk."""
    p = tmp_path / "vanity.toml"
    p.write_text('catalog = "absent.toml"\n[render]\nlook = "no-such-look"\n[model]\npath = "absent.tflite"\n')
    code, out, err = _main(monkeypatch, capsys, "config", "check", str(p))
    assert code == 2, out + err
    for where in ("render.look", "model.path", "catalog"):
        assert where in err, err
    assert "Traceback" not in err
    code, out, err_run = _main(monkeypatch, capsys, "run", "--config", str(p), "--source", "fake")
    assert code == 2 and "serving" not in out
    # One validation: the same problems, worded the same way.
    assert [ln for ln in err_run.splitlines() if ln.startswith("  ")] == [
        ln for ln in err.splitlines() if ln.startswith("  ")
    ]


def test_config_show_redacts_the_token(tmp_path, monkeypatch, capsys):
    """Guards against `vanity config show` printing the API token in clear text (into a ticket, a log)."""
    secret = "s3cret-token-0123456789"
    p = tmp_path / "vanity.toml"
    p.write_text(f'[server]\ntoken = "{secret}"\n')
    for extra in ([], ["--changed"]):
        code, out, _ = _main(monkeypatch, capsys, "config", "show", "--config", str(p), *extra)
        assert code == 0 and secret not in out
        data = json.loads(out, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
        assert data["server"]["token"] == "**********"


@pytest.mark.parametrize("token", [" " * 16, "\t" * 20, "token with spaces inside"], ids=["spaces", "tabs", "inner"])
def test_blank_tokens_are_refused(token, tmp_path, monkeypatch):
    """Guards against a token of 16 spaces (or one a copy-paste split) being accepted as a secret."""
    from edge.daemon import DaemonError, resolve_token

    with pytest.raises(ConfigError) as e:
        load_config(None, {"server": {"token": token}})
    assert any("server.token" in x for x in e.value.errors)
    (tmp_path / "vanity-token").write_text(token + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(DaemonError):
        resolve_token(load_config(None, {"server": {"host": "0.0.0.0"}}))


# ---------------------------------------------------------------------- 3. the loopback write guard


@pytest.fixture
def kiosk(fake_pipeline, fake_cfg, tmp_path):
    """The app with snapshots on, as a page on 127.0.0.1:8080 would reach it."""
    from edge.snapshots import SnapshotStore

    cfg = _with(fake_cfg, snapshots={"enabled": True, "directory": tmp_path / "snaps"})
    fake_pipeline.step(synthetic_frame())
    app = create_app(fake_pipeline, cfg, snapshots=SnapshotStore(cfg.snapshots))
    with TestClient(app, base_url="http://127.0.0.1:8080") as c:
        yield c


def test_origin_null_cannot_take_a_photo_or_change_the_look(kiosk):
    """Guards against a sandboxed iframe or a data: page (Origin: null) saving the customer's photo."""
    null = {"Origin": "null"}
    assert kiosk.post("/api/snapshot", headers=null).status_code == 403
    assert kiosk.put("/api/look", json={"name": "bold"}, headers=null).status_code == 403
    assert kiosk.get("/frame.jpg", headers=null).status_code == 403
    own = {"Origin": "http://127.0.0.1:8080"}
    assert kiosk.post("/api/snapshot", headers=own).status_code == 200
    assert kiosk.put("/api/look", json={"name": "bold"}, headers=own).status_code == 200


def test_dns_rebinding_host_is_refused(kiosk):
    """Guards against a rebinding page (Host: evil.example, matching Origin) driving the mirror or reading the face."""
    evil = {"Host": "evil.example:8080", "Origin": "http://evil.example:8080"}
    assert kiosk.put("/api/look", json={"name": "bold"}, headers=evil).status_code == 421
    assert kiosk.get("/frame.jpg", headers={"Host": "evil.example"}).status_code == 421
    assert kiosk.get("/api/state", headers={"Host": "evil.example"}).status_code == 421
    assert kiosk.get("/frame.jpg", headers={"Host": "localhost:8080"}).status_code == 200
    assert kiosk.get("/frame.jpg", headers={"Host": "[::1]:8080"}).status_code == 200


def test_cross_site_page_cannot_embed_the_image(kiosk):
    """Guards against a foreign page showing the customer's face through <img src=http://127.0.0.1:8080/frame.jpg>."""
    assert kiosk.get("/frame.jpg", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert kiosk.get("/api/state", headers={"Sec-Fetch-Site": "same-site"}).status_code == 403
    assert kiosk.get("/frame.jpg", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    # Public routes stay public.
    assert kiosk.get("/api/catalog", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200


def test_lan_names_are_served_only_when_configured(fake_pipeline, fake_cfg):
    """Guards against a LAN kiosk that answers no name (or any name)."""
    fake_pipeline.step(synthetic_frame())
    cfg = _with(fake_cfg, server={"allowed_hosts": ["kiosk.local"]})
    with TestClient(create_app(fake_pipeline, cfg), base_url="http://kiosk.local:8080") as c:
        assert c.get("/frame.jpg").status_code == 200
        own = {"Origin": "http://kiosk.local:8080"}
        assert c.put("/api/look", json={"name": "none"}, headers=own).status_code == 200
        assert c.get("/frame.jpg", headers={"Host": "other.local"}).status_code == 421


def test_lan_mode_must_name_its_hosts():
    """Guards against a LAN kiosk that starts but answers no name (every tablet request a 421)."""
    from edge.daemon import DaemonError, check_deployment

    lan = {"host": "0.0.0.0", "token": "s3cret-token-0123456789"}
    with pytest.raises(DaemonError) as e:
        check_deployment(load_config(None, {"server": lan}))
    assert any(x.startswith("server.allowed_hosts") for x in e.value.errors), e.value.errors
    assert check_deployment(load_config(None, {"server": {**lan, "allowed_hosts": ["kiosk.local"]}}))


# ---------------------------------------------------------------------- 4. tracebacks instead of messages


@pytest.mark.parametrize(
    "argv",
    [["run", "--bogus"], ["run", "--port", "notanint"], ["config", "check"], ["eval"]],
    ids=["unknown-option", "bad-int", "missing-config", "missing-argument"],
)
def test_usage_errors_are_one_line_and_exit_2(argv, monkeypatch, capsys):
    """Guards against typer's own exception classes escaping as tracebacks (exit 1) on a typo."""
    code, out, err = _main(monkeypatch, capsys, *argv)
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err


def test_non_utf8_config_and_bundle_are_refused_with_a_message(tmp_path, default_model, monkeypatch, capsys):
    """Guards against a config or bundle .json that is not UTF-8 crashing (exit 1: a restart loop under systemd)."""
    bad = tmp_path / "vanity.toml"
    bad.write_bytes(b"[server]\nport = 8080 # caf\xe9\n")
    for argv in (["config", "check", str(bad)], ["run", "-c", str(bad)], ["config", "show", "-c", str(bad)]):
        code, _, err = _main(monkeypatch, capsys, *argv)
        assert code == 2 and "not UTF-8" in err and "Traceback" not in err, (argv, err)
    catalog = tmp_path / "catalog.toml"
    catalog.write_bytes(b'[[products]]\nsku = "caf\xe9"\n')
    p = tmp_path / "cat.toml"
    p.write_text(f'catalog = "{catalog}"\n')
    code, _, err = _main(monkeypatch, capsys, "config", "check", str(p))
    assert code == 2 and "not UTF-8" in err and "Traceback" not in err, err
    model = tmp_path / "m.tflite"
    shutil.copy(default_model, model)
    model.with_suffix(".json").write_bytes(b'{"name": "\xff\xfe"}')
    code, _, err = _main(monkeypatch, capsys, "model", "info", str(model))
    assert code == 2 and "not UTF-8" in err and "Traceback" not in err, err


def test_restart_is_not_tried_on_bad_configuration():
    """Guards against exit 2 (bad config or bundle) being restarted every 3 s until the start limit."""
    from tests.test_systemd import SYSTEMD, parse_unit

    unit = parse_unit(SYSTEMD / "vanity.service")
    assert "2" in " ".join(unit["Service"]["RestartPreventExitStatus"]).split()


# ---------------------------------------------------------------------- 5. keep-alive latency


def test_accepted_sockets_have_tcp_nodelay(fake_pipeline, fake_cfg):
    """Guards against every keep-alive request waiting ~40 ms for a delayed ACK (Nagle on accepted sockets)."""
    from edge.netguard import SEND_BUFFER_BYTES

    with _serving(fake_pipeline, fake_cfg) as (port, _, server), httpx.Client(timeout=5) as c:
        c.get(f"http://127.0.0.1:{port}/api/catalog")
        conns = list(server.server_state.connections)
        assert conns
        for conn in conns:
            sock = conn.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            # A bounded kernel buffer: a viewer that falls behind gets fresh frames, not seconds of old ones.
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) <= 2 * SEND_BUFFER_BYTES


# ---------------------------------------------------------------------- 6. smaller findings


def test_video_played_once_stays_ended(fake_cfg, tmp_path):
    """Guards against a video with loop = false replaying through the reconnect path (/healthz flapping)."""
    import cv2
    import numpy as np

    from tests.test_reliability import _mirror

    path = tmp_path / "once.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    for i in range(6):
        w.write(np.full((480, 640, 3), 40 * i, np.uint8))
    w.release()
    cfg = fake_cfg.model_copy(
        update={
            "source": load_config(None, {"source": {"kind": "video", "path": str(path), "loop": False}}).source,
            "health": fake_cfg.health.model_copy(update={"reconnect_min_s": 0.05, "reconnect_max_s": 0.1}),
        }
    )
    m = _mirror(cfg)
    m.health_interval = 0.02
    states = []
    m.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and m.camera_state != "ended":
            time.sleep(0.01)
        for _ in range(50):  # a second of health rounds after the end
            states.append(m.camera_state)
            time.sleep(0.02)
        frames = m.frames
    finally:
        m.stop()
    assert set(states) == {"ended"}, states
    assert m.camera_gaps == 0 and frames <= 6
    h = m.health()
    assert not h.healthy and "end of the video" in h.reason


def test_bundle_with_renamed_classes_is_refused(default_model, fake_cfg, tmp_path, caplog):
    """Guards against a bundle whose metadata renames the classes (hash correct) hot-swapping in: lips vanish."""
    from edge.contract import BundleError, load_bundle
    from edge.runtime import open_parser
    from tests.test_reliability import _mirror

    model = tmp_path / "m.tflite"
    shutil.copy(default_model, model)
    shutil.copy(default_model.with_suffix(".json"), model.with_suffix(".json"))
    cfg = _with(fake_cfg, model={"path": model, "threads": 1})
    m = _mirror(cfg, parser=open_parser(model, "auto", 1))
    old = m.parser
    meta = json.loads(model.with_suffix(".json").read_text())
    meta["classes"] = [{"upper_lip": "lip_top", "lower_lip": "lip_bottom"}.get(c, c) for c in meta["classes"]]
    model.with_suffix(".json").write_text(json.dumps(meta))
    m.model_settle_s = 0.0
    assert m.check_model() is False
    assert m.parser is old and len(m.model_errors) == 1 and "classes differ" in m.model_errors[0]
    with pytest.raises(BundleError, match="missing"):
        load_bundle(model)


def test_head_is_answered_on_get_routes(kiosk):
    """Guards against HEAD getting 405 (monitoring probes use it), and a HEAD on a stream never ending."""
    for path in ("/", "/healthz", "/api/state", "/api/catalog", "/frame.jpg", "/metrics"):
        r = kiosk.head(path)
        assert r.status_code in (200, 503) and r.content == b"", (path, r.status_code)
    assert kiosk.head("/frame.jpg").headers["content-type"] == "image/jpeg"
    for path in ("/stream.mjpg", "/api/events"):
        r = kiosk.head(path)
        assert r.status_code == 200 and r.content == b"", path


def _send_queue_bytes(port: int) -> int:
    """Bytes queued in the kernel on the server side of established connections to ``port`` (/proc/net/tcp)."""
    total = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port and f[3] == "01":
            total += int(f[4].split(":")[0], 16)
    return total


def test_sigterm_with_viewers_that_never_read_is_quick_and_clean(default_model, daemon_factory, tmp_path):
    """Guards against SIGTERM exiting 143, or shutdown waiting on unread streams and logging tracebacks."""
    cfg = tmp_path / "fast.toml"
    cfg.write_text('[source]\nkind = "fake"\nfps = 200\n[server]\nstream_fps = 120\n')
    d = daemon_factory(["--config", str(cfg), "--model", str(default_model)])
    d.wait_healthy(90)
    stalled = []
    for _ in range(5):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", d.port))
        s.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{d.port}\r\n\r\n".encode())
        stalled.append(s)
    try:
        # Until the kernel's send buffers are full and stay full: every stream is blocked in send.
        last, still, deadline = -1, 0, time.monotonic() + 30
        while still < 8 and time.monotonic() < deadline:
            time.sleep(0.25)
            queued = _send_queue_bytes(d.port)
            still = still + 1 if queued == last and queued > 0 else 0
            last = queued
        # (Without a bounded send buffer the kernel may take a minute to fill; go on regardless.)
        took = d.stop(signal.SIGTERM)
    finally:
        for s in stalled:
            s.close()
    log = d.log.read_text()
    assert d.proc.returncode == 0, log[-2000:]
    assert took < 1.5, f"stopped in {took:.2f} s"
    assert "Traceback" not in log and "ERROR" not in log and "Cancel" not in log, log[-2000:]


# ---------------------------------------------------------------------- issue 27.1: file names that are not UTF-8

BAD_NAME = b"x\xff"
"""A file-name stem that is not valid UTF-8: Python holds it as a surrogate escape, OpenCV crashed on it."""


def _bad_path(folder: Path, suffix: str) -> Path:
    return folder / (os.fsdecode(BAD_NAME) + suffix)


def _vanity(*argv: str | Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """`vanity ...` in a child process, so that a crash is an exit status rather than the end of the test run."""
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *map(str, argv)],
        cwd=ROOT,
        env=no_tf_env(),
        capture_output=True,
        timeout=timeout,
    )


def _png_bytes(face: bool = True) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(synthetic_frame(320, 240, face=face), cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def test_analyze_render_calibrate_take_file_names_that_are_not_utf8(tmp_path):
    """Guards against `analyze` / `render` / `calibrate --image` on a non-UTF-8 name (input or --out) exiting 139."""
    src = _bad_path(tmp_path, ".png")
    src.write_bytes(_png_bytes())
    labels, rendered = _bad_path(tmp_path, "-labels.png"), _bad_path(tmp_path, "-out.jpg")
    for argv, out in ((["analyze", src, "--out", labels], labels), (["render", src, "--out", rendered], rendered)):
        r = _vanity(*argv)
        assert r.returncode == 0, (argv[0], r.returncode, r.stderr.decode(errors="replace")[-2000:])
        assert out.is_file() and out.stat().st_size > 0, argv[0]
    assert b"Traceback" not in r.stderr
    # `calibrate --image` reads the same way: a grey card under that name is measured and stored.
    import cv2

    from tests.test_calibration import card_photo

    card = _bad_path(tmp_path, "-card.png")
    _, buf = cv2.imencode(".png", cv2.cvtColor(card_photo(), cv2.COLOR_RGB2BGR))
    card.write_bytes(buf.tobytes())
    cfg = tmp_path / "vanity.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "state"}"\n')
    r = _vanity("calibrate", "--image", card, "--config", cfg)
    assert r.returncode == 0, (r.returncode, r.stderr.decode(errors="replace")[-2000:])
    assert (tmp_path / "state" / "calibration.json").is_file()


def test_image_folder_with_a_non_utf8_name_plays_every_image(tmp_path):
    """Guards against an image-folder source crashing the daemon (a silent systemd crash loop) on one odd name."""
    (tmp_path / "a.png").write_bytes(_png_bytes())
    _bad_path(tmp_path, ".png").write_bytes(_png_bytes(face=False))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    code = (
        "import sys\n"
        "from edge.config import load_config\n"
        "from edge.sources.image import ImageSource\n"
        "src = ImageSource(load_config(None, {'source': {'kind': 'image', 'path': sys.argv[1]}}).source)\n"
        "src.open()\n"
        "print(len(src._frames), src.read().shape)\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, timeout=60)
    assert r.returncode == 0, (r.returncode, r.stderr.decode(errors="replace")[-2000:])
    assert r.stdout.split()[0] == b"2", r.stdout  # both images; the broken one is skipped with a warning


def test_video_source_with_a_non_utf8_name_is_refused_in_one_line(tmp_path):
    """Guards against `vanity run --source` on a non-UTF-8 video name exiting 139 (OpenCV crashes on the name)."""
    video = _bad_path(tmp_path, ".avi")
    video.write_bytes(b"\0" * 64)
    r = _vanity("run", "--source", video, "--port", str(free_port()), timeout=60)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 2, (r.returncode, err[-2000:])
    assert "not valid UTF-8" in err and "Traceback" not in err, err
    # The source itself refuses too, should a config reach it some other way.
    from edge.config import VideoSourceConfig
    from edge.sources.base import SourceError
    from edge.sources.video import VideoSource

    src = VideoSource(VideoSourceConfig.model_construct(kind="video", path=video, loop=True, realtime=False))
    with pytest.raises(SourceError, match="not valid UTF-8"):
        src.open()


# ---------------------------------------------------------------------- issue 27.2: request bodies

TOKEN = "s3cret-token-0123456789"


def _raw_put(port: int, head: str, chunks: typing.Iterable[bytes] = (), timeout: float = 5.0) -> tuple[int, bytes, int]:
    """Send a raw PUT /api/look (head lines, then body chunks until the server answers or closes).

    Returns (status, reply body, body bytes sent before the reply came).
    """
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sent = 0
    try:
        s.sendall(f"PUT /api/look{head}\r\n\r\n".encode())
        s.setblocking(False)
        reply = b""
        for chunk in chunks:
            try:
                reply += s.recv(65536)
            except BlockingIOError:
                pass
            if reply:
                break
            try:
                s.setblocking(True)
                s.sendall(chunk)
                sent += len(chunk)
                s.setblocking(False)
            except OSError:
                break  # closed on us: the reply is waiting
        s.setblocking(True)
        s.settimeout(timeout)
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in reply or not reply.split(b"\r\n\r\n", 1)[1]:
                more = s.recv(65536)
                if not more:
                    break
                reply += more
    finally:
        s.close()
    status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/") else 0
    return status, reply.split(b"\r\n\r\n", 1)[-1], sent


def _chunked(total: int, size: int = 64 * 1024) -> typing.Iterator[bytes]:
    for _ in range(total // size):
        yield b"%x\r\n" % size + b"x" * size + b"\r\n"
    yield b"0\r\n\r\n"


def test_big_bodies_get_413_without_being_read(fake_pipeline, fake_cfg):
    """Guards against a 200 MiB body being read into memory (RSS 130 -> 545 MB, held) instead of refused."""
    with _serving(fake_pipeline, fake_cfg) as (port, _, _):
        host = f" HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json"
        t0 = time.monotonic()
        # Declared too large: refused on the head alone (the body is never sent).
        status, body, _ = _raw_put(port, f"{host}\r\nContent-Length: {2 * 1024 * 1024}")
        assert status == 413 and "larger than" in json.loads(body)["detail"], (status, body)
        # Chunked, with no length: refused once it passes the cap, long before 2 MiB are taken.
        status, body, _ = _raw_put(port, f"{host}\r\nTransfer-Encoding: chunked", _chunked(2 * 1024 * 1024))
        assert status == 413 and "larger than" in json.loads(body)["detail"], (status, body)
        assert time.monotonic() - t0 < 5
        # A 256 MiB one is cut off too: the server stops taking it (what was sent fits in the socket buffers).
        status, _, sent = _raw_put(port, f"{host}\r\nTransfer-Encoding: chunked", _chunked(256 * 1024 * 1024))
        assert status == 413 and sent < 32 * 1024 * 1024, (status, sent)
        # Ordinary requests still work, on loopback without a token as before.
        r = httpx.put(f"http://127.0.0.1:{port}/api/look", json={"name": "natural"}, timeout=5)
        assert r.status_code == 200, r.text
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code in (200, 503)


def test_write_without_the_token_gets_401_before_its_body_is_read(fake_pipeline, fake_cfg):
    """Guards against a tokenless PUT being answered 422 (not 401) after its whole body was parsed."""
    with _serving(fake_pipeline, fake_cfg, token=TOKEN) as (port, _, _):
        host = f" HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json"
        status, body, sent = _raw_put(port, f"{host}\r\nTransfer-Encoding: chunked", _chunked(256 * 1024 * 1024))
        assert status == 401 and json.loads(body) == {"detail": "token required"}, (status, body)
        assert sent < 32 * 1024 * 1024, sent
        status, _, _ = _raw_put(port, f"{host}\r\nContent-Length: {2 * 1024 * 1024}")
        assert status == 401
        url = f"http://127.0.0.1:{port}/api/look"
        # A malformed body without the token: 401, not 422; with a wrong token: 401.
        assert httpx.put(url, content=b"{not json", timeout=5).status_code == 401
        assert httpx.put(url, json={"name": "natural"}, params={"token": "wrong-token-0123456789"}).status_code == 401
        # With the token (header or query) the writes work, and bad bodies are 422 as before.
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.put(url, json={"name": "natural"}, headers=auth, timeout=5).status_code == 200
        assert httpx.put(url, json={"name": "natural"}, params={"token": TOKEN}, timeout=5).status_code == 200
        assert httpx.put(url, content=b"{not json", headers=auth, timeout=5).status_code == 422
        # Public reads need no token.
        assert httpx.get(f"http://127.0.0.1:{port}/api/catalog", timeout=5).status_code == 200


def test_body_cap_is_a_described_setting():
    """Guards against the cap being a hidden constant an operator cannot find or tune (or set to nothing)."""
    field = VanityConfig.model_fields["server"].annotation.model_fields["max_body_bytes"]
    assert field.description and field.default >= 1024
    with pytest.raises(ConfigError):
        load_config(None, {"server": {"max_body_bytes": 0}})
    assert load_config(None, {"server": {"max_body_bytes": 4096}}).server.max_body_bytes == 4096


# ---------------------------------------------------------------------- issue 27.6: CLI --out edges


@pytest.mark.parametrize("command", ["analyze", "render"])
@pytest.mark.parametrize("case", ["txt-suffix", "no-suffix", "existing-folder", "under-a-file"])
def test_bad_out_paths_are_one_line_and_exit_2(command, case, tmp_path, monkeypatch, capsys):
    """Guards against `--out r.txt`, `--out labels`, `--out DIR` (cv2.error) or `--out` under a file
    (FileExistsError) ending in a traceback instead of one line and exit 2."""
    src = tmp_path / "in.png"
    src.write_bytes(_png_bytes())
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "plain").write_text("a file")
    out = {
        "txt-suffix": tmp_path / "r.txt",
        "no-suffix": tmp_path / "labels",
        "existing-folder": tmp_path / "folder.png",
        "under-a-file": tmp_path / "plain" / "sub" / "o.png",
    }[case]
    code, stdout, err = _main(monkeypatch, capsys, command, str(src), "--out", str(out))
    assert code == 2, (code, stdout, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --out"), err
    assert "Traceback" not in err + stdout
