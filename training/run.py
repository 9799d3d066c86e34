"""What a training run is: the record ``training.train`` writes to ``run.json`` and ``convert`` reads.

One typed record, one file layout, read in one place: conversion never guesses
at keys. The record is validated on read (unknown or missing keys are an error
that names them), so a hand-edited or foreign ``run.json`` fails with one clear
message instead of a bundle built from the wrong data.

This module is cheap to import (no TensorFlow): ``convert`` imports it, and the
import direction is convert -> training -> edge, never back.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, TypeAdapter, ValidationError

from edge.contract import CropGeometry, MouthCrop
from training.model import ModelSpec

log = logging.getLogger(__name__)

RECORD_FILE = "run.json"
"""The run record, in the run directory."""
MODEL_FILE = "model.keras"
"""The best model by validation loss, in the run directory (what conversion reads)."""

Strategy = Literal["default", "mirrored", "multiworker"]

_STRICT = ConfigDict(extra="forbid")


class RunError(ValueError):
    """A run directory that cannot be read; the message names the file and what is wrong."""


@dataclass
class TrainOptions:
    """Everything a training run depends on (written to ``run.json`` as ``options``)."""

    __pydantic_config__ = _STRICT

    data: str
    out: Path
    epochs: int = 30
    batch_size: int = 32
    lr: float = 2e-3
    seed: int = 0
    resume: bool = False
    val_fraction: float = 0.1
    patience: int = 6
    strategy: Strategy = "default"
    model: ModelSpec = field(default_factory=ModelSpec)
    steps_per_epoch: int | None = None
    strict_data: bool = False
    progress: bool = True
    dice_weight: float = 0.5
    face_loss_weight: float = 0.2
    eval_limit: int | None = 2000
    jit_compile: bool | str = "auto"


@dataclass(frozen=True)
class ModelSummary:
    """The trained architecture and its size, as measured when the run started."""

    __pydantic_config__ = _STRICT

    spec: ModelSpec
    params: int
    macs: int
    int8_bytes_estimate: int


@dataclass(frozen=True)
class RunRecord:
    """The contents of ``run.json``: how the run was made, enough to rebuild its data and convert it.

    Attributes:
        options: the training options.
        seed: the data split's and the weights' seed (same as ``options.seed``).
        classes: the parts output's classes, in order.
        crop_geometry: how a face box became the model's input.
        mouth_geometry: the mouth view the model was trained with (None: no mouth refinement pass).
        model: the architecture and its size.
        data: ``training.data``'s split summary (``DataSummary.to_dict()``); informative.
        class_weights: the parts loss's weight per class name.
        steps_per_epoch: optimizer steps per epoch.
        versions: library versions of the training machine.
        started: when the (resumed) run started, ISO 8601 UTC.
        resumed_from_epoch: the epoch a resumed run continued from (None: a fresh run).
        command: the command line that started it.
    """

    __pydantic_config__ = _STRICT

    options: TrainOptions
    seed: int
    classes: tuple[str, ...]
    crop_geometry: CropGeometry
    mouth_geometry: MouthCrop | None
    model: ModelSummary
    data: dict[str, Any]
    class_weights: dict[str, float]
    steps_per_epoch: int
    versions: dict[str, str]
    started: str
    resumed_from_epoch: int | None
    command: str

    @property
    def data_spec(self) -> str:
        """The training data spec (``training.data.parse_spec``)."""
        return self.options.data

    @property
    def val_fraction(self) -> float:
        """Share of the data held out for validation."""
        return self.options.val_fraction

    def class_weights_in_order(self, classes: tuple[str, ...] | list[str]) -> list[float] | None:
        """The loss's class weights in ``classes`` order; None when the record does not weigh every class."""
        if not all(c in self.class_weights for c in classes):
            return None
        return [float(self.class_weights[c]) for c in classes]


_RECORD = TypeAdapter(RunRecord)


@dataclass(frozen=True)
class Run:
    """A training run directory and its record."""

    path: Path
    record: RunRecord

    @property
    def model_path(self) -> Path:
        """The run's best Keras model."""
        return self.path / MODEL_FILE


def write_record(run_dir: Path, record: RunRecord) -> Path:
    """Write ``run.json`` atomically (a reader never sees half a file); returns its path."""
    path = Path(run_dir) / RECORD_FILE
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_RECORD.dump_python(record, mode="json"), indent=2) + "\n")
    tmp.replace(path)
    return path


def parse_record(raw: Any) -> RunRecord:
    """Validate a decoded ``run.json``.

    Raises:
        pydantic.ValidationError: naming each missing, unknown or malformed key.
    """
    return _RECORD.validate_python(raw)


def read_run(run_dir: Path | str) -> Run:
    """Read a run directory written by ``training.train``: its record and where its model is.

    Raises:
        RunError: the directory, ``run.json`` or ``model.keras`` is missing, or the record is not
            valid JSON or not a run record (each bad key named).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: not a training run directory (does not exist)")
    path = run_dir / RECORD_FILE
    if not path.is_file():
        raise RunError(f"{run_dir}: no {RECORD_FILE} (is this a `vanity train` run directory?)")
    if not (run_dir / MODEL_FILE).is_file():
        raise RunError(f"{run_dir}: no trained model (looked for {MODEL_FILE})")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{path}: not valid JSON ({e})") from e
    try:
        record = parse_record(raw)
    except ValidationError as e:
        raise RunError(f"{path}: not a run record written by `vanity train`: {_describe(e)}") from e
    log.debug("read run %s (data %r, seed %d)", run_dir, record.data_spec, record.seed)
    return Run(path=run_dir, record=record)


def _describe(err: ValidationError, most: int = 6) -> str:
    """The validation errors as ``key.path: message``, the first few."""
    items = [f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in err.errors()]
    more = f"; ... and {len(items) - most} more" if len(items) > most else ""
    return "; ".join(items[:most]) + more
