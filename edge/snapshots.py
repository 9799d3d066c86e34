"""Photos the customer explicitly asks to save: local only, expiring, off by default."""

from __future__ import annotations

import os
import secrets
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge.config import SnapshotConfig


class SnapshotStore:
    """Writes JPEGs with random names into one folder and deletes them when they expire."""

    def __init__(self, cfg: SnapshotConfig) -> None:
        self.dir = Path(cfg.directory)
        self.ttl_s = cfg.expire_hours * 3600.0

    def save(self, jpeg: bytes) -> str:
        """Store one photo (mode 0600) and return its id."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        sid = secrets.token_hex(8)
        path = self.dir / f"{sid}.jpg"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(jpeg)
        return sid

    def sweep(self, now: float | None = None) -> int:
        """Delete expired photos; returns how many."""
        now = time.time() if now is None else now
        removed = 0
        if not self.dir.is_dir():
            return 0
        for p in self.dir.glob("*.jpg"):
            try:
                if now - p.stat().st_mtime > self.ttl_s:
                    p.unlink()
                    removed += 1
            except OSError:
                continue
        return removed

    def sweep_forever(self, stop: threading.Event, every_s: float = 60.0) -> None:
        """Sweep until ``stop`` is set."""
        while not stop.is_set():
            self.sweep()
            stop.wait(every_s)
