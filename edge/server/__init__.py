"""The kiosk page and the service API (FastAPI), over a running :class:`~edge.pipeline.LivePipeline`.

One module per resource, each with its router and its request and reply models:

- :mod:`~edge.server.page`: ``/`` and ``/static`` (the kiosk page, no CDN)
- :mod:`~edge.server.health`: ``/healthz`` and ``/metrics``
- :mod:`~edge.server.state`: ``/api/state`` (what the mirror sees and shows)
- :mod:`~edge.server.looks`: ``/api/look``
- :mod:`~edge.server.compare`: ``/api/compare`` (before/after, split view)
- :mod:`~edge.server.catalog`: ``/api/catalog``
- :mod:`~edge.server.snapshot`: ``/api/snapshot``
- :mod:`~edge.server.live`: ``/stream.mjpg``, ``/frame.jpg``, ``/api/events``

Beside them: :mod:`~edge.server.app` (``create_app``), :mod:`~edge.server.context` (the
kiosk in ``app.state``, the token check), :mod:`~edge.server.policy` (Host allow-list, strict
origin) and :mod:`~edge.server.errors` (error replies, request ids).
"""

from __future__ import annotations

from edge.server.app import create_app
from edge.server.policy import is_loopback

__all__ = ["create_app", "is_loopback"]
