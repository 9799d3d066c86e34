"""Turn a training run into a gated TFLite bundle for the kiosk.

``convert.quantize.convert_run`` exports the run's Keras model, converts it to
full-integer int8 (or float16 / dynamic-range for comparison), checks every op
really runs in int8, evaluates the float model and the bundle (through the
device's own loader) on the same validation data, and only writes the bundle
when the accuracy drop passes the gate.

This package is workstation-only, but importing it must stay cheap: TensorFlow
is imported inside the functions that need it, never at import time.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConversionError", "ConversionReport", "GateFailed", "convert_run"]


def __getattr__(name: str) -> Any:
    # Lazy re-export: `from convert import convert_run` works without paying for
    # TensorFlow until the function is actually called.
    if name in __all__:
        from convert import quantize

        return getattr(quantize, name)
    raise AttributeError(f"module 'convert' has no attribute {name!r}")
