"""Vanity's parser vs MediaPipe's face mesh on the same frames, and a Pi 4 estimate.

Usage (after ``make teacher``, which installs MediaPipe 0.10.21's bundled models)::

    .venv/bin/python benchmarks/compare_mediapipe.py [--frames 300] [--threads 2] [--json]

MediaPipe itself cannot share an environment with numpy 2, so its FaceMesh model
(``face_landmark.tflite``, the network inside ``mp.solutions.face_mesh``) runs through
the same LiteRT interpreter as ours: the comparison is network against network on
the same demo frames, each fed the crop its own pipeline would make (ours: 128x128
uint8 int8 model; FaceMesh: 192x192 float32). Both use the same thread count.

The Pi 4 estimate scales our measured model cost by MACs: a Cortex-A72 at 1.5 GHz
running int8 XNNPACK sustains roughly ``PI4_GMACS`` giga-MACs per second on 2 threads
for small convnets (an assumption stated here, not a measurement on a Pi).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PI4_GMACS = 4.0
"""Assumed sustained int8 throughput of a Pi 4 on 2 threads (GMAC/s)."""


def tflite_macs(interpreter) -> int:
    """Multiply-accumulates of a TFLite model's conv, depthwise and dense ops, from tensor shapes."""
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    total = 0
    for op in interpreter._get_ops_details():
        name = op["op_name"]
        if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"):
            continue
        w = tensors[op["inputs"][1]]["shape"]
        out = tensors[op["outputs"][0]]["shape"]
        if name == "CONV_2D":  # weights (O, kh, kw, I)
            total += int(np.prod(out[:-1])) * int(np.prod(w))
        elif name == "DEPTHWISE_CONV_2D":  # weights (1, kh, kw, O)
            total += int(np.prod(out)) * int(w[1] * w[2])
        elif name == "TRANSPOSE_CONV":
            inp = tensors[op["inputs"][2]]["shape"]
            total += int(np.prod(inp[:-1])) * int(np.prod(w))
        else:
            total += int(np.prod(w)) * int(np.prod(out[:-1]))
    return total


def _median_ms(fn, n: int) -> tuple[float, float]:
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return float(np.percentile(ts, 50)), float(np.percentile(ts, 95))


def run(frames: int = 300, threads: int = 2) -> dict:
    """Measure both networks on demo crops; returns a JSON-ready dict."""
    import cv2
    from ai_edge_litert.interpreter import Interpreter

    from edge.config import DemoSourceConfig, load_config
    from edge.contract import crop_face
    from edge.detectors import make_detector, primary_face
    from edge.runtime import open_parser
    from edge.sources.demo import DemoSource
    from training.teacher_assets import DEFAULT_TEACHER_DIR, LANDMARK_FILE

    cfg = load_config(None)
    parser = open_parser(cfg.model.path, "litert", threads)
    det = make_detector(cfg.detector)
    src = DemoSource(DemoSourceConfig(fps=240))
    src.open()
    frame = src.read()
    face = primary_face(det.detect(frame), frame.shape[1], frame.shape[0])
    if face is None:
        raise RuntimeError("no face in the demo frame")
    box = face.box
    crop = crop_face(frame, box, parser.metadata.crop, parser.metadata.input.size)
    for _ in range(20):
        parser(crop)
    ours = _median_ms(lambda: parser(crop), frames)

    mesh_path = ROOT / DEFAULT_TEACHER_DIR / LANDMARK_FILE
    result = {
        "threads": threads,
        "frames": frames,
        "vanity": {
            "p50_ms": ours[0],
            "p95_ms": ours[1],
            "macs": parser.metadata.macs,
            "input": f"{parser.metadata.input.size}x{parser.metadata.input.size} uint8",
        },
    }
    if mesh_path.is_file():
        mesh = Interpreter(model_path=str(mesh_path), num_threads=threads)
        mesh.allocate_tensors()
        inp = mesh.get_input_details()[0]
        size = int(inp["shape"][1])
        x = (cv2.resize(crop, (size, size)).astype(np.float32) / 255.0)[None]

        def mp_once():
            mesh.set_tensor(inp["index"], x)
            mesh.invoke()

        for _ in range(20):
            mp_once()
        theirs = _median_ms(mp_once, frames)
        mesh_macs = tflite_macs(mesh)
        result["mediapipe_facemesh"] = {
            "p50_ms": theirs[0],
            "p95_ms": theirs[1],
            "macs": mesh_macs,
            "input": f"{size}x{size} float32",
        }
        result["speedup_p50"] = theirs[0] / ours[0]
    else:
        result["mediapipe_facemesh"] = "not installed (make teacher)"
    macs = parser.metadata.macs
    mesh_macs = result.get("mediapipe_facemesh", {}).get("macs", 0) if mesh_path.is_file() else 0
    result["pi4_estimate_ms"] = {
        "assumed_gmacs_2_threads": PI4_GMACS,
        "vanity_infer_ms": macs / (PI4_GMACS * 1e9) * 1e3,
        "facemesh_infer_ms": (mesh_macs / (PI4_GMACS * 1e9) * 1e3) if mesh_path.is_file() else None,
    }
    return result


def main() -> None:
    """CLI."""
    ap = argparse.ArgumentParser(description="Vanity parser vs MediaPipe FaceMesh (same frames, LiteRT).")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = run(args.frames, args.threads)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
