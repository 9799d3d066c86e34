"""Kiosk colour calibration: a grey or white card shown to the camera once, at install time.

The operator holds a plain matte card so that it fills the middle of the frame
(``vanity calibrate``). The card's median linear RGB over the central region, and the
card's known reflectance, give per-channel gains that turn the camera's linear RGB
into reflectance (relative to a perfect white, as a swatch's sRGB value is): they correct
the white balance and the exposure at once. The kiosk
keeps them as JSON under its state directory and the skin-tone estimate uses them from
then on (``edge.tone``). They hold while the camera's exposure and white balance stay
fixed, as on a kiosk whose light does not change; recalibrate after moving the kiosk
or changing its lamps.

Cards the project documents (matte, not glossy):
- ``grey18``: an 18 % photographic grey card (reflectance 0.18);
- ``white``: plain white copier paper (reflectance 0.85);
- ``custom``: any neutral card whose reflectance you measured (``--reflectance``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edge.colour import LUMA, linear_lut

PAPER_WHITE = 0.85
"""Reflectance of plain white copier paper (the ``white`` card)."""

CARDS: dict[str, float] = {"grey18": 0.18, "white": PAPER_WHITE}
"""Documented card -> reflectance (linear, 0..1)."""

CENTRE_FRACTION = 0.3
"""Side of the central square measured, as a fraction of the frame's short side."""

MAX_SPREAD = 0.08
"""Largest relative spread (inter-quartile / median of luminance) of a plain card."""

CALIBRATION_FILE = "calibration.json"


class CalibrationError(ValueError):
    """The frame does not show a usable card (too dark, clipped, not uniform, coloured)."""


@dataclass(frozen=True)
class Calibration:
    """Per-channel gains from camera linear RGB to reflectance.

    Attributes:
        gains: (r, g, b) multipliers.
        card: the card's name.
        reflectance: the card's reflectance.
        measured: the card's median linear RGB as the camera saw it.
        created: UNIX time of the measurement.
    """

    gains: tuple[float, float, float]
    card: str
    reflectance: float
    measured: tuple[float, float, float]
    created: float

    def age_hours(self, now: float | None = None) -> float:
        """Hours since the measurement."""
        return ((now if now is not None else time.time()) - self.created) / 3600.0

    def describe(self, now: float | None = None) -> str:
        """One line for ``vanity doctor``."""
        g = ", ".join(f"{v:.3f}" for v in self.gains)
        return f"{self.card} card (reflectance {self.reflectance:.2f}), gains {g}, {self.age_hours(now):.1f} h old"


def measure_card(frame_rgb: np.ndarray, card: str = "grey18", reflectance: float | None = None) -> Calibration:
    """Measure a card filling the frame's centre.

    Raises:
        CalibrationError: the centre is clipped, too dark, not uniform, or strongly coloured.
        ValueError: an unknown card without a reflectance, or a bad frame.
    """
    if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 or frame_rgb.dtype != np.uint8:
        raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {frame_rgb.shape} {frame_rgb.dtype}")
    if reflectance is None:
        if card not in CARDS:
            raise ValueError(f"unknown card {card!r}: choose {', '.join(CARDS)} or give its reflectance")
        reflectance = CARDS[card]
    if not 0.02 <= reflectance <= 1.0:
        raise ValueError(f"card reflectance must be in 0.02..1, got {reflectance}")
    h, w = frame_rgb.shape[:2]
    half = max(4, int(CENTRE_FRACTION * min(h, w) / 2))
    patch = frame_rgb[h // 2 - half : h // 2 + half, w // 2 - half : w // 2 + half].reshape(-1, 3)
    if (patch.max(axis=1) >= 250).mean() > 0.02:
        raise CalibrationError("the card is overexposed (clipped): dim the light or lower the camera's exposure")
    lin = linear_lut()[patch].astype(np.float64)
    med = np.median(lin, axis=0)
    y = lin @ LUMA
    ym = float(np.median(y))
    if ym < 0.01:
        raise CalibrationError("the centre of the frame is too dark to be a card: light it or bring it closer")
    q1, q3 = np.percentile(y, [25, 75])
    if (q3 - q1) / ym > MAX_SPREAD:
        raise CalibrationError(
            f"the centre of the frame is not one plain surface (spread {(q3 - q1) / ym:.2f} > {MAX_SPREAD}): "
            "hold the card flat so that it fills the middle of the picture"
        )
    if med.max() / med.min() > 6.0:  # a 2700 K lamp alone gives about 3
        raise CalibrationError("the card looks strongly coloured: use a neutral grey or white card")
    gains = tuple(float(reflectance / v) for v in med)
    return Calibration(gains, card, float(reflectance), tuple(float(v) for v in med), time.time())  # type: ignore[arg-type]


def save_calibration(cal: Calibration, state_dir: Path) -> Path:
    """Write the calibration atomically under the state directory; returns its path."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / CALIBRATION_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(cal), indent=2))
    tmp.replace(path)
    return path


def load_calibration(state_dir: Path) -> Calibration | None:
    """The stored calibration, or None when there is none.

    Raises:
        CalibrationError: the file exists but is unreadable or malformed.
    """
    path = state_dir / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        cal = Calibration(
            gains=tuple(float(v) for v in d["gains"]),  # type: ignore[arg-type]
            card=str(d["card"]),
            reflectance=float(d["reflectance"]),
            measured=tuple(float(v) for v in d["measured"]),  # type: ignore[arg-type]
            created=float(d["created"]),
        )
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise CalibrationError(f"{path}: not a calibration file ({e})") from None
    if len(cal.gains) != 3 or not all(np.isfinite(cal.gains)) or min(cal.gains) <= 0:
        raise CalibrationError(f"{path}: gains must be three positive numbers")
    return cal
