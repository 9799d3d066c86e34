"""Tests of the learned tone model: the shipped file, its refusals, its fit, and its behaviour on real photos."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edge.colour import linear_to_srgb, srgb_to_linear
from edge.config import DEFAULT_TONE_MODEL
from edge.contract import CLASS_ID
from edge.tone import ToneSmoother, measure_tone, tone_features
from edge.tone_model import TONE_FEATURES, ToneModel, ToneModelError, monk_of_score
from edge.types import SkinTone
from tests.conftest import ROOT
from training.tone_fit import Person, Photo, ToneFitError, auc, fit, probe_features, read_labels


def test_shipped_model_loads_and_reads_this_codes_features():
    """Guards against a feature added or renamed in code without `make tone-model` being run again."""
    model = ToneModel.load(DEFAULT_TONE_MODEL)
    assert model.features == TONE_FEATURES
    assert 0.5 <= model.uncertainty <= 2.5
    # The file says how well it did on people it never saw; a refit that lost the ordering must show.
    assert model.fitted["dev_auc_light_below_deep"] >= 0.85
    assert model.fitted["cv_light_at_monk_1_4"] >= 0.7


def test_feature_code_matches_the_shipped_fit():
    """Guards against a feature's code changed without `make tone-model`: the shipped weights would then
    be applied to numbers they were not fitted on, and every customer's step would shift silently."""
    model = ToneModel.load(DEFAULT_TONE_MODEL)
    assert len(model.probe) == len(TONE_FEATURES)
    assert probe_features() == pytest.approx(model.probe, rel=1e-4, abs=1e-6)  # room for float differences only


@pytest.mark.parametrize(
    "mutate, message",
    [
        (None, "cannot read"),
        (lambda d: "{not json", "not a tone model"),
        (lambda d: {**d, "features": d["features"][:-1]}, "not this code's"),
        (lambda d: {**d, "weights": d["weights"][:-1]}, "weights must hold"),
        (lambda d: {**d, "scale": [0.0] * len(d["scale"])}, "scale must be positive"),
        (lambda d: {**d, "extra": 1}, "extra"),
        (lambda d: {**d, "bias": float("nan")}, "bias"),
        (lambda d: {**d, "uncertainty": 1e999}, "uncertainty"),
        (lambda d: {**d, "probe": d["probe"][:3]}, "probe must hold"),
        (lambda d: {**d, "version": 2}, "version"),
        (lambda d: b"\xff\xfe not text", "not UTF-8"),
    ],
)
def test_a_broken_model_file_is_refused_with_its_path(tmp_path, mutate, message):
    """Guards against a truncated or stale model file scoring customers with garbage, or a traceback."""
    path = tmp_path / "tone.json"
    if mutate is not None:
        doc = mutate(json.loads(DEFAULT_TONE_MODEL.read_text()))
        if isinstance(doc, bytes):
            path.write_bytes(doc)
        else:
            path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    with pytest.raises(ToneModelError) as e:
        ToneModel.load(path)
    assert str(path) in str(e.value) and message.lower() in str(e.value).lower()


def test_monk_of_score_rounds_into_the_scale():
    """Guards against a score outside the scale giving step 0 or 11."""
    assert [monk_of_score(s) for s in (-3.0, 0.6, 2.49, 2.5, 9.7, 14.0)] == [1, 1, 2, 3, 10, 10]


def test_scale_is_flattened_below_the_knee_and_continuous():
    """Guards against a jump or a reversal where the light end's flatter slope meets the rest of the scale."""
    n = len(TONE_FEATURES)
    model = ToneModel(
        features=TONE_FEATURES,
        mean=(0.0,) * n,
        scale=(1.0,) * n,
        fill=(0.0,) * n,
        weights=(1.0,) + (0.0,) * (n - 1),
        bias=4.0,
        knee=4.0,
        light_slope=0.4,
        uncertainty=1.0,
    )
    at = [model.score({"log_lum": v}) for v in (-2.0, -1.0, -1e-9, 0.0, 1.0, 3.0)]
    assert at == pytest.approx([3.2, 3.6, 4.0, 4.0, 5.0, 7.0])
    assert all(b >= a for a, b in itertools.pairwise(at))


def _photos(rng: np.random.Generator) -> list[Photo]:
    """Fake photos: deeper groups have a lower log_lum and saturation higher, plus noise in every feature."""
    out = []
    for group, shift in (("L", 0.0), ("M", 0.6), ("D", 1.5)):
        for i in range(30):
            x = rng.normal(0.0, 0.3, len(TONE_FEATURES))
            x[0] -= shift
            x[5] += 0.2 * shift
            out.append(Photo(Person(group, "fit", f"{group}{i}"), "a.jpg", x))
    return out


def test_fit_orders_the_groups_and_stretches_them_onto_the_scale():
    """Guards against an inverted fit or a stretch that leaves light people mid-scale."""
    photos = _photos(np.random.default_rng(0))
    model = fit(photos)
    scores = np.array([model.score(p.features()) for p in photos])
    groups = np.array([p.person.group for p in photos])
    assert np.median(scores[groups == "L"]) == pytest.approx(3.0, abs=1e-6)
    assert np.median(scores[groups == "D"]) == pytest.approx(7.0, abs=1e-6)
    held_out = _photos(np.random.default_rng(1))
    s2 = np.array([model.score(p.features()) for p in held_out])
    g2 = np.array([p.person.group for p in held_out])
    assert auc(s2[g2 == "L"], s2[g2 == "D"]) > 0.95
    # A missing feature takes the fitting median instead of poisoning the score.
    some = held_out[0].features()
    some["lips_over_skin"] = float("nan")
    assert np.isfinite(model.score(some))
    with pytest.raises(ToneFitError):
        fit([p for p in photos if p.person.group != "D"])


def test_labels_file_is_read_strictly(tmp_path):
    """Guards against a typo in the labels silently moving a person to another group, or a malformed line."""
    shipped = read_labels(ROOT / "training" / "data" / "tone_labels.txt")
    assert {p.group for p in shipped} == {"L", "M", "D"} and any(p.split == "dev" for p in shipped)
    assert not {"Queen_Elizabeth_II", "Venus_Williams", "Tim_Duncan", "Anna_Kournikova", "Tim_Henman"} & {
        p.name for p in shipped
    }
    for bad in ("X fit Someone", "L train Someone", "L fit", "L fit A\nD dev A"):
        f = tmp_path / "labels.txt"
        f.write_text("# comment\n" + bad + "\n")
        with pytest.raises(ToneFitError, match=r"labels\.txt"):
            read_labels(f)


def _exposed(img: np.ndarray, stops: float) -> np.ndarray:
    return np.clip(np.round(linear_to_srgb(srgb_to_linear(img / 255.0) * 2.0**stops) * 255), 0, 255).astype(np.uint8)


def _deepened(img: np.ndarray, face) -> np.ndarray:
    """The face's skin, nose and lips as deep skin: far less light reflected, blue least (melanin)."""
    m = sum(face.probs[..., CLASS_ID[c]] for c in ("skin", "nose", "upper_lip", "lower_lip"))
    h, w = img.shape[:2]
    mm = cv2.warpAffine(np.ascontiguousarray(m, np.float32), face.output_to_image(), (w, h))[..., None]
    lin = srgb_to_linear(img / 255.0)
    deep = lin * np.array([0.25, 0.18, 0.12])  # about deep skin's reflectance over light skin's
    return np.clip(np.round(linear_to_srgb(lin * (1 - mm) + deep * mm) * 255), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photos():
    from training.real import allowed_photos

    return allowed_photos()


@pytest.fixture(scope="module")
def still_faces(default_model, photos):
    from edge.analysis import analyze_still
    from edge.config import load_config
    from edge.detectors import make_detector
    from edge.runtime import open_parser

    cfg = load_config(None, {})
    parser = open_parser(cfg.model.path, cfg.model.runtime, cfg.model.threads)
    det = make_detector(cfg.detector)
    out = {}
    for name in ("astronaut", "grace_hopper"):
        faces = analyze_still(parser, det, cfg.analysis, photos[name])
        out[name] = (photos[name], max(faces, key=lambda f: f.box.size))
    return out


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_light_sitters_read_light_and_the_same_face_deepened_reads_deep(still_faces, name):
    """Guards against the issue's failure: light-skinned people at Monk 5-7, the same range as deep-skinned."""
    model = ToneModel.load(DEFAULT_TONE_MODEL)
    img, face = still_faces[name]
    light = measure_tone(img, face, None, model)
    deep = measure_tone(_deepened(img, face), face, None, model)
    assert light is not None and deep is not None
    assert light.reference == "learned" and light.uncertainty == model.uncertainty
    assert 1 <= light.monk <= 4, light
    assert deep.monk >= 6 and deep.score - light.score >= 2.5, (light, deep)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_a_stop_of_exposure_moves_the_step_little(still_faces, name):
    """Guards against reading exposure as skin tone (the nearest-swatch failure): +-1 stop is not +-3 steps."""
    model = ToneModel.load(DEFAULT_TONE_MODEL)
    img, face = still_faces[name]
    base = measure_tone(img, face, None, model).score
    for stops in (-1.0, -0.5, 0.5):
        moved = measure_tone(_exposed(img, stops), face, None, model).score
        assert abs(moved - base) <= 1.5, (stops, base, moved)


def test_features_are_finite_on_a_real_face_and_none_without_skin(still_faces):
    """Guards against NaN features from a present face part, and against scoring a face with no skin."""
    img, face = still_faces["astronaut"]
    feats = tone_features(img, face)
    assert feats is not None and set(feats) == set(TONE_FEATURES)
    assert all(np.isfinite(v) for v in feats.values()), feats
    probs = np.zeros_like(face.probs)
    probs[..., 0] = 1.0
    from dataclasses import replace

    assert tone_features(img, replace(face, probs=probs)) is None


def test_smoother_follows_the_learned_score_without_flicker():
    """Guards against the kiosk's Monk label flickering when a learned score sits on a rounding boundary."""
    lab = (65.0, 12.0, 18.0)

    def tone(score: float) -> SkinTone:
        return SkinTone(monk_of_score(score), "neutral", lab, 1.0, 1.25, "learned", score)

    smoother = ToneSmoother(alpha=0.5)
    seen = {smoother.update(tone(3.4 if i % 2 else 3.6)).monk for i in range(40)}
    assert len(seen) == 1, seen
    for _ in range(40):
        out = smoother.update(tone(7.2))
    assert out.monk == 7 and out.reference == "learned"


def test_analyze_refuses_a_broken_tone_model(photos, tmp_path):
    """Guards against `vanity analyze --json` tracing back (or scoring with nothing) on a bad tone model path."""
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), cv2.cvtColor(photos["astronaut"], cv2.COLOR_RGB2BGR))
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[analysis]\ntone_model = "{tmp_path / "missing.json"}"\n')
    r = subprocess.run(
        [sys.executable, "-m", "edge.cli", "analyze", str(src), "--json", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert r.returncode == 2 and "tone model refused" in r.stderr and "missing.json" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_daemon_refuses_a_broken_tone_model_and_loads_the_shipped_one(fake_cfg, tmp_path, default_model):
    """Guards against the kiosk starting with no tone model (every customer colour-matched) or a traceback."""
    from edge.daemon import DaemonError, build_pipeline

    bad = tmp_path / "tone.json"
    bad.write_text("{}")
    cfg = fake_cfg.model_copy(update={"state_dir": tmp_path})
    broken = cfg.model_copy(update={"analysis": cfg.analysis.model_copy(update={"tone_model": bad})})
    with pytest.raises(DaemonError, match="tone model refused"):
        build_pipeline(broken)
    assert build_pipeline(cfg).tone_model == ToneModel.load(DEFAULT_TONE_MODEL)


def test_a_black_and_white_photo_is_placed_by_its_light_with_no_confidence(still_faces):
    """Guards against a black-and-white photo's grey skin read as "no colour = very light" and advised on."""
    model = ToneModel.load(DEFAULT_TONE_MODEL)
    img, face = still_faces["astronaut"]
    grey = np.repeat(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    feats = tone_features(grey, face)
    assert feats is not None
    assert all(np.isnan(feats[k]) for k in ("saturation", "gb_balanced", "rg_balanced")), feats
    assert np.isfinite(feats["lum_over_nose_peak"]) and np.isfinite(feats["log_lum"])
    tone = measure_tone(grey, face, None, model)
    colour = measure_tone(img, face, None, model)
    assert tone is not None and tone.confidence == 0.0 and colour.confidence > 0.3
    assert abs(tone.score - colour.score) <= 1.5, (tone, colour)


def test_odd_frames_and_parses_never_crash_the_measurement():
    """Guards against a crash (empty percentile, log of zero) on a small, dark, clipped, grey or half-visible
    face, or a parse that found no nose or lips."""
    from edge.contract import CLASS_ID, CLASSES, CropGeometry, FaceBox, crop_matrix
    from edge.types import FaceAnalysis

    model = ToneModel.load(DEFAULT_TONE_MODEL)
    measured = 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        h, w = int(rng.integers(24, 320)), int(rng.integers(24, 320))
        kind = seed % 3
        if kind == 0:
            frame = rng.integers(0, 256, (h, w, 3), np.uint8)
        elif kind == 1:  # flat, clipped and black areas
            frame = rng.choice(np.array([0, 3, 128, 255], np.uint8), size=(h, w, 3))
        else:  # grey
            frame = np.repeat(rng.integers(0, 256, (h, w, 1), np.uint8), 3, axis=2)
        box = FaceBox(float(rng.uniform(-40, w + 40)), float(rng.uniform(-40, h + 40)), float(rng.uniform(8, 400)), 0.0)
        probs = np.zeros((64, 64, len(CLASSES)), np.float32)
        probs[..., 0] = 1.0
        for name in ("skin", "nose", "upper_lip", "lower_lip"):
            if name == "skin" or rng.random() < 0.5:
                y0, x0 = rng.integers(0, 60, 2)
                y1, x1 = y0 + rng.integers(1, 64 - y0), x0 + rng.integers(1, 64 - x0)
                probs[y0:y1, x0:x1] = 0.0
                probs[y0:y1, x0:x1, CLASS_ID[name]] = 1.0
        face = FaceAnalysis(box, crop_matrix(box, CropGeometry()), probs, probs.argmax(-1).astype(np.uint8), 0.9)
        feats = tone_features(frame, face)
        tone = measure_tone(frame, face, None, model)
        if feats is not None:
            assert set(feats) == set(TONE_FEATURES)
        if tone is not None:
            measured += 1
            assert 1 <= tone.monk <= 10 and 0.0 <= tone.confidence <= 1.0 and np.isfinite(tone.score), tone
    assert measured >= 5  # the cases reach the measurement, not only the early refusals


def test_refit_without_dev_people_writes_a_model_the_edge_loads(tmp_path, monkeypatch, capsys):
    """Guards against `tone_fit` exiting 0 after writing a model the kiosk then refuses (a figure it could
    not compute saved as null), and against listed people without photos being dropped silently."""
    import training.tone_fit as tf

    photos = _photos(np.random.default_rng(2))
    labels = tmp_path / "labels.txt"
    names = sorted({p.person.name for p in photos})
    labels.write_text("".join(f"{n[0]} fit {n}\n" for n in names) + "L fit Nobody_Here\n")
    (tmp_path / "people").mkdir()
    monkeypatch.setattr(tf, "photo_features", lambda lfw, people, model: photos)
    out = tmp_path / "tone.json"
    assert tf.main(["--lfw", str(tmp_path / "people"), "--labels", str(labels), "--out", str(out)]) == 0
    model = ToneModel.load(out)
    assert not any(k.startswith("dev_auc") for k in model.fitted), model.fitted
    assert "Nobody_Here" in capsys.readouterr().err


def test_refit_errors_are_messages_not_tracebacks(tmp_path, capsys):
    """Guards against a missing labels file or folder of people ending the fit in a traceback."""
    import training.tone_fit as tf

    (tmp_path / "people").mkdir()
    missing = tmp_path / "nope.txt"
    out = str(tmp_path / "o.json")
    assert tf.main(["--lfw", str(tmp_path / "people"), "--labels", str(missing), "--out", out]) == 2
    assert "nope.txt" in capsys.readouterr().err
    assert tf.main(["--lfw", str(tmp_path / "absent"), "--out", out]) == 2
    assert "absent" in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()


def test_refit_reads_every_image_suffix(tmp_path, photos, default_model):
    """Guards against a refit on your own photos skipping .JPG or .png files without a word."""
    from training.tone_fit import photo_features

    folder = tmp_path / "people" / "Astro"
    folder.mkdir(parents=True)
    bgr = cv2.cvtColor(photos["astronaut"], cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(folder / "a.JPG"), bgr)
    cv2.imwrite(str(folder / "b.png"), bgr)
    (folder / "notes.txt").write_text("not a photo")
    got = photo_features(tmp_path / "people", [Person("L", "fit", "Astro")], None)
    assert sorted(p.file for p in got) == ["a.JPG", "b.png"]


def test_relative_tone_model_path_is_read_beside_the_config(tmp_path):
    """Guards against `tone_model = "tone.json"` in /etc/vanity/vanity.toml being looked up in the cwd."""
    from edge.config import load_config

    cfg_file = tmp_path / "etc" / "vanity.toml"
    cfg_file.parent.mkdir()
    cfg_file.write_text('[analysis]\ntone_model = "tone.json"\n')
    assert load_config(cfg_file).analysis.tone_model == tmp_path / "etc" / "tone.json"


def test_analyze_gives_no_shade_advice_on_a_black_and_white_photo(photos, tmp_path):
    """Guards against `vanity analyze --json` recommending foundation for a grey photo's made-up tone."""
    grey = cv2.cvtColor(photos["astronaut"], cv2.COLOR_RGB2GRAY)
    src = tmp_path / "grey.png"
    cv2.imwrite(str(src), grey)
    r = subprocess.run(
        [sys.executable, "-m", "edge.cli", "analyze", str(src), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    face = json.loads(r.stdout)["faces"][0]
    tone = face["skin_tone"]
    assert tone["confidence"] == 0.0 and tone["reliable"] is False and tone["undertone"] == "neutral", tone
    assert face["recommendations"] == [] and "not reliable" in face["advice"]


def test_smoother_takes_a_hand_made_learned_tone_without_a_score():
    """Guards against a KeyError when a learned-reference tone arrives without its continuous score."""
    smoother = ToneSmoother(alpha=0.5)
    out = smoother.update(SkinTone(5, "neutral", (60.0, 12.0, 18.0), 1.0, 1.0, "learned"))
    assert 1 <= out.monk <= 10 and out.score is not None
