"""Rolling per-stage latency statistics on the monotonic clock."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StageSummary:
    """Latency of one stage over the window, in milliseconds."""

    p50_ms: float
    p95_ms: float
    mean_ms: float
    count: int


class StageStats:
    """Keeps the last ``window`` samples of each named stage (thread-safe)."""

    def __init__(self, window: int = 600) -> None:
        self._window = window
        self._data: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def add(self, stage: str, ms: float) -> None:
        """Record one sample."""
        with self._lock:
            d = self._data.get(stage)
            if d is None:
                d = self._data[stage] = deque(maxlen=self._window)
            d.append(float(ms))

    def summary(self) -> dict[str, StageSummary]:
        """p50/p95/mean per stage."""
        with self._lock:
            items = {k: np.array(v) for k, v in self._data.items() if v}
        return {
            k: StageSummary(float(np.percentile(a, 50)), float(np.percentile(a, 95)), float(a.mean()), len(a))
            for k, a in items.items()
        }

    def reset(self) -> None:
        """Forget every sample."""
        with self._lock:
            self._data.clear()


class RateMeter:
    """Events per second over a sliding window of timestamps."""

    def __init__(self, window_s: float = 2.0) -> None:
        self._window = window_s
        self._ts: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, now: float) -> None:
        """Record an event at monotonic time ``now``."""
        with self._lock:
            self._ts.append(now)
            while self._ts and now - self._ts[0] > self._window:
                self._ts.popleft()

    def rate(self, now: float) -> float:
        """Events per second."""
        with self._lock:
            while self._ts and now - self._ts[0] > self._window:
                self._ts.popleft()
            if len(self._ts) < 2:
                return 0.0
            span = max(now - self._ts[0], 1e-6)
            return (len(self._ts) - 1) / span if span > 0 else 0.0
