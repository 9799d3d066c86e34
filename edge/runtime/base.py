"""The parser interface and the interpreter-backed implementation."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from edge.contract import OUTPUT_FACE, OUTPUT_PARTS, Bundle, BundleError, BundleMetadata, load_bundle

log = logging.getLogger(__name__)


class RuntimeUnavailable(RuntimeError):
    """No interpreter package could be imported for the requested runtime."""


class ParseOutput(NamedTuple):
    """One inference: per-pixel class probabilities and the face score."""

    probs: np.ndarray  # float32 (S, S, C)
    face: float


class Parser(Protocol):
    """Runs the face-parsing model on one crop."""

    metadata: BundleMetadata
    runtime_name: str

    def __call__(self, crop: np.ndarray) -> ParseOutput:
        """Parse a uint8 RGB crop of the bundle's input size."""
        ...


# Tried in order by runtime "auto"; module name -> how its Interpreter is found.
_BACKENDS = {
    "litert": "edge.runtime.litert",
    "tflite_runtime": "edge.runtime.tflite_runtime",
    "tensorflow": "edge.runtime.tensorflow_lite",
}


def interpreter_class(runtime: str) -> tuple[str, Any]:
    """Import the interpreter class for a runtime ("auto" tries each in order)."""
    names = list(_BACKENDS) if runtime == "auto" else [runtime]
    errors = []
    for name in names:
        if name not in _BACKENDS:
            raise RuntimeUnavailable(f"unknown runtime {name!r}; choose from auto, {', '.join(_BACKENDS)}")
        try:
            mod = importlib.import_module(_BACKENDS[name])
            return name, mod.interpreter_class()
        except ImportError as e:
            errors.append(f"{name}: {e}")
    raise RuntimeUnavailable("no TFLite interpreter available (" + "; ".join(errors) + "); install ai-edge-litert")


class _Quant(NamedTuple):
    tensor: int  # the interpreter's tensor index
    scale: float
    zero_point: int
    dtype: Any


def _quant(detail: dict[str, Any]) -> _Quant:
    scale, zero = detail.get("quantization", (0.0, 0))
    return _Quant(detail["index"], float(scale), int(zero), detail["dtype"])


class InterpreterParser:
    """A :class:`Parser` over a TFLite interpreter, addressing outputs by signature name."""

    def __init__(self, bundle: Bundle, runtime: str = "auto", threads: int = 2):
        self.metadata = bundle.metadata
        self.path = bundle.path
        self._bundle, self._runtime = bundle, runtime
        self.runtime_name, cls = interpreter_class(runtime)
        try:
            self._interp = cls(model_content=bundle.model_bytes, num_threads=threads)
        except (ValueError, RuntimeError) as e:
            raise BundleError(f"{bundle.path}: the interpreter cannot load this model ({e})") from e
        self._interp.allocate_tensors()
        self.threads = threads
        self._bind()

    def clone(self) -> InterpreterParser:
        """Another interpreter of the same bundle, for another thread (one interpreter runs one call at a time)."""
        return InterpreterParser(self._bundle, self._runtime, self.threads)

    def _bind(self) -> None:
        meta = self.metadata
        sigs = self._interp.get_signature_list()
        if not sigs:
            raise BundleError(f"{self.path}: model has no serving signature")
        key = "serving_default" if "serving_default" in sigs else next(iter(sigs))
        runner = self._interp.get_signature_runner(key)
        ins = runner.get_input_details()
        outs = runner.get_output_details()
        if len(ins) != 1:
            raise BundleError(f"{self.path}: expected one input, found {len(ins)}")
        self._in = _quant(next(iter(ins.values())))
        shape = tuple(next(iter(ins.values()))["shape"])
        want = (1, meta.input.size, meta.input.size, 3)
        if shape != want:
            raise BundleError(f"{self.path}: input shape {shape} does not match metadata {want}")
        self._out = {}
        for role in (OUTPUT_PARTS, OUTPUT_FACE):
            name = meta.outputs[role].name
            if name not in outs:
                raise BundleError(f"{self.path}: signature has no output {name!r} (has {sorted(outs)})")
            self._out[role] = _quant(outs[name])
        n_classes = outs[meta.outputs[OUTPUT_PARTS].name]["shape"][-1]
        if n_classes != len(meta.classes):
            raise BundleError(f"{self.path}: model has {n_classes} classes, metadata lists {len(meta.classes)}")
        parts = [int(x) for x in outs[meta.outputs[OUTPUT_PARTS].name]["shape"]]
        if parts != list(meta.outputs[OUTPUT_PARTS].shape):
            raise BundleError(f"{self.path}: parts output is {parts}, metadata says {meta.outputs[OUTPUT_PARTS].shape}")

    def _read(self, q: _Quant) -> np.ndarray:
        raw = self._interp.get_tensor(q.tensor)
        if q.scale:
            return (raw.astype(np.float32) - q.zero_point) * q.scale
        return raw.astype(np.float32, copy=False)

    def __call__(self, crop: np.ndarray) -> ParseOutput:
        """Parse a uint8 RGB crop of the bundle's input size."""
        q = self._in
        x = crop[None]
        if q.dtype == np.uint8:
            if q.scale and (abs(q.scale - 1.0) > 1e-6 or q.zero_point != 0):
                # Requantize only if the converter chose other input params.
                x = np.clip(np.round(x / q.scale + q.zero_point), 0, 255).astype(np.uint8)
            else:
                x = x.astype(np.uint8, copy=False)
        elif q.dtype == np.int8:
            x = np.clip(np.round(x.astype(np.float32) / q.scale + q.zero_point), -128, 127).astype(np.int8)
        else:
            x = x.astype(np.float32)
        self._interp.set_tensor(q.tensor, x)
        self._interp.invoke()
        probs = self._read(self._out[OUTPUT_PARTS])[0]
        face = float(self._read(self._out[OUTPUT_FACE]).reshape(-1)[0])
        return ParseOutput(probs, face)


def open_parser(path: Path | str, runtime: str = "auto", threads: int = 2) -> InterpreterParser:
    """Validate a bundle and load it into an interpreter.

    Raises:
        BundleError: the bundle is missing, malformed, tampered with or unloadable.
        RuntimeUnavailable: no interpreter package is installed.
    """
    bundle = load_bundle(path)
    return InterpreterParser(bundle, runtime=runtime, threads=threads)
