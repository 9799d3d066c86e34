"""Raspberry Pi cameras through picamera2 (the ``pi`` extra / python3-picamera2).

Uses the ISP's low-resolution stream when asked, so scaling costs no CPU.
"""

from __future__ import annotations

import numpy as np

from edge.sources.base import SourceError


class PiCameraSource:
    """A libcamera camera; frames are requested in RGB order."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.name = "picamera2"
        self._cam = None
        self._stream = "main"

    def open(self) -> None:
        """Configure and start the camera."""
        try:
            from picamera2 import Picamera2
        except ImportError as e:
            raise SourceError("picamera2 is not installed (apt install python3-picamera2)") from e
        try:
            cam = Picamera2()
            size = (self.cfg.width, self.cfg.height)
            # libcamera's "BGR888" is R,G,B in memory order on little-endian, i.e. RGB for numpy.
            if self.cfg.use_lores:
                config = cam.create_video_configuration(
                    main={"size": (size[0] * 2, size[1] * 2)},
                    lores={"size": size, "format": "YUV420"},
                    controls={"FrameRate": self.cfg.fps},
                )
                self._stream = "lores"
            else:
                config = cam.create_video_configuration(
                    main={"size": size, "format": "BGR888"}, controls={"FrameRate": self.cfg.fps}
                )
            cam.configure(config)
            cam.start()
        except Exception as e:  # libcamera raises plain RuntimeError/IndexError when no camera
            raise SourceError(f"Pi camera cannot be started: {e}") from e
        self._cam = cam

    def read(self) -> np.ndarray:
        """Next frame, RGB."""
        import cv2

        if self._cam is None:
            self.open()
        cam = self._cam
        assert cam is not None  # open() sets it or raises
        try:
            arr = cam.capture_array(self._stream)
        except Exception as e:
            self.close()
            raise SourceError(f"Pi camera read failed: {e}") from e
        if self._stream == "lores":
            return cv2.cvtColor(arr, cv2.COLOR_YUV2RGB_I420)
        return arr[:, :, :3]

    def close(self) -> None:
        """Stop the camera."""
        if self._cam is not None:
            try:
                self._cam.stop()
                self._cam.close()
            except Exception:
                pass
            self._cam = None


def create(cfg) -> PiCameraSource:
    """Factory used by :func:`edge.sources.make_source`."""
    return PiCameraSource(cfg)
