"""Score a bundle on labelled photos through the device's own still-image path (``vanity eval``).

Each photo goes through exactly what ``vanity analyze`` does: the configured detector,
``edge.analysis.analyze_still`` (refinement, mouth pass, test-time augmentation), and
``labels_to_image``, which warps every face's class map back to the photo's full
resolution. The result is compared with the source's **human** labels only (never the
teacher's, except for a ``teacher:`` folder, which has nothing else), pixel by pixel,
leaving out what the labels do not say (255). Left and right are grouped.

A source scores the groups its labels can tell (``training.real_sources.SCORED``):
CelebAMask-HQ every part; LFW Part Labels "face" (skin with every part on it), hair
and background; the hair set hair only. F1 and IoU are pooled over the photos' pixels
(a missed face costs all its pixels); ``per_photo`` is the mean of the photos' own F1.

Needs no TensorFlow: the bundle runs through the device's runtime chain.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from edge.contract import IGNORE

if TYPE_CHECKING:
    from training.real_sources import RealItem


@dataclass
class GroupScore:
    """Pooled pixel counts of one group, and the photos' own F1 values."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    photo_f1: list[float] = field(default_factory=list)

    @property
    def f1(self) -> float:
        """Pooled F1 (1.0 when the group never occurs and is never predicted)."""
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else 1.0

    @property
    def iou(self) -> float:
        """Pooled IoU."""
        d = self.tp + self.fp + self.fn
        return self.tp / d if d else 1.0

    @property
    def per_photo(self) -> float:
        """Mean of the photos' own F1 (photos where the group occurs or is predicted)."""
        return float(np.mean(self.photo_f1)) if self.photo_f1 else float("nan")


@dataclass
class SourceScore:
    """One source's scores."""

    source: str
    photos: int = 0
    faces_found: int = 0
    no_face: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    groups: dict[str, GroupScore] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def miou(self) -> float:
        """Mean IoU over the scored groups."""
        return float(np.mean([g.iou for g in self.groups.values()])) if self.groups else float("nan")

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "source": self.source,
            "photos": self.photos,
            "faces_found": self.faces_found,
            "photos_without_face": self.no_face,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "f1": {k: round(g.f1, 4) for k, g in self.groups.items()},
            "iou": {k: round(g.iou, 4) for k, g in self.groups.items()},
            "per_photo_f1": {k: round(g.per_photo, 4) for k, g in self.groups.items()},
            "miou": round(self.miou, 4),
            "seconds": round(self.seconds, 1),
        }


def score_photo(pred: np.ndarray, truth: np.ndarray, groups: dict[str, tuple[int, ...]], into: dict[str, GroupScore]):
    """Add one photo's pixel counts to ``into`` (pixels labelled 255 in ``truth`` are not scored)."""
    known = truth != IGNORE
    for name, ids in groups.items():
        p = np.isin(pred, ids) & known
        t = np.isin(truth, ids) & known
        tp = int(np.count_nonzero(p & t))
        fp = int(np.count_nonzero(p & ~t))
        fn = int(np.count_nonzero(~p & t))
        g = into.setdefault(name, GroupScore())
        g.tp, g.fp, g.fn = g.tp + tp, g.fp + fp, g.fn + fn
        if tp + fp + fn:
            g.photo_f1.append(2 * tp / (2 * tp + fp + fn))


def scored_sources(spec: str, limit: int | None = None) -> list[tuple[str, str, list[RealItem]]]:
    """Every source of a data spec with its human-labelled photos: (source, kind, RealItems), at most ``limit`` each.

    Raises:
        ValueError: a bad spec, or a source kind without human labels (e.g. synth).
        FileNotFoundError: a source path is missing.
    """
    from training.data import parse_spec
    from training.real_sources import SCORED, human_items

    out = []
    for src in parse_spec(spec):
        if src.kind not in SCORED:
            raise ValueError(f"{src}: vanity eval reads celebamask, lfw, celebahair or teacher sources")
        assert src.path is not None
        if not src.path.exists():
            raise FileNotFoundError(f"{src}: path does not exist")
        out.append((str(src), src.kind, human_items(src.kind, src.path, src.split)[:limit]))
    return out


def evaluate(parser, detector, analysis_cfg, spec: str, limit: int | None = None, progress: bool = True):
    """Score a loaded parser on every source of a data spec; returns a list of SourceScore.

    Raises:
        ValueError: a bad spec, or a source kind without human labels (e.g. synth).
        FileNotFoundError: a source path is missing.
    """
    from edge.analysis import analyze_still, labels_to_image
    from training.real_sources import SCORED, SampleError

    out = []
    for source, kind, items in scored_sources(spec, limit):
        score = SourceScore(source)
        t0 = time.monotonic()
        it = items
        if progress:
            import sys

            from tqdm import tqdm

            it = tqdm(items, desc=f"eval {kind}", unit="photo", file=sys.stderr, mininterval=2)
        for item in it:
            try:
                image, truth = item.load()
            except SampleError as e:
                score.skipped.append((str(item.key), str(e)))
                continue
            faces = analyze_still(parser, detector, analysis_cfg, image)
            score.photos += 1
            score.faces_found += len(faces)
            score.no_face += not faces
            pred = labels_to_image(faces, *image.shape[:2])
            score_photo(pred, truth, SCORED[kind].groups, score.groups)
        score.seconds = time.monotonic() - t0
        out.append(score)
    return out


def table(scores: list[SourceScore]) -> list[str]:
    """Markdown lines: one row per source, pooled F1 per group, and mIoU."""
    cols: list[str] = []
    for s in scores:
        cols += [g for g in s.groups if g not in cols]
    lines = [
        "| source | photos | " + " | ".join(cols) + " | mIoU |",
        "|---|---:|" + "---:|" * (len(cols) + 1),
    ]
    for s in scores:
        cells = [f"{s.groups[c].f1:.3f}" if c in s.groups else "" for c in cols]
        lines.append(f"| {s.source} | {s.photos} | " + " | ".join(cells) + f" | {s.miou:.3f} |")
    return lines
