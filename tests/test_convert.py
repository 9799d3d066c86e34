"""Conversion: a trained run becomes a full-int8 bundle that is proven as good as the float model."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, no_tf_env

DATA_SPEC = "synth:300"
SEED = 0
VAL_FRACTION = 0.2
# Few samples keep the module fast on 2 cores; enough for a stable mean F1 on the tiny model.
CALIBRATION = 60
VAL_LIMIT = 60


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A small run made by `training.train` (once per module): width 0.25, 240 synthetic faces, 6 epochs."""
    from training.model import ModelSpec
    from training.train import TrainOptions, train

    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    opts = TrainOptions(
        data=DATA_SPEC,
        out=run_dir,
        epochs=6,
        batch_size=16,
        lr=3e-3,
        seed=SEED,
        val_fraction=VAL_FRACTION,
        model=ModelSpec(width=0.25),
        progress=False,
        eval_limit=VAL_LIMIT,
    )
    train(opts)
    return run_dir


@pytest.fixture(scope="module")
def converted(tiny_run, tmp_path_factory):
    """The tiny run converted to int8 with the default gate; (report, bundle path)."""
    from convert.quantize import convert_run

    out = tmp_path_factory.mktemp("bundle") / "tiny.tflite"
    report = convert_run(tiny_run, out, calibration=CALIBRATION, val_limit=VAL_LIMIT, progress=None)
    return report, out


def _training_run(report):
    from training.run import read_run

    return read_run(Path(report.run))


# --------------------------------------------------------------------------- fast


def test_convert_package_imports_without_tensorflow():
    """Guards against `convert` importing TensorFlow at import time (slow CLI start, breaks `vanity --help`)."""
    code = "import convert, convert.quantize, convert.report, convert.evaluate; print('ok')"
    r = subprocess.run([sys.executable, "-c", code], env=no_tf_env(), capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "does not exist"),
        (lambda d: d.mkdir(), "no run.json"),
        (lambda d: (d.mkdir(), (d / "run.json").write_text('{"data": "synth:10"}')), "no trained model"),
        (
            lambda d: (d.mkdir(), (d / "run.json").write_text("{}"), (d / "model.keras").write_bytes(b"x")),
            r"not a run record written by `vanity train`: options: Field required",
        ),
        (
            lambda d: (d.mkdir(), (d / "run.json").write_text("{"), (d / "model.keras").write_bytes(b"x")),
            "not valid JSON",
        ),
    ],
)
def test_bad_run_dir_is_a_conversion_error(tmp_path, setup, message):
    """Guards against a traceback (or a bundle from the wrong data) when the run directory is incomplete."""
    from convert.quantize import ConversionError, convert_run

    run = tmp_path / "run"
    setup(run)
    with pytest.raises(ConversionError, match=message):
        convert_run(run, tmp_path / "m.tflite", progress=None)
    assert not (tmp_path / "m.tflite").exists()


def test_run_record_round_trips_and_refuses_keys_it_does_not_know(tmp_path):
    """Guards against conversion guessing at run.json: what training writes reads back equal, and a key
    training never writes (the old guesses `best_model`, `crop`) is refused by name instead of ignored."""
    from convert.quantize import ConversionError, convert_run
    from edge.contract import CLASSES, CropGeometry, MouthCrop
    from training.model import ModelSpec
    from training.run import ModelSummary, RunRecord, TrainOptions, read_run, write_record

    record = RunRecord(
        options=TrainOptions(data="synth:10", out=tmp_path),
        seed=3,
        classes=CLASSES,
        crop_geometry=CropGeometry(),
        mouth_geometry=MouthCrop(),
        model=ModelSummary(spec=ModelSpec(width=0.25), params=1, macs=2, int8_bytes_estimate=3),
        data={"spec": "synth:10", "train": 9, "val": 1},
        class_weights=dict.fromkeys(CLASSES, 1.0),
        steps_per_epoch=1,
        versions={},
        started="2026-12-02T10:00:00+00:00",
        resumed_from_epoch=None,
        command="test",
    )
    path = write_record(tmp_path, record)
    (tmp_path / "model.keras").write_bytes(b"x")
    assert read_run(tmp_path).record == record
    raw = json.loads(path.read_text())
    path.write_text(json.dumps(raw | {"best_model": "best.keras", "crop": {}}))
    with pytest.raises(ConversionError, match=r"best_model: Unexpected.*crop: Unexpected"):
        convert_run(tmp_path, tmp_path / "m.tflite", progress=None)


def test_converter_error_names_the_ops():
    """Guards against a conversion failure that does not say which ops to replace."""
    from convert.quantize import ops_in_converter_error

    msg = (
        "Could not translate MLIR to FlatBuffer. error: 'tf.Erf' op is neither a custom op nor a flex op\n"
        "Some ops are not supported by the native TFLite runtime\nTF Select ops: Erf, Sinh\nDetails: ..."
    )
    assert ops_in_converter_error(msg) == ["Erf", "Sinh"]


# --------------------------------------------------------------------------- slow: a real conversion


@pytest.mark.slow
def test_float_op_left_in_an_int8_graph_is_named(tmp_path):
    """Guards against an "int8" bundle that silently runs an op in float (slow, and not what was gated)."""
    import keras

    from convert.quantize import ConversionError, check_full_int8, convert_saved_model, export_saved_model

    inp = keras.Input((128, 128, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(keras.layers.Rescaling(1 / 255)(inp))
    x = keras.layers.Lambda(keras.ops.sin)(x)  # SIN has no int8 kernel
    model = keras.Model(inp, {"parts": keras.layers.Conv2D(11, 1, activation="softmax")(x)})
    saved = export_saved_model(model, tmp_path / "sm")
    calib = np.random.default_rng(0).integers(0, 256, (4, 128, 128, 3), dtype=np.uint8)
    with pytest.raises(ConversionError, match=r"SIN \(runs in float32\)"):
        check_full_int8(convert_saved_model(saved, "int8", calib))


@pytest.mark.slow
def test_tiny_run_converts_to_full_int8(converted):
    """Guards against a bundle that is not full-integer or needs camera pixels rescaled on the device."""
    from convert.quantize import check_full_int8

    report, out = converted
    assert report.bundle == out and out.is_file() and out.with_suffix(".json").is_file()
    assert report.input_quantization == {"dtype": "uint8", "scale": 1.0, "zero_point": 0}
    check_full_int8(out.read_bytes())  # raises if any op computes in float
    assert report.quant_size < report.float_size
    assert {r.variant for r in report.latency} == {"float32", "int8"}
    assert all(r.ms_1_thread > 0 and r.ms_2_threads > 0 for r in report.latency)
    assert report.macs > 0
    # No partial files left beside the bundle.
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "tiny.json",
        "tiny.report.json",
        "tiny.report.md",
        "tiny.tflite",
    ]


@pytest.mark.slow
def test_gate_passes_and_reports(converted):
    """Guards against shipping a bundle whose accuracy was not measured against the float model."""
    report, out = converted
    assert report.passed and report.drop <= 0.01
    from convert.dataset import validation_arrays
    from training.metrics import majority_baseline

    # The gate only proves something if the float model beats "background everywhere".
    _, labels, _ = validation_arrays(_training_run(report), VAL_LIMIT)
    assert report.float_metrics.mean_f1 > majority_baseline(labels).mean_f1 + 0.05
    data = json.loads(out.with_name("tiny.report.json").read_text())
    assert data["gate"]["passed"] is True and data["size_bytes"]["int8"] == out.stat().st_size
    md = out.with_name("tiny.report.md").read_text()
    assert "| skin |" in md and "2 threads" in md
    assert "skin" in report.table and "mean F1" in report.table
    assert "int8" in report.summary and "gate passed" in report.summary


@pytest.mark.slow
def test_metadata_describes_the_bundle(converted, tiny_run):
    """Guards against metadata that points the device at the wrong outputs or hides how the model was made."""
    from ai_edge_litert.interpreter import Interpreter

    from edge.contract import CLASSES, MouthCrop, load_bundle

    report, out = converted
    meta = load_bundle(out).metadata
    outs = Interpreter(model_path=str(out)).get_signature_runner("serving_default").get_output_details()
    assert list(outs[meta.outputs["parts"].name]["shape"]) == [1, 64, 64, len(CLASSES)]
    assert list(outs[meta.outputs["face"].name]["shape"]) == [1, 1]
    assert meta.build.quantization == "int8" and meta.build.run == tiny_run.name
    assert {"tensorflow", "keras", "numpy"} <= set(meta.build.versions)
    assert set(meta.metrics) == {"float", "int8"}
    assert meta.metrics["int8"].mean_f1 == pytest.approx(report.quant_metrics.mean_f1)
    assert meta.macs == report.macs > 0
    assert meta.data["spec"] == DATA_SPEC
    # The run was trained with mouth views, so the device may run the refinement pass.
    assert meta.mouth == MouthCrop()


@pytest.mark.slow
def test_blank_calibration_fails_the_gate_through_the_cli(tiny_run, tmp_path, monkeypatch, capsys):
    """Guards against a broken calibration slipping through: exit code 3, a clear message, no bundle left."""
    from convert import quantize
    from edge import cli

    broken = functools.partial(quantize.convert_run, _calibration_source="blank", progress=None)
    monkeypatch.setattr(quantize, "convert_run", broken)
    out = tmp_path / "bad.tflite"
    argv = ["vanity", "convert", str(tiny_run), "--out", str(out), "--calibration", "20", "--val-limit", str(VAL_LIMIT)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 3
    err = capsys.readouterr().err
    assert "accuracy gate failed" in err and "mean F1 dropped by" in err and "worst classes" in err
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.REFUSED.report.json", "bad.REFUSED.report.md"]
    assert json.loads((tmp_path / "bad.REFUSED.report.json").read_text())["gate"]["passed"] is False


@pytest.mark.slow
def test_bundle_runs_without_tensorflow(converted, tmp_path):
    """Guards against a bundle (or its loader) that needs TensorFlow on the kiosk."""
    from training.synth import generate

    _, out = converted
    crop = tmp_path / "crop.npy"
    np.save(crop, generate(1, 123).images[0])
    report = tmp_path / "imports.txt"
    code = (
        "import sys, numpy as np\n"
        "from edge.runtime import open_parser\n"
        f"p = open_parser({str(out)!r}, runtime='litert', threads=2)\n"
        f"r = p(np.load({str(crop)!r}))\n"
        "assert r.probs.shape == (64, 64, 11), r.probs.shape\n"
        "assert np.allclose(r.probs.sum(-1), 1, atol=0.05) and 0 <= r.face <= 1\n"
        "assert 'tensorflow' not in sys.modules\n"
        "print(p.runtime_name)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        env=no_tf_env(VANITY_IMPORT_REPORT=str(report)),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "litert"
    assert report.read_text() == ""


@pytest.mark.slow
def test_metadata_round_trips_and_refusals_say_why(converted, tmp_path):
    """Guards against a device that runs a tampered, mismatched, unknown-schema or metadata-less bundle."""
    from edge.contract import BundleError, BundleMetadata, load_bundle, write_metadata

    report, src = converted
    a = tmp_path / "a.tflite"
    shutil.copy(src, a)
    shutil.copy(src.with_suffix(".json"), a.with_suffix(".json"))
    loaded = load_bundle(a).metadata
    assert loaded == report.metadata
    write_metadata(a, loaded)
    assert load_bundle(a).metadata == loaded  # write -> load is lossless

    tampered = tmp_path / "t.tflite"
    raw = bytearray(src.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    tampered.write_bytes(bytes(raw))
    shutil.copy(src.with_suffix(".json"), tampered.with_suffix(".json"))
    with pytest.raises(BundleError, match="SHA-256 mismatch"):
        load_bundle(tampered)

    # A sidecar from another (valid) bundle beside this model.
    other = tmp_path / "other.tflite"
    other.write_bytes(bytes(raw))
    write_metadata(other, loaded.model_copy(update={"tflite_sha256": __import__("hashlib").sha256(raw).hexdigest()}))
    shutil.copy(other.with_suffix(".json"), a.with_suffix(".json"))
    with pytest.raises(BundleError, match="SHA-256 mismatch"):
        load_bundle(a)

    side = json.loads(src.with_suffix(".json").read_text())
    side["schema_version"] = 99
    a.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(BundleError, match="unknown metadata schema_version 99"):
        load_bundle(a)

    a.with_suffix(".json").unlink()
    with pytest.raises(BundleError, match="metadata missing"):
        load_bundle(a)
    assert isinstance(loaded, BundleMetadata)


@pytest.mark.slow
def test_float16_variant_is_gated_and_labelled(tiny_run, tmp_path):
    """Guards against a comparison variant that skips the gate or is mislabelled as int8."""
    from convert.quantize import convert_run
    from edge.contract import load_bundle

    out = tmp_path / "f16.tflite"
    report = convert_run(tiny_run, out, quantization="float16", val_limit=20, latency_runs=50, progress=None)
    assert report.passed and abs(report.drop) < 0.005
    meta = load_bundle(out).metadata
    assert meta.build.quantization == "float16" and set(meta.metrics) == {"float", "float16"}


def test_prior_correction_divides_the_softmax_by_the_class_weights(tiny_run):
    """Guards against a sign or scale slip in the folded correction: lips and eyes would grow instead of shrink."""
    import keras

    from convert.prior import fold_prior_correction
    from edge.contract import CLASSES
    from training.run import read_run

    run = read_run(tiny_run)
    weights = run.record.class_weights_in_order(CLASSES)
    assert weights is not None and len(weights) == 11
    model = keras.models.load_model(run.model_path, compile=False)
    x = np.random.default_rng(0).integers(0, 256, (2, 128, 128, 3)).astype(np.float32)
    before = np.asarray(model(x, training=False)["parts"])
    fold_prior_correction(model, weights, 0.5)
    after = np.asarray(model(x, training=False)["parts"])
    expect = before * np.asarray(weights, np.float32) ** -0.5
    expect /= expect.sum(-1, keepdims=True)
    np.testing.assert_allclose(after, expect, atol=1e-4)
    with pytest.raises(ValueError, match="class weights"):
        fold_prior_correction(model, [1.0, 2.0], 0.5)


def test_prior_corrected_bundle_is_gated_and_says_so(tiny_run, tmp_path):
    """Guards against a correction the gate never measured, or a bundle that hides that it was corrected."""
    from convert.quantize import convert_run
    from edge.contract import load_bundle

    out = tmp_path / "prior.tflite"
    report = convert_run(tiny_run, out, calibration=CALIBRATION, val_limit=VAL_LIMIT, prior_alpha=0.5, progress=None)
    assert report.passed
    meta = load_bundle(out).metadata
    assert meta.data["prior_alpha"] == 0.5
    with pytest.raises(ValueError, match="prior_alpha"):
        convert_run(tiny_run, tmp_path / "bad.tflite", prior_alpha=1.5, progress=None)
