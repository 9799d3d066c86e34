"""Kiosk colour calibration: the card measurement, its storage, and its use by the tone estimate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.calibration import CalibrationError, load_calibration, measure_card, save_calibration
from edge.colour import MONK_HEX, hex_to_lab, hex_to_linear, linear_to_srgb
from edge.tone import measure_tone

ROOT = Path(__file__).resolve().parent.parent
WARM = np.array([1.0, 0.78, 0.52])  # about a 3000 K lamp, linear gains
EXPOSURE = 0.6


def lit(linear_scene: np.ndarray) -> np.ndarray:
    """What the camera records of a scene (linear reflectance) under the warm lamp and exposure."""
    return (np.clip(linear_to_srgb(linear_scene * WARM * EXPOSURE), 0, 1) * 255 + 0.5).astype(np.uint8)


def card_photo(reflectance: float = 0.18, size: int = 240) -> np.ndarray:
    """A photo of a plain card filling the frame, with a dark border, mild noise and the warm light."""
    scene = np.full((size, size, 3), reflectance)
    scene[:20], scene[-20:] = 0.05, 0.05
    scene += np.random.default_rng(0).normal(0, 0.002, scene.shape)
    return lit(scene)


def test_grey_card_gains_neutralise_the_lamp():
    """Guards against a calibration that keeps the lamp's cast or the exposure (gains must undo both)."""
    cal = measure_card(card_photo())
    recovered = np.asarray(cal.measured) * np.asarray(cal.gains)
    np.testing.assert_allclose(recovered, 0.18, rtol=0.02)
    assert cal.gains[2] > cal.gains[0]  # the warm lamp starves blue: blue needs the most gain


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (lambda: np.full((200, 200, 3), 255, np.uint8), "overexposed"),
        (lambda: np.full((200, 200, 3), 1, np.uint8), "too dark"),
        (lambda: np.tile((np.arange(200) % 2 * 120 + 60).astype(np.uint8)[None, :, None], (200, 1, 3)), "plain"),
    ],
)
def test_unusable_card_frames_are_refused_with_the_reason(frame, message):
    """Guards against storing a correction measured on glare, darkness or a patterned surface."""
    with pytest.raises(CalibrationError, match=message):
        measure_card(frame())


def test_stored_calibration_round_trips_and_a_broken_file_is_refused(tmp_path):
    """Guards against a corrupt calibration file silently skewing every estimate."""
    cal = measure_card(card_photo(0.85), "white")
    save_calibration(cal, tmp_path)
    assert load_calibration(tmp_path) == cal
    assert load_calibration(tmp_path / "none") is None
    (tmp_path / "calibration.json").write_text(json.dumps({"gains": [1, -1, 1]}))
    with pytest.raises(CalibrationError):
        load_calibration(tmp_path)


@pytest.mark.parametrize("step", range(1, 11))
def test_calibrated_tone_recovers_the_skin_under_a_warm_dim_lamp(step):
    """Guards against the calibration being stored but not used: under a 3000 K lamp and -0.7 EV the
    calibrated estimate must land on the painted Monk step (every one, the near-white ones that
    differ mostly in b* included), with the narrow uncertainty."""
    from tests.test_tone import face_from_ellipses

    skin_hex = MONK_HEX[step - 1]
    # A swatch's sRGB value is the skin's reflectance relative to the reference white.
    skin = hex_to_linear(skin_hex)
    scene = np.full((240, 240, 3), 0.3)
    cv2.ellipse(scene, (120, 120), (60, 80), 0, 0, 360, tuple(float(v) for v in skin), -1)
    frame = lit(scene)
    face = face_from_ellipses(frame, (60, 40, 120, 160), [(120, 120, 45, 60)])
    cal = measure_card(card_photo())
    tone = measure_tone(frame, face, cal)
    assert tone is not None and tone.reference == "calibration" and tone.uncertainty == 0.5
    assert tone.monk == step, tone
    assert np.abs(np.array(tone.lab) - hex_to_lab(skin_hex)).max() < 2.5, tone
    uncal = measure_tone(frame, face)
    assert uncal is not None and uncal.uncertainty > tone.uncertainty


def test_vanity_calibrate_end_to_end(tmp_path):
    """Guards against `vanity calibrate` not writing where the kiosk reads, or doctor not showing it."""
    photo = tmp_path / "card.png"
    cv2.imwrite(str(photo), cv2.cvtColor(card_photo(), cv2.COLOR_RGB2BGR))
    cfg = tmp_path / "vanity.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "state"}"\n')
    run = [sys.executable, "-m", "edge.cli"]
    r = subprocess.run([*run, "calibrate", "--image", str(photo), "--config", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "state" / "calibration.json").is_file()
    d = subprocess.run([*run, "doctor", "--config", str(cfg)], capture_output=True, text=True, cwd=ROOT)
    assert "calibration  grey18 card" in d.stdout
    assert "tone model   " in d.stdout and "held-out light/deep AUC" in d.stdout, d.stdout
    flat = tmp_path / "flat.png"
    cv2.imwrite(str(flat), np.tile((np.arange(64) * 4).astype(np.uint8)[None, :, None], (64, 1, 3)))
    bad = subprocess.run(
        [*run, "calibrate", "--image", str(flat), "--config", str(cfg)], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "plain surface" in bad.stderr


def test_kiosk_advises_by_tone_only_when_confident(fake_pipeline, fake_cfg):
    """Guards against the kiosk recommending foundation shades from a guess: an unsure tone gives the
    look's products and asks the customer to face the light, a sure one gives shades for the tone."""
    from edge.server.context import Kiosk
    from edge.server.state import page_state
    from edge.types import SkinTone

    kiosk = Kiosk(fake_pipeline, fake_cfg)
    fake_pipeline.session.look = fake_pipeline.catalog.look("office")
    fake_pipeline.session.tone = SkinTone(monk=6, undertone="warm", lab=(55.0, 8.0, 27.0), confidence=0.2)
    unsure = page_state(kiosk).model_dump()
    assert unsure["tone"]["reliable"] is False and unsure["recommendations"]
    assert all(r["reason"] == "in your look" for r in unsure["recommendations"])
    look_skus = {lay.sku for lay in fake_pipeline.session.look.layers}
    assert {r["sku"] for r in unsure["recommendations"]} <= look_skus
    fake_pipeline.session.tone = SkinTone(monk=6, undertone="warm", lab=(55.0, 8.0, 27.0), confidence=0.9)
    sure = page_state(kiosk).model_dump()
    assert sure["tone"]["reliable"] is True and sure["recommendations"]
    assert all(r["reason"] != "in your look" for r in sure["recommendations"])
