"""The hand-drawn face: one layout of a frontal face's parts, drawn as a class map at any size.

Every drawn face in the project is this one (the fake parser's output, the synthetic face that the
makeup, tone and mouth tests paint, the tests' drawn photos), so a change to it is made once.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from edge.contract import CLASS_ID


class Part(NamedTuple):
    """One filled ellipse of the layout, in units of a 64-pixel square (the face crop's class map)."""

    cx: float
    cy: float
    ax: float
    ay: float
    cls: str


FACE_LAYOUT: tuple[Part, ...] = (
    Part(32, 20, 26, 16, "hair"),
    Part(32, 33, 20, 23, "skin"),
    Part(24, 22.5, 5.5, 1.4, "left_eyebrow"),
    Part(40, 22.5, 5.5, 1.4, "right_eyebrow"),
    Part(24, 29, 4, 2, "left_eye"),
    Part(40, 29, 4, 2, "right_eye"),
    Part(32, 36, 3, 5, "nose"),
    Part(32, 44, 7.5, 2.2, "upper_lip"),
    Part(32, 47.5, 7, 2.5, "lower_lip"),
    Part(32, 45.6, 5, 1.1, "inner_mouth"),
)
"""A frontal face with a slightly open mouth, filling a face crop as the contract's geometry implies;
painted in order (later parts win)."""


def draw_face_labels(size: int = 64, layout: tuple[Part, ...] = FACE_LAYOUT) -> np.ndarray:
    """The layout's class map, ``size`` pixels square (uint8 class ids; 0 = background)."""
    import cv2

    lab = np.zeros((size, size), np.uint8)
    s = size / 64.0
    for cx, cy, ax, ay, cls in layout:
        # Drawn with 4 fractional bits so sub-pixel sizes are honoured.
        centre = (round(cx * s * 16), round(cy * s * 16))
        axes = (round(ax * s * 16), round(ay * s * 16))
        cv2.ellipse(lab, centre, axes, 0, 0, 360, CLASS_ID[cls], -1, cv2.LINE_8, 4)
    return lab
