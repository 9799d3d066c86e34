"""Losses for the parts output (imported by the train job; needs Keras)."""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
from keras import ops


def class_weights_from_labels(labels: np.ndarray, n_classes: int, power: float = 0.5, cap: float = 10.0) -> np.ndarray:
    """Per-class weights ~ frequency^-power, normalised to a pixel-weighted mean of 1 and capped.

    Small classes (brows, eyes, lips) cover ~1 % of the pixels each; without
    weighting the network learns them late or not at all.
    """
    counts = np.bincount(labels.reshape(-1).astype(np.int64), minlength=n_classes)[:n_classes].astype(np.float64)
    freq = (counts + 1.0) / (counts.sum() + n_classes)
    w = freq**-power
    w = w / (w * freq).sum()
    return np.clip(w, 0.05, cap).astype(np.float32)


@keras.saving.register_keras_serializable(package="vanity")
class PartsLoss(keras.losses.Loss):
    """Class-weighted cross-entropy plus a soft Dice term over the classes present in each sample.

    ``y_true``: class ids (B, H, W); ``y_pred``: softmax probabilities (B, H, W, C).
    """

    def __init__(self, class_weights=None, dice_weight: float = 0.5, name: str = "parts_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.class_weights = [float(v) for v in class_weights] if class_weights is not None else None
        self.dice_weight = float(dice_weight)

    def call(self, y_true, y_pred):
        n = ops.shape(y_pred)[-1]
        y_true = ops.cast(y_true, "int32")
        if len(y_true.shape) == len(y_pred.shape):  # (B, H, W, 1)
            y_true = ops.squeeze(y_true, -1)
        p = ops.clip(y_pred, 1e-7, 1.0)
        # Pixels labelled IGNORE (255, e.g. hair a teacher cannot see) take no part in the loss.
        valid = ops.cast(y_true < n, p.dtype)
        y_safe = ops.where(y_true < n, y_true, ops.zeros_like(y_true))
        onehot = ops.one_hot(y_safe, n, dtype=p.dtype) * valid[..., None]
        ce = -ops.sum(onehot * ops.log(p), axis=-1)  # (B, H, W)
        if self.class_weights is not None:
            w = ops.take(ops.convert_to_tensor(self.class_weights, dtype=p.dtype), y_safe) * valid
        else:
            w = valid
        ce = ops.sum(ce * w, axis=(1, 2)) / ops.maximum(ops.sum(w, axis=(1, 2)), 1e-6)
        if not self.dice_weight:
            return ce
        y_seen = y_pred * valid[..., None]
        inter = ops.sum(onehot * y_seen, axis=(1, 2))  # (B, C)
        denom = ops.sum(onehot, axis=(1, 2)) + ops.sum(y_seen, axis=(1, 2))
        present = ops.cast(ops.sum(onehot, axis=(1, 2)) > 0, p.dtype)
        dice = (2.0 * inter + 1.0) / (denom + 1.0)
        dice_loss = ops.sum((1.0 - dice) * present, axis=-1) / ops.maximum(ops.sum(present, axis=-1), 1.0)
        return ce + self.dice_weight * dice_loss

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"class_weights": self.class_weights, "dice_weight": self.dice_weight})
        return cfg
