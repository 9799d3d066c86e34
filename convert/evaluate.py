"""Run the float model and a bundle on the same data; time a .tflite under LiteRT.

The bundle side goes through ``edge.runtime.open_parser`` — the kiosk's own
loader — so the accuracy gate measures exactly what the device will run
(signature-name lookup, input requantization, output dequantization included).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.contract import ClassMetrics


@dataclass(frozen=True)
class Predictions:
    """Per-pixel class ids and face scores for a batch of crops."""

    classes: np.ndarray  # uint8 (N, S, S)
    face: np.ndarray  # float32 (N,)


def predict_keras(model: Any, images: np.ndarray, batch_size: int = 32) -> Predictions:
    """Run the float Keras model (dict outputs "parts" and "face") on uint8 crops."""
    classes, faces = [], []
    for i in range(0, len(images), batch_size):
        # The model rescales internally; it expects uint8-valued floats.
        x = images[i : i + batch_size].astype(np.float32)
        out = model(x, training=False)
        classes.append(np.argmax(np.asarray(out["parts"]), axis=-1).astype(np.uint8))
        faces.append(np.asarray(out["face"], dtype=np.float32).reshape(-1))
    return Predictions(np.concatenate(classes), np.concatenate(faces))


def predict_bundle(path: Path, images: np.ndarray, runtime: str = "litert", threads: int = 2) -> Predictions:
    """Run a bundle through the device loader, one crop at a time as on the kiosk."""
    from edge.runtime import open_parser

    parser = open_parser(path, runtime=runtime, threads=threads)
    classes, faces = [], []
    for img in images:
        out = parser(img)
        classes.append(np.argmax(out.probs, axis=-1).astype(np.uint8))
        faces.append(out.face)
    return Predictions(np.stack(classes), np.asarray(faces, dtype=np.float32))


def class_metrics(labels: np.ndarray, preds: np.ndarray, classes: list[str]) -> ClassMetrics:
    """Mean F1, mIoU and per-class F1 over the classes present in the labels (``training.metrics``)."""
    from training.metrics import ClassReport

    rep = ClassReport.from_predictions(preds, labels, classes)
    return ClassMetrics(
        mean_f1=rep.mean_f1,
        miou=rep.miou,
        # Only present classes: an absent class's 0.0 would read as a failure in the table.
        per_class_f1={c: f for c, f in rep.per_class_f1.items() if rep.support.get(c, 0) > 0},
    )


def face_accuracy(scores: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> float:
    """Share of crops whose face-present decision matches the label."""
    if len(truth) == 0:
        return float("nan")
    return float(np.mean((scores >= threshold) == (np.asarray(truth) >= 0.5)))


def median_latency_ms(model: bytes, example: np.ndarray, threads: int, runs: int = 50, warmup: int = 5) -> float:
    """Median wall time of one invoke under LiteRT, in milliseconds.

    Args:
        model: the .tflite bytes.
        example: one input of the model's shape (batch axis included); cast to
            the model's input dtype.
        threads: interpreter threads (XNNPACK uses them).
        runs: timed invokes; the median is robust to the odd scheduler hiccup.
        warmup: untimed invokes first (XNNPACK packs weights on the first run).
    """
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model, num_threads=threads)
    interp.allocate_tensors()
    detail = interp.get_input_details()[0]
    interp.set_tensor(detail["index"], example.astype(detail["dtype"]))
    for _ in range(warmup):
        interp.invoke()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        interp.invoke()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000.0
