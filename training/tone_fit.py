"""Fit the learned tone model (``edge.tone_model``) on grouped LFW people (``make tone-model``).

    python -m training.tone_fit [--lfw ../shared/data/lfw/lfw_funneled] \
        [--labels training/data/tone_labels.txt] [--model BUNDLE] [--out edge/data/models/tone-model.json]

Every photo of every listed person goes through ``vanity analyze``'s own path (detector,
``analyze_still``, the largest face) and ``edge.tone.tone_features``. A ridge regression
(standardised features, alpha 1) maps them to the groups' targets (light 3, medium 5, deep
8). The fit is then placed on the scale, keeping the order: the deep group's median score
at Monk 7 and, with the scale's slope flattened to ``LIGHT_SLOPE`` below ``KNEE``, the light
group's at Monk 3 (see ``edge.tone_model``). The knee and slope were chosen on the
cross-validated figures: with a straight stretch (light 3, deep 7) one light person's photos
spread over too many steps (85 % within +-1 of the person's median, against 91 % here).
Only the "fit" people are fitted on; the figures printed (and stored in the file) are

- cross-validated: 8 folds of the fit people, a person's photos always in one fold, so no
  face is scored by a model that saw it;
- development: the "dev" people, scored by the final model, which never saw them.

About 20 s on a 2-core machine. Needs no TensorFlow (only the edge runtime).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.config import DEFAULT_TONE_MODEL
from edge.files import is_image_file, sha256_file
from edge.tone_model import TONE_FEATURES, ToneModel, monk_of_score

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LABELS = ROOT / "training" / "data" / "tone_labels.txt"
DEFAULT_LFW = ROOT.parent / "shared" / "data" / "lfw" / "lfw_funneled"
TARGET = {"L": 3.0, "M": 5.0, "D": 8.0}
"""Regression targets by group (a group's typical Monk step)."""
LIGHT_MEDIAN, DEEP_MEDIAN = 3.0, 7.0
"""Monk values the light and deep groups' median scores are placed at."""
KNEE, LIGHT_SLOPE = 4.0, 0.4
"""Below ``KNEE`` the scale's slope is ``LIGHT_SLOPE`` of the slope above it."""
RIDGE_ALPHA = 1.0
FOLDS = 8


class ToneFitError(RuntimeError):
    """The labels or the photos cannot make a model."""


@dataclass(frozen=True)
class Person:
    """One labelled person: group (L, M, D), split (fit, dev) and LFW folder name."""

    group: str
    split: str
    name: str


@dataclass(frozen=True)
class Photo:
    """One photo's features, with its person."""

    person: Person
    file: str
    x: np.ndarray

    def features(self) -> dict[str, float]:
        """The features by name, as ``edge.tone.tone_features`` gave them."""
        return dict(zip(TONE_FEATURES, self.x.tolist(), strict=True))


def read_labels(path: Path) -> list[Person]:
    """The labelled people of a labels file ("GROUP SPLIT NAME" lines, # comments).

    Raises:
        ToneFitError: on a malformed line, an unknown group or split, or a person listed twice.
    """
    people: dict[str, Person] = {}
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3 or parts[0] not in TARGET or parts[1] not in ("fit", "dev"):
            raise ToneFitError(f"{path}:{i}: expected 'L|M|D fit|dev NAME', got {line!r}")
        if parts[2] in people:
            raise ToneFitError(f"{path}:{i}: {parts[2]} is listed twice")
        people[parts[2]] = Person(*parts)
    return list(people.values())


def photo_features(lfw: Path, people: list[Person], model: Path | None) -> list[Photo]:
    """Features of every photo of every listed person found under ``lfw`` (largest face of each).

    A photo is any image file (``edge.files.is_image_file``, any case) in the person's folder;
    one that cannot be read, or where no face or too little skin is found, is skipped.

    Raises:
        ToneFitError: if the parse bundle or the detector cannot be opened.
    """
    import cv2

    from edge.analysis import analyze_still
    from edge.config import load_config
    from edge.contract import BundleError
    from edge.detectors import make_detector
    from edge.runtime import open_parser
    from edge.tone import tone_features

    cfg = load_config(None, {"model": {"path": str(model)}} if model else {})
    try:
        parser = open_parser(cfg.model.path, cfg.model.runtime, cfg.model.threads)
        detector = make_detector(cfg.detector)
    except (BundleError, RuntimeError, OSError) as e:
        raise ToneFitError(f"cannot open the parse bundle or the detector: {e}") from e
    out = []
    for person in people:
        folder = lfw / person.name
        files = sorted(f for f in folder.iterdir() if is_image_file(f)) if folder.is_dir() else []
        for f in files:
            bgr = cv2.imread(str(f))
            if bgr is None:
                continue
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            faces = analyze_still(parser, detector, cfg.analysis, rgb)
            if not faces:
                continue
            feats = tone_features(rgb, max(faces, key=lambda fa: fa.box.size))
            if feats is not None:
                out.append(Photo(person, f.name, np.array([feats[n] for n in TONE_FEATURES], np.float64)))
    return out


def fit(photos: list[Photo], uncertainty: float = 1.0) -> ToneModel:
    """Ridge fit on the photos' features to their groups' targets, placed on the Monk scale.

    Raises:
        ToneFitError: without both light and deep photos, or with a feature no photo has.
    """
    x = np.stack([p.x for p in photos])
    groups = np.array([p.person.group for p in photos])
    if not ((groups == "L").any() and (groups == "D").any()):
        raise ToneFitError("the fit needs light and deep people")
    missing = [n for n, ok in zip(TONE_FEATURES, np.isfinite(x).any(axis=0), strict=True) if not ok]
    if missing:
        raise ToneFitError(f"no photo has the feature(s) {', '.join(missing)} (no nose or lips found in any?)")
    fill = np.nanmedian(x, axis=0)
    x = np.where(np.isfinite(x), x, fill)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    z = (x - mean) / scale
    y = np.array([TARGET[g] for g in groups])
    w = np.linalg.solve(z.T @ z + RIDGE_ALPHA * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    raw = y.mean() + z @ w
    light, deep = float(np.median(raw[groups == "L"])), float(np.median(raw[groups == "D"]))
    if deep <= light:
        raise ToneFitError("the fit does not order the deep group above the light group")
    # Above the knee: deep median at DEEP_MEDIAN. Below it the slope is LIGHT_SLOPE of that, and
    # the light median lands at LIGHT_MEDIAN: slope * (deep - light) = the two legs' lengths.
    b = ((KNEE - LIGHT_MEDIAN) / LIGHT_SLOPE + DEEP_MEDIAN - KNEE) / (deep - light)
    a = DEEP_MEDIAN - b * deep
    return ToneModel(
        features=TONE_FEATURES,
        mean=tuple(mean.tolist()),
        scale=tuple(scale.tolist()),
        fill=tuple(fill.tolist()),
        weights=tuple((b * w).tolist()),
        bias=float(a + b * y.mean()),
        knee=KNEE,
        light_slope=LIGHT_SLOPE,
        uncertainty=uncertainty,
    )


def probe_features() -> tuple[float, ...]:
    """``edge.tone.tone_features`` of a generated face (``edge.makeup.synthetic``, seed 0), in model order."""
    from edge.makeup.synthetic import synthetic_face
    from edge.tone import tone_features

    frame, face, _ = synthetic_face(seed=0)
    feats = tone_features(frame, face)
    if feats is None:
        raise ToneFitError("the probe face has no skin to measure")
    return tuple(float(feats[n]) for n in TONE_FEATURES)


def auc(lower: np.ndarray, higher: np.ndarray) -> float:
    """P(a ``higher`` value > a ``lower`` one), ties counting a half; NaN if either is empty."""
    lower, higher = np.asarray(lower, np.float64), np.asarray(higher, np.float64)
    if not lower.size or not higher.size:
        return float("nan")
    return float(np.mean((higher[None, :] > lower[:, None]) + 0.5 * (higher[None, :] == lower[:, None])))


def figures(photos: list[Photo], scores: np.ndarray) -> dict[str, float]:
    """Ordering and placement figures of scored photos (Monk steps as the kiosk reports them)."""
    steps = np.array([monk_of_score(s) for s in scores], np.float64)
    g = np.array([p.person.group for p in photos])
    by_person: dict[str, list[float]] = {}
    for p, s in zip(photos, steps, strict=True):
        by_person.setdefault(p.person.name, []).append(s)
    several = [v for v in by_person.values() if len(v) >= 4]
    return {
        "photos": len(photos),
        "people": len(by_person),
        **{f"{name}_photos": int((g == k).sum()) for k, name in (("L", "light"), ("M", "medium"), ("D", "deep"))},
        "auc_light_below_deep": auc(steps[g == "L"], steps[g == "D"]),
        "auc_light_below_medium_or_deep": auc(steps[g == "L"], steps[g != "L"]),
        "auc_light_below_medium": auc(steps[g == "L"], steps[g == "M"]),
        "auc_medium_below_deep": auc(steps[g == "M"], steps[g == "D"]),
        "light_at_monk_1_4": float(np.mean(steps[g == "L"] <= 4)) if (g == "L").any() else float("nan"),
        "deep_at_monk_6_10": float(np.mean(steps[g == "D"] >= 6)) if (g == "D").any() else float("nan"),
        "within_1_of_person_median": float(np.mean([abs(s - np.median(v)) <= 1 for v in several for s in v]))
        if several
        else float("nan"),
    }


def cross_validated(photos: list[Photo]) -> tuple[np.ndarray, float]:
    """Held-out scores of every photo (person-grouped folds), and the within-person spread of them."""
    fold = np.array([zlib.crc32(p.person.name.encode()) % FOLDS for p in photos])
    scores = np.zeros(len(photos))
    for k in range(FOLDS):
        test = fold == k
        if not test.any():
            continue
        m = fit([p for p, t in zip(photos, test, strict=True) if not t])
        scores[test] = [m.score(p.features()) for p, t in zip(photos, test, strict=True) if t]
    names = {p.person.name for p in photos}
    by_person = [scores[[i for i, p in enumerate(photos) if p.person.name == n]] for n in names]
    several = [(v - v.mean()) ** 2 for v in by_person if len(v) >= 3]
    # Without anyone photographed three times the spread is unknown: fall back to a full step.
    spread = float(np.sqrt(np.mean(np.concatenate(several)))) if several else 1.0
    return scores, spread


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="LFW funneled folder (one folder per person).")
    ap.add_argument("--labels", type=Path, default=DEFAULT_LABELS, help="GROUP SPLIT NAME lines.")
    ap.add_argument("--model", type=Path, default=None, help="Parse bundle (default: the configured one).")
    ap.add_argument("--out", type=Path, default=DEFAULT_TONE_MODEL, help="Where to write the tone model.")
    args = ap.parse_args(argv)
    try:
        report = _fit_and_save(args.lfw, args.labels, args.model, args.out)
    except ToneFitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


def _fit_and_save(lfw: Path, labels: Path, bundle: Path | None, out: Path) -> dict:
    """Fit on the labelled people's photos, write the model to ``out`` and read it back; the report.

    Raises:
        ToneFitError: on a missing folder or labels file, a bundle that cannot be opened, too few
            photos, or a model the edge would not load.
    """
    from edge.config import load_config
    from edge.tone_model import ToneModelError

    if not lfw.is_dir():
        raise ToneFitError(f"{lfw}: no such folder of people (--lfw)")
    try:
        people = read_labels(labels)
    except OSError as e:
        raise ToneFitError(f"{labels}: cannot read the labels ({e.strerror or e})") from e
    photos = photo_features(lfw, people, bundle)
    found = {p.person.name for p in photos}
    absent = [p.name for p in people if p.name not in found]
    if absent:
        # Listed people without a usable photo are left out, and said so: a typo must not pass silently.
        shown = ", ".join(absent[:10]) + (f" and {len(absent) - 10} more" if len(absent) > 10 else "")
        print(f"warning: {len(absent)} listed people have no usable photo under {lfw}: {shown}", file=sys.stderr)
    fitting = [p for p in photos if p.person.split == "fit"]
    development = [p for p in photos if p.person.split == "dev"]
    if not fitting:
        raise ToneFitError(f"none of the people in {labels} has a usable photo in {lfw}")
    cv_scores, spread = cross_validated(fitting)
    model = fit(fitting, uncertainty=round(max(spread, 0.5), 2))
    cv = figures(fitting, cv_scores)
    dev = figures(development, np.array([model.score(p.features()) for p in development]))
    bundle_path = Path(bundle) if bundle else Path(load_config(None, {}).model.path)
    # A figure that cannot be computed here (no dev people, nobody photographed four times) is left out.
    fitted: dict[str, float | int | str] = {
        "labels": labels.name,
        "ridge_alpha": RIDGE_ALPHA,
        **{f"cv_{k}": round(v, 4) for k, v in cv.items() if math.isfinite(v)},
        **{f"dev_{k}": round(v, 4) for k, v in dev.items() if math.isfinite(v)},
    }
    try:
        sha = sha256_file(bundle_path)
    except OSError as e:
        raise ToneFitError(f"{bundle_path}: cannot read the bundle ({e.strerror or e})") from e
    model = model.model_copy(update={"parser_sha256": sha, "fitted": fitted, "probe": probe_features()})
    try:
        model.save(out)
        ToneModel.load(out)
    except OSError as e:
        raise ToneFitError(f"{out}: cannot write the tone model ({e.strerror or e})") from e
    except ToneModelError as e:
        raise ToneFitError(f"the fitted model does not load back: {e}") from e
    return {
        "out": str(out),
        "cross_validated": cv,
        "development": dev,
        "uncertainty": model.uncertainty,
        "people_without_photos": absent,
    }


if __name__ == "__main__":
    sys.exit(main())
