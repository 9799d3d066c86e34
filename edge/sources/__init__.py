"""Frame sources: one module per backend, chosen by the config's ``kind`` tag."""

from __future__ import annotations

import importlib

from edge.sources.base import Source, SourceError

_MODULES = {
    "demo": "edge.sources.demo",
    "image": "edge.sources.image",
    "video": "edge.sources.video",
    "v4l2": "edge.sources.v4l2",
    "picamera2": "edge.sources.picam",
    "fake": "edge.sources.fake",
}


def make_source(cfg) -> Source:
    """Build the source a config entry describes (its module is imported only now)."""
    mod = importlib.import_module(_MODULES[cfg.kind])
    return mod.create(cfg)


__all__ = ["Source", "SourceError", "make_source"]
