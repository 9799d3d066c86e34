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
def client(fake_mirror, fake_cfg):
    fake_mirror.step(synthetic_frame())
    app = create_app(fake_mirror, fake_cfg)
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


def test_healthz_reflects_frame_flow(client, fake_mirror):
    """Guards against a health check that is 200 while no frames flow."""
    r = client.get("/healthz")
    assert r.status_code == 503 and "reason" in r.json()  # nothing captured by the camera thread yet
    fake_mirror.camera_state = "ok"
    import time

    fake_mirror.last_frame_t = time.monotonic()
    fake_mirror.step(synthetic_frame())
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
    assert client.put("/api/look", json={}).status_code == 400
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


def test_token_required_when_configured(fake_mirror, fake_cfg):
    """Guards against control endpoints open to the network when bound off loopback."""
    fake_mirror.step(synthetic_frame())
    app = create_app(fake_mirror, fake_cfg, token="s3cret-token-0123456789")
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
