"""The source interface."""

from __future__ import annotations

import time
from typing import Any, Protocol

import numpy as np


class SourceError(RuntimeError):
    """The source cannot deliver frames now (missing device, unreadable file, …)."""


class SourceEnded(SourceError):
    """The source has delivered its last frame (a video file played once): not an outage to reconnect from."""


class Source(Protocol):
    """Delivers RGB uint8 frames. ``read`` blocks until the next frame is due."""

    name: str

    def open(self) -> None:
        """Acquire the device or file; raises SourceError."""
        ...

    def read(self) -> np.ndarray:
        """The next frame (H, W, 3) RGB uint8; raises SourceError."""
        ...

    def close(self) -> None:
        """Release the device; safe to call twice."""
        ...


class Pacer:
    """Sleeps so that successive ``wait`` calls are ``1/fps`` apart (monotonic clock)."""

    def __init__(self, fps: float):
        self.period = 1.0 / fps
        self._next = time.monotonic()

    def wait(self) -> None:
        """Sleep until the next frame is due; never builds up a backlog."""
        now = time.monotonic()
        if self._next > now:
            time.sleep(self._next - now)
            self._next += self.period
        else:
            self._next = now + self.period


def opencv_path(path: object, what: str = "file") -> str:
    """``path`` as a string OpenCV can take; raises SourceError for a name that is not valid UTF-8."""
    from edge.files import utf8_name

    try:
        return utf8_name(path, what)
    except ValueError as e:
        raise SourceError(str(e)) from None


class OpenCVCapture:
    """Shared by the sources read through ``cv2.VideoCapture``: the handle, its release, BGR -> RGB."""

    _cap: Any = None

    def open(self) -> None:
        """Open the device or file into ``self._cap``; raises SourceError."""
        raise NotImplementedError

    def _opened(self) -> Any:
        """The capture handle, opening it first if needed (raises SourceError when it cannot)."""
        if self._cap is None:
            self.open()
        if self._cap is None:
            raise SourceError(f"{type(self).__name__}: open() left no capture handle")
        return self._cap

    def _rgb(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        """Release the device or file (again is harmless)."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None
