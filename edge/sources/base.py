"""The source interface."""

from __future__ import annotations

import time
from typing import Protocol

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
