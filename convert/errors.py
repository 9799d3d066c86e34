"""The errors conversion raises; the CLI turns them into exit codes (2 and 3)."""

from __future__ import annotations

from convert.report import ConversionReport


class ConversionError(RuntimeError):
    """The run cannot be converted: bad run dir, or ops that do not quantize (named)."""


class GateFailed(RuntimeError):
    """The converted model lost more accuracy than the gate allows; no bundle was written."""

    def __init__(self, message: str, report: ConversionReport):
        super().__init__(message)
        self.report = report
