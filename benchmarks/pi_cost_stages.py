"""The guest side of `make pi-cost`: every stage of the live mirror, run between marks.

Runs inside the emulated Pi (deploy/pi_cost.py starts it under qemu-user with the counting
plugin, deploy/aarch64/insn_count.c), against the installed `vanity` wheel. A mark is a
syscall the kernel refuses at once (``lseek(-1, ID, 0x5641)``); the plugin logs the calling
thread's instruction count at each one. Each measurement is a pair of marks around ``n``
repetitions after a warm-up, so start-up and first-call caches never enter a stage's count.
The plan (which mark ids mean which stage, and how many units each pair covers) is written
as JSON for the host to divide by.

It runs anywhere (the marks are harmless), which is how the tests check it on x86.

    python pi_cost_stages.py --plan plan.json [--iterations 20] [--frames 30] [--calibrate DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

MARK_WHENCE = 0x5641  # "VA": what the plugin looks for (deploy/aarch64/insn_count.c)


def mark(ident: int) -> None:
    """Ask the counting plugin to log this thread's instruction count under ``ident``."""
    try:
        os.lseek(-1, ident, MARK_WHENCE)
    except OSError:
        pass  # EBADF, always: the syscall exists only to be seen


class Plan:
    """Mark ids and what they measure; pairs (2*i, 2*i + 1) bracket stage i."""

    def __init__(self) -> None:
        self.stages: list[dict[str, Any]] = []

    def begin(self, name: str, group: str, units: int) -> int:
        """Register a stage; returns its index (marks 2*i and 2*i+1)."""
        self.stages.append({"index": len(self.stages), "name": name, "group": group, "units": units})
        return len(self.stages) - 1

    def repeat(self, name: str, fn: Callable[[], object], n: int, warmup: int = 3, group: str = "stage") -> None:
        """Count ``n`` calls of ``fn`` after ``warmup`` uncounted ones."""
        for _ in range(warmup):
            fn()
        i = self.begin(name, group, n)
        mark(2 * i)
        for _ in range(n):
            fn()
        mark(2 * i + 1)


def setup(frames: int, analysis: dict[str, Any] | None = None) -> dict[str, Any]:
    """The default configuration at one thread, the evening look, a tracked face on demo frames."""
    import cv2
    import numpy as np

    from edge.config import load_config
    from edge.daemon import build_pipeline

    cv2.setNumThreads(1)
    over = {"model": {"threads": 1}, "render": {"look": "evening"}, "source": {"kind": "demo"}}
    cfg = load_config(None, {**over, "analysis": analysis or {}})
    update: dict[str, Any] = {"source": cfg.source.model_copy(update={"fps": 240.0})}
    if hasattr(cfg.detector, "threads"):
        update["detector"] = cfg.detector.model_copy(update={"threads": 1})
    cfg = cfg.model_copy(update=update)
    pipeline = build_pipeline(cfg)
    # The demo's sway and lean on a 30 FPS clock, the same frames on every run.
    from edge.sources.demo import DemoSource

    t = [0.0]
    src = DemoSource(cfg.source, clock=lambda: t[0])
    src.open()
    shots = []
    for i in range(frames + 10):
        t[0] = 3.0 + i / 30.0
        shots.append(src.read())
    for f in shots[:10]:  # acquire the face, settle the smoothing
        pipeline.step(f, None)
    face = pipeline.face
    if face is None:
        raise SystemExit("pi-cost: the demo face was not found; nothing to measure")
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(shots[0], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return {
        "cfg": cfg,
        "pipeline": pipeline,
        "shots": shots,
        "face": face,
        "mjpeg": np.asarray(jpeg),
        "yuyv": _to_yuyv(shots[0]),
    }


def measure_parts(plan: Plan, env: dict[str, Any], n: int) -> None:
    """Each stage on its own, the same frame and face every time."""
    import cv2

    import edge.analysis.parse as shared
    from edge.makeup import FaceMasks, Look
    from edge.pipeline import encode_jpeg
    from edge.tone import measure_tone

    p, cfg, face = env["pipeline"], env["cfg"], env["face"]
    frame = env["shots"][0]
    parser, renderer = p.analyzer.parser, p.renderer
    look = p.session.look
    box = face.box
    crop = shared.warp_crop(frame, shared.crop_matrix(box, parser.metadata.crop, parser.metadata.input.size), 128)

    plan.repeat("camera decode (MJPEG 640x480)", lambda: cv2.cvtColor(cv2.imdecode(env["mjpeg"], 1), 4), n)
    plan.repeat("camera convert (YUYV 640x480)", lambda: _from_yuyv(env["yuyv"]), n)
    plan.repeat("detector (full frame)", lambda: p.detector.detect(frame), max(n // 4, 3), warmup=1)
    plan.repeat("parser inference", lambda: parser(crop), n)
    plan.repeat("face parse (crop+infer+read)", lambda: p.analyzer._parse(frame, box, _times()), n)
    target = shared.mouth_target(parser, cfg.analysis, face)
    if target is not None:
        mouth = lambda: shared.settle_mouth(shared.parse_mouth(parser, frame, box, target.centre, target.crop))  # noqa: E731
        plan.repeat("mouth pass", mouth, n)
    plan.repeat("face masks (shared by layers)", lambda: FaceMasks(face, frame.shape, renderer.feather_px), n)
    # A new parse's class maps every time (the renderer keeps crop-space masks of a class map it has seen).
    new = lambda: _new_parse(face)  # noqa: E731
    for spec in look.layers:
        one = Look(name=spec.kind, title=spec.kind, layers=[spec])
        plan.repeat(f"layer {spec.kind} (with its masks)", lambda one=one: renderer.render(frame, new(), one), n)
    for spec in look.layers:
        one = Look(name=spec.kind, title=spec.kind, layers=[spec])
        renderer.render(frame, face, one)
        plan.repeat(f"layer {spec.kind}, between parses", lambda one=one: renderer.render(frame, face, one), n)
    plan.repeat("render, a parsed frame", lambda: renderer.render(frame, new(), look), n)
    plan.repeat("render, a frame between parses", lambda: renderer.render(frame, face, look), n)
    shown = renderer.render(frame, face, look)
    plan.repeat("carry (motion + move)", lambda: p.analyzer._carry(frame, _times()), n)
    plan.repeat("tone", lambda: measure_tone(frame, face, p.calibration, p.tone_model), n)
    plan.repeat("JPEG encode", lambda: encode_jpeg(shown, cfg.server.jpeg_quality, cfg.render.flip), n)


def _to_yuyv(rgb: Any) -> Any:
    """A frame as a USB camera's YUYV (4:2:2) buffer, (H, W, 2) uint8."""
    import cv2
    import numpy as np

    yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV)
    out = np.empty((*rgb.shape[:2], 2), np.uint8)
    out[..., 0] = yuv[..., 0]
    out[:, 0::2, 1] = yuv[:, 0::2, 1]  # U on even pixels
    out[:, 1::2, 1] = yuv[:, 1::2, 2]  # V on odd pixels
    return out


def _from_yuyv(buf: Any) -> Any:
    """What the V4L2 source does with a YUYV frame: OpenCV's conversion to BGR, then the source's to RGB."""
    import cv2

    return cv2.cvtColor(cv2.cvtColor(buf, cv2.COLOR_YUV2BGR_YUYV), cv2.COLOR_BGR2RGB)


def _new_parse(face: Any) -> Any:
    """The face with copies of its class maps: to the renderer, a fresh parse."""
    mouth = face.mouth
    if mouth is not None:
        mouth = dataclasses.replace(mouth, probs=mouth.probs.copy())
    return dataclasses.replace(face, probs=face.probs.copy(), mouth=mouth)


def _times() -> Any:
    from edge.analysis.tracker import StageTimes

    return StageTimes()


def measure_frames(plan: Plan, env: dict[str, Any], frames: int) -> dict[str, int]:
    """The live loop as the kiosk runs it, stage by stage, per shown frame, on moving demo frames.

    Each stage is one thread (one core) of the pipelined mirror. The camera stage is the capture
    thread's conversion of a USB camera's YUYV frame (the default ``pixel_format``; an MJPEG
    frame's decode is counted among the parts); a Pi camera's ISP delivers RGB itself.
    """
    p = env["pipeline"]
    chain = ("camera (YUYV)", "analysis stage", "render stage", "encode stage")
    ids = {name: plan.begin(name, "live", frames) for name in chain}
    # The side stages run on their own threads, off the frame's path to the screen.
    ids.update({name: plan.begin(name, "side", frames) for name in ("mouth stage", "tone stage")})
    # The render stage again, split by the frame's kind (their units are set after the loop).
    split = {k: plan.begin(f"render stage, {k} frames", "stage", 0) for k in ("parsed", "carried")}
    kinds = {"parsed": 0, "carried": 0}
    p.stats.reset()  # its counts below are this loop's parses and mouth passes (its window holds 600)

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        mark(2 * ids[name])
        out = fn()
        mark(2 * ids[name] + 1)
        return out

    for shot in env["shots"][10 : 10 + frames]:
        buf = _to_yuyv(shot)  # what the camera sends (made outside the count)
        timed("camera (YUYV)", lambda buf=buf: _from_yuyv(buf))
        job = timed("analysis stage", lambda shot=shot: p.analysis_stage(shot, None))
        # The side stages run as step() runs them (their own threads when pipelined); a frame that
        # asked for none still counts (0) toward their average per shown frame.
        view = timed("mouth stage", lambda job=job: job.mouth and job.face and p.mouth_stage(job.mouth))
        if view:
            job.face.mouth = view
        timed("tone stage", lambda job=job: job.tone and p.tone_stage(job.tone))
        kind = "carried" if p.analyzer._since_parse else "parsed"
        kinds[kind] += 1
        mark(2 * split[kind])
        done = timed("render stage", lambda job=job: p.render_stage(job))
        mark(2 * split[kind] + 1)
        timed("encode stage", lambda done=done: p.encode_stage(done))
    for k, i in split.items():
        plan.stages[i]["units"] = kinds[k]
    summary = p.stats.summary()
    return {
        "frames": frames,
        "parses": summary["infer"].count if "infer" in summary else 0,
        "mouth_passes": summary["mouth"].count if "mouth" in summary else 0,
    }


def measure_calibration(plan: Plan, folder: Path, n: int) -> None:
    """Reference models whose Pi timings are published, counted the same way (LiteRT, 1 thread)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    for path in sorted(folder.glob("*.tflite")):
        it = Interpreter(model_path=str(path), num_threads=1)
        it.allocate_tensors()
        d = it.get_input_details()[0]
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        plan.repeat(f"calibration {path.stem}", it.invoke, n, warmup=2, group="calibration")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plan", type=Path, required=True, help="where to write the marks' meaning (JSON)")
    ap.add_argument("--iterations", type=int, default=20, help="repetitions counted per stage")
    ap.add_argument("--frames", type=int, default=30, help="live frames counted")
    ap.add_argument("--calibrate", type=Path, help="a folder of reference .tflite models to count too")
    ap.add_argument("--analysis", type=json.loads, default={}, help='analysis overrides, JSON: {"parse_every": 1}')
    args = ap.parse_args(argv)
    plan = Plan()
    env = setup(args.frames, args.analysis)
    measure_parts(plan, env, args.iterations)
    live = measure_frames(plan, env, args.frames)
    if args.calibrate:
        measure_calibration(plan, args.calibrate, max(args.iterations // 4, 3))
    out = {"stages": plan.stages, "live": live, "machine": os.uname().machine}
    args.plan.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
