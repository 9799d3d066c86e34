"""OpenCV's frontal-face Haar cascade (ships in opencv-python-headless 4.x): an explicit fallback choice.

It has no score and no keypoints (every face is upright, score 1.0), misses heads
rolled past ~15 degrees and fires on clothing; BlazeFace is the default.
"""

from __future__ import annotations

import numpy as np

from edge.contract import FaceBox
from edge.detectors import Detection


class HaarDetector:
    """Runs on a downscaled grey frame; converts Haar boxes to contract face boxes."""

    def __init__(self, cfg):
        import cv2
        import cv2.data  # a plain submodule: OpenCV's type stubs do not declare it

        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise RuntimeError(f"Haar cascade not found at {path}")
        self.cfg = cfg

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """All faces, as upright face boxes in frame pixels (score 1.0, no keypoints)."""
        import cv2

        h, w = frame.shape[:2]
        k = min(1.0, self.cfg.max_width / w)
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if k < 1.0:
            grey = cv2.resize(grey, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
        grey = cv2.equalizeHist(grey)
        min_side = max(20, int(self.cfg.min_face_frac * grey.shape[0]))
        found = self._cascade.detectMultiScale(
            grey, scaleFactor=self.cfg.scale_factor, minNeighbors=self.cfg.min_neighbors, minSize=(min_side, min_side)
        )
        boxes = []
        for x, y, bw, bh in np.asarray(found).reshape(-1, 4):
            side = bw / k
            cx = (x + bw / 2) / k
            cy = (y + bh / 2) / k + self.cfg.box_shift * side
            boxes.append(Detection(FaceBox(float(cx), float(cy), float(side * self.cfg.box_scale), 0.0)))
        return boxes

    def search(self, image: np.ndarray) -> list[Detection]:
        """A still image: the same as :meth:`detect`."""
        return self.detect(image)


def create(cfg) -> HaarDetector:
    """Factory used by :func:`edge.detectors.make_detector`."""
    return HaarDetector(cfg)
