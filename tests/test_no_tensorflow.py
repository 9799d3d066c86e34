"""The device install has no TensorFlow: the edge package and its commands must not need it."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.conftest import ROOT, no_tf_env


def _run(args, env, timeout=60):
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_blocker_really_blocks():
    """Guards against a test harness that would pass even with TensorFlow importable."""
    r = _run(["-c", "import tensorflow"], no_tf_env())
    assert r.returncode != 0 and "blocked" in r.stderr


def test_edge_modules_import_without_tensorflow(tmp_path):
    """Guards against an edge module importing TensorFlow (or training/convert) at import time."""
    report = tmp_path / "imports.txt"
    code = (
        "import importlib, pkgutil, sys, edge\n"
        "for m in pkgutil.walk_packages(edge.__path__, 'edge.'):\n"
        "    if m.name.endswith('picam') or m.name == 'edge.runtime.tensorflow_lite': continue\n"
        "    importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow','keras','training','convert')]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    r = _run(["-c", code], no_tf_env(VANITY_IMPORT_REPORT=str(report)))
    assert r.returncode == 0, r.stderr
    assert report.read_text() == ""


def test_help_is_fast_and_tf_free():
    """Guards against `vanity --help` importing TensorFlow (slow start, breaks on the kiosk)."""
    r = _run(["-m", "edge.cli", "--help"], no_tf_env())
    assert r.returncode == 0, r.stderr
    assert "run" in r.stdout and "train" in r.stdout


def test_train_without_tensorflow_says_which_extra():
    """Guards against a traceback when a workstation command runs on the device."""
    r = _run(["-m", "edge.cli", "train", "--data", "synth:10", "--out", "/tmp/x"], no_tf_env())
    assert r.returncode == 2
    assert "vanity[train]" in r.stderr and "Traceback" not in r.stderr
    r = _run(["-m", "edge.cli", "convert", "runs/x", "--out", "/tmp/x.tflite"], no_tf_env())
    assert r.returncode == 2 and "vanity[train]" in r.stderr


def test_run_serves_frames_without_tensorflow(default_model, daemon_factory, tmp_path):
    """Guards against the daemon needing TensorFlow anywhere on its hot path."""
    report = tmp_path / "imports.txt"
    d = daemon_factory(["--source", "demo"], env=no_tf_env(VANITY_IMPORT_REPORT=str(report)))
    d.wait_healthy(60)
    r = httpx.get(d.url + "/frame.jpg", timeout=5)
    assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"
    assert d.stop() < 2.5
    assert report.read_text() == "", f"the daemon tried to import: {report.read_text()}"
