"""Synthetic frames for tests: a drawn face or an empty scene, with scripted failures."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edge.sources.base import Pacer, SourceError

if TYPE_CHECKING:
    from edge.config import FakeSourceConfig


def draw_scene(width: int, height: int, t: float, face: bool) -> np.ndarray:
    """A simple scene; the face drifts slowly so consecutive frames differ."""
    import cv2

    img = np.empty((height, width, 3), np.uint8)
    img[:] = (96, 104, 112)
    cv2.rectangle(img, (0, int(height * 0.8)), (width, height), (70, 60, 50), -1)
    if face:
        cx = int(width / 2 + 20 * np.sin(t))
        cy = int(height / 2)
        r = int(min(width, height) * 0.22)
        cv2.ellipse(img, (cx, cy - r // 3), (int(r * 1.15), int(r * 1.1)), 0, 180, 360, (60, 40, 30), -1)
        cv2.ellipse(img, (cx, cy), (int(r * 0.8), r), 0, 0, 360, (200, 160, 130), -1)
        for dx in (-1, 1):
            ex = cx + dx * int(r * 0.35)
            cv2.ellipse(img, (ex, cy - r // 4), (r // 7, r // 14), 0, 0, 360, (250, 250, 250), -1)
            cv2.circle(img, (ex, cy - r // 4), r // 18, (40, 30, 20), -1)
            cv2.ellipse(img, (ex, cy - r // 4 - r // 7), (r // 6, r // 30 + 1), 0, 0, 360, (60, 40, 30), -1)
        cv2.ellipse(img, (cx, cy + int(r * 0.5)), (r // 4, r // 12), 0, 0, 360, (170, 80, 90), -1)
    return img


class FakeSource:
    """Frames drawn in memory; ``fail_after``/``fail_for`` script a camera failure."""

    def __init__(self, cfg: FakeSourceConfig) -> None:
        self.cfg = cfg
        self.name = "fake"
        self._pacer = Pacer(cfg.fps)
        self.frames = 0
        self.failures = 0
        self.opened = False

    def open(self) -> None:
        """Open (fails while the scripted outage lasts)."""
        if self._failing():
            self.failures += 1
            raise SourceError("fake camera unplugged")
        self.opened = True

    def _failing(self) -> bool:
        c = self.cfg
        if not c.fail_after or self.frames < c.fail_after:
            return False
        return c.fail_for == 0 or self.failures < c.fail_for

    def read(self) -> np.ndarray:
        """Next frame, or SourceError during the scripted outage."""
        if self._failing():
            self.failures += 1
            self.opened = False
            raise SourceError("fake camera read failed")
        self._pacer.wait()
        self.frames += 1
        return draw_scene(self.cfg.width, self.cfg.height, self.frames / 15.0, self.cfg.face)

    def close(self) -> None:
        """Nothing to release."""
        self.opened = False


def create(cfg: FakeSourceConfig) -> FakeSource:
    """Factory used by :func:`edge.sources.make_source`."""
    return FakeSource(cfg)
