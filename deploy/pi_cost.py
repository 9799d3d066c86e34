#!/usr/bin/env python3
"""`make pi-cost`: what each stage of the live mirror costs a Raspberry Pi, counted in instructions.

Counts, rather than times, because this shared 2-core machine's timings wander and a Pi is
not here: the instructions an emulated Cortex-A72 (Pi 4) and Cortex-A76 (Pi 5) execute per
stage repeat to about 1 %. Under Debian's qemu-user (the dynamically linked build, which
loads TCG plugins) with the project's own counting plugin (deploy/aarch64/insn_count.c,
built here with the system compiler), in the arm64 root and venv that `make check-aarch64`
builds and caches, it runs benchmarks/pi_cost_stages.py at one thread with a fixed
PYTHONHASHSEED. That script brackets every stage with marks; a stage's count is the
difference between two marks over its repetitions, so start-up and first-call caches cancel.

Milliseconds are estimated from the counts with the calibration in the baseline file
(benchmarks/pi_cost_baseline.json): instructions per second of a Pi core, measured by
counting reference models whose Pi timings are published (README, "What it costs a Pi").
The budget is set in instructions, so the conversion cannot move it.

    deploy/pi_cost.py                 # count, print the table, write .cache/pi-cost/pi-cost.json
    deploy/pi_cost.py --gate          # also fail when the frame grew > 5 % over the baseline
    deploy/pi_cost.py --update        # write the counts into the baseline (commit it with the change)
    deploy/pi_cost.py --calibrate     # also count the reference models (needs TensorFlow to build them)
    deploy/pi_cost.py probe           # can this machine count? exit 0, or 3 and why not

Exit codes: 0 ok, 1 the gate failed or the run broke, 3 this machine cannot emulate (why, in one line).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import check_aarch64 as ca  # noqa: E402  (the cached root, venv, namespaces and wheel build)
from pi_cost_report import (  # noqa: E402
    Baseline,
    CostReport,
    gate,
    load_baseline,
    parse_marks,
    render_budget,
    render_table,
)

ROOT = HERE.parent
RUN = ROOT / ".cache" / "pi-cost"
BASELINE = ROOT / "benchmarks" / "pi_cost_baseline.json"
PLUGIN_SRC = HERE / "aarch64" / "insn_count.c"
X86_LIBS = Path("/usr/lib/x86_64-linux-gnu")
QEMU = Path("/usr/bin/qemu-aarch64")  # Debian's qemu-user: dynamic, so it can dlopen a plugin
CPUS = ("pi4", "pi5")


def log(msg: str) -> None:
    print(f"[pi-cost] {msg}", flush=True)


def ensure_tools() -> None:
    """qemu-user (plugins need the dynamic build, not qemu-user-static) and a C compiler."""
    ca.ensure_host_tools()
    if not QEMU.exists():
        if shutil.which("apt-get") is None:
            raise ca.Skip("qemu-user (Debian's dynamic qemu-aarch64, which loads plugins) is missing, no apt-get")
        log("installing qemu-user (Debian package)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        ca.sh(["apt-get", "install", "-y", "-qq", "qemu-user"], log_to=RUN / "logs" / "apt.log", env=env)
    if shutil.which("gcc") is None:
        raise ca.Skip("no C compiler (gcc) to build the counting plugin")
    if not (X86_LIBS / "ld-linux-x86-64.so.2").exists():
        raise ca.Skip(f"no x86-64 loader in {X86_LIBS}: only Debian-like x86-64 hosts are supported")


def build_tools() -> Path:
    """A folder holding qemu-aarch64 and the counting plugin, keyed by both (bound into the root)."""
    src = PLUGIN_SRC.read_bytes()
    key = hashlib.sha256(src + QEMU.read_bytes()).hexdigest()[:12]
    dest = ca.CACHE / f"pi-cost-tools-{key}"
    if (dest / "libinsn_count.so").exists():
        return dest
    tmp = ca.CACHE / "tmp-pi-cost-tools"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copy2(QEMU, tmp / "qemu-aarch64")
    cc = ["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-o", str(tmp / "libinsn_count.so"), str(PLUGIN_SRC)]
    ca.sh(cc, log_to=RUN / "logs" / "plugin-build.log")
    ca.prune("pi-cost-tools-", tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def count_on(pi: ca.Pi, cpu: str, args: argparse.Namespace) -> CostReport:
    """Run the stage script under the counting qemu as ``cpu``; its per-stage counts."""
    logf, plan = RUN / f"{cpu}-marks.log", RUN / f"{cpu}-plan.json"
    for p in (logf, plan):
        p.unlink(missing_ok=True)
    qemu = [
        "/mnt/x86/lib/ld-linux-x86-64.so.2",
        "--library-path",
        "/mnt/x86/lib",
        "/mnt/x86/tools/qemu-aarch64",
        "-cpu",
        ca.CPUS[cpu][0],
        "-plugin",
        "/mnt/x86/tools/libinsn_count.so",
        "-d",
        "plugin",
        "-D",
        f"/mnt/run/{logf.name}",
    ]
    script = [f"{ca.VENV}/bin/python", f"/mnt/src/{args.script}", "--plan", f"/mnt/run/{plan.name}"]
    script += ["--iterations", str(args.iterations), "--frames", str(args.frames)]
    if args.calibrate:
        script += ["--calibrate", "/mnt/run/calibration"]
    if args.analysis:
        script += ["--analysis", shlex.quote(args.analysis)]
    env = ["env", "PYTHONHASHSEED=0", "OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1", "PYTHONDONTWRITEBYTECODE=1"]
    cmd = ["sh", "-c", "cd /tmp && exec " + " ".join([*env, *qemu, *script])]
    log(f"counting on an emulated {cpu} ({ca.CPUS[cpu][0]})")
    pi.run(cmd, log_to=RUN / "logs" / f"{cpu}.log")
    return parse_marks(cpu, logf.read_text(), json.loads(plan.read_text()))


def build_calibration_models(out: Path) -> None:
    """The reference models (float32, untrained: timing needs no weights), built with TensorFlow."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "pi_cost_calibration.py"), "--out", str(out)]
    ca.sh(cmd, log_to=RUN / "logs" / "calibration-models.log")


def run(args: argparse.Namespace) -> int:
    mode = ca.probe()
    ensure_tools()
    baseline = load_baseline(BASELINE)
    RUN.mkdir(parents=True, exist_ok=True)
    if args.calibrate:
        build_calibration_models(RUN / "calibration")
    with ca.locked():
        root = ca.build_root("bookworm", mode)
        venv = ca.build_venv(root, ca.download_wheels(ca.SUITES["bookworm"]), mode, "bookworm")
        tools = build_tools()
        whl = ca.build_project_wheel(RUN / "dist")
        base = ca.Pi(root, mode).bind(venv, ca.VENV).bind(RUN, "/mnt/run")
        base.run(
            [*ca.PI_PIP_INSTALL, "--no-deps", "--force-reinstall", f"/mnt/run/dist/{whl.name}"],
            log_to=RUN / "logs" / "install.log",
        )
        reports = {}
        for cpu in args.cpus:
            pi = ca.Pi(root, mode, cpu).bind(venv, ca.VENV).bind(RUN, "/mnt/run").bind(ROOT, "/mnt/src", ro=True)
            pi.bind(X86_LIBS, "/mnt/x86/lib", ro=True).bind(tools, "/mnt/x86/tools", ro=True)
            reports[cpu] = count_on(pi, cpu, args)
    return finish(reports, baseline, args)


def finish(reports: dict[str, CostReport], baseline: Baseline, args: argparse.Namespace) -> int:
    print(render_table(reports, baseline))
    print(render_budget(reports, baseline))
    out = {cpu: r.to_json() for cpu, r in reports.items()}
    (RUN / "pi-cost.json").write_text(json.dumps(out, indent=1))
    log(f"JSON: {RUN / 'pi-cost.json'}")
    if args.update:
        baseline.update_counts(reports)
        if args.calibrate:
            baseline.update_calibration(reports)
        baseline.save(BASELINE)
        log(f"baseline written: {BASELINE} (commit it with the change that moved the counts)")
        return 0
    if args.gate:
        problems = gate(reports, baseline)
        for p in problems:
            print(f"pi-cost gate FAILED: {p}")
        if problems:
            return 1
        print("pi-cost gate: the frame is within 5 % of the committed baseline")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", nargs="?", default="count", choices=["count", "probe"])
    ap.add_argument("--gate", action="store_true", help="fail when a frame grew > 5 %% over the baseline")
    ap.add_argument("--update", action="store_true", help="write these counts into the baseline")
    ap.add_argument("--calibrate", action="store_true", help="also count the reference models (TensorFlow)")
    ap.add_argument("--cpus", nargs="+", choices=CPUS, default=list(CPUS), help="which Pis to emulate")
    ap.add_argument("--iterations", type=int, default=20, help="repetitions counted per stage")
    ap.add_argument("--frames", type=int, default=30, help="live frames counted")
    ap.add_argument(
        "--script",
        default="benchmarks/pi_cost_stages.py",
        help="the guest script (repo-relative; it takes --plan and marks its stages like pi_cost_stages.py)",
    )
    ap.add_argument("--analysis", help="analysis config overrides for a what-if count, JSON: '{\"parse_every\": 1}'")
    args = ap.parse_args()
    if args.update and args.analysis:
        ap.error("--update with --analysis: the baseline is the default configuration's")
    try:
        if args.command == "probe":
            print(f"pi-cost can run here (binfmt: {ca.probe()})")
            return 0
        return run(args)
    except ca.Skip as e:
        print(f"pi-cost skipped: {e}")
        return 3
    except (ca.Failed, ValueError, OSError) as e:
        print(f"pi-cost: FAILED: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
