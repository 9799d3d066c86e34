"""The hot loop over fake stages: frames flow, drops are counted, failures recover."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from edge.analysis import Analyzer
from edge.analysis.parse import box_from_probs
from edge.analysis.tracker import OneEuro
from edge.config import load_config
from edge.contract import CropGeometry, FaceBox
from edge.pipeline import FrameSlot, LivePipeline
from edge.runtime.fake import FakeParser, fake_labels
from tests.conftest import synthetic_frame


def test_frame_slot_keeps_freshest_and_counts_drops():
    """Guards against a queue that grows (latency) or drops frames silently."""
    slot = FrameSlot()
    for i in range(5):
        slot.put(np.full((2, 2, 3), i, np.uint8), float(i))
    frame, t = slot.take(0.01)
    assert frame[0, 0, 0] == 4 and t == 4.0
    assert slot.dropped == 4
    assert slot.take(0.01) is None


def test_one_euro_is_still_on_a_still_signal_and_follows_a_step():
    """Guards against jitter on a still face and visible lag on a moving one."""
    f = OneEuro(min_cutoff=1.0, beta=0.05)
    rng = np.random.default_rng(0)
    out = [f(100 + rng.normal(0, 2), i / 30) for i in range(60)]
    assert np.std(out[30:]) < 1.0  # input jitter is 2 px
    for i in range(60, 75):
        y = f(200.0, i / 30)
    assert y > 180  # a 100 px move is followed within half a second


def test_tracker_box_from_labels_maps_back_to_the_image():
    """Guards against the tracker drifting: the class map's box must land where the face is."""
    geo = CropGeometry()
    box = FaceBox(320.0, 240.0, 180.0, 0.0)
    parser = FakeParser()
    cfg = load_config(None).analysis
    from edge.detectors.fake import FakeDetector

    det_cfg = load_config(None, {"detector": {"kind": "fake", "box": None}}).detector
    an = Analyzer(parser, FakeDetector(det_cfg), cfg, geo)
    from edge.contract import crop_matrix
    from edge.types import FaceAnalysis

    fa = FaceAnalysis(box, crop_matrix(box, geo), parser._probs, fake_labels(), 0.99)
    nb = box_from_probs(parser._probs, fake_labels(), fa.output_to_image(), box, 20)
    # The fake face fills the crop as the geometry implies: the box is stable (a fixed point).
    assert abs(nb.cx - box.cx) < 0.06 * box.size and abs(nb.size - box.size) < 0.15 * box.size
    assert an.tracking is False


def test_analyzer_detects_once_then_tracks(fake_pipeline):
    """Guards against running the expensive detector on every frame."""
    for i in range(10):
        fake_pipeline.step(synthetic_frame(seed=i))
    assert fake_pipeline.analyzer.detections == 1
    assert fake_pipeline.face is not None


def test_each_frame_result_carries_its_own_stage_timings(fake_cfg):
    """Guards against timings read from the analyzer's shared state (another frame's): the acquiring frame
    reports its detector pass and the tracked one does not, and the pipeline's totals add up from them."""
    from edge.detectors.fake import FakeDetector

    every = fake_cfg.analysis.model_copy(update={"parse_every": 1})
    an = Analyzer(FakeParser(mouth=True), FakeDetector(fake_cfg.detector), every)
    first = an.analyze(synthetic_frame(), now=0.0)
    second = an.analyze(synthetic_frame(seed=1), now=1 / 30)
    assert first.face is not None and second.face is not None
    assert first.times.detected and not second.times.detected and second.times.detect == 0.0
    assert first.times.infer > 0 and first.times.mouth > 0 and second.times.infer > 0
    assert first.times.total == first.times.track + first.times.detect
    assert second.times.total == second.times.track > 0


def _shifted(frame: np.ndarray, dx: int, dy: int) -> np.ndarray:
    return np.roll(frame, (dy, dx), axis=(0, 1))


def test_frames_between_parses_carry_the_last_parse_with_the_face(fake_cfg):
    """Guards against the masks staying where the face was between two parses (or a parse per frame
    being paid anyway): the in-between frame runs no inference and its masks move as the face moved."""
    from edge.detectors.fake import FakeDetector

    parser = FakeParser(mouth=True)
    settled = fake_cfg.analysis.model_copy(update={"settle_parses": 0})  # parse_every 2 by default
    an = Analyzer(parser, FakeDetector(fake_cfg.detector), settled)
    frame = synthetic_frame()
    first = an.analyze(frame, now=0.0)
    calls = parser.calls
    second = an.analyze(_shifted(frame, 9, -6), now=1 / 30)
    assert parser.calls == calls and second.times.carried and second.times.infer == 0.0
    assert second.face is not None and first.face is not None
    assert second.face.box.cx - first.face.box.cx == pytest.approx(9, abs=1.0)
    assert second.face.box.cy - first.face.box.cy == pytest.approx(-6, abs=1.0)
    # The class maps are the parse's, placed 9 px right and 6 px up in the image.
    moved_origin = second.face.output_to_image()[:, 2] - first.face.output_to_image()[:, 2]
    assert moved_origin == pytest.approx([9, -6], abs=1.0)
    third = an.analyze(_shifted(frame, 9, -6), now=2 / 30)
    assert parser.calls > calls and not third.times.carried  # the next frame is parsed again


def test_a_new_face_is_parsed_every_frame_until_its_crop_settles(fake_cfg):
    """Guards against carrying the first parses of a new customer, whose crop (from the detector's box)
    is still being re-centred: each would be shown twice with its errors."""
    from edge.detectors.fake import FakeDetector

    cfg = fake_cfg.analysis.model_copy(update={"settle_parses": 3, "parse_every": 2})
    an = Analyzer(FakeParser(), FakeDetector(fake_cfg.detector), cfg)
    frame = synthetic_frame()
    carried = [an.analyze(frame, now=i / 30).times.carried for i in range(8)]
    assert carried == [False, False, False, True, False, True, False, True]
    an.reset()  # the customer left; the next one settles again
    assert not any(an.analyze(frame, now=1 + i / 30).times.carried for i in range(3))


def test_a_frame_that_cannot_be_matched_is_parsed_instead(fake_cfg):
    """Guards against carrying stale masks over a frame that no longer shows the face (a cut, a jump)."""
    from edge.detectors.fake import FakeDetector

    parser = FakeParser(mouth=False)
    an = Analyzer(parser, FakeDetector(fake_cfg.detector), fake_cfg.analysis.model_copy(update={"settle_parses": 0}))
    an.analyze(synthetic_frame(), now=0.0)
    calls = parser.calls
    flat = np.full_like(synthetic_frame(), 128)
    r = an.analyze(flat, now=1 / 30)
    assert not r.times.carried and parser.calls > calls


def test_step_renders_and_publishes_a_jpeg(fake_pipeline):
    """Guards against a pipeline that publishes nothing or an unreadable image."""
    jpeg = fake_pipeline.step(synthetic_frame())
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (480, 640, 3)
    latest = fake_pipeline.latest_frame()
    assert latest is not None and latest.seq == 1 and latest.jpeg == jpeg
    assert (latest.width, latest.height) == (640, 480)
    for stage in ("analyze", "render", "encode", "total"):
        assert stage in fake_pipeline.stats.summary()


def test_threads_run_and_health_follows_frames(fake_pipeline):
    """Guards against /healthz saying healthy while no frames flow."""
    assert not fake_pipeline.health().healthy
    fake_pipeline.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not fake_pipeline.health().healthy:
            time.sleep(0.05)
        assert fake_pipeline.health().healthy, fake_pipeline.health().reason
        assert fake_pipeline.frames > 0
    finally:
        t0 = time.monotonic()
        fake_pipeline.stop()
        assert time.monotonic() - t0 < 2.0
    time.sleep(fake_pipeline.cfg.health.max_frame_age_s + 0.1)
    assert not fake_pipeline.health().healthy


def _threads_of_stages(pipeline, monkeypatch, *stages: str) -> dict[str, set[str]]:
    """Spies on the pipeline's ``<stage>_stage`` methods: stage -> names of the threads that ran it."""
    import threading

    seen: dict[str, set[str]] = {stage: set() for stage in stages}
    for stage in stages:
        real = getattr(pipeline, f"{stage}_stage")

        def spy(*a, _real=real, _stage=stage):
            seen[_stage].add(threading.current_thread().name)
            return _real(*a)

        monkeypatch.setattr(pipeline, f"{stage}_stage", spy)
    return seen


@pytest.mark.parametrize("pipelined", [True, False])
def test_stages_run_on_their_own_threads_when_pipelined(fake_pipeline, monkeypatch, pipelined):
    """Guards against a pipelined mirror whose stages still queue on one core (or a serial one that spawns
    threads): analysis, render and encode must each run on their own thread, and frames must still flow."""
    seen = _threads_of_stages(fake_pipeline, monkeypatch, "analysis", "render", "encode")
    cfg = fake_pipeline.cfg
    fake_pipeline.cfg = cfg.model_copy(update={"render": cfg.render.model_copy(update={"pipelined": pipelined})})
    fake_pipeline.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and fake_pipeline.frames < 20:
            time.sleep(0.02)
    finally:
        fake_pipeline.stop()
    assert fake_pipeline.frames >= 20 and fake_pipeline.out.latest() is not None
    threads = set().union(*seen.values())
    if pipelined:
        assert all(len(v) == 1 for v in seen.values()) and len(threads) == 3, seen
    else:
        assert threads == {"vanity-process"}, seen


def test_pipelined_mouth_pass_and_tone_run_on_their_own_threads(fake_cfg, monkeypatch):
    """Guards against the mouth pass or the tone measurement holding up the parse (or never running)
    when pipelined: each gets its own thread, and the frames still carry a mouth view."""

    from edge.catalog import load_catalog
    from edge.detectors import make_detector
    from edge.makeup import Renderer
    from edge.sources import make_source

    cfg = fake_cfg.model_copy(update={"render": fake_cfg.render.model_copy(update={"look": "bold"})})
    m = LivePipeline(
        cfg,
        FakeParser(mouth=True),
        make_detector(cfg.detector),
        Renderer(),
        load_catalog(cfg.catalog),
        make_source(cfg.source),
    )
    seen = _threads_of_stages(m, monkeypatch, "mouth", "tone")
    m.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (m.frames > 40 and m.face is not None and m.face.mouth):
            time.sleep(0.02)
    finally:
        m.stop()
    assert seen == {"mouth": {"vanity-mouth"}, "tone": {"vanity-tone"}}
    assert m.face is not None and m.face.mouth is not None


def test_a_mouth_pass_that_finishes_after_the_track_was_lost_is_dropped(fake_cfg):
    """Guards against a late mouth pass (another thread's) putting the last customer's lips on a new face."""
    from edge.detectors.fake import FakeDetector

    an = Analyzer(FakeParser(mouth=True), FakeDetector(fake_cfg.detector), fake_cfg.analysis)
    an.defer_mouth = True
    face, _ = an.analyze(synthetic_frame(), now=0.0)
    req = an.pending_mouth
    assert face is not None and req is not None and face.mouth is None  # the first pass is not done yet
    an.reset()
    assert an.run_mouth(req) is None and an.carried_mouth(req.lips) is None


def test_a_busy_stage_drops_stale_frames_and_counts_them():
    """Guards against an unbounded queue between stages (latency growing without end) or hidden drops."""
    from edge.pipeline import Mailbox

    box: Mailbox[int] = Mailbox()
    for i in range(5):
        box.offer(i)
    assert box.take(0.01) == 4 and box.dropped == 4
    assert box.take(0.01) is None
    two: Mailbox[int] = Mailbox(depth=2)  # a stage that alternates dear and cheap frames catches up
    for i in range(5):
        two.offer(i)
    assert [two.take(0.01), two.take(0.01), two.take(0.01)] == [3, 4, None] and two.dropped == 3


def test_camera_failure_is_survived_and_recovered(fake_cfg):
    """Guards against a camera glitch killing the daemon or the health never recovering."""
    from edge.catalog import load_catalog
    from edge.detectors import make_detector
    from edge.makeup import Renderer
    from edge.sources import make_source

    cfg = fake_cfg.model_copy(
        update={
            "source": fake_cfg.source.model_copy(update={"fail_after": 10, "fail_for": 3}),
            "health": fake_cfg.health.model_copy(update={"reconnect_min_s": 0.05, "max_frame_age_s": 0.3}),
        }
    )
    m = LivePipeline(
        cfg, FakeParser(), make_detector(cfg.detector), Renderer(), load_catalog(cfg.catalog), make_source(cfg.source)
    )
    m.start()
    try:
        saw_unhealthy = False
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            h = m.health()
            if m.camera_state == "reconnecting":
                saw_unhealthy = saw_unhealthy or not h.healthy
            if saw_unhealthy and h.healthy:
                break
            time.sleep(0.02)
        assert saw_unhealthy, "the outage was not reported"
        assert m.health().healthy, m.health().reason
        assert m.camera_gaps == 1
    finally:
        m.stop()


def _clocked_pipeline(fake_cfg, parser: FakeParser, now: list[float]) -> LivePipeline:
    """A pipeline over fake stages whose session clock reads ``now[0]``; sessions end after 5 s without a face."""
    from edge.catalog import load_catalog
    from edge.detectors import make_detector
    from edge.makeup import Renderer
    from edge.sources import make_source

    cfg = fake_cfg.model_copy(update={"session": fake_cfg.session.model_copy(update={"reset_after_s": 5})})
    return LivePipeline(
        cfg,
        parser,
        make_detector(cfg.detector),
        Renderer(),
        load_catalog(cfg.catalog),
        make_source(cfg.source),
        clock=lambda: now[0],
    )


def test_session_resets_after_no_face(fake_cfg):
    """Guards against the next customer inheriting the previous one's look and tone."""
    now = [0.0]
    parser = FakeParser()
    m = _clocked_pipeline(fake_cfg, parser, now)
    m.step(synthetic_frame())
    m.choose_look("none")
    assert m.session.look_name == "none"
    parser.face = False
    parser._probs[:] = 0
    parser._probs[..., 0] = 1
    for t in (1.0, 3.0, 7.0):
        now[0] = t
        m.step(synthetic_frame(face=False))
    assert m.face is None
    parser.face = True
    parser.__init__(face=True)
    now[0] = 8.0
    m.step(synthetic_frame())
    assert m.session.look_name == m.cfg.render.look


def test_detector_rests_when_nobody_is_there():
    """Guards against an idle kiosk running the detector on every frame (heat, throttling)."""
    from edge.detectors.fake import FakeDetector

    cfg = load_config(None, {"detector": {"kind": "fake", "box": None}, "analysis": {"idle_detect_every": 3}})
    det = FakeDetector(cfg.detector)
    an = Analyzer(FakeParser(), det, cfg.analysis)
    frame = synthetic_frame(face=False)
    for _ in range(9):
        assert an.analyze(frame).face is None
    assert det.calls == 3


def test_split_view_and_before_belong_to_the_customer(fake_cfg):
    """Guards against the next customer inheriting the previous one's split view or 'before' mode."""
    now = [1.0]
    m = _clocked_pipeline(fake_cfg, FakeParser(), now)
    m.step(synthetic_frame())
    m.set_compare("split")
    now[0] = 2.0
    m.step(synthetic_frame())  # the same customer: still split
    assert m.snapshot().session.compare == "split" and m.render_options().compare == "split"
    now[0] = 10.0  # the face comes back after reset_after_s: a new customer
    m.step(synthetic_frame())
    assert m.snapshot().session.compare == "off"


@pytest.mark.parametrize(("fmt", "fourcc"), [("YUYV", "YUYV"), ("MJPG", "MJPG"), ("auto", None)])
def test_usb_camera_is_asked_for_the_configured_pixel_format(monkeypatch, fmt, fourcc):
    """Guards against a USB camera left on MJPEG (a JPEG decode per frame on the Pi) when raw frames were asked for."""
    from edge.config import V4L2SourceConfig
    from edge.sources.v4l2 import V4L2Source

    asked: dict[int, float] = {}

    class FakeCapture:
        def __init__(self, *a):
            pass

        def isOpened(self):
            return True

        def set(self, prop, value):
            asked[prop] = value
            return True

    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    V4L2Source(V4L2SourceConfig(pixel_format=fmt)).open()
    want = None if fourcc is None else cv2.VideoWriter_fourcc(*fourcc)
    assert asked.get(cv2.CAP_PROP_FOURCC) == want
    assert asked[cv2.CAP_PROP_FRAME_WIDTH] == 640


def test_the_last_parse_is_blended_where_the_face_is_now():
    """Guards against the temporal blend mixing a moved face's old pixels into the wrong place (a smear
    the size of the motion): aligning the earlier map by the face's motion must move its content."""
    from edge.analysis.motion import align_probs, blend_aligned

    prev = np.zeros((64, 64, 11), np.float32)
    prev[20:30, 10:20, 3] = 1.0
    at = np.array([[2.0, 0.0, 100.0], [0.0, 2.0, 50.0]])  # output pixel -> image (stride 2)
    same, covered = align_probs(prev, at, at)
    assert np.array_equal(same, prev) and covered.min() == 1.0
    here = at.copy()
    here[:, 2] += (8.0, -4.0)  # this map sits 8 px right and 4 px up of the last one in the image
    aligned, covered = align_probs(prev, at, here)
    assert np.array_equal(aligned[22:32, 6:16, 3], np.ones((10, 10)))  # 4 output px left, 2 down
    assert aligned[..., 3].sum() == pytest.approx(100.0)
    # The strip the motion uncovered (right 4 columns, top 2 rows) is not blended: the new map alone.
    assert covered[:, -4:].max() == 0.0 and covered[:2].max() == 0.0 and covered[10:50, 10:50].min() == 1.0
    new = np.full_like(prev, 0.5)
    blended = blend_aligned(new, aligned, covered, 0.5)
    assert np.all(blended[:, -4:] == 0.5) and blended[25, 10, 3] == pytest.approx(0.75)
