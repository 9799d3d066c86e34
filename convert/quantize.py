"""Quantize a training run to a TFLite bundle and prove it is as good as the float model.

``convert_run`` is the whole job behind ``vanity convert``:

1. load the run's Keras model and its data spec (``run.json``);
2. export it as a SavedModel (keeps the output names "parts" and "face" in the
   serving signature) and convert it: full-integer int8 by default — uint8
   input so camera pixels go in untouched, int8 weights and activations,
   builtin int8 kernels only — calibrated on non-augmented samples;
3. check the converted graph: every op a builtin, every tensor int8/uint8
   (int32 biases and shapes aside) except the dequantized outputs;
4. write the bundle to a hidden temp file, load it with the *device* loader and
   evaluate it and the float model on the same validation data;
5. write ``<out>.report.json`` / ``.report.md`` (``<out>.REFUSED.report.*`` when
   the gate fails) and, only if the mean-F1 drop is within ``max_drop``, move
   the bundle into place atomically.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from convert import dataset
from convert.errors import ConversionError, GateFailed
from convert.evaluate import class_metrics, face_accuracy, median_latency_ms, predict_bundle, predict_keras
from convert.prior import fold_prior_correction
from convert.report import ConversionReport, LatencyRow, class_rows, write_reports
from edge.contract import (
    CLASSES,
    INPUT_SIZE,
    OUTPUT_FACE,
    OUTPUT_PARTS,
    OUTPUT_STRIDE,
    BuildInfo,
    BundleMetadata,
    ClassMetrics,
    OutputSpec,
    sidecar_path,
    write_metadata,
)
from edge.files import sha256_bytes
from training.run import Run, RunError, read_run

# Re-exported: callers catch them from here (``vanity convert``, ``make model``).
__all__ = ["ConversionError", "ConversionReport", "GateFailed", "convert_run"]

log = logging.getLogger(__name__)

QUANTIZATIONS: tuple[str, ...] = ("int8", "float16", "dynamic", "float32")

# Outputs stay float32 (a DEQUANTIZE after the int8 softmax / logistic). The
# values lie on the same int8 grid either way, so accuracy is identical; int8
# outputs saved 0.02-0.08 ms of a 0.8-1.3 ms invoke at width 1.0, but the
# device loader then dequantizes in numpy and end to end through open_parser the
# two measured the same (1.27 vs 1.26 ms, 1 thread). Float outputs keep any
# consumer that forgets the quantization parameters correct.
OUTPUT_TYPE = "float32"

# Dtypes an int8 graph may hold besides int8/uint8 activations: int32 biases and
# shape/axis constants.
_INT8_OK = {"int8", "uint8", "int32"}


# --------------------------------------------------------------------------- conversion


def export_saved_model(model: Any, directory: Path) -> Path:
    """Export a Keras 3 model's inference function as a SavedModel.

    ``Model.export`` keeps the output dict's keys as the signature's output
    names, which the converter carries into the .tflite signature.
    """
    model.export(str(directory), format="tf_saved_model", verbose=False)
    return directory


def convert_saved_model(
    saved_model: Path, quantization: str, calibration: Iterable[np.ndarray] | None = None, per_channel: bool = False
) -> bytes:
    """Convert a SavedModel to .tflite bytes.

    Args:
        saved_model: directory from :func:`export_saved_model`.
        quantization: "int8" (full integer, uint8 input), "float16", "dynamic"
            (int8 weights, float activations) or "float32".
        calibration: uint8 (H, W, 3) images; required for "int8".

    Raises:
        ConversionError: naming the ops the converter could not lower.
    """
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if quantization == "int8":
        if calibration is None:
            raise ValueError("int8 conversion needs calibration images")
        images = list(calibration)

        def representative() -> Iterable[list[np.ndarray]]:
            for img in images:
                yield [img[None].astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        # INT8 only: an op without an int8 kernel fails the conversion (or is
        # left in float, which check_full_int8 catches) instead of silently
        # falling back to a float kernel on the device.
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.uint8
        conv.inference_output_type = tf.as_dtype(OUTPUT_TYPE)
        # Per-tensor weight scales by default: per-channel scales cost 12 bytes per
        # output channel (float scale + int64 zero point), ~20% of this small model's
        # file, and measured no F1 gain here (the accuracy gate checks every bundle).
        conv._experimental_disable_per_channel = not per_channel
    elif quantization == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif quantization == "dynamic":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantization != "float32":
        raise ValueError(f"unknown quantization {quantization!r}; choose from {', '.join(QUANTIZATIONS)}")
    try:
        return conv.convert()
    except Exception as e:  # ConverterError and friends; the text names the ops
        log.debug("TFLite converter failed (%s): %s", quantization, e)
        ops = ops_in_converter_error(str(e))
        what = f"ops that do not convert to {quantization} TFLite builtins: {', '.join(ops)}" if ops else "error"
        raise ConversionError(f"{quantization} conversion failed, {what}\n{_first_lines(str(e))}") from e


_ERROR_OP_PATTERNS = (
    re.compile(r"TF Select ops: ([^\n]+)"),
    re.compile(r"'(?:tf|tfl)\.(\w+)' op is neither a custom op nor a flex op"),
    re.compile(r"[Qq]uantization (?:is )?not (?:yet )?supported for op:? '?(?:tfl?\.)?(\w+)'?"),
    re.compile(r"failed to legalize operation '(?:tfl?\.)?(\w+)'"),
    re.compile(r"'tfl\.(\w+)' op (?:operand|result) #\d+ must be"),
)


def ops_in_converter_error(message: str) -> list[str]:
    """Op names a TFLite converter error complains about, in order of appearance."""
    found: list[str] = []
    for pattern in _ERROR_OP_PATTERNS:
        for m in pattern.finditer(message):
            for name in re.split(r",\s*", m.group(1).strip()):
                name = name.split("{")[0].strip()
                if name and name not in found:
                    found.append(name)
    return found


def _first_lines(text: str, n: int = 6) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip() and "see current operation" not in ln]
    return "\n".join(ln[:300] for ln in lines[:n])


def _interpreter(model: bytes) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # Without the default (XNNPACK) delegate: it would fold the graph into
    # DELEGATE nodes and hide the ops and dtypes we are checking.
    interp = Interpreter(
        model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    interp.allocate_tensors()
    return interp


def op_counts(model: bytes) -> dict[str, int]:
    """How many of each op the converted graph holds."""
    interp = _interpreter(model)
    return dict(Counter(op["op_name"] for op in interp._get_ops_details()))


def check_full_int8(model: bytes) -> dict[str, int]:
    """Verify a converted graph is full-integer and builtin-only.

    Float tensors are allowed only at the boundaries: the output of a
    DEQUANTIZE that is a model output, or the input of a QUANTIZE that is a
    model input.

    Returns:
        Op counts of the graph.

    Raises:
        ConversionError: naming each op that is not a builtin or computes in float.
    """
    interp = _interpreter(model)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    inputs = {d["index"] for d in interp.get_input_details()}
    outputs = {d["index"] for d in interp.get_output_details()}
    bad: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for op in interp._get_ops_details():
        name = op["op_name"]
        counts[name] += 1
        # Builtin ops report their enum name; custom and Flex ops their own code.
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", name) or name.upper().startswith("FLEX"):
            bad.setdefault(name, "not a TFLite builtin")
            continue
        ins = [i for i in op["inputs"] if i >= 0]
        outs = [i for i in op["outputs"] if i >= 0]
        if name == "DEQUANTIZE" and set(outs) <= outputs:
            continue
        if name == "QUANTIZE" and set(ins) <= inputs:
            continue
        dtypes = {np.dtype(tensors[i]["dtype"]).name for i in ins + outs}
        if not dtypes <= _INT8_OK:
            bad.setdefault(name, f"runs in {'/'.join(sorted(dtypes - _INT8_OK))}")
    if bad:
        listed = ", ".join(f"{n} ({why})" for n, why in bad.items())
        raise ConversionError(f"int8 conversion left ops that are not full-integer builtins: {listed}")
    return dict(counts)


def signature_outputs(model: bytes, n_classes: int = len(CLASSES)) -> dict[str, OutputSpec]:
    """Find the serving signature's output names for "parts" and "face".

    The converter keeps the SavedModel's output names when it can; otherwise
    (names like ``output_0``) the roles are told apart by shape: the 4-D
    (1, S, S, n_classes) output is the class map, the (1, 1) output the face score.

    Raises:
        ConversionError: the signature is missing or the roles are ambiguous.
    """
    interp = _interpreter(model)
    sigs = interp.get_signature_list()
    if not sigs:
        raise ConversionError("the converted model has no serving signature")
    key = "serving_default" if "serving_default" in sigs else next(iter(sigs))
    outs = interp.get_signature_runner(key).get_output_details()
    shapes = {name: [int(v) for v in d["shape"]] for name, d in outs.items()}
    found: dict[str, str] = {}
    for role in (OUTPUT_PARTS, OUTPUT_FACE):
        if role in shapes:
            found[role] = role
    if len(found) < 2:
        parts = [n for n, s in shapes.items() if len(s) == 4 and s[-1] == n_classes]
        face = [n for n, s in shapes.items() if len(s) == 2 and s[-1] == 1]
        if len(parts) != 1 or len(face) != 1:
            raise ConversionError(f"cannot tell the 'parts' and 'face' outputs apart in signature {key!r}: {shapes}")
        found = {OUTPUT_PARTS: parts[0], OUTPUT_FACE: face[0]}
    meaning = {
        OUTPUT_PARTS: "per-pixel class probabilities (softmax over metadata.classes), crop space at output stride",
        OUTPUT_FACE: "probability that the crop holds a face (sigmoid)",
    }
    return {
        role: OutputSpec(name=name, shape=[1, *shapes[name][1:]], meaning=meaning[role]) for role, name in found.items()
    }


def input_quantization(model: bytes) -> dict[str, Any]:
    """The model input's dtype and quantization (scale 1, zero point 0 = pixels untouched)."""
    d = _interpreter(model).get_input_details()[0]
    scale, zero = d["quantization"]
    return {"dtype": np.dtype(d["dtype"]).name, "scale": float(scale), "zero_point": int(zero)}


# --------------------------------------------------------------------------- calibration


def _pin_input_range(images: np.ndarray) -> np.ndarray:
    # The uint8 input's quantization comes from the calibration range; if the
    # samples happen not to reach 0 and 255 the converter picks scale != 1 and
    # the device would requantize (and clip) camera pixels. One black and one
    # white pixel in one sample fixes the range at [0, 255].
    images = images.copy()
    images[0, 0, 0] = 0
    images[0, 0, 1] = 255
    return images


def calibration_images(run: Run, n: int, source: str | np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """Calibration crops and a description of where they came from.

    Args:
        run: the training run.
        n: how many samples.
        source: None for the run's non-augmented training split; "blank" for
            constant black crops (a debug/test hook that breaks calibration on
            purpose); or an explicit uint8 (N, H, W, 3) array.
    """
    if source is None:
        images, desc = dataset.calibration_arrays(run, n)
    elif isinstance(source, str) and source == "blank":
        images, desc = np.zeros((n, INPUT_SIZE, INPUT_SIZE, 3), np.uint8), "blank (debug: constant black crops)"
        return images, desc  # deliberately not pinned: this source exists to be wrong
    elif isinstance(source, np.ndarray):
        images, desc = source[:n], f"explicit array ({min(n, len(source))} samples)"
    else:
        raise ValueError(f"unknown calibration source {source!r}")
    if len(images) == 0:
        raise ConversionError("no calibration samples")
    return _pin_input_range(np.asarray(images, np.uint8)), desc


# --------------------------------------------------------------------------- the job


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    versions = {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}
    try:
        from importlib.metadata import version

        versions["ai-edge-litert"] = version("ai-edge-litert")
    except Exception:  # metadata missing in odd installs; the version is informative only
        pass
    return versions


def _metrics(labels: np.ndarray, classes: np.ndarray) -> ClassMetrics:
    return class_metrics(labels, classes, list(CLASSES))


def _partial_paths(out: Path) -> tuple[Path, Path]:
    # Hidden, not *.tflite: a folder-mode load_bundle (glob *.tflite) never sees it.
    tmp = out.parent / f".{out.stem}.{os.getpid()}.partial"
    return tmp, sidecar_path(tmp)


def _clean(*paths: Path) -> None:
    for p in paths:
        p.unlink(missing_ok=True)
        p.with_suffix(".json.tmp").unlink(missing_ok=True)  # write_metadata's own temp file


def convert_run(
    run_dir: Path | str,
    out: Path | str,
    *,
    calibration: int = 300,
    max_drop: float = 0.01,
    quantization: str = "int8",
    val_limit: int | None = None,
    runtime: str = "litert",
    latency_runs: int = 50,
    progress: Callable[[str], None] | None = _stderr,
    per_channel: bool = False,
    prior_alpha: float = 0.0,
    _calibration_source: str | np.ndarray | None = None,
) -> ConversionReport:
    """Convert a training run to a gated TFLite bundle.

    Args:
        run_dir: the run directory (``model.keras``, ``run.json``).
        out: bundle path to write, ``*.tflite``; the metadata goes beside it
            (``*.json``), the reports to ``*.report.json`` / ``*.report.md``.
        calibration: calibration samples (int8 only), non-augmented.
        max_drop: largest mean-F1 drop (float minus converted) the gate accepts.
        quantization: "int8" (default), "float16", "dynamic" or "float32".
        val_limit: evaluate on at most this many validation samples.
        runtime: device runtime the gate loads the bundle with.
        latency_runs: timed invokes per latency figure (median reported).
        progress: receives progress lines and the per-class table; None is silent.
        per_channel: per-channel weight scales (default per-tensor: smaller, gated all the same).
        prior_alpha: 0..1, how much of the training loss's class weighting to take back out of
            the softmax (:func:`convert.prior.fold_prior_correction`); the gate measures
            the corrected model. 0 converts the model as trained.
        _calibration_source: test hook, see :func:`calibration_images`.

    Returns:
        The report; ``report.bundle`` is the written bundle.

    Raises:
        ConversionError: bad run dir, or ops that do not quantize (named).
        GateFailed: the accuracy drop exceeds ``max_drop``; no bundle is written
            (``err.report`` holds the measurements).
        ValueError: bad arguments.
    """
    say = progress or (lambda _m: None)
    t_start = time.monotonic()
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r}; choose from {', '.join(QUANTIZATIONS)}")
    out = Path(out)
    if out.suffix != ".tflite":
        raise ValueError(f"{out}: the bundle path must end in .tflite")
    if max_drop < 0:
        raise ValueError(f"max_drop must be >= 0, got {max_drop}")
    if calibration < 1:
        raise ValueError(f"calibration must be at least 1 sample, got {calibration}")
    if not 0.0 <= prior_alpha <= 1.0:
        raise ValueError(f"prior_alpha must be in [0, 1], got {prior_alpha}")

    try:
        run = read_run(run_dir)
    except RunError as e:
        raise ConversionError(str(e)) from e
    record = run.record
    import keras

    from training.model import count_macs

    try:
        model = keras.models.load_model(run.model_path, compile=False)
    except Exception as e:  # Keras raises ValueError, OSError, zipfile errors, ...
        raise ConversionError(f"{run.model_path}: cannot load the Keras model ({e})") from e
    if prior_alpha:
        weights = record.class_weights_in_order(CLASSES)
        if weights is None:
            raise ConversionError(f"{run.path}: run.json records no class_weights; cannot apply prior_alpha")
        try:
            fold_prior_correction(model, weights, prior_alpha)
        except ValueError as e:
            raise ConversionError(f"{run.model_path}: {e}") from e
        say(f"prior correction: classifier bias -= {prior_alpha:g} * log(class weight)")
    n_val = f" (at most {val_limit})" if val_limit else ""
    say(f"run {run.path.name}: loading validation data{n_val} from {record.data_spec!r}")
    val_images, val_labels, val_face = dataset.validation_arrays(run, val_limit)
    if len(val_images) == 0:
        raise ConversionError(f"{run.path}: the validation split is empty")

    calib_desc = "none (not needed)"
    calib: np.ndarray | None = None
    if quantization == "int8":
        calib, calib_desc = calibration_images(run, calibration, _calibration_source)
        say(f"calibrating on {len(calib)} samples: {calib_desc}")

    with tempfile.TemporaryDirectory(prefix="vanity-convert-") as td:
        saved = export_saved_model(model, Path(td) / "saved_model")
        float_bytes = convert_saved_model(saved, "float32")
        quant_bytes = (
            float_bytes if quantization == "float32" else convert_saved_model(saved, quantization, calib, per_channel)
        )
    ops = check_full_int8(quant_bytes) if quantization == "int8" else op_counts(quant_bytes)
    outputs = signature_outputs(quant_bytes)
    in_quant = input_quantization(quant_bytes)

    macs = int(count_macs(model))
    meta = BundleMetadata(
        tflite_sha256=sha256_bytes(quant_bytes),
        outputs=outputs,
        crop=record.crop_geometry,
        mouth=record.mouth_geometry,
        macs=macs,
        data=dataset.data_summary(run, n_val=len(val_images), calibration=calib_desc if calib is not None else None)
        | ({"prior_alpha": prior_alpha} if prior_alpha else {}),
        build=BuildInfo(versions=_versions(), run=run.path.name, quantization=quantization),
    )
    expect = [1, INPUT_SIZE // OUTPUT_STRIDE, INPUT_SIZE // OUTPUT_STRIDE, len(CLASSES)]
    if outputs[OUTPUT_PARTS].shape != expect:
        raise ConversionError(f"'parts' output has shape {outputs[OUTPUT_PARTS].shape}, the contract wants {expect}")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp, tmp_side = _partial_paths(out)
    try:
        tmp.write_bytes(quant_bytes)
        write_metadata(tmp, meta)
        say(f"evaluating float and {quantization} on {len(val_images)} validation samples")
        float_pred = predict_keras(model, val_images)
        quant_pred = predict_bundle(tmp, val_images, runtime=runtime, threads=2)
        float_m = _metrics(val_labels, float_pred.classes)
        quant_m = _metrics(val_labels, quant_pred.classes)
        meta.metrics = {"float": float_m, quantization: quant_m}

        example = val_images[:1]
        variants = [("float32", float_bytes)] + ([(quantization, quant_bytes)] if quantization != "float32" else [])
        latency = [
            LatencyRow(v, len(blob), *(median_latency_ms(blob, example, t, runs=latency_runs) for t in (1, 2)))
            for v, blob in variants
        ]
        drop = float_m.mean_f1 - quant_m.mean_f1
        report = ConversionReport(
            run=str(run.path),
            quantization=quantization,
            passed=drop <= max_drop,
            max_drop=max_drop,
            drop=drop,
            float_metrics=float_m,
            quant_metrics=quant_m,
            classes=class_rows(float_m, quant_m),
            face_accuracy={
                "float": face_accuracy(float_pred.face, val_face),
                quantization: face_accuracy(quant_pred.face, val_face),
            },
            float_size=len(float_bytes),
            quant_size=len(quant_bytes),
            latency=latency,
            macs=macs,
            n_val=len(val_images),
            calibration=calib_desc,
            input_quantization=in_quant,
            ops=ops,
            outputs={role: spec.name for role, spec in outputs.items()},
            metadata=meta,
            seconds=0.0,
        )
        report.seconds = time.monotonic() - t_start
        say(report.table)
        if not report.passed:
            report.bundle = None
            report.report_paths = write_reports(report, out, refused=True)
            log.warning("gate refused %s (drop %.4f > %.4f); reports: %s", out, drop, max_drop, report.report_paths[0])
            raise GateFailed(report.gate_message(), report)
        write_metadata(tmp, meta)  # now with the measured metrics; the hash is unchanged
        os.replace(tmp, out)
        os.replace(tmp_side, sidecar_path(out))
        report.bundle = out
        report.report_paths = write_reports(report, out, refused=False)
        log.info("wrote %s (%s, sha256 %s)", out, quantization, meta.tflite_sha256[:12])
        say(f"wrote {out} and {sidecar_path(out).name} in {report.seconds:.1f} s")
        return report
    finally:
        _clean(tmp, tmp_side)
