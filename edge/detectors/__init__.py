"""Face detectors for acquisition: one module per backend, chosen by ``kind``."""

from __future__ import annotations

import importlib
from typing import Protocol

import numpy as np

from edge.contract import FaceBox


class Detector(Protocol):
    """Finds faces in a full RGB frame; returns face boxes in frame pixels."""

    def detect(self, frame: np.ndarray) -> list[FaceBox]:
        """All faces found, in no particular order."""
        ...


_MODULES = {"haar": "edge.detectors.haar", "fake": "edge.detectors.fake"}


def make_detector(cfg) -> Detector:
    """Build the detector a config entry describes."""
    return importlib.import_module(_MODULES[cfg.kind]).create(cfg)


def primary_face(boxes: list[FaceBox], width: int, height: int) -> FaceBox | None:
    """The one customer the kiosk serves: the largest face, preferring the centre."""
    if not boxes:
        return None
    diag = float(np.hypot(width, height))

    def score(b: FaceBox) -> float:
        off = np.hypot(b.cx - width / 2, b.cy - height / 2) / diag
        return b.size * (1.0 - 0.8 * off)

    return max(boxes, key=score)


__all__ = ["Detector", "make_detector", "primary_face"]
