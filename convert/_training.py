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

from edge.contract import ClassMetrics, CropGeometry, MouthCrop


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
    mouth: MouthCrop | None = None
    train_metrics: dict[str, Any] = field(default_factory=dict)
    class_weights: list[float] | None = None
    """The parts loss's class weights, in class order (None: the run did not record them)."""

    def data_summary(self, n_val: int, calibration: str | None) -> dict[str, object]:
        """The metadata's training-data summary: the split, its counts, what the gate and calibration used."""
        summary: dict[str, object] = {"spec": self.data_spec, "seed": self.seed, "val_fraction": self.val_fraction}
        summary.update({k: v for k, v in data_summary(self).items() if k != "spec"})
        summary["gate_val_samples"] = n_val
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
    named = _find(options, "best_model")
    candidates = [run_dir / named] if isinstance(named, str) and named.endswith(".keras") else []
    candidates += [run_dir / "model.keras", run_dir / "best.keras"]
    model_path = next((p for p in candidates if p.is_file()), None)
    if model_path is None:
        raise ConversionError(f"{run_dir}: no trained model (looked for {', '.join(p.name for p in candidates)})")
    # `vanity train` writes the CLI options under "options" and a data summary
    # (a dict with "spec") under "data"; a hand-made run may put the spec at the top.
    opts = options.get("options") if isinstance(options.get("options"), dict) else {}
    spec = opts.get("data", options.get("data"))
    if isinstance(spec, dict):
        spec = spec.get("spec")
    if not isinstance(spec, str) or not spec:
        raise ConversionError(f"{meta_file}: no data spec (key 'data'); cannot rebuild the validation split")
    seed = options.get("seed", opts.get("seed"))
    val_fraction = opts.get("val_fraction", options.get("val_fraction"))
    crop_raw = options.get("crop_geometry", options.get("crop"))
    try:
        crop = CropGeometry.model_validate(crop_raw) if isinstance(crop_raw, dict) else CropGeometry()
    except ValueError as e:
        raise ConversionError(f"{meta_file}: bad crop geometry ({e})") from e
    mouth_raw = options.get("mouth_geometry")
    try:
        # Runs made before mouth views existed have none: their bundles get no refinement pass.
        mouth = MouthCrop.model_validate(mouth_raw) if isinstance(mouth_raw, dict) else None
    except ValueError as e:
        raise ConversionError(f"{meta_file}: bad mouth geometry ({e})") from e
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
        mouth=mouth,
        train_metrics=train_metrics,
        class_weights=_class_weights(options.get("class_weights")),
    )


def _class_weights(raw: Any) -> list[float] | None:
    from edge.contract import CLASSES

    if isinstance(raw, dict) and all(isinstance(raw.get(c), int | float) for c in CLASSES):
        return [float(raw[c]) for c in CLASSES]
    return None


def fold_prior_correction(model: Any, weights: list[float], alpha: float) -> None:
    """Divide the parts softmax by ``weights ** alpha``: ``alpha * log(w)`` off the classifier's bias, in place.

    Class-weighted cross-entropy trains the softmax towards ``weight * posterior``, so
    at a part's edge the argmax favours the up-weighted small classes (lips, eyes,
    brows come out a pixel fat against the teacher). ``alpha = 1`` restores the plain
    posterior; folding it into the bias keeps the bundle's contract and costs nothing
    on the device.

    Raises:
        ValueError: the model has no ``classifier`` layer with a bias of one entry per class.
    """
    try:
        layer = model.get_layer("classifier")
    except ValueError as e:
        raise ValueError("prior correction needs the model's 'classifier' layer") from e
    kernel, bias = layer.get_weights()
    w = np.asarray(weights, np.float32)
    if bias.shape != w.shape or not (w > 0).all():
        raise ValueError(f"prior correction: {len(w)} positive class weights needed for a bias of shape {bias.shape}")
    layer.set_weights([kernel, bias - np.float32(alpha) * np.log(w)])


# --------------------------------------------------------------------------- data


def _split(run: Run) -> Any:
    # training.data caches the last split in memory, so validation, calibration
    # and the summary read the data once.
    from training.data import load_split

    try:
        return load_split(run.data_spec, seed=run.seed, val_fraction=run.val_fraction, geometry=run.crop)
    except (ValueError, FileNotFoundError) as e:  # DataError is a ValueError
        from convert.quantize import ConversionError

        raise ConversionError(f"{run.path}: cannot rebuild the run's data {run.data_spec!r}: {e}") from e


def validation_arrays(run: Run, limit: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The run's (non-augmented) validation split: images uint8 (N,128,128,3), labels uint8 (N,S,S), face (N,)."""
    va = _split(run).val
    n = len(va.face) if limit is None else min(limit, len(va.face))
    return va.images[:n], va.labels[:n], va.face[:n]


def calibration_arrays(run: Run, n: int) -> tuple[np.ndarray, str]:
    """``n`` non-augmented training samples for calibration, and where they came from.

    Training samples, not validation ones, so the gate scores data the
    calibration never saw; a seeded random subset so a sorted folder does not
    calibrate on one kind of face.
    """
    tr = _split(run).train
    if len(tr.face) > n:
        idx = np.sort(np.random.default_rng(run.seed).choice(len(tr.face), n, replace=False))
        images = tr.images[idx]
    else:
        images = tr.images
    return images, f"{len(images)} non-augmented training samples of {run.data_spec}"


def data_summary(run: Run) -> dict[str, Any]:
    """training.data's per-source counts (the skipped list is reduced to its total)."""
    d = _split(run).summary.to_dict(max_skipped=0)
    d.pop("skipped", None)
    return d


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
