"""The cost meter's reference model: MobileNet v1 (1.0, 224, float32) as a .tflite, untrained.

Its Raspberry Pi 4 time is published (benchmarks/pi_cost_baseline.json names the source), and
timing needs no weights, so the project builds it itself instead of downloading one.
`deploy/pi_cost.py --calibrate` counts it on the emulated Pi to turn instructions into ms.

    python benchmarks/pi_cost_calibration.py --out DIR      # needs the workstation install (TensorFlow)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build(out: Path) -> Path:
    """Write DIR/mobilenet_v1.tflite (float32, no quantisation, as the published timing)."""
    import keras
    import tensorflow as tf

    model = keras.applications.MobileNet(input_shape=(224, 224, 3), alpha=1.0, weights=None)
    tflite = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "mobilenet_v1.tflite"
    path.write_bytes(tflite)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    print(build(ap.parse_args().out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
