"""Time a full six-layer look on a 640x480 frame with a ~200 px face.

Run: ``.venv/bin/python benchmarks/bench_render.py [--frames N] [--look NAME]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from edge.makeup import LayerSpec, Look, Renderer, builtin_looks
from edge.makeup.synthetic import synthetic_face

FULL = Look(
    name="full",
    title="All six layers",
    layers=[
        LayerSpec(kind="foundation", color="#d2a98a", intensity=0.5),
        LayerSpec(kind="blush", color="#c8595a", intensity=0.5),
        LayerSpec(kind="eyeshadow", color="#5b3f63", intensity=0.6, finish="shimmer"),
        LayerSpec(kind="eyeliner", color="#141016", intensity=0.9),
        LayerSpec(kind="brows", color="#3b2a20", intensity=0.5),
        LayerSpec(kind="lipstick", color="#b01c2e", intensity=0.8, finish="shimmer"),
    ],
)


def main() -> None:
    """Print median and p95 render time in milliseconds."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--look", default="full", help="'full' (six layers) or a built-in look name")
    ap.add_argument("--face-px", type=float, default=200.0)
    ap.add_argument("--cv-threads", type=int, default=None, help="cv2.setNumThreads (default: OpenCV's choice)")
    args = ap.parse_args()
    if args.cv_threads is not None:
        import cv2

        cv2.setNumThreads(args.cv_threads)
    look = FULL if args.look == "full" else builtin_looks()[args.look]
    frame, face, _ = synthetic_face(480, 640, face_px=args.face_px)
    renderer = Renderer(feather_px=2.0)
    for _ in range(args.warmup):
        renderer.render(frame, face, look)
    times = np.empty(args.frames)
    cpu = np.empty(args.frames)
    for i in range(args.frames):
        c0, t0 = time.process_time(), time.perf_counter()
        renderer.render(frame, face, look)
        times[i] = (time.perf_counter() - t0) * 1e3
        cpu[i] = (time.process_time() - c0) * 1e3
    # CPU time (all of this process's threads) is shown too: on a shared machine, wall time includes waiting.
    print(
        f"look={look.name} layers={len(look.layers)} frame=640x480 face={args.face_px:.0f}px frames={args.frames}: "
        f"median {np.median(times):.2f} ms, p95 {np.percentile(times, 95):.2f} ms "
        f"(process CPU median {np.median(cpu):.2f} ms; load average {os.getloadavg()[0]:.2f})"
    )


if __name__ == "__main__":
    main()
