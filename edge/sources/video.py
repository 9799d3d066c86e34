"""A video file through OpenCV, looped and paced at its own frame rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.sources.base import OpenCVCapture, Pacer, SourceEnded, SourceError, opencv_path


class VideoSource(OpenCVCapture):
    """Reads a video file; restarts at the end when ``loop``."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.name = f"video:{cfg.path}"
        self._cap = None
        self._pacer: Pacer | None = None
        self.frames_read = 0

    def open(self) -> None:
        """Open the file."""
        import cv2

        name = opencv_path(self.cfg.path, "video file")  # before any use: OpenCV crashes on a non-UTF-8 name
        if not Path(self.cfg.path).is_file():
            raise SourceError(f"{self.cfg.path}: no such video file")
        cap = cv2.VideoCapture(name)
        if not cap.isOpened():
            raise SourceError(f"{self.cfg.path}: OpenCV cannot open this video")
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        self._pacer = Pacer(fps if 1 <= fps <= 240 else 30.0) if self.cfg.realtime else None
        self._cap = cap

    def read(self) -> np.ndarray:
        """Next frame, RGB."""
        import cv2

        cap = self._opened()
        ok, frame = cap.read()
        if not ok and self.cfg.loop:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = cap.read()
        if not ok and not self.cfg.loop and self.frames_read > 0:
            raise SourceEnded(f"{self.cfg.path}: end of the video (loop = false)")
        if not ok:
            raise SourceError(f"{self.cfg.path}: end of video or read error")
        self.frames_read += 1
        if self._pacer:
            self._pacer.wait()
        return self._rgb(frame)


def create(cfg) -> VideoSource:
    """Factory used by :func:`edge.sources.make_source`."""
    return VideoSource(cfg)
