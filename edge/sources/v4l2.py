"""A USB/V4L2 camera through OpenCV."""

from __future__ import annotations

import numpy as np

from edge.sources.base import OpenCVCapture, SourceError, opencv_path


def list_cameras(max_index: int = 8) -> list[str]:
    """V4L2 capture device nodes present on this machine."""
    from pathlib import Path

    return sorted(str(p) for p in Path("/dev").glob("video*"))[:max_index]


def fourcc(code: str) -> int:
    """V4L2's four-character pixel format code as one integer (what cv2.VideoWriter_fourcc makes)."""
    return sum(ord(c) << (8 * i) for i, c in enumerate(code))


class V4L2Source(OpenCVCapture):
    """Opens the device with the requested size and rate; the driver paces reads."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.name = f"v4l2:{cfg.device}"
        self._cap = None

    def open(self) -> None:
        """Open the device; raises SourceError when absent or busy."""
        import cv2

        dev = self.cfg.device
        target = int(dev) if dev.isdigit() else opencv_path(dev, "camera device")
        cap = cv2.VideoCapture(target, cv2.CAP_V4L2)
        if not cap.isOpened():
            raise SourceError(f"camera {dev} cannot be opened (absent, busy or no permission)")
        if self.cfg.pixel_format != "auto":  # asked before the size: some drivers offer sizes per format
            cap.set(cv2.CAP_PROP_FOURCC, fourcc(self.cfg.pixel_format))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.cfg.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.cfg.height)
        cap.set(cv2.CAP_PROP_FPS, self.cfg.fps)
        # One buffered frame: the freshest frame wins, stale ones are not queued.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._cap = cap

    def read(self) -> np.ndarray:
        """Next frame, RGB."""
        cap = self._opened()
        ok, frame = cap.read()
        if not ok or frame is None:
            self.close()
            raise SourceError(f"camera {self.cfg.device} stopped delivering frames")
        return self._rgb(frame)


def create(cfg) -> V4L2Source:
    """Factory used by :func:`edge.sources.make_source`."""
    return V4L2Source(cfg)
