"""The train job end to end: it learns, writes every artifact, and resumes from its checkpoint."""

from __future__ import annotations

import csv
import importlib.util
import json

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow"),
]

ARTIFACTS = ("run.json", "model.keras", "log.csv", "metrics.json", "curves.png", "contact_sheet.png")


def test_ci_run_learns_and_writes_artifacts(tmp_path):
    """Guards against a pipeline that runs but does not learn (labels misaligned, loss wiring, BN stats):
    a CI-sized run must beat the majority-class baseline's mean F1 by a wide margin."""
    from training.model import ModelSpec
    from training.train import TrainOptions, train

    out = tmp_path / "run"
    result = train(
        TrainOptions(
            data="synth:1500", out=out, epochs=3, batch_size=16, lr=6e-3, model=ModelSpec(width=0.5), progress=False
        )
    )
    for name in ARTIFACTS:
        assert (out / name).is_file(), name
    assert (out / "checkpoints" / "last.keras").is_file()
    run = json.loads((out / "run.json").read_text())
    assert run["options"]["data"] == "synth:1500" and run["model"]["spec"]["width"] == 0.5
    assert run["data"]["train"] + run["data"]["val"] == 1500
    metrics = json.loads((out / "metrics.json").read_text())
    baseline = metrics["majority_baseline_mean_f1"]
    mean_f1 = metrics["float"]["mean_f1"]
    assert mean_f1 > baseline + 0.25, (mean_f1, baseline)
    assert metrics["float"]["per_class_f1"]["skin"] > 0.6
    assert result.epochs_run == 3 and result.best_model == out / "model.keras"


def test_resume_continues_the_epoch_counter(tmp_path):
    """Guards against --resume restarting from epoch 0 (or refusing to start) instead of continuing."""
    from training.model import ModelSpec
    from training.train import TrainOptions, train

    out = tmp_path / "run"
    opts = dict(data="synth:120", out=out, batch_size=8, model=ModelSpec(width=0.25), progress=False, steps_per_epoch=3)
    first = train(TrainOptions(epochs=1, **opts))
    assert first.epochs_run == 1
    with pytest.raises(ValueError, match="resume"):
        train(TrainOptions(epochs=2, **opts))  # an existing run is not clobbered silently
    second = train(TrainOptions(epochs=2, resume=True, **opts))
    assert second.epochs_run == 2
    assert len(second.history["loss"]) == 1  # only the new epoch ran
    with open(out / "log.csv") as f:
        epochs = [int(r["epoch"]) for r in csv.DictReader(f)]
    assert epochs == [0, 1]
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 2
