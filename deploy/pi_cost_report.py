"""The cost meter's arithmetic: marks -> per-stage counts -> milliseconds, table, baseline, gate.

Pure Python (no emulation), so the tests check it on any machine; deploy/pi_cost.py feeds it
the counting plugin's log and the stage script's plan.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TOLERANCE = 0.05
"""A gated count may grow this much over the committed baseline."""

GATED_GROUPS = ("frame", "live", "side")
"""Plan groups whose counts the CI gate holds to the baseline: the whole frame and the live loop's stages."""


@dataclass(frozen=True)
class StageCost:
    """One measured stage on one emulated CPU.

    Attributes:
        name: what ran (the plan's name).
        group: "stage" (a part alone), "frame" (a whole frame), "live" (a live-loop stage on the
            frame's path to the screen, per shown frame), "side" (a live-loop stage on a thread of its
            own, off that path) or "calibration" (a reference model).
        units: repetitions (or shown frames) the counts are divided by.
        thread_m: millions of instructions per unit on the measuring thread.
        all_m: millions per unit over every thread (other threads' work included).
        max_m: millions in the dearest single bracket (a live stage's worst frame).
    """

    name: str
    group: str
    units: int
    thread_m: float
    all_m: float
    max_m: float = 0.0


@dataclass
class CostReport:
    """Every stage's cost on one emulated CPU ("pi4" or "pi5")."""

    cpu: str
    stages: list[StageCost] = field(default_factory=list)
    live: dict[str, int] = field(default_factory=dict)
    """The live loop's frames, parses and mouth passes (from the stage script)."""

    def get(self, name: str) -> StageCost | None:
        """The stage of that name, or None."""
        return next((s for s in self.stages if s.name == name), None)

    def to_json(self) -> dict[str, Any]:
        """A plain dict for the JSON output."""
        return {"cpu": self.cpu, "stages": [asdict(s) for s in self.stages], "live": self.live}


def parse_marks(cpu: str, log_text: str, plan: dict[str, Any]) -> CostReport:
    """Turn the plugin's ``mark ID VCPU THREAD ALL`` lines into per-stage counts.

    Marks 2*i and 2*i+1 bracket stage i; a stage may be bracketed many times (a live-loop
    stage once per call), on any thread: pairs are matched per thread, in order.

    Raises:
        ValueError: a stage has no complete pair, or a begin without its end.
    """
    open_at: dict[tuple[int, int], tuple[int, int]] = {}
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # thread sum, all sum, pairs, max
    for line in log_text.splitlines():
        parts = line.split()
        if len(parts) != 5 or parts[0] != "mark":
            continue
        ident, vcpu, own, every = (int(p) for p in parts[1:])
        stage, end = divmod(ident, 2)
        if not end:
            open_at[(stage, vcpu)] = (own, every)
            continue
        if (stage, vcpu) not in open_at:
            raise ValueError(f"{cpu}: mark {ident} ends stage {stage} on thread {vcpu}, which never began")
        own0, every0 = open_at.pop((stage, vcpu))
        t = totals[stage]
        t[0] += own - own0
        t[1] += every - every0
        t[2] += 1
        t[3] = max(t[3], own - own0)
    if open_at:
        raise ValueError(f"{cpu}: stages begun and never ended: {sorted(s for s, _ in open_at)}")
    report = CostReport(cpu, live=dict(plan.get("live", {})))
    for st in plan["stages"]:
        i, units = int(st["index"]), max(int(st["units"]), 1)
        if i not in totals and int(st["units"]) == 0:
            continue  # a split that never happened (e.g. no carried frames when every frame is parsed)
        if i not in totals:
            raise ValueError(f"{cpu}: no marks for stage {i} ({st['name']}): did the plugin load?")
        own, every, _, most = totals[i]
        report.stages.append(
            StageCost(st["name"], st["group"], units, own / units / 1e6, every / units / 1e6, most / 1e6)
        )
    live = [s for s in report.stages if s.group in ("live", "side")]
    if live:
        total = StageCost(
            LIVE_TOTAL,
            "frame",
            live[0].units,
            sum(s.thread_m for s in live),
            sum(s.all_m for s in live),
            sum(s.max_m for s in live),
        )
        report.stages.append(total)
    return report


LIVE_TOTAL = "live loop, all stages per shown frame"


@dataclass(frozen=True)
class LiveBudget:
    """The live loop against the Pi budget, on one emulated CPU at one clock.

    Attributes:
        largest_m: the dearest pipeline stage per shown frame (one core must keep up with it).
        total_m: every stage of a shown frame together.
        fps: frames per second the dearest stage allows.
        parses_per_s: face parses a second at that rate (capped at the camera's 30 FPS).
        latency_ms: capture to encoded frame, the average frame (the "live" stages in sequence; the
            "side" stages run beside them).
        latency_worst_ms: the same for the dearest frame of each of those stages together.
    """

    largest: str
    largest_m: float
    total_m: float
    fps: float
    parses_per_s: float
    latency_ms: float
    latency_worst_ms: float


def live_budget(report: CostReport, gips: float, camera_fps: float = 30.0) -> LiveBudget | None:
    """The live loop's figures at ``gips`` G instructions a second per core; None without live stages."""
    chain = [s for s in report.stages if s.group == "live"]
    stages = chain + [s for s in report.stages if s.group == "side"]
    if not chain:
        return None
    top = max(stages, key=lambda s: s.thread_m)
    fps = gips * 1e3 / top.thread_m
    frames = max(report.live.get("frames", 0), 1)
    parses = min(fps, camera_fps) * report.live.get("parses", 0) / frames
    total = sum(s.thread_m for s in stages)
    path = sum(s.thread_m for s in chain)
    worst = sum(s.max_m for s in chain)
    return LiveBudget(top.name, top.thread_m, total, fps, parses, path / gips, worst / gips)


def render_budget(reports: dict[str, CostReport], baseline: Baseline) -> str:
    """The live loop against the goals of the Pi issue, per CPU and clock."""
    lines = ["Live loop (pipelined stages, per shown frame):"]
    for cpu, r in reports.items():
        for ghz, gips in baseline.rate_gips(cpu).items():
            b = live_budget(r, gips)
            if b is None:
                continue
            lines.append(
                f"  {cpu}@{ghz:g} GHz: dearest stage {b.largest} {b.largest_m:.1f} M -> {b.fps:.0f} FPS; "
                f"all stages {b.total_m:.1f} M; {b.parses_per_s:.0f} parses/s; "
                f"latency ~{b.latency_ms:.0f} ms (worst ~{b.latency_worst_ms:.0f} ms)"
            )
    return "\n".join(lines)


@dataclass
class Baseline:
    """The committed counts and the instructions -> milliseconds calibration."""

    data: dict[str, Any]

    def rate_gips(self, cpu: str) -> dict[float, float]:
        """Estimated instructions per second (G) of one core of that Pi, per clock (GHz)."""
        cal = self.data["calibration"][cpu]
        return {float(ghz): float(cal["ginstr_per_s_per_ghz"]) * float(ghz) for ghz in cal["clocks_ghz"]}

    def counts(self, cpu: str) -> dict[str, float]:
        """Committed millions of instructions per stage on that CPU."""
        return dict(self.data.get("counts", {}).get(cpu, {}))

    def update_counts(self, reports: dict[str, CostReport]) -> None:
        """Replace the committed counts with these (per CPU, thread counts)."""
        self.data.setdefault("counts", {})
        for cpu, r in reports.items():
            self.data["counts"][cpu] = {s.name: round(s.thread_m, 3) for s in r.stages if s.group != "calibration"}

    def update_calibration(self, reports: dict[str, CostReport]) -> None:
        """Re-derive the Pi 4 rate from the reference models' counts and their published times."""
        refs = self.data["calibration"]["references"]
        pi4 = reports.get("pi4")
        if pi4 is None:
            return
        rates = []
        for name, ref in refs.items():
            st = pi4.get(f"calibration {name}")
            if st is None:
                continue
            ref["count_m_a72"] = round(st.thread_m, 2)
            gips = st.thread_m / 1e3 / (float(ref["pi4_ms"]) / 1e3) / float(ref["threads"])
            ref["ginstr_per_s_per_ghz"] = round(gips / float(ref["clock_ghz"]), 4)
            rates.append(ref["ginstr_per_s_per_ghz"])
        if rates:
            cal = self.data["calibration"]
            primary = refs[cal["primary_reference"]]["ginstr_per_s_per_ghz"]
            cal["pi4"]["ginstr_per_s_per_ghz"] = primary
            cal["pi5"]["ginstr_per_s_per_ghz"] = round(primary * float(cal["pi5"]["per_clock_vs_pi4"]), 4)

    def save(self, path: Path) -> None:
        """Write it back, stable and readable (committed with the change that moved the counts)."""
        path.write_text(json.dumps(self.data, indent=1, sort_keys=True) + "\n")


def load_baseline(path: Path) -> Baseline:
    """Read the committed baseline.

    Raises:
        ValueError: missing, not JSON, or without a calibration for both Pis.
    """
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"baseline {path}: {e}") from e
    cal = data.get("calibration", {})
    for cpu in ("pi4", "pi5"):
        if not {"ginstr_per_s_per_ghz", "clocks_ghz"} <= set(cal.get(cpu, {})):
            raise ValueError(f"baseline {path}: calibration.{cpu} needs ginstr_per_s_per_ghz and clocks_ghz")
    return Baseline(data)


def gate(reports: dict[str, CostReport], baseline: Baseline, tolerance: float = TOLERANCE) -> list[str]:
    """Why the change fails the cost gate (empty when it passes): a gated count grew > tolerance."""
    problems = []
    for cpu, r in reports.items():
        committed = baseline.counts(cpu)
        for s in r.stages:
            if s.group not in GATED_GROUPS or s.name not in committed:
                continue
            was = committed[s.name]
            if s.thread_m > was * (1 + tolerance):
                problems.append(
                    f"{cpu} {s.name}: {s.thread_m:.1f} M instructions, {100 * (s.thread_m / was - 1):.1f} % over "
                    f"the committed {was:.1f} M (benchmarks/pi_cost_baseline.json). Make it cheaper, or run "
                    "`make pi-cost UPDATE=1` and commit the new baseline with the change that explains it."
                )
    return problems


def render_table(reports: dict[str, CostReport], baseline: Baseline) -> str:
    """Per stage: M instructions on each CPU, the baseline's, and estimated ms on each Pi clock."""
    cpus = list(reports)
    rates = {cpu: baseline.rate_gips(cpu) for cpu in cpus}
    names: list[tuple[str, str]] = []
    for r in reports.values():
        for s in r.stages:
            if (s.name, s.group) not in names:
                names.append((s.name, s.group))
    head = f"{'stage':<40}" + "".join(f"{cpu + ' M':>9}{'base':>8}" for cpu in cpus)
    clocks = [(cpu, ghz) for cpu in cpus for ghz in rates[cpu]]
    head += "".join(f"{f'{cpu}@{ghz:g} ms':>13}" for cpu, ghz in clocks)
    lines = ["Instructions per unit (1 thread), and estimated milliseconds on one core:", head]
    group = None
    for name, g in names:
        if g != group:
            lines.append(f"-- {g}")
            group = g
        row = f"{name:<40}"
        for cpu in cpus:
            s = reports[cpu].get(name)
            base = baseline.counts(cpu).get(name)
            row += f"{s.thread_m:>9.1f}" if s else f"{'-':>9}"
            row += f"{base:>8.1f}" if base is not None else f"{'-':>8}"
        for cpu, ghz in clocks:
            s = reports[cpu].get(name)
            row += f"{s.thread_m / rates[cpu][ghz]:>13.1f}" if s else f"{'-':>13}"
        lines.append(row)
    return "\n".join(lines)
