"""Segmentation metrics in pure numpy (no TensorFlow): the training report and the conversion gate share them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from edge.contract import CLASS_GROUPS, CLASSES


def confusion_matrix(pred: np.ndarray, true: np.ndarray, n_classes: int = len(CLASSES)) -> np.ndarray:
    """Pixel confusion matrix, rows = ground truth, columns = prediction.

    Ground-truth values outside ``[0, n_classes)`` (e.g. an ignore label of 255)
    are left out; a prediction outside that range is an error.
    """
    pred = np.asarray(pred).reshape(-1).astype(np.int64)
    true = np.asarray(true).reshape(-1).astype(np.int64)
    if pred.shape != true.shape:
        raise ValueError(f"pred and true differ in size: {pred.size} vs {true.size}")
    keep = (true >= 0) & (true < n_classes)
    pred, true = pred[keep], true[keep]
    if pred.size and (pred.min() < 0 or pred.max() >= n_classes):
        raise ValueError(f"predicted class ids must lie in [0, {n_classes})")
    return np.bincount(true * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _f1_iou(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        iou = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), 0.0)
    return f1.astype(float), iou.astype(float)


@dataclass
class ClassReport:
    """Per-class F1 / IoU and their means over the classes present in the ground truth."""

    per_class_f1: dict[str, float]
    per_class_iou: dict[str, float]
    support: dict[str, int]
    mean_f1: float
    miou: float
    pixel_accuracy: float
    groups_f1: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_confusion(cls, conf: np.ndarray, classes: Sequence[str] = CLASSES) -> ClassReport:
        """Build the report from a confusion matrix (rows = truth)."""
        conf = np.asarray(conf, np.int64)
        tp = np.diag(conf).astype(float)
        fp = conf.sum(0) - tp
        fn = conf.sum(1) - tp
        f1, iou = _f1_iou(tp, fp, fn)
        support = conf.sum(1)
        present = support > 0
        total = conf.sum()
        return cls(
            per_class_f1={c: float(f1[i]) for i, c in enumerate(classes)},
            per_class_iou={c: float(iou[i]) for i, c in enumerate(classes)},
            support={c: int(support[i]) for i, c in enumerate(classes)},
            mean_f1=float(f1[present].mean()) if present.any() else 0.0,
            miou=float(iou[present].mean()) if present.any() else 0.0,
            pixel_accuracy=float(tp.sum() / total) if total else 0.0,
            groups_f1=group_f1(conf, classes=classes) if tuple(classes) == CLASSES else {},
        )

    @classmethod
    def from_predictions(cls, pred: np.ndarray, true: np.ndarray, classes: Sequence[str] = CLASSES) -> ClassReport:
        """Build the report from predicted and true class-id maps."""
        return cls.from_confusion(confusion_matrix(pred, true, len(classes)), classes)

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


def group_f1(
    conf: np.ndarray,
    groups: Mapping[str, Sequence[str]] = CLASS_GROUPS,
    classes: Sequence[str] = CLASSES,
) -> dict[str, float]:
    """F1 of class groups (e.g. both lips as "lips"), merging the group's classes into one.

    Groups whose classes never occur in the ground truth or the prediction are left out.
    """
    conf = np.asarray(conf, np.int64)
    out: dict[str, float] = {}
    for name, members in groups.items():
        idx = [classes.index(m) for m in members]
        tp = float(conf[np.ix_(idx, idx)].sum())
        truth = float(conf[idx, :].sum())
        predicted = float(conf[:, idx].sum())
        if truth + predicted == 0:
            continue
        out[name] = 2 * tp / (truth + predicted)
    return out


def majority_baseline(true: np.ndarray, n_classes: int = len(CLASSES)) -> ClassReport:
    """The report of a model that predicts the most frequent class everywhere."""
    true = np.asarray(true)
    counts = np.bincount(true[(true >= 0) & (true < n_classes)].reshape(-1), minlength=n_classes)
    return ClassReport.from_predictions(np.full(true.shape, int(np.argmax(counts))), true)


def format_table(report: ClassReport, title: str = "") -> str:
    """A fixed-width per-class table (F1, IoU, support share), then the means and groups."""
    total = max(sum(report.support.values()), 1)
    lines = [title] if title else []
    lines.append(f"{'class':<15}{'F1':>7}{'IoU':>7}{'pixels':>9}")
    for c, f1 in report.per_class_f1.items():
        lines.append(f"{c:<15}{f1:7.3f}{report.per_class_iou[c]:7.3f}{100 * report.support[c] / total:8.2f}%")
    lines.append(f"{'mean (present)':<15}{report.mean_f1:7.3f}{report.miou:7.3f}")
    if report.groups_f1:
        lines.append("groups F1: " + ", ".join(f"{k} {v:.3f}" for k, v in report.groups_f1.items()))
    return "\n".join(lines)
