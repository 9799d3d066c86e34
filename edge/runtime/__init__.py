"""Inference runtimes: one module per backend, imported lazily.

``open_parser`` validates a bundle and returns a :class:`Parser` that turns a
uint8 RGB crop into class probabilities and a face score, whatever interpreter
is underneath.
"""

from __future__ import annotations

from edge.runtime.base import ParseOutput, Parser, RuntimeUnavailable, open_parser

__all__ = ["ParseOutput", "Parser", "RuntimeUnavailable", "open_parser"]
