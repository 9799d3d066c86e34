"""The train job: data spec in, a run directory with the best Keras model and its report out.

Run directory layout::

    RUN/
      run.json            the run record (training/run.py: options, seed, geometry, class weights, versions)
      checkpoints/        last.keras (weights + optimizer) and state.json (epoch counter, best val loss)
      model.keras         the best model by validation loss (what `vanity convert` reads)
      log.csv             per-epoch losses (appended across resumes)
      tensorboard/        TensorBoard logs (when the tensorboard package is installed)
      metrics.json        per-class F1 / IoU and means on the validation split (training/metrics.py)
      curves.png          loss curves
      contact_sheet.png   validation images | ground truth | prediction

``resume=True`` restores the weights, the optimizer (and with it the learning
rate schedule's step) and the epoch counter from ``checkpoints/`` and continues.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.contract import CLASSES, OUTPUT_FACE, OUTPUT_PARTS, CropGeometry, MouthCrop
from training.metrics import ClassReport, format_table, majority_baseline
from training.model import ModelSpec
from training.run import MODEL_FILE, ModelSummary, RunRecord, TrainOptions, write_record

PALETTE = np.array(
    [
        (0, 0, 0),  # background
        (224, 172, 105),  # skin
        (255, 0, 0),  # left_eyebrow
        (0, 200, 0),  # right_eyebrow
        (255, 0, 255),  # left_eye
        (0, 255, 255),  # right_eye
        (255, 255, 0),  # nose
        (200, 0, 100),  # upper_lip
        (40, 40, 160),  # inner_mouth
        (255, 100, 180),  # lower_lip
        (120, 60, 0),  # hair
    ],
    np.uint8,
)
"""Colour of each class in the contact sheet."""


@dataclass
class TrainResult:
    """What a run produced."""

    run_dir: Path
    best_model: Path
    metrics: dict
    epochs_run: int  # the run's epoch counter after this call (includes epochs before a resume)
    history: dict[str, list[float]]  # this call's epochs only


def options_from_cli(
    data: str,
    out: Path,
    epochs: int = 30,
    batch_size: int = 32,
    seed: int = 0,
    resume: bool = False,
    strategy: str = "default",
    width: float = 1.0,
    steps_per_epoch: int | None = None,
    lr: float = 2e-3,
    strict_data: bool = False,
) -> TrainOptions:
    """Build options from the CLI's flat arguments (validating them).

    Raises:
        ValueError: on a bad value.
    """
    from training.data import parse_spec

    parse_spec(data)
    if strategy not in ("default", "mirrored", "multiworker"):
        raise ValueError(f"unknown strategy {strategy!r}; expected default, mirrored or multiworker")
    if epochs < 1 or batch_size < 1:
        raise ValueError("epochs and batch_size must be at least 1")
    if not width > 0:
        raise ValueError(f"width must be positive, got {width}")
    if steps_per_epoch is not None and steps_per_epoch < 1:
        raise ValueError("steps_per_epoch must be at least 1")
    return TrainOptions(
        data=data,
        out=Path(out),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        resume=resume,
        strategy=strategy,  # type: ignore[arg-type]
        model=ModelSpec(width=width),
        steps_per_epoch=steps_per_epoch,
        strict_data=strict_data,
    )


# --------------------------------------------------------------------------- helpers


def _versions() -> dict[str, str]:
    import cv2
    import keras
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
    }


def _strategy(name: str):
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        # Reads the cluster from TF_CONFIG; every worker runs the same command.
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}")


def _is_chief() -> bool:
    cfg = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = cfg.get("task", {})
    return task.get("type", "chief") == "chief" or (
        task.get("type") == "worker" and task.get("index", 0) == 0 and "chief" not in cfg.get("cluster", {})
    )


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    tmp.replace(path)


def colorize(labels: np.ndarray) -> np.ndarray:
    """Class ids -> RGB with ``PALETTE``."""
    return PALETTE[np.clip(labels, 0, len(PALETTE) - 1)]


def predict_labels(model, images: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Class-id maps (N, S, S) uint8 and face scores (N,) for uint8 images."""
    parts, faces = [], []
    for i in range(0, len(images), batch_size):
        out = model(images[i : i + batch_size].astype(np.float32), training=False)
        parts.append(np.argmax(np.asarray(out[OUTPUT_PARTS]), -1).astype(np.uint8))
        faces.append(np.asarray(out[OUTPUT_FACE]).reshape(-1))
    if not parts:
        return np.zeros((0,), np.uint8), np.zeros((0,), np.float32)
    return np.concatenate(parts), np.concatenate(faces)


def _contact_sheet(path: Path, images: np.ndarray, labels: np.ndarray, pred: np.ndarray, n: int = 8) -> None:
    import cv2

    rows = []
    for i in range(min(n, len(images))):
        s = images.shape[1]
        gt = cv2.resize(colorize(labels[i]), (s, s), interpolation=cv2.INTER_NEAREST)
        pr = cv2.resize(colorize(pred[i]), (s, s), interpolation=cv2.INTER_NEAREST)
        rows.append(np.concatenate([images[i], gt, pr], 1))
    if rows:
        cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))


def _curves(path: Path, log_csv: Path) -> None:
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not log_csv.is_file():
        return
    with open(log_csv) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]
    keys = [k for k in rows[0] if k != "epoch" and not k.startswith("learning_rate")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, base in zip(axes, ("loss", f"{OUTPUT_PARTS}_loss", f"{OUTPUT_FACE}_loss"), strict=True):
        for k in (base, f"val_{base}"):
            if k in keys:
                ax.plot(epochs, [float(r[k]) for r in rows], label=k, marker=".")
        ax.set_xlabel("epoch")
        ax.set_title(base)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --------------------------------------------------------------------------- the job


def train(opts: TrainOptions) -> TrainResult:
    """Train a model as the options say and write the run directory.

    Raises:
        ValueError: bad options or data spec, or an existing run without ``resume``.
        FileNotFoundError: a data path is missing.
        training.data.DataError: malformed data with ``strict_data``.
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from training import data as data_mod
    from training.losses import PartsLoss, class_weights_from_labels
    from training.model import build_model, count_macs, int8_size_estimate, summary_line

    log = print  # the train job's own progress output
    run = Path(opts.out)
    ckpt_dir = run / "checkpoints"
    state_path = ckpt_dir / "state.json"
    last_path = ckpt_dir / "last.keras"
    best_path = run / MODEL_FILE
    chief = _is_chief()
    if not chief:  # other workers write their (identical) files out of the way
        run = run / "workers" / str(json.loads(os.environ["TF_CONFIG"])["task"]["index"])
        ckpt_dir, best_path = run / "checkpoints", run / MODEL_FILE
        state_path, last_path = ckpt_dir / "state.json", ckpt_dir / "last.keras"
    state = json.loads(state_path.read_text()) if state_path.is_file() else None
    if state is not None and not opts.resume:
        raise ValueError(f"{run} already holds a run (checkpoints/); pass resume=True (--resume) or choose a new --out")
    if opts.resume and state is None:
        log(f"resume: no checkpoint in {ckpt_dir}, starting from scratch")
    run.mkdir(parents=True, exist_ok=True)
    ckpt_dir.mkdir(exist_ok=True)

    keras.utils.set_random_seed(opts.seed)
    t0 = time.monotonic()
    split = data_mod.load_split(opts.data, seed=opts.seed, val_fraction=opts.val_fraction, strict=opts.strict_data)
    for line in split.summary.lines():
        log(line)
    log(f"data ready in {time.monotonic() - t0:.1f} s")
    sample = split.train.labels[: min(len(split.train), 4000)]
    weights = class_weights_from_labels(sample, len(CLASSES))

    steps = opts.steps_per_epoch or max(1, len(split.train) // opts.batch_size)
    total_steps = steps * opts.epochs
    strategy = _strategy(opts.strategy)
    with strategy.scope():
        if state is not None:
            model = keras.models.load_model(last_path)
            initial_epoch = int(state["epoch"])
            log(f"resumed from {last_path} at epoch {initial_epoch}")
        else:
            model = build_model(opts.model)
            warmup = min(max(steps, 1), max(total_steps // 10, 1))
            schedule = keras.optimizers.schedules.CosineDecay(
                initial_learning_rate=opts.lr * 0.1,
                decay_steps=max(total_steps - warmup, 1),
                alpha=0.02,
                warmup_target=opts.lr,
                warmup_steps=warmup,
            )
            model.compile(
                optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=1e-4),
                loss={
                    OUTPUT_PARTS: PartsLoss(weights.tolist(), dice_weight=opts.dice_weight),
                    OUTPUT_FACE: keras.losses.BinaryCrossentropy(),
                },
                loss_weights={OUTPUT_PARTS: 1.0, OUTPUT_FACE: opts.face_loss_weight},
                jit_compile=opts.jit_compile,
            )
            initial_epoch = 0
    log(summary_line(model))

    write_record(
        run,
        RunRecord(
            options=opts,
            seed=opts.seed,
            classes=CLASSES,
            crop_geometry=CropGeometry(),
            # The data readers and the generator always include the device's mouth views.
            mouth_geometry=MouthCrop(),
            model=ModelSummary(
                spec=opts.model,
                params=int(model.count_params()),
                macs=count_macs(model),
                int8_bytes_estimate=int8_size_estimate(model),
            ),
            data=split.summary.to_dict(),
            class_weights=dict(zip(CLASSES, map(float, weights), strict=True)),
            steps_per_epoch=steps,
            versions=_versions(),
            started=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            resumed_from_epoch=initial_epoch if state is not None else None,
            command=" ".join(sys.argv),
        ),
    )

    has_val = len(split.val) > 0
    monitor = "val_loss" if has_val else "loss"
    train_ds = data_mod.arrays_dataset(
        split.train, batch_size=opts.batch_size, shuffle=True, augment=True, seed=opts.seed
    ).repeat()
    val_ds = (
        data_mod.arrays_dataset(split.val, batch_size=opts.batch_size, shuffle=False, augment=False)
        if has_val
        else None
    )

    best_so_far = state.get("best") if state else None

    class EpochState(keras.callbacks.Callback):
        """Saves the last model (with optimizer) and the epoch counter after every epoch."""

        def __init__(self):
            super().__init__()
            self.best = best_so_far

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            cur = logs.get(monitor)
            if cur is not None and (self.best is None or cur < self.best):
                self.best = float(cur)
            tmp = ckpt_dir / "last.tmp.keras"
            self.model.save(tmp)
            tmp.replace(last_path)
            _write_json(state_path, {"epoch": epoch + 1, "best": self.best, "monitor": monitor})

    callbacks = [
        keras.callbacks.ModelCheckpoint(
            best_path, monitor=monitor, save_best_only=True, initial_value_threshold=best_so_far
        ),
        EpochState(),
        keras.callbacks.CSVLogger(run / "log.csv", append=state is not None),
        keras.callbacks.EarlyStopping(monitor=monitor, patience=opts.patience),
        keras.callbacks.TerminateOnNaN(),
    ]
    if importlib.util.find_spec("tensorboard") is not None:
        callbacks.append(keras.callbacks.TensorBoard(run / "tensorboard", write_graph=False, profile_batch=0))
    else:  # TensorFlow's summaries need the tensorboard package; the run works without it
        log("tensorboard not installed: no tensorboard/ logs (pip install tensorboard)")
    history: dict[str, list[float]] = {}
    if initial_epoch < opts.epochs:
        h = model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=opts.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps,
            callbacks=callbacks,
            verbose=1 if opts.progress else 2,
        )
        history = {k: [float(v) for v in vs] for k, vs in h.history.items()}
    else:
        log(f"nothing to do: the run already completed {initial_epoch} of {opts.epochs} epochs")
    final_state = json.loads(state_path.read_text()) if state_path.is_file() else {"epoch": initial_epoch}
    if not best_path.is_file():  # e.g. no improvement after a resume; keep the last model as the best
        model.save(best_path)

    # Report on the validation split with the best model.
    best = keras.models.load_model(best_path)
    report_arr = split.val if has_val else split.train
    if opts.eval_limit is not None:
        report_arr = report_arr.take(np.arange(min(opts.eval_limit, len(report_arr))))
    pred, face_p = predict_labels(best, report_arr.images)
    report = ClassReport.from_predictions(pred, report_arr.labels)
    baseline = majority_baseline(report_arr.labels)
    face_acc = float(np.mean((face_p > 0.5) == (report_arr.face > 0))) if len(report_arr) else 0.0
    metrics = {
        "split": "val" if has_val else "train",
        "samples": len(report_arr),
        "float": report.to_dict(),
        "face_accuracy": face_acc,
        "majority_baseline_mean_f1": baseline.mean_f1,
        "epochs": int(final_state["epoch"]),
    }
    _write_json(run / "metrics.json", metrics)
    _curves(run / "curves.png", run / "log.csv")
    face_idx = np.nonzero(report_arr.face > 0)[0][:8]
    _contact_sheet(run / "contact_sheet.png", report_arr.images[face_idx], report_arr.labels[face_idx], pred[face_idx])
    log(format_table(report, title=f"validation ({len(report_arr)} samples), best model {best_path}"))
    log(f"face accuracy {face_acc:.3f}; majority-class mean F1 {baseline.mean_f1:.3f}")
    return TrainResult(run, best_path, metrics, int(final_state["epoch"]), history)
