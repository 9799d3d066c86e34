"""The systemd units, their offline checks, the deploy scripts, and sd_notify from a real daemon."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

SYSTEMD = ROOT / "systemd"
DEPLOY = ROOT / "deploy"
CHECK = SYSTEMD / "check.sh"
SHELL_SCRIPTS = [CHECK, SYSTEMD / "vanity-kiosk-browser", DEPLOY / "install-pi.sh"]
MAX_EXPOSURE = 2.5


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values in order]}}, continuation lines joined."""
    text = re.sub(r"\\\n[ \t]*", " ", path.read_text())
    out: dict[str, dict[str, list[str]]] = {}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = out.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"{path}: {line!r} outside a section"
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
    return out


def one(unit: dict, section: str, key: str) -> str:
    """The effective (last) value of a key."""
    assert key in unit.get(section, {}), f"[{section}] {key}= missing"
    return unit[section][key][-1]


def seconds(value: str) -> float:
    """A systemd time span such as 15s, 2min, 500ms or 90 in seconds."""
    units = {"ms": 0.001, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "": 1}
    total = 0.0
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(num) * units[unit]
    return total


@pytest.fixture(scope="module")
def service() -> dict:
    return parse_unit(SYSTEMD / "vanity.service")


@pytest.fixture(scope="module")
def kiosk() -> dict:
    return parse_unit(SYSTEMD / "vanity-kiosk@.service")


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    """systemd-analyze, installed from Debian by check.sh when missing and we are root."""
    if shutil.which("systemd-analyze") is None:
        res = subprocess.run(["bash", str(CHECK), "deps"], capture_output=True, text=True, timeout=900)
        if res.returncode != 0 or shutil.which("systemd-analyze") is None:
            pytest.skip(f"systemd-analyze unavailable and not installable here: {res.stderr.strip()[-300:]}")
    return shutil.which("systemd-analyze")


# ---------------------------------------------------------------------- vanity.service


def test_service_is_a_watched_notify_service(service):
    s = "Service"
    assert one(service, s, "Type") == "notify"
    assert one(service, s, "NotifyAccess") == "main"
    watchdog = seconds(one(service, s, "WatchdogSec"))
    # The health loop pings every second while frames flow; leave room for a slow frame or two.
    assert 5 <= watchdog <= 60
    assert one(service, s, "Restart") == "on-failure"
    assert seconds(one(service, s, "RestartSec")) >= 1
    assert seconds(one(service, "Unit", "StartLimitIntervalSec")) > 0
    assert int(one(service, "Unit", "StartLimitBurst")) >= 3
    # The daemon stops in < 2 s; the unit must wait at least that long before SIGKILL.
    assert seconds(one(service, s, "TimeoutStopSec")) >= 2
    assert seconds(one(service, s, "TimeoutStartSec")) >= 30
    assert one(service, "Install", "WantedBy") == "multi-user.target"


def test_service_runs_the_console_script_as_vanity(service):
    s = "Service"
    assert one(service, s, "User") == "vanity"
    assert "video" in one(service, s, "SupplementaryGroups").split()
    exec_start = one(service, s, "ExecStart").split()
    assert exec_start[:2] == ["/opt/vanity/.venv/bin/vanity", "run"]
    assert exec_start[2:] == ["--config", "/etc/vanity/vanity.toml"]
    # The executable is the `vanity` console script of this project...
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts.get("vanity") == "edge.cli:main"
    # ...and its `run` command takes the arguments the unit passes.
    res = subprocess.run(
        [sys.executable, "-m", "edge.cli", "run", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert "--config" in res.stdout


def test_service_paths_match_the_config_defaults(service):
    from edge.config import VanityConfig

    s = "Service"
    assert one(service, s, "ConfigurationDirectory") == "vanity"
    state = one(service, s, "StateDirectory").split()
    assert "vanity" in state
    cfg = VanityConfig()
    # Snapshots go to the only writable place under ProtectSystem=strict.
    assert cfg.snapshots.directory.is_relative_to(Path("/var/lib") / state[0])
    assert one(service, s, "StandardOutput") == "journal"
    assert one(service, s, "UMask") == "0077"
    assert cfg.server.host == "127.0.0.1"


def test_service_sandboxing(service):
    s = service["Service"]
    expected = {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "DevicePolicy": "closed",
        "CapabilityBoundingSet": "",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "ProtectClock": "yes",
        "ProtectHostname": "yes",
        "ProtectProc": "invisible",
        "RestrictNamespaces": "yes",
        "RestrictRealtime": "yes",
        "RestrictSUIDSGID": "yes",
        "LockPersonality": "yes",
        "SystemCallArchitectures": "native",
        "IPAddressDeny": "any",
        "IPAddressAllow": "localhost",
    }
    for key, value in expected.items():
        assert s.get(key, [None])[-1] == value, f"{key}= should be {value!r}, is {s.get(key)}"
    assert "char-video4linux rw" in s["DeviceAllow"]
    assert {"char-media rw", "char-dma_heap rw"} <= set(s["DeviceAllow"])
    families = set(" ".join(s["RestrictAddressFamilies"]).split())
    assert families <= {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    filters = " ".join(s["SystemCallFilter"])
    assert "@system-service" in filters and "~@privileged" in filters
    # Libraries that call sched_setaffinity & co get EPERM instead of being killed.
    assert s["SystemCallErrorNumber"] == ["EPERM"]
    assert re.fullmatch(r"\d+M", s["MemoryMax"][-1]) and int(s["MemoryMax"][-1][:-1]) <= 512


def test_token_credential_name_is_the_one_the_daemon_reads(tmp_path, monkeypatch):
    dropin = parse_unit(SYSTEMD / "vanity.service.d" / "token.conf.example")
    name, _, source = one(dropin, "Service", "LoadCredential").partition(":")
    assert source.startswith("/etc/vanity/")
    (tmp_path / name).write_text("s3cret-token-from-credential\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    from edge.config import load_config
    from edge.daemon import resolve_token

    cfg = load_config(None, {"server": {"host": "0.0.0.0"}})
    assert resolve_token(cfg) == "s3cret-token-from-credential"


# ---------------------------------------------------------------------- kiosk unit


def test_kiosk_unit_follows_the_daemon(kiosk, service):
    u, s = kiosk["Unit"], "Service"
    assert "vanity.service" in " ".join(u["After"]).split()
    assert "vanity.service" in " ".join(u["BindsTo"] + u.get("Requires", [])).split()
    assert one(kiosk, s, "User") == "%i"
    env = dict(v.split("=", 1) for v in kiosk[s]["Environment"])
    assert env["XDG_RUNTIME_DIR"] == "/run/user/%i"
    assert env["VANITY_URL"] == "http://127.0.0.1:8080"
    pre = " ".join(kiosk[s]["ExecStartPre"])
    assert pre.startswith("/usr/bin/curl") and "${VANITY_URL}/healthz" in pre and "--retry-connrefused" in pre
    start = one(kiosk, s, "ExecStart")
    for flag in (
        "--kiosk",
        "--noerrdialogs",
        "--disable-infobars",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--incognito",
        "--check-for-update-interval=31536000",
        "--autoplay-policy=no-user-gesture-required",
    ):
        assert flag in start.split(), flag
    assert start.split()[-1] == "${VANITY_URL}/"
    assert one(kiosk, s, "IPAddressDeny") == "any"
    assert "vanity.service" in one(kiosk, "Install", "WantedBy").split()


def test_kiosk_url_is_the_daemons_default_address(kiosk):
    from edge.config import VanityConfig

    env = dict(v.split("=", 1) for v in kiosk["Service"]["Environment"])
    cfg = VanityConfig()
    assert env["VANITY_URL"] == f"http://{cfg.server.host}:{cfg.server.port}"


def _fake_browser(tmp_path: Path) -> Path:
    browser = tmp_path / "fake-chromium"
    browser.write_text('#!/bin/sh\necho "WAYLAND_DISPLAY=$WAYLAND_DISPLAY"\necho "ARGS=$*"\n')
    browser.chmod(0o755)
    return browser


def test_kiosk_launcher_finds_the_wayland_socket(tmp_path):
    runtime = Path(tempfile.mkdtemp(prefix="vk-", dir="/tmp"))  # short path for AF_UNIX
    try:
        (runtime / "wayland-1.lock").write_text("")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as wl:
            wl.bind(str(runtime / "wayland-1"))  # wayfire's name on Bookworm
            env = {
                "PATH": os.environ["PATH"],
                "HOME": str(tmp_path),
                "XDG_RUNTIME_DIR": str(runtime),
                "VANITY_KIOSK_BROWSER": str(_fake_browser(tmp_path)),
                "VANITY_KIOSK_WAIT_S": "2",
            }
            res = subprocess.run(
                ["bash", str(SYSTEMD / "vanity-kiosk-browser"), "--kiosk", "http://127.0.0.1:8080/"],
                capture_output=True,
                text=True,
                env=env,
                timeout=30,
            )
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    assert res.returncode == 0, res.stderr
    assert "WAYLAND_DISPLAY=wayland-1" in res.stdout
    assert "ARGS=--ozone-platform=wayland --kiosk http://127.0.0.1:8080/" in res.stdout


def test_kiosk_launcher_gives_up_without_a_session(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "XDG_RUNTIME_DIR": str(tmp_path),
        "VANITY_KIOSK_BROWSER": str(_fake_browser(tmp_path)),
        "VANITY_KIOSK_PLATFORM": "wayland",
        "VANITY_KIOSK_WAIT_S": "1",
    }
    res = subprocess.run(
        ["bash", str(SYSTEMD / "vanity-kiosk-browser"), "http://127.0.0.1:8080/"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert res.returncode == 1
    assert "no desktop session" in res.stderr


# ---------------------------------------------------------------------- systemd-analyze


def test_units_pass_systemd_analyze_verify(systemd_analyze):
    res = subprocess.run(["bash", str(CHECK), "verify"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("verify OK") == 2


def test_service_exposure_is_at_most_2_5(systemd_analyze):
    res = subprocess.run(["bash", str(CHECK), "security"], capture_output=True, text=True, timeout=300)
    m = re.search(r"exposure vanity\.service: ([0-9.]+)", res.stdout)
    assert m, res.stdout + res.stderr
    assert float(m.group(1)) <= MAX_EXPOSURE
    assert res.returncode == 0, res.stdout + res.stderr


def test_check_fails_on_a_broken_unit(systemd_analyze, tmp_path):
    copy = tmp_path / "systemd"
    shutil.copytree(SYSTEMD, copy)
    unit = copy / "vanity.service"
    unit.write_text(unit.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    res = subprocess.run(["bash", str(copy / "check.sh"), "verify"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 1
    assert "sometimes" in res.stderr

    unit.write_text((SYSTEMD / "vanity.service").read_text().replace("ProtectSystem=strict", "ProtectSystem=no"))
    unit.write_text(
        re.sub(r"(?m)^(SystemCallFilter|CapabilityBoundingSet|RestrictAddressFamilies)=.*$", "", unit.read_text())
    )
    res = subprocess.run(["bash", str(copy / "check.sh"), "security"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 1, res.stdout
    assert "is over 2.5" in res.stderr


# ---------------------------------------------------------------------- deploy


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_are_lint_clean(script):
    res = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert script.read_text().splitlines()[0] in ("#!/usr/bin/env bash", "#!/bin/bash")
    assert "set -euo pipefail" in script.read_text()
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck): only bash -n checked")
    res = subprocess.run(["shellcheck", "--severity=style", str(script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


def test_sample_config_is_valid():
    from edge.config import load_config

    cfg = load_config(DEPLOY / "vanity.toml")
    assert cfg.server.host == "127.0.0.1" and cfg.server.port == 8080
    assert str(cfg.snapshots.directory) == "/var/lib/vanity/snapshots"
    assert cfg.snapshots.enabled is False
    assert cfg.health.reconnect_max_s < 15  # below the unit's WatchdogSec


def test_install_script_dry_run_changes_nothing(tmp_path):
    res = subprocess.run(
        ["bash", str(DEPLOY / "install-pi.sh"), "--dry-run", "--no-kiosk"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SUDO_USER": ""},
    )
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    for step in (
        "python3 -m venv --system-site-packages /opt/vanity/.venv",
        f"-m pip install --upgrade --no-cache-dir --disable-pip-version-check --root-user-action=ignore {ROOT}",
        "install -m 0644 " + str(SYSTEMD / "vanity.service") + " /etc/systemd/system/vanity.service",
        "systemctl daemon-reload",
        "doctor --config /etc/vanity/vanity.toml",
        "systemctl enable vanity.service",
    ):
        assert step in out, step
    assert "[train]" not in out and "tensorflow" not in out.lower()
    # Every change is printed ("+ ..."), none is made: no sudo/root needed for a dry run.
    assert "error" not in res.stderr


# ---------------------------------------------------------------------- sd_notify


def _notify_socket(tmp_path: Path) -> tuple[socket.socket, str]:
    path = tmp_path / "notify.sock"
    if len(str(path)) > 100:  # AF_UNIX path limit
        path = Path(tempfile.mkdtemp(prefix="vn-", dir="/tmp")) / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)  # sender PID, as systemd sees it
    return sock, str(path)


def _recv(sock: socket.socket, proc: subprocess.Popen, want: str, timeout: float, log: Path) -> tuple[str, int]:
    """Wait for a datagram containing ``want``; returns (message, sender pid)."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, min(0.5, deadline - time.monotonic())))
        try:
            data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(struct.calcsize("3i")))
        except TimeoutError:
            if proc.poll() is not None and want != "STOPPING=1":
                break
            continue
        pid = -1
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("3i", payload[: struct.calcsize("3i")])[0]
        msg = data.decode()
        seen.append(msg)
        if want in msg.splitlines():
            return msg, pid
    raise AssertionError(f"no {want} in {timeout} s; got {seen}; exit {proc.poll()}; log: {log.read_text()[-2000:]}")


def test_daemon_speaks_sd_notify(default_model, tmp_path):
    sock, addr = _notify_socket(tmp_path)
    log = tmp_path / "daemon.log"
    env = {**os.environ, "NOTIFY_SOCKET": addr}
    cmd = [sys.executable, "-m", "edge.cli", "run", "--source", "fake", "--port", "0", "--model", str(default_model)]
    with open(log, "wb") as logf:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT)
        try:
            ready, pid = _recv(sock, proc, "READY=1", 90, log)
            # NotifyAccess=main: every message must come from the process systemd started.
            assert pid == proc.pid
            # READY=1 only once the socket is bound: the port it names accepts connections.
            m = re.search(r"STATUS=serving on ([\d.]+):(\d+)", ready)
            assert m, ready
            try:
                socket.create_connection((m.group(1), int(m.group(2))), timeout=2).close()
            except OSError as e:
                raise AssertionError(f"READY=1 sent before the HTTP socket was bound ({ready!r}: {e})") from e
            _, pid = _recv(sock, proc, "WATCHDOG=1", 10, log)
            assert pid == proc.pid

            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, pid = _recv(sock, proc, "STOPPING=1", 2, log)
            assert pid == proc.pid
            proc.wait(timeout=max(0.1, 2 - (time.monotonic() - t0)))
            assert time.monotonic() - t0 < 2.0
            # A graceful stop exits 0 (uvicorn's re-raise of the caught SIGTERM is turned off).
            assert proc.returncode == 0, log.read_text()[-2000:]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            sock.close()
