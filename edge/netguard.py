"""Connection hardening for the kiosk's HTTP server: limits and timeouts sized for a handful of clients.

uvicorn's HTTP/1.1 protocol (h11) holds a connection for as long as its client
keeps it open, whether or not a request ever arrives, and leaves Nagle's
algorithm on for sockets accepted from a plain listening socket. On a kiosk
that means a flood of idle sockets exhausts the open-file limit (nobody,
``/healthz`` included, can connect) and every keep-alive request waits for a
delayed ACK. :func:`kiosk_protocol` builds a protocol class that

- sets ``TCP_NODELAY`` on every accepted socket, and a bounded send buffer;
- closes a connection whose request (head and body) has not fully arrived
  ``header_timeout_s`` after its first byte (or after the connection opened);
- holds at most ``max_connections``: at the limit the oldest connection with no
  request in progress is closed to make room, so the newest client (a health
  check, the kiosk page) is always served and the process never runs out of
  file descriptors.

:class:`RateLimitFilter` keeps a repeating error (accept failures, malformed
requests) from filling the journal.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("vanity.server")

SEND_BUFFER_BYTES = 256 * 1024
"""Kernel send buffer per connection (Linux doubles it): a live viewer that falls behind waits for
fresh frames instead of seconds of stale ones queued in the kernel (up to 4 MB by autotuning)."""


@dataclass
class GuardStats:
    """What the guard did since the server started."""

    open: int = 0
    evicted: int = 0
    timed_out: int = 0
    aborted_on_shutdown: int = 0


class ConnectionGuard:
    """The set of open connections, oldest first, with the kiosk's limits."""

    def __init__(self, max_connections: int, header_timeout_s: float):
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self.stats = GuardStats()
        self._conns: dict[KioskH11Protocol, None] = {}

    def __len__(self) -> int:
        return len(self._conns)

    def admit(self, conn: KioskH11Protocol) -> None:
        """Register a new connection; over the limit, close the oldest idle one (or, failing that, this one)."""
        self._conns[conn] = None
        while len(self._conns) > self.max_connections:
            victim = next((c for c in self._conns if c.idle), conn)
            self._conns.pop(victim, None)
            self.stats.evicted += 1
            victim.close_now()
            if victim is conn:
                break
        self.stats.open = len(self._conns)

    def release(self, conn: KioskH11Protocol) -> None:
        """Forget a closed connection."""
        self._conns.pop(conn, None)
        self.stats.open = len(self._conns)


class KioskH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with TCP_NODELAY, a request deadline and a shared connection cap."""

    guard: ConnectionGuard
    shutdown_grace_s = 0.5
    """On shutdown, a response still being sent after this long (a viewer that stopped reading) is cut."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ state

    @property
    def idle(self) -> bool:
        """No request in progress: waiting for one (maybe half sent) or between two."""
        return self.cycle is None or self.cycle.response_complete

    def _request_received(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete and not self.cycle.more_body

    def close_now(self) -> None:
        """Close the connection at once (an evicted or timed-out one)."""
        self._disarm()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    # ------------------------------------------------------------------ deadline

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.guard.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self._request_received():
            self.guard.stats.timed_out += 1
            self.close_now()

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Accept: no Nagle delay, the request deadline starts, the cap is applied."""
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            except OSError:  # pragma: no cover - a socket closed under us
                pass
        self._arm()
        self.guard.admit(self)

    def data_received(self, data: bytes) -> None:
        """Bytes of a request: its deadline runs from the first one until the whole request is in."""
        if self.idle:
            self._arm()
        super().data_received(data)
        if self._request_received():
            self._disarm()

    def on_response_complete(self) -> None:
        """Between two requests the keep-alive timeout applies, not the request deadline."""
        self._disarm()
        super().on_response_complete()
        if self.idle and self.conn.trailing_data[0]:
            self._arm()  # a pipelined request is half here

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection."""
        self._disarm()
        self.guard.release(self)
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """Graceful shutdown; a response nobody reads (write buffer full) is cut instead of waited for."""
        if not self.idle and self.flow is not None and self.flow.write_paused:
            self.guard.stats.aborted_on_shutdown += 1
            self.close_now()
            return
        super().shutdown()
        if not self.idle:
            self.loop.call_later(self.shutdown_grace_s, self._cut_if_open)

    def _cut_if_open(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.guard.stats.aborted_on_shutdown += 1
            self.close_now()


def kiosk_protocol(guard: ConnectionGuard) -> type[KioskH11Protocol]:
    """A protocol class bound to ``guard``, for ``uvicorn.Config(http=...)``."""
    return type("BoundKioskH11Protocol", (KioskH11Protocol,), {"guard": guard})


class RateLimitFilter(logging.Filter):
    """Lets a repeating log message through once per ``every_s``; says how many were held back.

    Messages are keyed by logger and first line, so an error repeated with a fresh traceback
    every second (an accept loop out of file descriptors) costs one record a minute.
    """

    def __init__(self, every_s: float = 60.0, clock=time.monotonic, max_keys: int = 256):
        super().__init__()
        self.every_s, self.clock, self.max_keys = every_s, clock, max_keys
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """True to emit the record."""
        try:
            first = record.getMessage().split("\n", 1)[0][:200]
        except Exception:  # a record whose arguments do not format: let logging report it
            return True
        key = (record.name, first)
        now = self.clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.every_s:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        if len(self._seen) >= self.max_keys:
            self._seen.clear()
        self._seen[key] = (now, 0)
        if last is not None and last[1]:
            record.msg = f"{record.msg} [{last[1]} more like this in the last {now - last[0]:.0f} s]"
        return True


def install_log_limits(every_s: float = 60.0) -> RateLimitFilter:
    """Rate-limit the loggers a misbehaving client can make talk (asyncio's, uvicorn's, ours)."""
    f = RateLimitFilter(every_s)
    for name in ("asyncio", "uvicorn.error", "vanity.server", "edge.server.errors"):
        logger = logging.getLogger(name)
        if not any(isinstance(x, RateLimitFilter) for x in logger.filters):
            logger.addFilter(f)
    return f


class ServerProbe:
    """Is the HTTP server answering? A ``GET /healthz`` to its own port, at most every ``every_s``.

    The health loop feeds systemd's watchdog only while frames flow *and* this says the
    server answers, so a server nobody can reach (out of file descriptors, a wedged event
    loop) gets the daemon restarted instead of being reported alive. Any HTTP status counts
    as an answer: ``/healthz`` is 503 while the camera is away, and that is the camera's
    business, not the server's.
    """

    def __init__(self, host: str, port: int, every_s: float = 5.0, timeout_s: float = 2.0, clock=time.monotonic):
        self.host = {"0.0.0.0": "127.0.0.1", "::": "::1", "localhost": "127.0.0.1"}.get(host, host)
        self.port, self.every_s, self.timeout_s, self.clock = port, every_s, timeout_s, clock
        self.failures = 0
        self._last_t: float | None = None
        self._last_ok = True

    def answer(self) -> bool:
        """One request now: True when an HTTP status line came back within ``timeout_s``."""
        name = f"[{self.host}]" if ":" in self.host else self.host
        request = f"GET /healthz HTTP/1.1\r\nHost: {name}:{self.port}\r\nConnection: close\r\n\r\n".encode()
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout_s) as s:
                s.settimeout(self.timeout_s)
                s.sendall(request)
                return s.recv(16).startswith(b"HTTP/1.")
        except OSError:
            return False

    def ok(self) -> bool:
        """The latest answer, asking again once it is ``every_s`` old."""
        now = self.clock()
        if self._last_t is None or now - self._last_t >= self.every_s:
            self._last_t = now
            self._last_ok = self.answer()
            if not self._last_ok:
                self.failures += 1
                log.warning("the HTTP server did not answer its own /healthz within %.0f s", self.timeout_s)
        return self._last_ok
