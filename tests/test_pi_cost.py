"""The cost meter's pieces that run without emulation: the marks' arithmetic, the gate, the
stage script (run natively, where its marks are harmless) and the plugin's source. The
counting itself needs root and qemu; .ci/run runs it where check-aarch64 runs."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"


def _load(name: str):
    sys.path.insert(0, str(DEPLOY))
    spec = importlib.util.spec_from_file_location(name, DEPLOY / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def rep():
    return _load("pi_cost_report")


PLAN = {
    "stages": [
        {"index": 0, "name": "parse", "group": "stage", "units": 10},
        {"index": 1, "name": "whole frame (step)", "group": "frame", "units": 4},
    ]
}


def _log(*lines: str) -> str:
    return "\n".join(["some qemu chatter", *lines, "exit 999"])


def test_marks_become_per_unit_counts(rep):
    """Guards against start-up or another thread's work leaking into a stage's count."""
    log = _log(
        "mark 0 0 1000000 5000000",
        "mark 1 0 301000000 305000000",  # 300 M on this thread over 10 units
        "mark 2 0 400000000 420000000",
        "mark 3 0 520000000 560000000",  # 120 M over 4 frames; other threads did 20 M more
    )
    r = rep.parse_marks("pi4", log, PLAN)
    assert r.get("parse").thread_m == pytest.approx(30.0)
    assert r.get("whole frame (step)").thread_m == pytest.approx(30.0)
    assert r.get("whole frame (step)").all_m == pytest.approx(35.0)


def test_pairs_match_per_thread_and_sum(rep):
    """Guards against interleaved stages on two threads being paired across threads."""
    plan = {"stages": [{"index": 0, "name": "render", "group": "live", "units": 2}]}
    log = _log("mark 0 1 100 0", "mark 0 2 5000 0", "mark 1 1 600 0", "mark 1 2 5500 0")
    assert rep.parse_marks("pi4", log, plan).get("render").thread_m == pytest.approx(500 / 1e6)


@pytest.mark.parametrize(
    ("log", "why"),
    [
        (_log("mark 0 0 1 1"), "never ended"),
        (_log("mark 1 0 1 1"), "never began"),
        (_log("mark 0 0 1 1", "mark 1 0 2 2"), "no marks for stage 1"),
    ],
    ids=["unended", "unbegun", "missing"],
)
def test_broken_logs_are_refused(rep, log, why):
    """Guards against a plugin that did not load (or a crashed run) reading as a cheap stage."""
    with pytest.raises(ValueError, match=why):
        rep.parse_marks("pi4", log, PLAN)


def test_live_stages_add_up_and_the_dearest_sets_the_frame_rate(rep):
    """Guards against a budget that reads the serial sum as the frame rate, or loses a stage."""
    plan = {
        "stages": [
            {"index": 0, "name": "analysis stage", "group": "live", "units": 2},
            {"index": 1, "name": "render stage", "group": "live", "units": 2},
        ],
        "live": {"frames": 2, "parses": 1},
    }
    # analysis: 30 M then 10 M (a parse, then a carried frame); render: 22 M twice.
    log = _log(
        *("mark 0 0 0 0", "mark 1 0 30000000 0", "mark 2 0 30000000 0", "mark 3 0 52000000 0"),
        *("mark 0 0 52000000 0", "mark 1 0 62000000 0", "mark 2 0 62000000 0", "mark 3 0 84000000 0"),
    )
    r = rep.parse_marks("pi4", log, plan)
    total = r.get(rep.LIVE_TOTAL)
    assert total.thread_m == pytest.approx(42.0) and total.max_m == pytest.approx(52.0)
    b = rep.live_budget(r, gips=0.8)
    assert b.largest == "render stage" and b.largest_m == pytest.approx(22.0)
    assert b.fps == pytest.approx(800 / 22) and b.parses_per_s == pytest.approx(15.0)  # the camera's 30 FPS caps it
    assert b.latency_ms == pytest.approx(52.5) and b.latency_worst_ms == pytest.approx(65.0)


def _baseline(rep, counts):
    data = json.loads((ROOT / "benchmarks" / "pi_cost_baseline.json").read_text())
    data["counts"] = counts
    return rep.Baseline(data)


def _report(rep, m):
    return {"pi4": rep.CostReport("pi4", [rep.StageCost("whole frame (step)", "frame", 30, m, m)])}


def test_gate_fails_above_five_percent_and_says_why(rep):
    """Guards against a change that makes the frame dearer landing unnoticed."""
    base = _baseline(rep, {"pi4": {"whole frame (step)": 100.0}})
    assert rep.gate(_report(rep, 104.9), base) == []
    (problem,) = rep.gate(_report(rep, 106.0), base)
    assert "6.0 % over" in problem and "UPDATE=1" in problem
    assert rep.gate(_report(rep, 50.0), base) == []  # cheaper always passes


def test_an_updated_baseline_passes_the_gate(rep, tmp_path):
    """Guards against a gate that cannot be satisfied by committing the new counts."""
    base = _baseline(rep, {"pi4": {"whole frame (step)": 100.0}})
    reports = _report(rep, 130.0)
    base.update_counts(reports)
    base.save(tmp_path / "b.json")
    assert rep.gate(reports, rep.load_baseline(tmp_path / "b.json")) == []


def test_milliseconds_follow_the_calibration(rep):
    """Guards against a table whose ms ignore the clock or the calibration constant."""
    base = _baseline(rep, {})
    rate = base.data["calibration"]["pi4"]["ginstr_per_s_per_ghz"]
    table = rep.render_table(_report(rep, 80.0), base)
    assert f"{80.0 / (rate * 1.5):.1f}" in table and f"{80.0 / (rate * 1.8):.1f}" in table


def test_calibration_is_rederived_from_the_reference_count(rep):
    """Guards against a calibration constant that does not follow the counted reference."""
    base = _baseline(rep, {})
    ref = base.data["calibration"]["references"]["mobilenet_v1"]
    st = rep.StageCost("calibration mobilenet_v1", "calibration", 5, 234.0, 234.0)
    base.update_calibration({"pi4": rep.CostReport("pi4", [st])})
    want = 234.0 / 1e3 / (ref["pi4_ms"] / 1e3) / ref["clock_ghz"]
    assert base.data["calibration"]["pi4"]["ginstr_per_s_per_ghz"] == pytest.approx(want, rel=1e-3)


def test_bad_baseline_is_a_clear_error(rep, tmp_path):
    """Guards against a traceback (or silent zero rates) from a broken baseline file."""
    p = tmp_path / "b.json"
    p.write_text('{"calibration": {"pi4": {}}}')
    with pytest.raises(ValueError, match=r"calibration\.pi4 needs"):
        rep.load_baseline(p)


def test_stage_script_runs_natively_and_plans_every_stage(tmp_path):
    """Guards against a stage script that breaks on the current code (caught here, not after minutes of emulation)."""
    plan = tmp_path / "plan.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "pi_cost_stages.py"), "--plan", str(plan)]
    subprocess.run([*cmd, "--iterations", "1", "--frames", "2"], check=True, cwd=tmp_path, timeout=300)
    names = [s["name"] for s in json.loads(plan.read_text())["stages"]]
    for want in ("camera decode (MJPEG 640x480)", "parser inference", "mouth pass", "tone", "JPEG encode"):
        assert want in names
    assert sum(n.startswith("layer ") for n in names) == 12  # six layers, on a parsed frame and between parses
    groups = {s["name"]: s["group"] for s in json.loads(plan.read_text())["stages"]}
    for stage in ("camera (YUYV)", "analysis stage", "render stage", "encode stage"):
        assert groups[stage] == "live"
    assert groups["mouth stage"] == groups["tone stage"] == "side"
    live = json.loads(plan.read_text())["live"]
    assert live["frames"] == 2 and live["parses"] >= 1


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler")
def test_plugin_compiles_cleanly(tmp_path):
    """Guards against a plugin source that no longer builds with the system compiler."""
    out = tmp_path / "p.so"
    r = subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-o",
            str(out),
            str(DEPLOY / "aarch64" / "insn_count.c"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    syms = subprocess.run(["nm", "-D", "--defined-only", str(out)], capture_output=True, text=True).stdout
    assert "qemu_plugin_install" in syms and "qemu_plugin_version" in syms


def test_pi_cost_without_root_says_why_and_exits_3():
    """Guards against make pi-cost failing obscurely on a machine that cannot emulate."""
    if shutil.which("setpriv") is None or __import__("os").geteuid() != 0:
        pytest.skip("needs root to drop to another user")
    r = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            str(DEPLOY / "pi_cost.py"),
            "probe",
        ],
        capture_output=True,
        text=True,
        cwd="/tmp",
    )
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stdout.startswith("pi-cost skipped: needs root")
