"""The few things conversion needs from a training run, behind one seam.

The run directory's layout and the data/metrics/MAC-count code belong to
``training/``; this module adapts to them and keeps small local fallbacks for
what that package does not (yet) provide, so ``convert`` never re-implements
more than it must.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.contract import ClassMetrics, CropGeometry


@dataclass
class Run:
    """A training run directory, read."""

    path: Path
    model_path: Path
    options: dict[str, Any]
    data_spec: str
    seed: int = 0
    val_fraction: float = 0.1
    crop: CropGeometry = field(default_factory=CropGeometry)
    train_metrics: dict[str, Any] = field(default_factory=dict)

    def data_summary(self, n_val: int, calibration: str | None) -> dict[str, object]:
        """The metadata's training-data summary."""
        summary: dict[str, object] = {
            "spec": self.data_spec,
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "n_val_gate": n_val,
        }
        for key in ("n_train", "n_val", "train_samples", "val_samples", "counts", "sources", "epochs"):
            for src in (self.train_metrics, self.options):
                if key in src and key not in summary:
                    summary[key] = src[key]
        if calibration:
            summary["calibration"] = calibration
        return summary


def _find(d: dict[str, Any], *keys: str) -> Any:
    """First value among keys, looking one level into nested dicts too."""
    for k in keys:
        if k in d:
            return d[k]
    for v in d.values():
        if isinstance(v, dict):
            for k in keys:
                if k in v:
                    return v[k]
    return None


def load_run(run_dir: Path) -> Run:
    """Read ``run.json`` and find the Keras model of a run.

    Raises:
        ConversionError: saying what is missing.
    """
    from convert.quantize import ConversionError

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConversionError(f"{run_dir}: not a training run directory (does not exist)")
    meta_file = run_dir / "run.json"
    if not meta_file.is_file():
        raise ConversionError(f"{run_dir}: no run.json (is this a `vanity train` run directory?)")
    try:
        options = json.loads(meta_file.read_text())
    except json.JSONDecodeError as e:
        raise ConversionError(f"{meta_file}: not valid JSON ({e})") from e
    if not isinstance(options, dict):
        raise ConversionError(f"{meta_file}: must hold a JSON object")
    named = _find(options, "best_model", "model")
    candidates = [run_dir / named] if isinstance(named, str) and named.endswith(".keras") else []
    candidates += [run_dir / "model.keras", run_dir / "best.keras"]
    model_path = next((p for p in candidates if p.is_file()), None)
    if model_path is None:
        raise ConversionError(f"{run_dir}: no trained model (looked for {', '.join(p.name for p in candidates)})")
    spec = _find(options, "data", "data_spec")
    if not isinstance(spec, str) or not spec:
        raise ConversionError(f"{meta_file}: no data spec (key 'data'); cannot rebuild the validation split")
    seed = _find(options, "seed")
    val_fraction = _find(options, "val_fraction")
    crop_raw = _find(options, "crop")
    try:
        crop = CropGeometry.model_validate(crop_raw) if isinstance(crop_raw, dict) else CropGeometry()
    except ValueError as e:
        raise ConversionError(f"{meta_file}: bad crop geometry ({e})") from e
    train_metrics: dict[str, Any] = {}
    mfile = run_dir / "metrics.json"
    if mfile.is_file():
        try:
            loaded = json.loads(mfile.read_text())
            train_metrics = loaded if isinstance(loaded, dict) else {}
        except json.JSONDecodeError:
            train_metrics = {}  # the metrics are informative; the gate re-measures
    return Run(
        path=run_dir,
        model_path=model_path,
        options=options,
        data_spec=spec,
        seed=int(seed) if isinstance(seed, int) else 0,
        val_fraction=float(val_fraction) if isinstance(val_fraction, int | float) else 0.1,
        crop=crop,
        train_metrics=train_metrics,
    )


# --------------------------------------------------------------------------- data


def validation_arrays(run: Run, limit: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The run's validation split: images uint8 (N,128,128,3), labels uint8 (N,S,S), face (N,)."""
    try:
        from training.data import val_arrays
    except ImportError:
        val_arrays = _synth_val_arrays  # fallback until training.data exists
    images, labels, face = val_arrays(run.data_spec, limit=limit, seed=run.seed, val_fraction=run.val_fraction)
    return np.asarray(images, np.uint8), np.asarray(labels, np.uint8), np.asarray(face)


def _synth_val_arrays(
    spec: str, *, limit: int | None = None, seed: int = 0, val_fraction: float = 0.1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Local fallback for "synth:N" only: the last val_fraction of the samples.
    from training.synth import generate

    kind, _, count = spec.partition(":")
    if kind != "synth" or not count.isdigit():
        from convert.quantize import ConversionError

        raise ConversionError(f"data spec {spec!r} needs training.data, which is not installed")
    n = int(count)
    n_val = max(1, round(n * val_fraction))
    if limit is not None:
        n_val = min(n_val, limit)
    b = generate(n_val, seed, start=n - max(1, round(n * val_fraction)))
    return b.images, b.labels, b.face


def calibration_arrays(run: Run, n: int) -> tuple[np.ndarray, str]:
    """``n`` non-augmented samples for calibration, and where they came from."""
    try:
        from training import data
    except ImportError:
        data = None
    # Prefer training samples (the gate then scores data calibration never saw);
    # fall back to the validation split, which only sets ranges.
    for fn_name in ("train_arrays", "calibration_arrays"):
        fn = getattr(data, fn_name, None) if data is not None else None
        if fn is not None:
            out = fn(run.data_spec, limit=n, seed=run.seed, val_fraction=run.val_fraction)
            images = out[0] if isinstance(out, tuple) else out
            return np.asarray(images, np.uint8), f"{n} non-augmented training samples of {run.data_spec}"
    images, _, _ = validation_arrays(run, n)
    return images, f"{len(images)} validation samples of {run.data_spec} (non-augmented)"


# --------------------------------------------------------------------------- metrics and MACs


def class_metrics(labels: np.ndarray, preds: np.ndarray, classes: list[str]) -> ClassMetrics:
    """Mean F1, mIoU and per-class F1 over the classes present in the labels (training.metrics)."""
    from training.metrics import ClassReport

    rep = ClassReport.from_predictions(preds, labels, classes)
    return ClassMetrics(
        mean_f1=rep.mean_f1,
        miou=rep.miou,
        # Only present classes: an absent class's 0.0 would read as a failure in the table.
        per_class_f1={c: f for c, f in rep.per_class_f1.items() if rep.support.get(c, 0) > 0},
    )


def count_macs(model: Any) -> int:
    """Multiply-accumulates per inference (``training.model.count_macs``)."""
    try:
        from training.model import count_macs as training_count_macs
    except ImportError:
        return _count_macs(model)
    return int(training_count_macs(model))


def _count_macs(model: Any) -> int:
    # Fallback: conv / depthwise / dense MACs from the layers' output shapes.
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        try:
            out_shape = layer.output.shape
            in_shape = layer.input.shape
        except (AttributeError, ValueError):
            continue
        if kind in ("Conv2D", "Conv2DTranspose"):
            kh, kw = layer.kernel_size
            total += out_shape[1] * out_shape[2] * out_shape[3] * kh * kw * in_shape[-1] // layer.groups
        elif kind == "DepthwiseConv2D":
            kh, kw = layer.kernel_size
            total += out_shape[1] * out_shape[2] * out_shape[3] * kh * kw
        elif kind == "SeparableConv2D":
            kh, kw = layer.kernel_size
            total += out_shape[1] * out_shape[2] * in_shape[-1] * layer.depth_multiplier * (kh * kw + out_shape[3])
        elif kind == "Dense":
            total += int(np.prod(in_shape[1:])) * out_shape[-1]
    return int(total)
