"""Minimal sd_notify(3): READY, WATCHDOG, STATUS and STOPPING to systemd.

A no-op when not started by systemd (no ``$NOTIFY_SOCKET``).
"""

from __future__ import annotations

import os
import socket
from collections import deque


class Notifier:
    """Sends state strings to the service manager's notify socket."""

    def __init__(self, address: str | None = None):
        addr = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        if addr.startswith("@"):  # abstract namespace
            addr = "\0" + addr[1:]
        self._addr = addr or None
        # The last messages sent (for tests and debugging); bounded, since the watchdog is
        # fed every second for months.
        self.sent: deque[str] = deque(maxlen=256)

    @property
    def enabled(self) -> bool:
        """Whether a notify socket is configured."""
        return self._addr is not None

    def notify(self, state: str) -> None:
        """Send one state string such as ``READY=1``; errors are ignored (best effort)."""
        self.sent.append(state)
        if not self._addr:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.connect(self._addr)
                s.sendall(state.encode())
        except OSError:
            pass

    def ready(self, status: str = "") -> None:
        """Tell systemd start-up is complete."""
        self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def watchdog(self) -> None:
        """Feed the watchdog."""
        self.notify("WATCHDOG=1")

    def status(self, text: str) -> None:
        """Set the unit's status line."""
        self.notify(f"STATUS={text}")

    def stopping(self) -> None:
        """Tell systemd a graceful stop began."""
        self.notify("STOPPING=1")
