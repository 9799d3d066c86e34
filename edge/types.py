"""Typed results passed between the stages of the edge pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from edge.contract import FaceBox

Undertone = Literal["warm", "neutral", "cool"]


@dataclass(frozen=True)
class SkinTone:
    """A skin measurement.

    Attributes:
        monk: Monk Skin Tone scale step, 1 (lightest) to 10 (deepest).
        undertone: warm, neutral or cool.
        lab: CIELAB (L*, a*, b*) of the light-corrected skin.
        confidence: 0..1, how much skin was seen, how even its light, and how good the exposure reference.
        uncertainty: stated uncertainty of ``monk``, in Monk steps (narrowest after kiosk calibration).
        reference: what the step came from: "calibration" (the skin's reflectance, measured
            against the kiosk's card, matched to the swatches), "learned" (the photo's measurements
            through the learned tone model) or "scene" (the scene-normalised colour matched to the
            swatches, when no tone model is loaded).
        score: the continuous Monk value ``monk`` was rounded from (what the kiosk smooths).
    """

    monk: int
    undertone: Undertone
    lab: tuple[float, float, float]
    confidence: float = 1.0
    uncertainty: float = 1.5
    reference: str = "scene"
    score: float | None = None


def output_to_image(crop_matrix: np.ndarray, stride: int) -> np.ndarray:
    """2x3 affine mapping a crop's class-map (output) pixels to image pixels."""
    from edge.contract import invert_affine

    # Output pixel u holds the class of input pixel stride*u: every data reader and the generator
    # subsample their full-resolution labels with [::stride], so that is what the model learns.
    s = float(stride)
    out_to_in = np.array([[s, 0.0, 0.0], [0.0, s, 0.0]])
    in_to_img = invert_affine(crop_matrix)
    a = in_to_img[:, :2] @ out_to_in[:, :2]
    t = in_to_img[:, :2] @ out_to_in[:, 2] + in_to_img[:, 2]
    return np.hstack([a, t[:, None]])


def mouth_window(size: int, margin: float = 0.2) -> np.ndarray:
    """(S, S) weight of the mouth view: 1 in the middle, falling to 0 at the crop's edge.

    The model sees little context near a crop's border, so the face's own
    parse takes over there and the seam is invisible.
    """
    r = (np.arange(size, dtype=np.float32) + 0.5) / size
    edge = np.clip(np.minimum(r, 1.0 - r) / margin, 0.0, 1.0)
    ramp = edge * edge * (3.0 - 2.0 * edge)
    return np.outer(ramp, ramp).astype(np.float32)


@dataclass
class MouthView:
    """The mouth's refinement parse: a zoomed crop around the lips, parsed by the same model.

    Attributes:
        crop_matrix: 2x3 affine, image pixels -> mouth crop input pixels.
        probs: float32 (S, S, C) class probabilities in the mouth crop's output space.
        stride: model input pixels per output pixel.
    """

    crop_matrix: np.ndarray
    probs: np.ndarray
    stride: int = 2

    def output_to_image(self) -> np.ndarray:
        """2x3 affine mapping the mouth class map's pixels to image pixels."""
        return output_to_image(self.crop_matrix, self.stride)


@dataclass
class FaceAnalysis:
    """One analysed face in one frame.

    Attributes:
        box: the face box in image pixels (with roll) the crop was made from.
        crop_matrix: 2x3 affine, image pixels -> model input pixels.
        probs: float32 (S, S, C) class probabilities in the model's output
            space (S = input size / output stride), temporally smoothed.
        labels: uint8 (S, S) argmax of ``probs``.
        face_score: the model's face-present probability.
        stride: model input pixels per output pixel.
        tone: skin measurement, when enough skin was seen.
        mouth: the mouth's refinement parse, when the bundle supports one.
    """

    box: FaceBox
    crop_matrix: np.ndarray
    probs: np.ndarray
    labels: np.ndarray
    face_score: float
    stride: int = 2
    tone: SkinTone | None = None
    extras: dict[str, float] = field(default_factory=dict)
    mouth: MouthView | None = None

    def output_to_image(self) -> np.ndarray:
        """2x3 affine mapping class-map (output) pixels to image pixels."""
        return output_to_image(self.crop_matrix, self.stride)
