"""Frame sources: one module per backend, chosen by the config's ``kind`` tag."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from edge.sources.base import Source, SourceError

if TYPE_CHECKING:
    from edge.config import SourceConfig

_MODULES = {
    "demo": "edge.sources.demo",
    "image": "edge.sources.image",
    "video": "edge.sources.video",
    "v4l2": "edge.sources.v4l2",
    "picamera2": "edge.sources.picam",
    "fake": "edge.sources.fake",
}


def make_source(cfg: SourceConfig) -> Source:
    """Build the source a config entry describes (its module is imported only now)."""
    mod = importlib.import_module(_MODULES[cfg.kind])
    source: Source = mod.create(cfg)
    return source


__all__ = ["Source", "SourceError", "make_source"]
