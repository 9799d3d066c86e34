"""Face detectors for acquisition: one module per backend, chosen by ``kind``."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

from edge.contract import FaceBox

if TYPE_CHECKING:
    from edge.config import DetectorConfig


class Detection(NamedTuple):
    """One face a detector found.

    Attributes:
        box: the face box in frame pixels, with the roll of its eye line.
        score: the detector's face probability, 0..1 (1.0 for backends without a score, e.g. Haar).
        keypoints: float32 (K, 2) frame pixels, or None. BlazeFace gives six, the person's:
            right eye, left eye, nose tip, mouth centre, right ear, left ear.
    """

    box: FaceBox
    score: float = 1.0
    keypoints: np.ndarray | None = None


class Detector(Protocol):
    """Finds faces in RGB images."""

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in one full-frame pass (live acquisition: fast), best first."""
        ...

    def search(self, image: np.ndarray) -> list[Detection]:
        """Every face in a still image, however many passes that takes, best first."""
        ...


_MODULES = {
    "blazeface": "edge.detectors.blazeface",
    "haar": "edge.detectors.haar",
    "fake": "edge.detectors.fake",
}


def make_detector(cfg: DetectorConfig) -> Detector:
    """Build the detector a config entry describes."""
    detector: Detector = importlib.import_module(_MODULES[cfg.kind]).create(cfg)
    return detector


def describe_detector(cfg: DetectorConfig) -> dict[str, Any]:
    """What the configured detector is: kind, and for a shipped model its licence and provenance."""
    mod = importlib.import_module(_MODULES[cfg.kind])
    describe = getattr(mod, "describe", None)
    return describe(cfg) if describe is not None else {"kind": cfg.kind}


def primary_face(found: list[Detection], width: int, height: int) -> Detection | None:
    """The one customer the kiosk serves: the largest face, preferring the centre."""
    if not found:
        return None
    diag = float(np.hypot(width, height))

    def score(d: Detection) -> float:
        b = d.box
        off = np.hypot(b.cx - width / 2, b.cy - height / 2) / diag
        return b.size * (1.0 - 0.8 * off)

    return max(found, key=score)


__all__ = ["Detection", "Detector", "describe_detector", "make_detector", "primary_face"]
