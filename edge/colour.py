"""Colour conversions and the Monk Skin Tone references: the one home of both in the project.

sRGB <-> linear RGB, linear RGB -> CIELAB (D65), ``#rrggbb`` -> RGB / CIELAB, and the 10
Monk swatches. The makeup layers, the skin-tone estimate, the kiosk calibration, the
synthetic face generator and the benchmarks all use these, so a colour means the same
thing everywhere.
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

MONK_HEX: tuple[str, ...] = (
    "#f6ede4",
    "#f3e7db",
    "#f7ead0",
    "#eadaba",
    "#d7bd96",
    "#a07e56",
    "#825c43",
    "#604134",
    "#3a312a",
    "#292420",
)
"""Monk Skin Tone scale references (Monk 2019, Google's published sRGB values), step 1 (lightest) to 10."""

# D65 sRGB -> XYZ, and the D65 white.
_RGB2XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
_WHITE = np.array([0.95047, 1.0, 1.08883])
LUMA = np.array([0.2126, 0.7152, 0.0722])
"""Weights of linear R, G, B in the luminance Y (Rec. 709 / sRGB primaries)."""


def hex_to_rgb(color: str) -> np.ndarray:
    """``#rrggbb`` -> float32 RGB in 0..255."""
    return np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)], np.float32)


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB in 0..1 -> linear RGB."""
    rgb = np.asarray(rgb, np.float64)
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    """Linear RGB -> sRGB in 0..1 (not clipped)."""
    lin = np.maximum(np.asarray(lin, np.float64), 0.0)
    return np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)


def hex_to_linear(color: str) -> np.ndarray:
    """Linear RGB (3,) of a ``#rrggbb`` colour."""
    return srgb_to_linear(hex_to_rgb(color) / 255.0)


@cache
def linear_lut() -> np.ndarray:
    """(256,) float32 table: 8-bit sRGB code -> linear value."""
    return srgb_to_linear(np.arange(256) / 255.0).astype(np.float32)


def linear_to_lab(lin: np.ndarray) -> np.ndarray:
    """Linear RGB (..., 3) -> CIELAB (..., 3), D65."""
    xyz = np.asarray(lin, np.float64) @ _RGB2XYZ.T / _WHITE
    d = 6.0 / 29.0
    f = np.where(xyz > d**3, np.cbrt(xyz), xyz / (3 * d * d) + 4.0 / 29.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], -1)


def hex_to_lab(color: str) -> np.ndarray:
    """CIELAB (3,) of a ``#rrggbb`` colour."""
    return linear_to_lab(hex_to_linear(color))


@cache
def monk_lab() -> np.ndarray:
    """(10, 3) CIELAB of the Monk references (read-only)."""
    lab = np.stack([hex_to_lab(h) for h in MONK_HEX])
    lab.flags.writeable = False
    return lab


def rgb_to_lab(rgb_u8: np.ndarray) -> np.ndarray:
    """uint8 (or 0..255 float) RGB image -> float32 CIELAB (L 0..100), D65 (OpenCV, fast on images)."""
    return cv2.cvtColor(np.asarray(rgb_u8, np.float32) * np.float32(1.0 / 255.0), cv2.COLOR_RGB2Lab)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """float32 CIELAB image -> float32 RGB in 0..255 (unclipped), D65 (OpenCV)."""
    return cv2.cvtColor(lab.astype(np.float32, copy=False), cv2.COLOR_Lab2RGB) * np.float32(255.0)
