"""Turn a training run into a gated TFLite bundle for the kiosk.

``convert.quantize.convert_run`` exports the run's Keras model, converts it to
full-integer int8 (or float16 / dynamic-range for comparison), checks every op
really runs in int8, evaluates the float model and the bundle (through the
device's own loader) on the same validation data, and only writes the bundle
when the accuracy drop passes the gate.

Modules: ``quantize`` (the job), ``dataset`` (the run's validation and
calibration data), ``evaluate`` (predictions, metrics, latency), ``prior`` (the
class-prior correction), ``report`` (what was measured), ``errors``. The run
itself is ``training.run.RunRecord``, read from ``run.json``.

This package is workstation-only, but importing it must stay cheap: TensorFlow
is imported inside the functions that need it, never at import time.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConversionError": "convert.errors",
    "GateFailed": "convert.errors",
    "ConversionReport": "convert.report",
    "convert_run": "convert.quantize",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # Lazy re-export: `from convert import convert_run` works without importing
    # the conversion job (and its training-side imports) until it is used.
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'convert' has no attribute {name!r}")
