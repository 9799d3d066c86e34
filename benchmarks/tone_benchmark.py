"""Skin-tone benchmark: synthetic Monk faces with exact truth, and real photos of the same people.

Usage::

    .venv/bin/python benchmarks/tone_benchmark.py [--model BUNDLE] [--synthetic N] [--lfw DIR] [--json]

1. **Synthetic** (exact ground truth): faces from ``training.synth`` whose skin is repainted
   with one of the 10 Monk swatches (its texture and shading kept), put in a scene of random
   colours, then lit by a random illuminant (blackbody 2700-7500 K), a random exposure
   (-1.5..+1.5 EV) and a random side shading, through the sRGB curve and 8 bits. Reported:
   exact Monk step and within +-1, uncalibrated and with a kiosk calibration (a grey card
   photographed under the same light and exposure).
2. **Real, consistency**: every person with 5 or more photos in LFW (``--lfw``, the shared
   ``lfw_funneled``): the share of photos within +-1 of that person's median Monk step.
3. **Real, ordering** (a development check, not a ground truth): a short list of people of
   visibly light and of visibly deep skin among those LFW people (``LIGHT`` / ``DEEP`` below,
   chosen by the developers from public appearance). Pairwise AUC (deep above light) over
   photos, and the share of the light group's photos at Monk 1-4.

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

LIGHT = [
    "Emma_Watson",
    "Gwyneth_Paltrow",
    "Renee_Zellweger",
    "Heidi_Klum",
    "Nancy_Pelosi",
    "Meryl_Streep",
    "Steffi_Graf",
    "Celine_Dion",
    "Lance_Armstrong",
    "Michael_Phelps",
    "George_W_Bush",
    "Donald_Rumsfeld",
    "Jennifer_Capriati",
    "Martha_Stewart",
]
DEEP = ["Colin_Powell", "Condoleezza_Rice", "Kofi_Annan", "Thabo_Mbeki", "Allyson_Felix", "Chanda_Rubin", "James_Blake"]


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

    res = {"uncalibrated": [], "calibrated": []}
    for i in range(n):
        monk = i % 10 + 1
        rgb, box, card = synthetic_face(rng, monk)
        det = make_detector(load_config(None, {"detector": {"kind": "fake", "box": list(box)}}).detector)
        faces = analyze_still(parser, det, cfg.analysis, rgb)
        if not faces:
            res["uncalibrated"].append(None)
            res["calibrated"].append(None)
            continue
        cal = measure_card(np.pad(card, ((32, 32), (32, 32), (0, 0)), mode="edge"))
        for key, c in (("uncalibrated", None), ("calibrated", cal)):
            t = measure_tone(rgb, faces[0], c)
            res[key].append(None if t is None else t.monk - monk)
    out = {}
    for key, errs in res.items():
        e = np.array([99 if v is None else v for v in errs])
        out[key] = {"n": len(e), "exact": float(np.mean(e == 0)), "within1": float(np.mean(np.abs(e) <= 1))}
    return out


def run_lfw(model: Path | None, lfw: Path) -> dict:
    """Consistency over people with 5+ photos, and the light/deep development ordering."""
    from edge.analysis import analyze_still
    from edge.tone import measure_tone

    cfg, parser, det = _analyzer(model)
    people = sorted(p for p in lfw.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) >= 5)
    monks: dict[str, list[int]] = {}
    for person in people:
        for f in sorted(person.glob("*.jpg")):
            rgb = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)
            faces = analyze_still(parser, det, cfg.analysis, rgb)
            if not faces:
                continue
            fa = max(faces, key=lambda x: x.box.size)
            t = measure_tone(rgb, fa)
            if t is not None:
                monks.setdefault(person.name, []).append(t.monk)
    within = [abs(m - np.median(v)) <= 1 for v in monks.values() for m in v]
    light = [m for p in LIGHT for m in monks.get(p, [])]
    deep = [m for p in DEEP for m in monks.get(p, [])]
    auc = float(np.mean([[1.0 if d > v else 0.5 if d == v else 0.0 for d in deep] for v in light])) if light else None
    return {
        "people": len(monks),
        "photos": sum(map(len, monks.values())),
        "within1_of_person_median": float(np.mean(within)) if within else None,
        "monk_histogram": np.bincount([m for v in monks.values() for m in v], minlength=11)[1:].tolist(),
        "ordering_auc_deep_above_light": auc,
        "light_at_monk_1_4": float(np.mean(np.array(light) <= 4)) if light else None,
        "light_median": float(np.median(light)) if light else None,
        "deep_median": float(np.median(deep)) if deep else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="Bundle (default: the configured one).")
    ap.add_argument("--synthetic", type=int, default=300, help="Synthetic faces (0: skip).")
    ap.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "data" / "lfw" / "lfw_funneled")
    ap.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = ap.parse_args(argv)
    out = {}
    if args.synthetic:
        out["synthetic"] = run_synthetic(args.model, args.synthetic)
    if args.lfw.is_dir():
        out["lfw"] = run_lfw(args.model, args.lfw)
    else:
        print(f"{args.lfw}: not found, real-photo part skipped", file=sys.stderr)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
