"""Skin-tone benchmark: synthetic Monk faces with exact truth, and real photos of the same people.

Usage::

    .venv/bin/python benchmarks/tone_benchmark.py [--model BUNDLE] [--synthetic N] [--lfw DIR] [--labels FILE]

1. **Synthetic** (exact ground truth): faces from ``training.synth`` whose skin is repainted
   with one of the 10 Monk swatches (its texture and shading kept), put in a scene of random
   colours, then lit by a random illuminant (blackbody 2700-7500 K), a random exposure
   (-1.5..+1.5 EV) and a random side shading, through the sRGB curve and 8 bits. Reported:
   exact Monk step and within +-1: with a kiosk calibration (a grey card photographed under
   the same light and exposure), and uncalibrated both ways (the learned model, and the
   colour match to the scene-normalised colour).
2. **Real, consistency**: every person with 5 or more photos in LFW (``--lfw``, the shared
   ``lfw_funneled``): the share of photos within +-1 of that person's median Monk step.
3. **Real, ordering** (a development check, not a ground truth): the "dev" people of
   ``training/data/tone_labels.txt`` (light, medium and deep, grouped by the developers from
   public appearance; the learned model never saw them). Pairwise AUC (deeper group above
   lighter) over photos, and the share of the light group's photos at Monk 1-4.

Parts 2 and 3 run twice: with the learned tone model (what ``vanity analyze`` reports) and
with the colour match alone (what it reported before the model).

Each photo goes through ``vanity analyze``'s own path (detector, ``analyze_still``,
``measure_tone``); the synthetic faces are given their true face box (a fixed detector), so
the benchmark measures the tone estimate, not the detector.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def blackbody_gains(kelvin: float) -> np.ndarray:
    """Linear RGB of a blackbody's light (green = 1), from Planck's law through the sRGB primaries' peaks."""
    wl = np.array([610e-9, 550e-9, 465e-9])
    h, c, k = 6.626e-34, 2.998e8, 1.381e-23
    e = 1.0 / (wl**5 * (np.exp(h * c / (wl * k * kelvin)) - 1.0))
    ref = 1.0 / (wl**5 * (np.exp(h * c / (wl * k * 6500.0)) - 1.0))
    g = e / ref
    return g / g[1]


def synthetic_face(rng: np.random.Generator, monk: int, scene: int = 320):
    """A lit scene with one synthetic face of Monk skin ``monk``; returns (rgb uint8, face box xywh, card rgb)."""
    from edge.colour import LUMA, MONK_HEX, hex_to_linear, linear_lut, linear_to_srgb
    from edge.contract import CLASS_ID
    from training import synth

    img, lab = synth.render_face(rng, size=160)
    lab = cv2.resize(lab, (160, 160), interpolation=cv2.INTER_NEAREST) if lab.shape[0] != 160 else lab
    lin = linear_lut()[img].astype(np.float64)
    skin = lab == CLASS_ID["skin"]
    swatch = hex_to_linear(MONK_HEX[monk - 1])
    y = lin @ LUMA
    shade = y[skin] / max(float(np.median(y[skin])), 1e-4)
    lin[skin] = swatch * np.clip(shade, 0.3, 1.6)[:, None]
    canvas = np.empty((scene, scene, 3))
    for _ in range(6):  # a scene of random matte colours
        x0, y0 = rng.integers(0, scene, 2)
        canvas[y0:, x0:] = rng.uniform(0.03, 0.6, 3)
    o = (scene - 160) // 2
    face = np.isin(lab, [c for c in range(1, 11)])
    region = canvas[o : o + 160, o : o + 160]
    region[face] = lin[face]
    xs = np.linspace(-1, 1, scene)
    shading = 1.0 - rng.uniform(0, 0.35) * np.clip(xs * rng.choice([-1, 1]), 0, 1)
    light = blackbody_gains(rng.uniform(2700, 7500)) * 2.0 ** rng.uniform(-1.5, 1.5)
    lit = canvas * shading[None, :, None] * light
    rgb = (np.clip(linear_to_srgb(lit), 0, 1) * 255 + 0.5).astype(np.uint8)
    card = (np.clip(linear_to_srgb(np.full((64, 64, 3), 0.18) * light), 0, 1) * 255 + 0.5).astype(np.uint8)
    ys, xs_ = np.nonzero(face & (lab != CLASS_ID["hair"]))
    box = (o + float(xs_.min()), o + float(ys.min()), float(xs_.max() - xs_.min() + 1), float(ys.max() - ys.min() + 1))
    return rgb, box, card


def _analyzer(model: Path | None, box=None):
    from edge.config import load_config
    from edge.detectors import make_detector
    from edge.runtime import open_parser

    over = {"model": {"path": str(model)}} if model else {}
    if box is not None:
        over["detector"] = {"kind": "fake", "box": list(box)}
    cfg = load_config(None, over)
    return cfg, open_parser(cfg.model.path, cfg.model.runtime, cfg.model.threads), make_detector(cfg.detector)


def run_synthetic(model: Path | None, n: int, seed: int = 0) -> dict:
    """Exact and +-1 Monk accuracy on synthetic faces, uncalibrated and calibrated."""
    from edge.analysis import analyze_still
    from edge.calibration import measure_card
    from edge.tone import measure_tone

    rng = np.random.default_rng(seed)
    cfg, parser, _ = _analyzer(model)
    from edge.config import load_config
    from edge.detectors import make_detector
    from edge.tone_model import ToneModel

    tone_model = ToneModel.load(cfg.analysis.tone_model)
    res: dict[str, list[int | None]] = {"uncalibrated": [], "learned": [], "calibrated": []}
    for i in range(n):
        monk = i % 10 + 1
        rgb, box, card = synthetic_face(rng, monk)
        det = make_detector(load_config(None, {"detector": {"kind": "fake", "box": list(box)}}).detector)
        faces = analyze_still(parser, det, cfg.analysis, rgb)
        if not faces:
            for errs in res.values():
                errs.append(None)
            continue
        cal = measure_card(np.pad(card, ((32, 32), (32, 32), (0, 0)), mode="edge"))
        for key, c, m in (("uncalibrated", None, None), ("learned", None, tone_model), ("calibrated", cal, None)):
            t = measure_tone(rgb, faces[0], c, m)
            res[key].append(None if t is None else t.monk - monk)
    out = {}
    for key, errs in res.items():
        e = np.array([99 if v is None else v for v in errs])
        out[key] = {"n": len(e), "exact": float(np.mean(e == 0)), "within1": float(np.mean(np.abs(e) <= 1))}
    return out


def run_lfw(model: Path | None, lfw: Path, labels: Path) -> dict:
    """Consistency over people with 5+ photos, and the dev people's ordering; learned and colour match."""
    from edge.analysis import analyze_still
    from edge.tone import measure_tone
    from edge.tone_model import ToneModel
    from training.tone_fit import auc, read_labels

    cfg, parser, det = _analyzer(model)
    tone_model = ToneModel.load(cfg.analysis.tone_model)
    listed = read_labels(labels)
    dev = {p.name: p.group for p in listed if p.split == "dev"}
    fitted_on = {p.name for p in listed if p.split == "fit"}
    people = sorted(p for p in lfw.iterdir() if p.is_dir() and (len(list(p.glob("*.jpg"))) >= 5 or p.name in dev))
    monks: dict[str, dict[str, list[int]]] = {"learned": {}, "colour": {}}
    for person in people:
        for f in sorted(person.glob("*.jpg")):
            rgb = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)
            faces = analyze_still(parser, det, cfg.analysis, rgb)
            if not faces:
                continue
            fa = max(faces, key=lambda x: x.box.size)
            for key, m in (("learned", tone_model), ("colour", None)):
                t = measure_tone(rgb, fa, None, m)
                if t is not None:
                    monks[key].setdefault(person.name, []).append(t.monk)
    out = {}
    for key, by in monks.items():
        several = {p: v for p, v in by.items() if len(v) >= 5}
        within = [abs(m - np.median(v)) <= 1 for v in several.values() for m in v]
        unseen = [abs(m - np.median(v)) <= 1 for p, v in several.items() if p not in fitted_on for m in v]
        group = {g: np.array([m for p, gg in dev.items() if gg == g for m in by.get(p, [])]) for g in "LMD"}
        out[key] = {
            "people_5plus": len(several),
            "photos_5plus": sum(map(len, several.values())),
            "within1_of_person_median": float(np.mean(within)) if within else None,
            "people_5plus_not_fitted_on": sum(p not in fitted_on for p in several),
            "within1_of_person_median_not_fitted_on": float(np.mean(unseen)) if unseen else None,
            "monk_histogram_5plus": np.bincount([m for v in several.values() for m in v], minlength=11)[1:].tolist(),
            "dev_photos": {g: int(v.size) for g, v in group.items()},
            "dev_auc_deep_above_light": auc(group["L"], group["D"]),
            "dev_auc_medium_or_deep_above_light": auc(group["L"], np.r_[group["M"], group["D"]]),
            "dev_light_at_monk_1_4": float(np.mean(group["L"] <= 4)) if group["L"].size else None,
            "dev_deep_at_monk_6_10": float(np.mean(group["D"] >= 6)) if group["D"].size else None,
            "dev_median": {g: float(np.median(v)) if v.size else None for g, v in group.items()},
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="Bundle (default: the configured one).")
    ap.add_argument("--synthetic", type=int, default=300, help="Synthetic faces (0: skip).")
    ap.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "data" / "lfw" / "lfw_funneled")
    ap.add_argument("--labels", type=Path, default=ROOT / "training" / "data" / "tone_labels.txt")
    args = ap.parse_args(argv)
    out = {}
    if args.synthetic:
        out["synthetic"] = run_synthetic(args.model, args.synthetic)
    if args.lfw.is_dir():
        out["lfw"] = run_lfw(args.model, args.lfw, args.labels)
    else:
        print(f"{args.lfw}: not found, real-photo part skipped", file=sys.stderr)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
