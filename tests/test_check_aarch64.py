"""The pieces of `make check-aarch64` that run without emulation (the check itself needs root
and minutes; .ci/run runs it where the machine allows)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess

import cv2
import numpy as np
import pytest

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("check_aarch64", DEPLOY / "check_aarch64.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(("pi", "part"), [("pi4", "0xd08"), ("pi5", "0xd0b")])
def test_cpuinfo_fixture_matches_the_emulated_cpu(check, pi, part):
    """Guards against a cpuinfo that disagrees with QEMU_CPU (LiteRT reads one, XNNPACK sees the other)."""
    qemu_cpu, path = check.CPUS[pi]
    text = path.read_text()
    assert text.count("processor\t:") == 4
    assert {ln.split(":")[1].strip() for ln in text.splitlines() if ln.startswith("CPU part")} == {part}
    assert qemu_cpu == {"0xd08": "cortex-a72", "0xd0b": "cortex-a76"}[part]


def test_the_device_wheels_are_the_plain_install(check):
    """Guards against the emulated Pi installing the workstation extras (TensorFlow) or missing LiteRT."""
    reqs = check.runtime_requirements()
    assert any(r.startswith("ai-edge-litert") for r in reqs)
    assert not any("tensorflow" in r for r in reqs)


def test_label_agreement(check, tmp_path):
    a = np.zeros((100, 100), np.uint8)
    b = a.copy()
    b[:1, :10] = 3
    cv2.imwrite(str(tmp_path / "a.png"), a)
    cv2.imwrite(str(tmp_path / "b.png"), b)
    agree, note = check.compare(tmp_path / "a.png", tmp_path / "b.png")
    assert agree == pytest.approx(0.999) and note == "10 px differ"
    cv2.imwrite(str(tmp_path / "c.png"), np.zeros((50, 100), np.uint8))
    assert check.compare(tmp_path / "a.png", tmp_path / "c.png")[0] == 0.0


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_enter_script_passes_shellcheck():
    r = subprocess.run(["shellcheck", str(DEPLOY / "aarch64" / "enter.sh")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
