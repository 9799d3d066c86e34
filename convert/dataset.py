"""A run's data as conversion needs it: the gate's validation split, calibration samples, the summary.

The split is rebuilt from the run record (data spec, seed, validation share, crop
geometry) by ``training.data``, which caches it in memory, so validation,
calibration and the summary read the data once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convert.errors import ConversionError
from training.run import Run


def _split(run: Run) -> Any:
    from training.data import load_split

    rec = run.record
    try:
        return load_split(rec.data_spec, seed=rec.seed, val_fraction=rec.val_fraction, geometry=rec.crop_geometry)
    except (ValueError, FileNotFoundError) as e:  # DataError is a ValueError
        raise ConversionError(f"{run.path}: cannot rebuild the run's data {rec.data_spec!r}: {e}") from e


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
        idx = np.sort(np.random.default_rng(run.record.seed).choice(len(tr.face), n, replace=False))
        images = tr.images[idx]
    else:
        images = tr.images
    return images, f"{len(images)} non-augmented training samples of {run.record.data_spec}"


def data_summary(run: Run, n_val: int, calibration: str | None) -> dict[str, object]:
    """The bundle metadata's training-data summary: the split, its per-source counts, what the gate and
    calibration used (``training.data``'s skipped list reduced to its total)."""
    rec = run.record
    summary: dict[str, object] = {"spec": rec.data_spec, "seed": rec.seed, "val_fraction": rec.val_fraction}
    counts = _split(run).summary.to_dict(max_skipped=0)
    summary.update({k: v for k, v in counts.items() if k not in ("spec", "skipped")})
    summary["gate_val_samples"] = n_val
    if calibration:
        summary["calibration"] = calibration
    return summary
