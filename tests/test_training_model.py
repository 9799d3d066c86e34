"""The face-parsing model: budget (MACs, int8 size) and clean full-int8 TFLite conversion."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from edge.contract import CLASSES, INPUT_SIZE, OUTPUT_FACE, OUTPUT_PARTS, OUTPUT_STRIDE

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow")

MAX_MACS = 150_000_000
MAX_INT8_BYTES = 1_000_000


def test_default_model_within_budget():
    """Guards against the default model outgrowing the Pi's budget (<= 150 M MACs, <= 1 MB as int8)."""
    from training.model import ModelSpec, build_model, count_macs, int8_size_estimate, summary_line

    model = build_model(ModelSpec())
    macs = count_macs(model)
    assert 20_000_000 < macs <= MAX_MACS
    assert int8_size_estimate(model) <= MAX_INT8_BYTES
    assert model.count_params() < 900_000
    assert "M MACs" in summary_line(model)
    out = model(np.zeros((2, INPUT_SIZE, INPUT_SIZE, 3), np.float32))
    s = INPUT_SIZE // OUTPUT_STRIDE
    assert tuple(out[OUTPUT_PARTS].shape) == (2, s, s, len(CLASSES))
    assert tuple(out[OUTPUT_FACE].shape) == (2, 1)
    np.testing.assert_allclose(np.asarray(out[OUTPUT_PARTS]).sum(-1), 1.0, atol=1e-4)


def test_count_macs_by_hand():
    """Guards against a MAC counter that forgets depthwise or dense layers."""
    import keras

    from training.model import count_macs

    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inp)  # 8*8*4*9*3 = 6912
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)  # 8*8*4*9 = 2304
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(5)(x)  # 20
    assert count_macs(keras.Model(inp, x)) == 6912 + 2304 + 20


def test_model_spec_round_trip():
    """Guards against run.json not being able to rebuild the trained architecture (the run record
    stores the spec as JSON lists and reads it back into tuples)."""
    from pydantic import TypeAdapter

    from training.model import ModelSpec

    spec = ModelSpec(width=0.5, decoder=24)
    adapter = TypeAdapter(ModelSpec)
    assert adapter.validate_json(adapter.dump_json(spec)) == spec


@pytest.mark.slow
def test_int8_tflite_conversion_builtin_ops_and_named_outputs(tmp_path):
    """Guards against ops that need Flex/float kernels, a float input, or outputs the device cannot find
    by name: the model must convert to full-int8 TFLite with uint8 input and "parts"/"face" signature outputs."""
    import tensorflow as tf

    from training.model import ModelSpec, build_model

    model = build_model(ModelSpec(width=0.25))
    model.export(str(tmp_path / "sm"), format="tf_saved_model", verbose=False)
    conv = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm"))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)

    def rep():
        for _ in range(3):
            yield [rng.integers(0, 256, (1, INPUT_SIZE, INPUT_SIZE, 3)).astype(np.float32)]

    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.uint8
    blob = conv.convert()

    interp = tf.lite.Interpreter(model_content=blob)
    sig = interp.get_signature_list()["serving_default"]
    assert set(sig["outputs"]) == {OUTPUT_PARTS, OUTPUT_FACE}
    ops = {op["op_name"] for op in interp._get_ops_details()}
    assert not any("FLEX" in op.upper() or op == "CUSTOM" for op in ops), ops
    runner = interp.get_signature_runner()
    (in_name,) = runner.get_input_details()
    assert runner.get_input_details()[in_name]["dtype"] == np.uint8
    out = runner(**{in_name: np.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), np.uint8)})
    s = INPUT_SIZE // OUTPUT_STRIDE
    assert out[OUTPUT_PARTS].shape == (1, s, s, len(CLASSES))
    assert out[OUTPUT_FACE].shape == (1, 1)
    # Every tensor between the quantize/dequantize ends is int8: no float kernels in the graph.
    float_kernels = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD"}
    details = interp.get_tensor_details()
    by_index = {d["index"]: d for d in details}
    for op in interp._get_ops_details():
        if op["op_name"] in float_kernels:
            for t in op["inputs"]:
                if t >= 0:
                    assert by_index[t]["dtype"] in (np.int8, np.int32), (op["op_name"], by_index[t]["name"])
