"""A detector that returns a configured box (tests)."""

from __future__ import annotations

import numpy as np

from edge.contract import FaceBox


class FakeDetector:
    """Always returns the configured box, or nothing."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.calls = 0

    def detect(self, frame: np.ndarray) -> list[FaceBox]:
        """The configured box."""
        self.calls += 1
        if self.cfg.box is None:
            return []
        return [FaceBox.from_xywh(*self.cfg.box)]


def create(cfg) -> FakeDetector:
    """Factory used by :func:`edge.detectors.make_detector`."""
    return FakeDetector(cfg)
