"""The kiosk page in real headless Chromium against a running daemon, and slow stream viewers.

Browser tests drive the system Chromium (/usr/bin/chromium) with Playwright;
they are skipped, saying why, when either is missing. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
import socket
import time

import numpy as np
import pytest

from tests.conftest import Daemon
from tests.support.browser import VIEWPORT, chromium, missing_reason

pytestmark = pytest.mark.timeout(180)


# ---------------------------------------------------------------------- helpers


def get(url: str, path: str, **kw):
    import httpx

    return httpx.get(url + path, timeout=5, **kw)


def decode(jpeg: bytes) -> np.ndarray:
    import cv2

    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, "not a JPEG"
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float64)


_PARSER = {}


def _lip_mask(frame: np.ndarray) -> np.ndarray | None:
    """The lips' pixels of a shown frame, found by running the default model on it here."""
    import cv2

    from edge.analysis import analyze_still, labels_to_image
    from edge.config import load_config
    from edge.contract import CLASS_ID
    from edge.detectors import make_detector
    from edge.runtime import open_parser

    if not _PARSER:
        cfg = load_config(None)
        _PARSER.update(parser=open_parser(cfg.model.path), det=make_detector(cfg.detector), cfg=cfg.analysis)
    rgb = frame.astype(np.uint8)
    faces = analyze_still(_PARSER["parser"], _PARSER["det"], _PARSER["cfg"], rgb)
    if not faces:
        return None
    labels = labels_to_image(faces[:1], *rgb.shape[:2])
    lips = np.isin(labels, [CLASS_ID["upper_lip"], CLASS_ID["lower_lip"]]).astype(np.uint8)
    # Away from the edges, so a mask off by a pixel does not mix in skin or teeth.
    lips = cv2.erode(lips, np.ones((3, 3), np.uint8)) > 0
    return lips if lips.sum() >= 20 else None


def lips_colour(url: str, samples: int = 4) -> np.ndarray:
    """Mean RGB of the lips in the shown image (/frame.jpg), over the lips' own pixels.

    The demo face moves and smiles, so a fixed box would mix in skin and teeth;
    the lips are found in each grabbed frame itself.
    """
    means = []
    for _ in range(samples * 4):
        frame = decode(get(url, "/frame.jpg").content)
        mask = _lip_mask(frame)
        if mask is not None:
            means.append(frame[mask].mean(axis=0))
            if len(means) == samples:
                break
        time.sleep(0.1)
    assert means, "no lips found in the shown frames"
    return np.mean(means, axis=0)


def wait_for(predicate, timeout: float = 8.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def hexrgb(h: str) -> np.ndarray:
    return np.array([int(h[i : i + 2], 16) for i in (1, 3, 5)], np.float64)


# ---------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def demo_daemon(default_model, tmp_path_factory):
    """One daemon on the demo source for the module (starting one costs seconds on 2 cores)."""
    d = Daemon(["--source", "demo", "--model", str(default_model)], tmp=tmp_path_factory.mktemp("daemon"))
    try:
        d.wait_healthy(60)
        wait_for(lambda: get(d.url, "/api/state").json()["face_present"], 20, "a face on the demo source")
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="module")
def browser():
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser, demo_daemon):
    p = browser.new_page(viewport=VIEWPORT)
    p.goto(demo_daemon.url + "/")
    p.wait_for_function("document.querySelector('#live').naturalWidth > 0", timeout=15000)
    p.wait_for_selector("#choices [data-look='none']", timeout=10000)
    yield p
    p.close()


def choose_look(page, name: str) -> None:
    page.click("#categories [data-cat='looks']")
    page.click(f"#choices [data-look='{name}']")
    page.wait_for_selector(f"#choices [data-look='{name}'].active", timeout=5000)


# ---------------------------------------------------------------------- browser tests


@pytest.mark.browser
@pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))
def test_mirror_image_moves_and_page_is_local(page, demo_daemon, artifacts):
    """Guards against a frozen mirror image, a page that needs the network, or a save button nobody enabled."""
    external: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(demo_daemon.url) else external.append(r.url))
    page.reload()
    page.wait_for_function("document.querySelector('#live').naturalWidth > 0", timeout=15000)
    a = page.locator("#live").screenshot(path=str(artifacts / "kiosk-live-1.png"))
    page.wait_for_timeout(800)
    b = page.locator("#live").screenshot(path=str(artifacts / "kiosk-live-2.png"))
    assert np.abs(decode(a) - decode(b)).mean() > 0.5, "the mirror image did not change over time"
    s1 = int(get(demo_daemon.url, "/frame.jpg").headers["x-frame-seq"])
    time.sleep(0.3)
    assert int(get(demo_daemon.url, "/frame.jpg").headers["x-frame-seq"]) > s1
    assert page.locator("#attract").is_hidden()
    assert page.locator("#save").is_hidden(), "snapshots are off by default: no save button"
    page.wait_for_selector("#reco-list .reco-item", timeout=10000)
    assert re.search(r"(warm|neutral|cool) undertone, Monk \d+", page.inner_text("#reco-reason"))
    for sel in ("#categories button", "#compare", "#choices .look"):
        box = page.locator(sel).first.bounding_box()
        assert box["height"] >= 48 and box["width"] >= 48, f"{sel} is too small to touch"
    assert external == [], f"the page reached outside the device: {external}"


@pytest.mark.browser
@pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))
def test_choosing_a_lipstick_shade_recolours_the_lips(page, demo_daemon, artifacts):
    """Guards against a shade swatch that changes the page but not the lips in the stream."""
    choose_look(page, "none")
    page.wait_for_timeout(500)
    bare = lips_colour(demo_daemon.url)
    products = get(demo_daemon.url, "/api/catalog").json()["products"]
    lips = [p for p in products if p["category"] == "lips"]
    shade = max(lips, key=lambda p: np.linalg.norm(hexrgb(p["hex"]) - bare))
    page.click("#categories [data-cat='lips']")
    page.click(f"#choices [data-sku='{shade['sku']}']")
    page.wait_for_selector(f"#choices [data-sku='{shade['sku']}'].active", timeout=5000)
    assert [lay["sku"] for lay in get(demo_daemon.url, "/api/look").json()["look"]["layers"]] == [shade["sku"]]
    page.wait_for_timeout(600)
    worn = lips_colour(demo_daemon.url)
    page.screenshot(path=str(artifacts / "kiosk-lipstick.png"))
    target = hexrgb(shade["hex"])
    assert np.linalg.norm(worn - bare) > 12, f"lips barely changed: {bare.round()} -> {worn.round()}"
    assert np.linalg.norm(worn - target) < np.linalg.norm(bare - target), "lips did not move towards the shade"


@pytest.mark.browser
@pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))
def test_hold_to_compare_shows_the_bare_face(page, demo_daemon, artifacts):
    """Guards against a before/after button that does not really remove the makeup while held."""
    choose_look(page, "none")
    page.wait_for_timeout(500)
    bare = lips_colour(demo_daemon.url)
    choose_look(page, "bold")
    page.wait_for_timeout(600)
    made_up = lips_colour(demo_daemon.url)
    assert np.linalg.norm(made_up - bare) > 12, "the look must change the lips for this test to mean anything"
    page.hover("#compare")
    page.mouse.down()
    try:
        wait_for(lambda: get(demo_daemon.url, "/api/state").json()["compare"], 5, "compare on")
        page.wait_for_timeout(300)
        held = lips_colour(demo_daemon.url)
        page.screenshot(path=str(artifacts / "kiosk-compare-held.png"))
        assert page.locator("#compare-labels .before").is_visible()
    finally:
        page.mouse.up()
    wait_for(lambda: not get(demo_daemon.url, "/api/state").json()["compare"], 5, "compare off on release")
    page.wait_for_timeout(300)
    released = lips_colour(demo_daemon.url)
    assert np.abs(held - bare).max() < 8, f"held {held.round()} is not the bare face {bare.round()}"
    assert np.linalg.norm(released - made_up) < np.linalg.norm(released - bare), "makeup did not come back"


@pytest.mark.browser
@pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))
def test_split_view_from_the_page(page, demo_daemon, artifacts):
    """Guards against a split-view button that only draws labels."""
    choose_look(page, "bold")
    page.click("#split")
    wait_for(lambda: get(demo_daemon.url, "/api/state").json()["compare_mode"] == "split", 5, "split mode")
    assert page.locator("#compare-labels .after").is_visible()
    frame = decode(get(demo_daemon.url, "/frame.jpg").content)
    w = frame.shape[1]
    divider = frame[:, w // 2 - 1 : w // 2 + 1].mean()
    assert divider > 240, "no divider between before and after"
    page.screenshot(path=str(artifacts / "kiosk-split.png"))
    page.click("#split")
    wait_for(lambda: get(demo_daemon.url, "/api/state").json()["compare_mode"] == "off", 5, "split off")


@pytest.mark.browser
@pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))
def test_attract_screen_when_nobody_is_there(browser, daemon_factory, default_model, artifacts):
    """Guards against a kiosk that shows an empty mirror and controls instead of inviting people in."""
    d = daemon_factory(["--source", "fake-empty", "--model", str(default_model)])
    d.wait_healthy(60)
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(d.url + "/")
        page.wait_for_selector("#attract", state="visible", timeout=10000)
        assert "Step closer" in page.inner_text("#attract")
        assert get(d.url, "/api/state").json()["mode"] == "attract"
        page.screenshot(path=str(artifacts / "kiosk-attract.png"))
    finally:
        page.close()


# ---------------------------------------------------------------------- slow viewers


def count_parts(url: str, seconds: float, out: dict) -> None:
    """Read /stream.mjpg for a while and count the frames."""
    import httpx

    n = 0
    t0 = time.monotonic()
    with httpx.stream("GET", url + "/stream.mjpg", timeout=10) as r:
        for chunk in r.iter_bytes():
            n += chunk.count(b"--vanityframe\r\n")
            if time.monotonic() - t0 > seconds:
                break
    out["fps"] = n / (time.monotonic() - t0)


def frames_total(url: str) -> int:
    text = get(url, "/metrics").text
    return int(float(re.search(r"^vanity_frames_total ([0-9.]+)$", text, re.M).group(1)))


def measure(url: str, seconds: float) -> tuple[float, float]:
    """(pipeline fps, one viewer's fps) over the same few seconds."""
    out: dict = {}
    n0, t0 = frames_total(url), time.monotonic()
    count_parts(url, seconds, out)
    return (frames_total(url) - n0) / (time.monotonic() - t0), out["fps"]


def test_stalled_viewer_slows_neither_pipeline_nor_others(demo_daemon):
    """Guards against one viewer that stops reading (a frozen tab) stalling the pipeline or the other viewers."""
    url = demo_daemon.url
    pipe0, view0 = measure(url, 2.5)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", demo_daemon.port))
    stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    try:
        time.sleep(4.0)  # long enough to fill every buffer between the server and the stalled socket
        assert re.search(r"^vanity_stream_clients 1$", get(url, "/metrics").text, re.M), "stalled viewer not connected"
        pipe1, view1 = measure(url, 3.0)
    finally:
        stalled.close()
    # A viewer that blocked the pipeline (or the event loop) would bring these near zero; the margin is for
    # the CPU this test shares with everything else.
    assert pipe1 >= 0.6 * pipe0, f"pipeline slowed from {pipe0:.1f} to {pipe1:.1f} fps"
    assert view1 >= 0.6 * view0, f"the other viewer slowed from {view0:.1f} to {view1:.1f} fps"
    assert view1 >= 0.6 * pipe1, f"the other viewer got {view1:.1f} fps of the pipeline's {pipe1:.1f}"
