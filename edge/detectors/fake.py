"""A detector that returns a configured box (tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edge.contract import FaceBox
from edge.detectors import Detection

if TYPE_CHECKING:
    from edge.config import FakeDetectorConfig


class FakeDetector:
    """Always returns the configured box, or nothing."""

    def __init__(self, cfg: FakeDetectorConfig) -> None:
        self.cfg = cfg
        self.calls = 0

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """The configured box."""
        self.calls += 1
        if self.cfg.box is None:
            return []
        return [Detection(FaceBox.from_xywh(*self.cfg.box))]

    def search(self, image: np.ndarray) -> list[Detection]:
        """A still image: the same as :meth:`detect`."""
        return self.detect(image)


def create(cfg: FakeDetectorConfig) -> FakeDetector:
    """Factory used by :func:`edge.detectors.make_detector`."""
    return FakeDetector(cfg)
