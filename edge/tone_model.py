"""The learned mapping from a photo's skin measurements to a Monk step (uncalibrated tone).

A colour match to the Monk swatches cannot rank real people in ordinary photos: the swatches
1-4 are near-white, lighter than any real skin's reflectance, and a camera's exposure moves
the skin's lightness as much as its tone does. This model is a linear map (ridge regression)
from a few measurements that a photo's exposure and white balance move little (the skin
against its own specular highlight, its saturation, its white-balanced chromaticity) and the
camera's own lightness, fitted on LFW people grouped by the developers as light, medium and
deep (``training/data/tone_labels.txt``). The linear score is placed on the scale so the deep
group's median reads Monk 7, and below a knee (Monk 4) its slope is flattened so the light
group's median reads Monk 3: a photo cannot tell Monk 1 from 3 reliably, and a flatter light
end keeps one person's photos on neighbouring steps instead of spreading them over four.

The file is made by ``python -m training.tone_fit`` (``make tone-model``); it is JSON, read
once at start-up, and needs nothing but NumPy.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

TONE_FEATURES: tuple[str, ...] = (
    "log_lum",
    "lum_over_nose_peak",
    "lum_over_face_peak",
    "lum_over_p98",
    "p25_over_p50",
    "saturation",
    "gb_balanced",
    "rg_balanced",
    "lips_over_skin",
    "lum_over_scene_grey",
    "lum_over_scene_p90",
    "p90_over_p50",
)
"""The measurements ``edge.tone.tone_features`` makes, in the model's order (see there)."""


class ToneModelError(ValueError):
    """A tone model file that cannot be read or does not fit this code."""


class ToneModel(BaseModel):
    """A fitted linear map from tone features to a continuous Monk value.

    linear = bias + sum(weights * (x - mean) / scale), a missing feature (no nose or lips
    seen) taking its ``fill`` value; the score is ``linear`` at or above ``knee`` and
    ``knee - light_slope * (knee - linear)`` below it; the Monk step is the score rounded
    into 1..10.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    version: Literal[1] = Field(1, description="File format version.")
    features: tuple[str, ...] = Field(description="Feature names, in the order of the vectors below.")
    mean: tuple[float, ...] = Field(description="Per-feature mean of the fitting photos.")
    scale: tuple[float, ...] = Field(description="Per-feature standard deviation of the fitting photos.")
    fill: tuple[float, ...] = Field(description="Value used for a feature a photo lacks (the fitting median).")
    weights: tuple[float, ...] = Field(description="Weight of each standardised feature, in Monk steps.")
    bias: float = Field(description="Linear score of an average fitting photo.")
    knee: float = Field(4.0, ge=1, le=10, description="Monk value below which the scale is flattened.")
    light_slope: float = Field(1.0, gt=0, le=1, description="Slope of the scale below the knee (1: not flattened).")
    uncertainty: float = Field(
        gt=0,
        description="Stated uncertainty, Monk steps: the held-out spread of one person's photos around their "
        "own mean (how far a photo's reading wanders, not how far the group's placement may be off).",
    )
    parser_sha256: str = Field("", description="SHA-256 of the parse bundle whose skin masks it was fitted on.")
    probe: tuple[float, ...] = Field(
        (),
        description="The features of a generated probe face when it was fitted (training.tone_fit.probe_features): "
        "a test measures them again, so feature code changed without a refit is caught.",
    )
    fitted: dict[str, float | int | str] = Field(
        default_factory=dict, description="How it was fitted, and its held-out figures."
    )

    @model_validator(mode="after")
    def _lengths(self) -> ToneModel:
        n = len(self.features)
        if self.features != TONE_FEATURES:
            raise ValueError(f"features {list(self.features)} are not this code's {list(TONE_FEATURES)}")
        for name in ("mean", "scale", "fill", "weights"):
            v = getattr(self, name)
            if len(v) != n or not all(math.isfinite(x) for x in v):
                raise ValueError(f"{name} must hold {n} finite numbers")
        if any(s <= 0 for s in self.scale):
            raise ValueError("scale must be positive")
        if len(self.probe) not in (0, n):
            raise ValueError(f"probe must hold {n} numbers (or none)")
        return self

    @classmethod
    def load(cls, path: Path) -> ToneModel:
        """Read a model file.

        Raises:
            ToneModelError: if it is missing, not JSON, or not a model for these features.
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ToneModelError(f"{path}: cannot read the tone model: {e.strerror or e}") from e
        except UnicodeDecodeError:
            raise ToneModelError(f"{path}: not a tone model (not UTF-8 text)") from None
        try:
            return cls.model_validate_json(text)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(x) for x in first["loc"]) or "file"
            raise ToneModelError(f"{path}: not a tone model ({where}: {first['msg']})") from e

    def save(self, path: Path) -> None:
        """Write the model as indented JSON."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(self.model_dump_json(indent=1) + "\n", encoding="utf-8")

    def score(self, features: dict[str, float]) -> float:
        """Continuous Monk value of one photo's features (a missing or non-finite one takes its fill)."""
        x = np.array([features.get(n, math.nan) for n in self.features], np.float64)
        x = np.where(np.isfinite(x), x, np.asarray(self.fill))
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        linear = float(self.bias + z @ np.asarray(self.weights))
        return linear if linear >= self.knee else self.knee - self.light_slope * (self.knee - linear)


def monk_of_score(score: float) -> int:
    """Monk step (1..10) of a continuous Monk value."""
    return int(min(10, max(1, math.floor(score + 0.5))))
