"""The built-in demo source: an allowed real photo moved like a person at a mirror.

The photo (scikit-image's ``astronaut``, the one real face the project may ship)
is written into ``edge/data/demo/`` by ``python -m training.assets``. The
motion is a slow sway, nod and lean built from incommensurate sines, so the
face never repeats exactly and never jumps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from edge.config import PACKAGE_DATA
from edge.sources.base import Pacer, SourceError

if TYPE_CHECKING:
    from edge.config import DemoSourceConfig

DEMO_IMAGE = PACKAGE_DATA / "demo" / "astronaut.jpg"
# Head centre and size in the 512x512 photo (measured with the Haar cascade).
_HEAD = (224.0, 118.0)
_HEAD_SIZE = 95.0


def load_demo_image() -> np.ndarray:
    """The demo photo as RGB; falls back to scikit-image's copy when installed."""
    from edge.sources.image import read_rgb

    try:
        return read_rgb(DEMO_IMAGE)
    except SourceError:
        pass
    try:
        from skimage.data import astronaut
    except ImportError as e:
        raise SourceError(f"demo image {DEMO_IMAGE} is missing; run `python -m training.assets`") from e
    return astronaut()


class DemoSource:
    """A moving view of the demo photo; optionally the face leaves now and then."""

    def __init__(self, cfg: DemoSourceConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.name = "demo"
        self._clock = clock
        self._pacer = Pacer(cfg.fps)
        self._img: np.ndarray | None = None
        self._t0 = clock()

    def _photo(self) -> np.ndarray:
        if self._img is None:
            self._img = load_demo_image()
        return self._img

    def open(self) -> None:
        """Load the photo once."""
        self._photo()
        self._t0 = self._clock()

    def transform(self, t: float) -> np.ndarray:
        """Photo -> frame affine at time t: sway, nod, roll and lean."""
        w, h = self.cfg.width, self.cfg.height
        face_px = 0.33 * h * (1.0 + 0.06 * math.sin(0.23 * t * 2 * math.pi))
        k = face_px / _HEAD_SIZE
        roll = math.radians(6.0 * math.sin(0.17 * t * 2 * math.pi + 0.5))
        dx = 0.06 * w * math.sin(0.11 * t * 2 * math.pi)
        dy = 0.03 * h * math.sin(0.29 * t * 2 * math.pi + 1.0)
        c, s = math.cos(roll) * k, math.sin(roll) * k
        cx, cy = w / 2 + dx, h * 0.45 + dy
        hx, hy = _HEAD
        return np.array([[c, -s, cx - (c * hx - s * hy)], [s, c, cy - (s * hx + c * hy)]])

    def _absent(self, t: float) -> bool:
        every = self.cfg.absent_every_s
        return every > 0 and (t % every) > every * 0.6

    def read(self) -> np.ndarray:
        """The next frame."""
        import cv2

        if self._img is None:
            self.open()
        self._pacer.wait()
        t = self._clock() - self._t0
        m = self.transform(t)
        if self._absent(t):
            # Nobody at the mirror: show the empty backdrop (the photo's top-right corner).
            m = np.array([[2.0, 0.0, -700.0], [0.0, 2.0, -20.0]])
        return cv2.warpAffine(
            self._photo(), m, (self.cfg.width, self.cfg.height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )

    def close(self) -> None:
        """Nothing to release."""


def create(cfg: DemoSourceConfig) -> DemoSource:
    """Factory used by :func:`edge.sources.make_source`."""
    return DemoSource(cfg)
