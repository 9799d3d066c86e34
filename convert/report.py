"""The conversion report: what was measured, as a table, JSON and Markdown."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.contract import BundleMetadata, ClassMetrics


@dataclass(frozen=True)
class ClassRow:
    """One class's F1 before and after conversion."""

    name: str
    float_f1: float
    quant_f1: float

    @property
    def drop(self) -> float:
        """Float F1 minus converted F1 (positive = the bundle is worse)."""
        return self.float_f1 - self.quant_f1


@dataclass(frozen=True)
class LatencyRow:
    """Size and median LiteRT invoke time of one variant."""

    variant: str
    size_bytes: int
    ms_1_thread: float
    ms_2_threads: float


def class_rows(float_m: ClassMetrics, quant_m: ClassMetrics) -> list[ClassRow]:
    """Per-class rows for the classes either variant scored (present in the data)."""
    names = list(float_m.per_class_f1) + [n for n in quant_m.per_class_f1 if n not in float_m.per_class_f1]
    return [ClassRow(n, float_m.per_class_f1.get(n, 0.0), quant_m.per_class_f1.get(n, 0.0)) for n in names]


def _fmt_bytes(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):.2f} MiB"


@dataclass
class ConversionReport:
    """Everything ``convert_run`` measured; ``summary`` is the CLI's one-liner."""

    run: str
    quantization: str
    passed: bool
    max_drop: float
    drop: float
    float_metrics: ClassMetrics
    quant_metrics: ClassMetrics
    classes: list[ClassRow]
    face_accuracy: dict[str, float]
    float_size: int
    quant_size: int
    latency: list[LatencyRow]
    macs: int
    n_val: int
    calibration: str
    input_quantization: dict[str, Any]
    ops: dict[str, int]
    outputs: dict[str, str]
    metadata: BundleMetadata
    seconds: float
    bundle: Path | None = None
    report_paths: list[Path] = field(default_factory=list)

    @property
    def size_ratio(self) -> float:
        """float32 .tflite size / converted size."""
        return self.float_size / self.quant_size if self.quant_size else math.nan

    def _latency(self, variant: str) -> LatencyRow | None:
        return next((r for r in self.latency if r.variant == variant), None)

    @property
    def summary(self) -> str:
        """One line: verdict, size, accuracy and speed."""
        q, f = self._latency(self.quantization), self._latency("float32")
        speed = f"{q.ms_2_threads:.2f} ms on 2 threads" if q else "latency not measured"
        if q and f and q is not f:
            speed += f" (float32 {f.ms_2_threads:.2f} ms)"
        verdict = "gate passed" if self.passed else "GATE FAILED"
        return (
            f"{self.quantization}, {_fmt_bytes(self.quant_size)} ({self.size_ratio:.1f}x smaller than float32); "
            f"mean F1 {self.float_metrics.mean_f1:.3f} -> {self.quant_metrics.mean_f1:.3f} "
            f"(drop {self.drop:+.4f}, max {self.max_drop:.4f}, {verdict}); {speed}; {self.macs / 1e6:.1f} M MACs"
        )

    @property
    def table(self) -> str:
        """Per-class F1 table (plain text) with the means and the verdict."""
        q = self.quantization
        lines = [f"{'class':<14} {'float F1':>9} {q + ' F1':>9} {'drop':>8}"]
        for r in self.classes:
            lines.append(f"{r.name:<14} {r.float_f1:>9.4f} {r.quant_f1:>9.4f} {r.drop:>+8.4f}")
        fm, qm = self.float_metrics, self.quant_metrics
        lines.append(f"{'mean F1':<14} {fm.mean_f1:>9.4f} {qm.mean_f1:>9.4f} {self.drop:>+8.4f}")
        lines.append(f"{'mIoU':<14} {fm.miou:>9.4f} {qm.miou:>9.4f} {fm.miou - qm.miou:>+8.4f}")
        fa = self.face_accuracy
        lines.append(f"{'face acc':<14} {fa.get('float', math.nan):>9.4f} {fa.get(q, math.nan):>9.4f}")
        verdict = "passed" if self.passed else "FAILED"
        lines.append(f"gate {verdict}: mean-F1 drop {self.drop:+.4f} (max {self.max_drop:.4f}) on {self.n_val} samples")
        return "\n".join(lines)

    def worst_classes(self, n: int = 3) -> list[ClassRow]:
        """The classes that lost the most F1."""
        return sorted(self.classes, key=lambda r: r.drop, reverse=True)[:n]

    def gate_message(self) -> str:
        """Why the gate refused the bundle, with the worst classes."""
        worst = ", ".join(f"{r.name} {r.float_f1:.3f}->{r.quant_f1:.3f} ({r.drop:+.3f})" for r in self.worst_classes())
        return (
            f"{self.quantization} mean F1 dropped by {self.drop:.4f} "
            f"({self.float_metrics.mean_f1:.4f} -> {self.quant_metrics.mean_f1:.4f}), more than max_drop "
            f"{self.max_drop:.4f}; worst classes: {worst}; calibration: {self.calibration}; no bundle written"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (NaN becomes null)."""

        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {str(k): clean(x) for k, x in v.items()}
            if isinstance(v, list | tuple):
                return [clean(x) for x in v]
            return v

        return clean(
            {
                "run": self.run,
                "bundle": str(self.bundle) if self.bundle else None,
                "quantization": self.quantization,
                "gate": {"passed": self.passed, "drop": self.drop, "max_drop": self.max_drop, "metric": "mean_f1"},
                "metrics": {
                    "float": self.float_metrics.model_dump(),
                    self.quantization: self.quant_metrics.model_dump(),
                },
                "classes": [
                    {"name": r.name, "float_f1": r.float_f1, "quant_f1": r.quant_f1, "drop": r.drop}
                    for r in self.classes
                ],
                "face_accuracy": self.face_accuracy,
                "size_bytes": {"float32": self.float_size, self.quantization: self.quant_size},
                "size_ratio": self.size_ratio,
                "latency_ms": [
                    {
                        "variant": r.variant,
                        "size_bytes": r.size_bytes,
                        "threads_1": r.ms_1_thread,
                        "threads_2": r.ms_2_threads,
                    }
                    for r in self.latency
                ],
                "macs": self.macs,
                "n_val": self.n_val,
                "calibration": self.calibration,
                "input_quantization": self.input_quantization,
                "ops": self.ops,
                "outputs": self.outputs,
                "seconds": self.seconds,
                "metadata": json.loads(self.metadata.model_dump_json()),
            }
        )

    def to_markdown(self) -> str:
        """The report for humans."""
        q = self.quantization
        title = "Conversion report" if self.passed else "REFUSED bundle: conversion report"
        md = [f"# {title}: `{Path(self.run).name}` -> {q}", ""]
        if self.passed:
            md.append(f"Gate **passed**: mean-F1 drop {self.drop:+.4f} <= {self.max_drop:.4f}.")
        else:
            md.append(f"Gate **failed**, no bundle was written: {self.gate_message()}.")
        md += ["", f"{self.n_val} validation samples; calibration: {self.calibration}.", ""]
        md += ["## Accuracy", "", f"| class | float F1 | {q} F1 | drop |", "|---|---:|---:|---:|"]
        for r in self.classes:
            md.append(f"| {r.name} | {r.float_f1:.4f} | {r.quant_f1:.4f} | {r.drop:+.4f} |")
        fm, qm = self.float_metrics, self.quant_metrics
        md.append(f"| **mean F1** | {fm.mean_f1:.4f} | {qm.mean_f1:.4f} | {self.drop:+.4f} |")
        md.append(f"| **mIoU** | {fm.miou:.4f} | {qm.miou:.4f} | {fm.miou - qm.miou:+.4f} |")
        fa = self.face_accuracy
        md.append(f"| face accuracy | {fa.get('float', math.nan):.4f} | {fa.get(q, math.nan):.4f} | |")
        md += ["", "## Size and speed (LiteRT, median of timed invokes after warm-up)", ""]
        md += ["| variant | size | 1 thread | 2 threads |", "|---|---:|---:|---:|"]
        for row in self.latency:
            size = _fmt_bytes(row.size_bytes)
            md.append(f"| {row.variant} | {size} | {row.ms_1_thread:.2f} ms | {row.ms_2_threads:.2f} ms |")
        md += ["", f"Size ratio float32/{q}: {self.size_ratio:.2f}x. MACs per inference: {self.macs:,}.", ""]
        iq = self.input_quantization
        md.append(f"Input: {iq['dtype']}, scale {iq['scale']:g}, zero point {iq['zero_point']}.")
        md.append(f"Outputs (signature names): {', '.join(f'{k} = `{v}`' for k, v in self.outputs.items())}.")
        md.append("Ops: " + ", ".join(f"{k} x{v}" for k, v in sorted(self.ops.items())) + ".")
        md.append(f"\nConverted in {self.seconds:.1f} s.")
        return "\n".join(md) + "\n"


def report_paths(out: Path, refused: bool) -> tuple[Path, Path]:
    """Where the JSON and Markdown reports of a bundle path go."""
    stem = out.with_suffix("").name + (".REFUSED" if refused else "")
    return out.parent / f"{stem}.report.json", out.parent / f"{stem}.report.md"


def write_reports(report: ConversionReport, out: Path, refused: bool) -> list[Path]:
    """Write ``report.json`` / ``report.md`` beside the bundle path.

    A refused bundle's reports carry ``.REFUSED`` in their names so nobody
    mistakes them for the reports of a bundle on disk; a passing conversion
    removes stale refused reports for the same path.
    """
    js, md = report_paths(out, refused)
    js.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    md.write_text(report.to_markdown())
    if not refused:
        for stale in report_paths(out, refused=True):
            stale.unlink(missing_ok=True)
    return [js, md]
