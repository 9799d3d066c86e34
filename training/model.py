"""The face-parsing CNN: a small MobileNetV2-style encoder with a U-Net-style decoder.

Every op is chosen to quantize to TFLite int8 builtins: Conv2D, DepthwiseConv2D,
BatchNorm (folded), ReLU6, Add, Concatenate, bilinear/nearest resize, mean,
fully-connected, softmax and logistic. The input takes raw RGB pixel values
(0..255); normalisation is the model's first layer, so camera pixels go in
untouched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from edge.contract import CLASSES, INPUT_SIZE, OUTPUT_FACE, OUTPUT_PARTS, OUTPUT_STRIDE


@dataclass(frozen=True)
class ModelSpec:
    """Architecture hyper-parameters (stored in ``run.json`` so a run can be rebuilt).

    Attributes:
        input_size: side of the square input.
        width: multiplier on every encoder and decoder width.
        stem: channels of the stride-2 stem.
        stages: (channels, blocks, stride) of each inverted-residual stage.
        expansion: inverted-residual expansion factor.
        decoder: decoder channels (before the width multiplier).
        n_classes: classes of the "parts" output.
        dropout: dropout before the classifier.
    """

    input_size: int = INPUT_SIZE
    width: float = 1.0
    stem: int = 16
    stages: tuple[tuple[int, int, int], ...] = field(
        default_factory=lambda: ((16, 1, 1), (24, 2, 2), (48, 3, 2), (96, 3, 2), (128, 2, 1))
    )
    expansion: int = 4
    decoder: int = 40
    n_classes: int = len(CLASSES)
    dropout: float = 0.1

    def ch(self, c: int) -> int:
        """Channels scaled by the width, rounded to a multiple of 8 (at least 8)."""
        return max(8, int(c * self.width + 4) // 8 * 8)


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    return keras


def build_model(spec: ModelSpec | None = None):
    """Build the (uncompiled) Keras model: uint8-valued RGB in, {"parts", "face"} out.

    "parts" is (B, S, S, n_classes) softmax probabilities at S = input_size // 2;
    "face" is (B, 1), the sigmoid probability that the crop holds a face.
    """
    spec = spec or ModelSpec()
    keras = _keras()
    L = keras.layers
    # Momentum 0.9: the moving statistics settle within tens of steps (short runs validate sensibly).
    bn = {"momentum": 0.9, "epsilon": 1e-3}

    def conv_bn(x, c, k=1, s=1, act=True, name=""):
        x = L.Conv2D(c, k, strides=s, padding="same", use_bias=False, name=f"{name}_conv")(x)
        x = L.BatchNormalization(**bn, name=f"{name}_bn")(x)
        return L.ReLU(6.0, name=f"{name}_relu")(x) if act else x

    def dw_bn(x, s=1, name=""):
        x = L.DepthwiseConv2D(3, strides=s, padding="same", use_bias=False, name=f"{name}_dw")(x)
        x = L.BatchNormalization(**bn, name=f"{name}_dwbn")(x)
        return L.ReLU(6.0, name=f"{name}_dwrelu")(x)

    def inverted_residual(x, c, s, t, name):
        cin = x.shape[-1]
        y = conv_bn(x, cin * t, name=f"{name}_expand") if t > 1 else x
        y = dw_bn(y, s, name=name)
        y = conv_bn(y, c, act=False, name=f"{name}_project")
        if s == 1 and cin == c:
            y = L.Add(name=f"{name}_add")([x, y])
        return y

    def sep(x, c, name):
        return conv_bn(dw_bn(x, 1, name=name), c, name=f"{name}_pw")

    inp = keras.Input((spec.input_size, spec.input_size, 3), dtype="float32", name="image")
    # Normalisation inside the model: raw 0..255 pixels in, about -1..1 out.
    x = L.Rescaling(1.0 / 127.5, offset=-1.0, name="normalize")(inp)
    x = conv_bn(x, spec.ch(spec.stem), 3, 2, name="stem")
    skips = {}  # by stride
    stride = 2
    for i, (c, n, s) in enumerate(spec.stages):
        for j in range(n):
            bs = s if j == 0 else 1
            if bs > 1:
                skips[stride] = x
            stride *= bs
            t = 1 if i == 0 else spec.expansion
            x = inverted_residual(x, spec.ch(c), bs, t, name=f"s{i}b{j}")
    deep = x
    # Global context, broadcast-added back over the deepest map.
    g = L.GlobalAveragePooling2D(keepdims=True, name="ctx_pool")(deep)
    g = conv_bn(g, spec.ch(spec.decoder), name="ctx")
    d = conv_bn(deep, spec.ch(spec.decoder), name="dec_in")
    d = L.Add(name="dec_ctx")([d, g])  # broadcasts the (1, 1) context over the map
    out_stride = OUTPUT_STRIDE * spec.input_size // INPUT_SIZE if spec.input_size != INPUT_SIZE else OUTPUT_STRIDE
    k = 0
    while stride > out_stride:
        d = L.UpSampling2D(2, interpolation="bilinear", name=f"dec{k}_up")(d)
        stride //= 2
        skip = conv_bn(skips[stride], spec.ch(spec.decoder), name=f"dec{k}_skip")
        d = L.Add(name=f"dec{k}_add")([d, skip])
        d = sep(d, spec.ch(spec.decoder), name=f"dec{k}_sep")
        k += 1
    if spec.dropout:
        d = L.Dropout(spec.dropout, name="dropout")(d)
    logits = L.Conv2D(spec.n_classes, 1, name="classifier")(d)
    parts = L.Softmax(name=OUTPUT_PARTS)(logits)
    f = L.GlobalAveragePooling2D(name="face_pool")(deep)
    face = L.Dense(1, activation="sigmoid", name=OUTPUT_FACE)(f)
    return keras.Model(inp, {OUTPUT_PARTS: parts, OUTPUT_FACE: face}, name="vanity_parser")


def count_macs(model) -> int:
    """Multiply-accumulates of one inference, from the conv / depthwise / dense layers' shapes.

    BatchNorm folds into the convolutions; element-wise ops, resizes and pools
    are not counted (they are small next to the convolutions).
    """
    keras = _keras()
    L = keras.layers
    total = 0
    for layer in model.layers:
        if isinstance(layer, L.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * c * kh * kw
        elif isinstance(layer, L.Conv2D):
            _, h, w, cout = layer.output.shape
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1]
            total += h * w * cout * kh * kw * cin // layer.groups
        elif isinstance(layer, L.Dense):
            total += int(layer.input.shape[-1]) * layer.units
    return int(total)


def int8_size_estimate(model) -> int:
    """Estimated bytes of the full-int8 .tflite: 1 byte per weight, 4 per bias (BN folds into biases), plus ~24 kB."""
    keras = _keras()
    L = keras.layers
    weights = biases = 0
    for layer in model.layers:
        if isinstance(layer, (L.Conv2D, L.DepthwiseConv2D, L.Dense)):
            k = layer.kernel
            n = 1
            for s in k.shape:
                n *= int(s)
            weights += n
            biases += int(layer.output.shape[-1])
    return int(weights + 4 * biases + 24_000)


def summary_line(model) -> str:
    """One line: parameters, MACs and estimated int8 size."""
    params = model.count_params()
    return (
        f"{model.name}: {params / 1e6:.3f} M params, {count_macs(model) / 1e6:.1f} M MACs, "
        f"~{int8_size_estimate(model) / 1024:.0f} KiB as int8"
    )
