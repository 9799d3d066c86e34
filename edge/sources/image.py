"""A still image, or a folder of images played as a loop."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edge.files import is_image_file
from edge.sources.base import Pacer, SourceError


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as RGB uint8; raises SourceError naming the file."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise SourceError(f"{path}: not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class ImageSource:
    """Plays one image, or each image of a folder for ``hold_s`` seconds, forever."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.name = f"image:{cfg.path}"
        self._pacer = Pacer(cfg.fps)
        self._frames: list[np.ndarray] = []
        self._t0 = time.monotonic()

    def open(self) -> None:
        """Load the image(s); unreadable files in a folder are skipped, not fatal."""
        p = Path(self.cfg.path)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if is_image_file(f))
            frames = []
            for f in files:
                try:
                    frames.append(read_rgb(f))
                except SourceError:
                    continue
            if not frames:
                raise SourceError(f"{p}: no readable images in the folder")
            self._frames = frames
        elif p.is_file():
            self._frames = [read_rgb(p)]
        else:
            raise SourceError(f"{p}: no such file or folder")
        self._t0 = time.monotonic()

    def read(self) -> np.ndarray:
        """The current image (a copy, so later stages may draw on it)."""
        if not self._frames:
            self.open()
        self._pacer.wait()
        i = int((time.monotonic() - self._t0) / self.cfg.hold_s) % len(self._frames)
        return self._frames[i].copy()

    def close(self) -> None:
        """Drop the images."""
        self._frames = []


def create(cfg) -> ImageSource:
    """Factory used by :func:`edge.sources.make_source`."""
    return ImageSource(cfg)
