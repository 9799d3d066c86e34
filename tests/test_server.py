"""The service API: status codes, auth off loopback, and no 5xx on bad input."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.server import create_app, is_loopback
from tests.conftest import synthetic_frame


@pytest.fixture
def client(fake_pipeline, fake_cfg):
    fake_pipeline.step(synthetic_frame())
    app = create_app(fake_pipeline, fake_cfg)
    with TestClient(app) as c:
        yield c


def test_page_and_assets_are_served_locally(client):
    """Guards against a page that needs a CDN (the kiosk has no network)."""
    r = client.get("/")
    assert r.status_code == 200 and "<img" in r.text
    assert "http://" not in r.text and "https://" not in r.text
    for asset in ("/static/app.js", "/static/style.css"):
        a = client.get(asset)
        assert a.status_code == 200 and "https://" not in a.text


def test_healthz_reflects_frame_flow(client, fake_pipeline):
    """Guards against a health check that is 200 while no frames flow."""
    r = client.get("/healthz")
    assert r.status_code == 503 and "reason" in r.json()  # nothing captured by the camera thread yet
    fake_pipeline.camera_state = "ok"
    import time

    fake_pipeline.last_frame_t = time.monotonic()
    fake_pipeline.step(synthetic_frame())
    assert client.get("/healthz").status_code == 200


def test_metrics_are_prometheus_text(client):
    """Guards against metrics a Prometheus scraper cannot parse."""
    r = client.get("/metrics")
    assert r.status_code == 200
    lines = [ln for ln in r.text.splitlines() if ln and not ln.startswith("#")]
    names = {ln.split("{")[0].split(" ")[0] for ln in lines}
    assert {"vanity_fps", "vanity_dropped_frames_total", "vanity_face_present", "vanity_model_info"} <= names
    assert any('stage="render"' in ln for ln in lines)
    for ln in lines:
        float(ln.rsplit(" ", 1)[1])


def test_look_put_and_get(client):
    """Guards against a look change that is not applied or not reported."""
    cat = client.get("/api/catalog").json()
    assert cat["products"] and cat["looks"]
    sku = next(p["sku"] for p in cat["products"] if p["category"] == "lips")
    r = client.put("/api/look", json={"sku": sku, "intensity": 0.8})
    assert r.status_code == 200
    assert client.get("/api/look").json()["look"]["layers"][0]["sku"] == sku
    assert client.put("/api/look", json={"name": "no-such-look"}).status_code == 404
    assert client.put("/api/look", json={"sku": "nope"}).status_code == 404
    assert client.put("/api/look", json={}).status_code == 422
    assert client.put("/api/look", json={"name": "none", "intensity": 7}).status_code == 422


def test_state_and_frame(client):
    """Guards against a state endpoint the page cannot use."""
    s = client.get("/api/state").json()
    assert s["mode"] in ("mirror", "attract") and "recommendations" in s
    r = client.get("/frame.jpg")
    assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"


def test_snapshot_is_off_by_default(client):
    """Guards against storing a customer's photo on a kiosk that did not enable it."""
    assert client.post("/api/snapshot").status_code == 403


def test_token_required_when_configured(fake_pipeline, fake_cfg):
    """Guards against control endpoints open to the network when bound off loopback."""
    fake_pipeline.step(synthetic_frame())
    app = create_app(fake_pipeline, fake_cfg, token="s3cret-token-0123456789")
    with TestClient(app) as c:
        assert c.put("/api/look", json={"name": "none"}).status_code == 401
        assert c.get("/frame.jpg").status_code == 401
        ok = c.put("/api/look", json={"name": "none"}, headers={"Authorization": "Bearer s3cret-token-0123456789"})
        assert ok.status_code == 200
        assert c.get("/frame.jpg?token=s3cret-token-0123456789").status_code == 200
        assert c.get("/healthz").status_code in (200, 503)  # health stays open for the watchdog


def test_loopback_detection():
    """Guards against treating a LAN address as private."""
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["/api/look", "/api/compare", "/api/snapshot", "/api/state", "/api/catalog", "/healthz"]),
    method=st.sampled_from(["GET", "PUT", "POST", "DELETE"]),
    body=json_values | st.fixed_dictionaries({"name": json_values, "sku": json_values, "intensity": json_values}),
)
def test_fuzz_never_5xx(client, path, method, body):
    """Guards against any request crashing the server (a 500 on the kiosk)."""
    # Encoded by hand: NaN/Infinity literals are exactly the kind of input a strict client never sends.
    r = client.request(method, path, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    assert r.status_code < 500 or path == "/healthz", (method, path, body, r.status_code, r.text)


def _decode(jpeg: bytes):
    import cv2
    import numpy as np

    return cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(float)


def test_split_view_shows_before_and_after_halves(client, fake_pipeline):
    """Guards against a split view that is only a label: the left half must really be the face without makeup."""
    frame = synthetic_frame()
    assert client.put("/api/look", json={"name": "bold"}).status_code == 200
    for _ in range(3):  # let the class-map smoothing settle on this frame
        fake_pipeline.step(frame)
    assert client.put("/api/compare", json={"mode": "before"}).json() == {"compare": True, "mode": "before"}
    before = _decode(fake_pipeline.step(frame))
    assert client.put("/api/compare", json={"mode": "off"}).json()["mode"] == "off"
    after = _decode(fake_pipeline.step(frame))
    r = client.put("/api/compare", json={"mode": "split"})
    assert r.status_code == 200 and r.json() == {"compare": False, "mode": "split"}
    assert client.get("/api/state").json()["compare_mode"] == "split"
    split = _decode(fake_pipeline.step(frame))
    half = split.shape[1] // 2
    assert abs(before - after).mean() > 0.5, "the look must change the frame for this test to mean anything"
    assert abs(split[:, : half - 4] - before[:, : half - 4]).mean() < 1.5  # shown left = before
    assert abs(split[:, half + 4 :] - after[:, half + 4 :]).mean() < 1.5  # shown right = after
    assert (
        abs(split[:, : half - 4] - after[:, : half - 4]).mean()
        > 2 * abs(split[:, half + 4 :] - after[:, half + 4 :]).mean()
    )
    assert client.put("/api/compare", json={"on": False}).json()["mode"] == "off"


def test_compare_and_look_input_errors(client):
    """Guards against ambiguous before/after or look requests being accepted (or crashing)."""
    assert client.put("/api/compare", json={}).status_code == 422
    assert client.put("/api/compare", json={"on": True, "mode": "split"}).status_code == 422
    assert client.put("/api/compare", json={"mode": "sideways"}).status_code == 422
    assert "detail" in client.put("/api/compare", json={"mode": "sideways"}).json()
    assert client.put("/api/look", json={"name": "none", "sku": "x"}).status_code == 422
    assert client.put("/api/look", json={"clear": "nails"}).status_code == 422
    assert client.put("/api/events?interval=nan").status_code in (405, 422)
    assert client.get("/api/events?interval=nan").status_code == 422


def test_clear_and_remove_take_products_off(client):
    """Guards against a product the customer cannot take off again."""
    cat = client.get("/api/catalog").json()
    lips = next(p["sku"] for p in cat["products"] if p["category"] == "lips")
    cheeks = next(p["sku"] for p in cat["products"] if p["category"] == "cheeks")
    client.put("/api/look", json={"name": "none"})
    client.put("/api/look", json={"sku": lips, "action": "add"})
    look = client.put("/api/look", json={"sku": cheeks, "action": "add"}).json()["look"]
    assert {lay["sku"] for lay in look["layers"]} == {lips, cheeks}
    look = client.put("/api/look", json={"sku": lips, "action": "remove"}).json()["look"]
    assert [lay["sku"] for lay in look["layers"]] == [cheeks]
    look = client.put("/api/look", json={"clear": "cheeks"}).json()["look"]
    assert look["layers"] == []
    assert client.get("/api/state").json()["layers"] == []


def test_state_tells_the_page_what_it_needs(client, fake_cfg):
    """Guards against a page that shows a save button the kiosk refuses, or cannot find the face."""
    s = client.get("/api/state").json()
    assert s["features"] == {"snapshots": False, "split": True}
    assert client.get("/api/catalog").json()["features"]["snapshots"] is False
    assert s["reset_after_s"] == fake_cfg.session.reset_after_s and s["session"]
    if s["face_present"]:
        x0, y0, x1, y1 = s["regions"]["face"]
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1


def test_snapshot_when_enabled(fake_pipeline, fake_cfg, tmp_path):
    """Guards against a save button that does not save, or a photo stored without an expiry."""
    from edge.snapshots import SnapshotStore

    cfg = fake_cfg.model_copy(
        update={"snapshots": fake_cfg.snapshots.model_copy(update={"enabled": True, "directory": tmp_path})}
    )
    fake_pipeline.step(synthetic_frame())
    with TestClient(create_app(fake_pipeline, cfg, snapshots=SnapshotStore(cfg.snapshots))) as c:
        assert c.get("/api/state").json()["features"]["snapshots"] is True
        r = c.post("/api/snapshot")
        assert r.status_code == 200 and r.json()["expires_in_s"] == cfg.snapshots.expire_hours * 3600
        assert (tmp_path / f"{r.json()['id']}.jpg").read_bytes()[:2] == b"\xff\xd8"


def test_foreign_origin_cannot_write_and_no_wildcard_cors(fake_pipeline, fake_cfg):
    """Guards against another web page driving the mirror through the kiosk's browser (CSRF) or '*' CORS."""
    fake_pipeline.step(synthetic_frame())
    cfg = fake_cfg.model_copy(
        update={"server": fake_cfg.server.model_copy(update={"allowed_origins": ["*", "http://pos.local"]})}
    )
    with TestClient(create_app(fake_pipeline, cfg)) as c:
        evil = {"Origin": "http://evil.example"}
        assert c.put("/api/look", json={"name": "none"}, headers=evil).status_code == 403
        assert c.post("/api/snapshot", headers=evil).status_code == 403
        assert c.put("/api/look", json={"name": "none"}, headers={"Origin": "http://testserver"}).status_code == 200
        assert c.put("/api/look", json={"name": "none"}, headers={"Origin": "http://pos.local"}).status_code == 200
        r = c.get("/api/catalog", headers=evil)
        assert r.headers.get("access-control-allow-origin") not in ("*", "http://evil.example")
        pre = c.options("/api/look", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "PUT"})
        assert pre.headers.get("access-control-allow-origin") not in ("*", "http://evil.example")


def test_openapi_schema_and_no_cdn_docs(client):
    """Guards against a missing API schema, or docs pages that pull scripts from a CDN."""
    spec = client.get("/openapi.json").json()
    for path in ("/healthz", "/metrics", "/api/state", "/api/look", "/api/catalog", "/api/events", "/api/compare"):
        assert path in spec["paths"], path
    assert client.get("/docs").status_code == 404


def test_state_and_stream_need_the_token(fake_pipeline, fake_cfg):
    """Guards against the customer's face or skin tone readable from the network when bound off loopback."""
    fake_pipeline.step(synthetic_frame())
    with TestClient(create_app(fake_pipeline, fake_cfg, token="s3cret-token-0123456789")) as c:
        for path in ("/api/state", "/api/look", "/api/events", "/stream.mjpg", "/frame.jpg"):
            assert c.get(path).status_code == 401, path
        assert c.get("/api/state?token=wrong-token-0123456789").status_code == 401
        assert c.get("/api/catalog").status_code == 200 and c.get("/").status_code == 200


# ---------------------------------------------------------------------- schemathesis

try:
    import schemathesis
except ImportError:  # pragma: no cover - depends on the dev extra
    schemathesis = None


@pytest.fixture
def running_app(fake_cfg):
    """The app over a started pipeline (fake camera at 30 fps), so /healthz is honestly 200."""
    from edge.catalog import load_catalog
    from edge.detectors import make_detector
    from edge.makeup import Renderer
    from edge.pipeline import LivePipeline
    from edge.runtime.fake import FakeParser
    from edge.sources import make_source

    cfg = fake_cfg.model_copy(update={"source": fake_cfg.source.model_copy(update={"fps": 30.0})})
    pipeline = LivePipeline(
        cfg,
        FakeParser(),
        make_detector(cfg.detector),
        Renderer(feather_px=cfg.render.feather_px),
        load_catalog(cfg.catalog),
        make_source(cfg.source),
    )
    pipeline.start()
    import time

    deadline = time.monotonic() + 10
    while not pipeline.health().healthy and time.monotonic() < deadline:
        time.sleep(0.05)
    yield create_app(pipeline, cfg)
    pipeline.stop()


def test_schemathesis_api(running_app):
    """Guards against a request the schema allows (or forbids) crashing the server or breaking its own schema."""
    if schemathesis is None:
        pytest.skip("schemathesis is not installed (pip install 'schemathesis>=4')")
    # The live channels never end: the daemon tests cover them.
    schema = schemathesis.openapi.from_asgi("/openapi.json", running_app).exclude(path=["/stream.mjpg", "/api/events"])
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate()

        check()
        tested += 1
    assert tested >= 7


def test_unexpected_error_is_logged_with_its_request_id(fake_pipeline, fake_cfg, caplog, monkeypatch):
    """Guards against a 500 nobody can trace: the reply and the log must name the same request id,
    and the log must not carry the query (it may hold the token)."""
    import logging

    fake_pipeline.step(synthetic_frame())

    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(fake_pipeline, "snapshot", broken)
    caplog.set_level(logging.ERROR, logger="edge.server.errors")
    with TestClient(create_app(fake_pipeline, fake_cfg), raise_server_exceptions=False) as c:
        r = c.get("/api/state?token=secret-in-the-query")
        ok = c.get("/healthz")
    assert r.status_code == 500
    rid = r.headers["x-request-id"]
    assert r.json() == {"detail": "internal error: RuntimeError", "request_id": rid}
    assert ok.headers["x-request-id"] and ok.headers["x-request-id"] != rid
    logged = [rec for rec in caplog.records if rid in rec.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert "secret-in-the-query" not in caplog.text


def test_added_product_names_the_look(client):
    """Guards against the page titling a look by the previous one after a product was added to it."""
    cat = client.get("/api/catalog").json()
    lips = next(p for p in cat["products"] if p["category"] == "lips")
    client.put("/api/look", json={"name": "bold"})
    look = client.put("/api/look", json={"sku": lips["sku"], "action": "add"}).json()
    assert look["name"] == "custom" and lips["shade"] in look["look"]["title"]
    kinds = [lay["kind"] for lay in look["look"]["layers"]]
    assert kinds.count("lipstick") == 1 and len(kinds) == 5  # bold's lipstick replaced, the rest kept
