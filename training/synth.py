"""Synthetic faces with exact per-pixel labels in the contract's 11 classes.

Numpy + OpenCV only (no TensorFlow), deterministic from a seed, fast enough to
generate on the fly (a few hundred 128 px samples per second on one core).

Faces are drawn directly in *crop space*: the face box (bounding box of the
face classes) is centred and sized as the device's crop geometry would make it
(``crop side = CropGeometry().scale * box side``), then jittered (scale ±20 %,
shift ±10 % of the side, roll ±25°) so the model tolerates the tracker's drift.

Labelling follows LaPa's conventions:

* ears and facial hair on skin (beards, stubble, moustaches) are ``skin``;
* the neck and clothes are ``background``;
* eyes are the visible eye opening (sclera, iris, pupil, lash line);
* the nose is the visible nose region from the bridge to the nostrils;
* an open mouth's interior, teeth included, is ``inner_mouth``;
* glasses and makeup keep the labels underneath; occluders are ``background``;
* "left" is image-left: the brow and eye with the smaller x are ``left_*``.

Negative samples (``face = 0``) are backgrounds with clutter, skin-coloured
distractors or bodies without a head; their labels are all background.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import cv2
import numpy as np

from edge.colour import MONK_HEX, hex_to_rgb
from edge.contract import CLASS_ID, INPUT_SIZE, OUTPUT_STRIDE, CropGeometry, MouthCrop

BG = CLASS_ID["background"]
SKIN = CLASS_ID["skin"]
LBROW, RBROW = CLASS_ID["left_eyebrow"], CLASS_ID["right_eyebrow"]
LEYE, REYE = CLASS_ID["left_eye"], CLASS_ID["right_eye"]
NOSE = CLASS_ID["nose"]
ULIP, MOUTH, LLIP = CLASS_ID["upper_lip"], CLASS_ID["inner_mouth"], CLASS_ID["lower_lip"]
HAIR = CLASS_ID["hair"]

MST_RGB = np.stack([hex_to_rgb(h) for h in MONK_HEX]) / np.float32(255.0)
"""Monk Skin Tone scale swatches (``edge.colour.MONK_HEX``), lightest to darkest, sRGB 0..1."""

NEGATIVE_FRACTION = 0.08
"""Share of generated samples without a face."""
MOUTH_FRACTION = 0.25
"""Share of generated samples that are the device's zoomed mouth crop instead of the face crop."""

_HAIR_COLOURS = np.array(
    [
        (0.05, 0.04, 0.04),  # black
        (0.12, 0.08, 0.06),  # dark brown
        (0.25, 0.16, 0.10),  # brown
        (0.42, 0.30, 0.19),  # light brown
        (0.70, 0.56, 0.36),  # dark blonde
        (0.85, 0.74, 0.52),  # blonde
        (0.45, 0.18, 0.08),  # auburn / red
        (0.62, 0.60, 0.58),  # grey
        (0.86, 0.85, 0.83),  # white
        (0.60, 0.20, 0.45),  # dyed pink/purple
        (0.15, 0.25, 0.55),  # dyed blue
    ],
    np.float32,
)
_HAIR_P = np.array([24, 20, 16, 9, 6, 5, 5, 5, 3, 1.5, 1.5], np.float64)

_LIPSTICKS = np.array(
    [
        (0.70, 0.05, 0.10),  # classic red
        (0.55, 0.05, 0.15),  # berry
        (0.85, 0.35, 0.45),  # pink
        (0.95, 0.50, 0.60),  # light pink
        (0.75, 0.45, 0.38),  # nude
        (0.50, 0.28, 0.25),  # brown nude
        (0.35, 0.07, 0.15),  # plum
        (0.90, 0.38, 0.28),  # coral
        (0.25, 0.05, 0.08),  # dark wine
    ],
    np.float32,
)

_EYESHADOWS = np.array(
    [(0.55, 0.40, 0.35), (0.35, 0.25, 0.25), (0.60, 0.45, 0.60), (0.25, 0.30, 0.45), (0.70, 0.55, 0.40)],
    np.float32,
)

_IRIS = np.array(
    [(0.20, 0.11, 0.05), (0.30, 0.18, 0.08), (0.10, 0.06, 0.04), (0.30, 0.42, 0.55), (0.30, 0.40, 0.25)], np.float32
)
_IRIS_P = np.array([35, 25, 25, 8, 7], np.float64)


class SynthBatch(NamedTuple):
    """A batch of synthetic samples at the model's resolutions."""

    images: np.ndarray  # uint8 (n, size, size, 3) RGB
    labels: np.ndarray  # uint8 (n, size // OUTPUT_STRIDE, size // OUTPUT_STRIDE) class ids
    face: np.ndarray  # uint8 (n,) 1 if a face is present


# --------------------------------------------------------------------------- textures


STREAK_ANGLES = np.arange(-30, 31, 5)
"""Rolls (degrees) at which hair-strand textures are pre-rotated."""


@lru_cache(maxsize=1)
def _textures() -> dict[str, np.ndarray]:
    """Noise textures, built once from a fixed seed so samples stay deterministic."""
    rng = np.random.default_rng(12345)
    n = 256
    out: dict[str, np.ndarray] = {}
    # Hair strands: noise smeared along one axis, pre-rotated so strands follow the face's roll.
    big = n + n // 2
    streak = cv2.blur(rng.standard_normal((big, big)).astype(np.float32), (1, 21))
    streak = cv2.GaussianBlur(streak, (3, 1), 0.6)
    streak = (streak - streak.mean()) / (streak.std() + 1e-6)
    c = (big - 1) / 2.0
    rot = []
    for a in STREAK_ANGLES:
        m = cv2.getRotationMatrix2D((c, c), float(a), 1.0)
        r = cv2.warpAffine(streak, m, (big, big), flags=cv2.INTER_LINEAR)
        rot.append(r[n // 4 : n // 4 + n, n // 4 : n // 4 + n])
    out["streak"] = np.stack(rot)
    # Curly hair: small blobs.
    curly = np.stack([cv2.GaussianBlur(rng.standard_normal((n, n)).astype(np.float32), (0, 0), 1.3) for _ in range(2)])
    out["curly"] = (curly - curly.mean()) / (curly.std() + 1e-6)
    # Skin pores (fine) and blotches (coarse).
    fine = np.stack([cv2.GaussianBlur(rng.standard_normal((n, n)).astype(np.float32), (0, 0), 0.7) for _ in range(2)])
    out["fine"] = fine / (fine.std() + 1e-6)
    coarse = rng.standard_normal((2, n // 8, n // 8)).astype(np.float32)
    coarse = np.stack([cv2.resize(c, (n, n), interpolation=cv2.INTER_CUBIC) for c in coarse])
    out["coarse"] = coarse / (coarse.std() + 1e-6)
    # Sensor noise, three channels, integer (added with saturation).
    out["white3"] = np.round(rng.standard_normal((4, n, n, 3)) * np.array([2, 4, 6, 9])[:, None, None, None]).astype(
        np.int16
    )
    return out


def _tex_crop(rng: np.random.Generator, name: str, size: int, k: int | None = None) -> np.ndarray:
    """A random size x size window of a texture (texture ``k`` of the bank if given)."""
    t = _textures()[name]
    if k is None:
        k = int(rng.integers(len(t)))
    y, x = (int(v) for v in rng.integers(0, t.shape[1] - size + 1, 2))
    return t[k, y : y + size, x : x + size]


def _hair_texture(rng: np.random.Generator, m: np.ndarray, size: int, curly: bool) -> np.ndarray:
    """Hair texture in crop pixels: strands run along the face's vertical axis."""
    if curly:
        return _tex_crop(rng, "curly", size)
    roll = math.degrees(math.atan2(m[1, 0], m[0, 0]))
    k = int(np.argmin(np.abs(STREAK_ANGLES + roll)))
    return _tex_crop(rng, "streak", size, k)


# --------------------------------------------------------------------------- canvas

# Materials decide the texture a pixel gets (labels alone cannot: a beard is "skin").
M_BG, M_SKIN, M_HAIR, M_LIP, M_EYE, M_CLOTH, M_FLAT = range(7)


@lru_cache(maxsize=8)
def _unit_circle(n: int) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([np.cos(t), np.sin(t)], 1)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 24, angle: float = 0.0) -> np.ndarray:
    e = _unit_circle(n) * (rx, ry)
    if angle:
        c, s = math.cos(angle), math.sin(angle)
        e = e @ np.array([[c, s], [-s, c]])
    return e + np.array([cx, cy])


def _c8(colour: np.ndarray) -> tuple[float, float, float]:
    c = np.clip(np.asarray(colour, np.float64) * 255.0, 0, 255)
    return float(c[0]), float(c[1]), float(c[2])


class _Canvas:
    """Albedo, material and label maps plus light maps, drawn with polygons in face units.

    Everything is drawn with OpenCV fills (fixed-point, anti-aliased in the
    albedo); per-pixel float work happens once per image, in ``_finish``.
    """

    def __init__(self, size: int, m: np.ndarray, background: np.ndarray):
        self.size = size
        self.m = m  # canonical (face units) -> pixel, 2x3
        self.px_per_unit = float(math.sqrt(abs(np.linalg.det(m[:, :2]))))
        self._a16 = np.ascontiguousarray(m[:, :2].T * 16.0)
        self._t16 = m[:, 2] * 16.0 + 0.5  # + 0.5: truncation rounds (negative = off-image anyway)
        self.img = background  # uint8 (H, W, 3) albedo
        self.mat = np.zeros((size, size), np.uint8)
        self.lab = np.zeros((size, size), np.uint8)
        self.soft = np.zeros((size, size), np.float32)  # broad shadows (added to 1, blurred wide)
        self.sharp = np.zeros((size, size), np.float32)  # creases (blurred a little)
        self.spec = np.zeros((size, size), np.float32)  # additive highlights

    def q(self, pts: np.ndarray) -> np.ndarray:
        """Fixed-point (4 fractional bits) pixel coordinates."""
        return (pts @ self._a16 + self._t16).astype(np.int32)

    def label(self, pts: np.ndarray, cls: int) -> None:
        cv2.fillPoly(self.lab, [self.q(pts)], int(cls), cv2.LINE_8, shift=4)

    def _roi(self, q: np.ndarray, pad: int = 1) -> tuple[int, int, int, int] | None:
        x, y, w, h = cv2.boundingRect(q >> 4)
        x0, y0 = max(x - pad, 0), max(y - pad, 0)
        x1, y1 = min(x + w + pad + 1, self.size), min(y + h + pad + 1, self.size)
        if x0 >= x1 or y0 >= y1:
            return None
        return y0, y1, x0, x1

    def paint(
        self,
        pts: np.ndarray,
        colour: np.ndarray,
        cls: int | None = None,
        mat: int | None = None,
        alpha: float = 1.0,
        blur: float = 0.0,
    ) -> None:
        """Fill a polygon with a colour (alpha and edge blur optional), and label it."""
        q = self.q(pts)
        if cls is not None:
            cv2.fillPoly(self.lab, [q], int(cls), cv2.LINE_8, shift=4)
        if mat is not None:
            cv2.fillPoly(self.mat, [q], int(mat), cv2.LINE_8, shift=4)
        c = _c8(colour)
        if alpha >= 1.0 and blur <= 0:
            cv2.fillPoly(self.img, [q], c, cv2.LINE_AA, shift=4)
            return
        pad = math.ceil(2.5 * blur) + 1
        roi_b = self._roi(q, pad)
        if roi_b is None:
            return
        y0, y1, x0, x1 = roi_b
        roi = self.img[y0:y1, x0:x1]
        off = np.array([x0 * 16, y0 * 16], np.int32)
        if blur <= 0:
            over = roi.copy()
            cv2.fillPoly(over, [q - off], c, cv2.LINE_AA, shift=4)
            cv2.addWeighted(over, alpha, roi, 1 - alpha, 0, dst=roi)
            return
        a = np.zeros(roi.shape[:2], np.float32)
        cv2.fillPoly(a, [q - off], float(alpha), cv2.LINE_8, shift=4)
        a = cv2.GaussianBlur(a, (0, 0), blur)[..., None]
        roi[:] = roi * (1 - a) + np.array(c, np.float32) * a

    def blob(self, target: np.ndarray, pts: np.ndarray, value: float) -> None:
        """Set a region of a light map (overlaps overwrite; the map is blurred later)."""
        cv2.fillPoly(target, [self.q(pts)], float(value), cv2.LINE_8, shift=4)

    def stroke(self, pts: np.ndarray, colour: np.ndarray, width: float, alpha: float = 1.0) -> None:
        """Draw an anti-aliased polyline (width in face units) into the albedo only."""
        w = max(1, round(width * self.px_per_unit))
        q = self.q(pts)
        c = _c8(colour)
        if alpha >= 1.0:
            cv2.polylines(self.img, [q], False, c, w, cv2.LINE_AA, shift=4)
            return
        roi_b = self._roi(q, w + 2)
        if roi_b is None:
            return
        y0, y1, x0, x1 = roi_b
        roi = self.img[y0:y1, x0:x1]
        over = roi.copy()
        cv2.polylines(over, [q - np.array([x0 * 16, y0 * 16], np.int32)], False, c, w, cv2.LINE_AA, shift=4)
        cv2.addWeighted(over, alpha, roi, 1 - alpha, 0, dst=roi)


# --------------------------------------------------------------------------- colour helpers


def _skin_colour(rng: np.random.Generator) -> np.ndarray:
    """A skin albedo from anywhere on the Monk scale, with a warm, neutral or cool undertone."""
    t = rng.uniform(0, len(MST_RGB) - 1)
    i = min(int(t), len(MST_RGB) - 2)
    c = MST_RGB[i] * (1 - (t - i)) + MST_RGB[i + 1] * (t - i)
    under = rng.choice(3)
    amt = rng.uniform(0, 0.07)
    if under == 0:  # warm / golden
        c = c * (1 + amt, 1 + amt * 0.1, 1 - amt * 1.6)
    elif under == 2:  # cool / pink
        c = c * (1 + amt * 0.4, 1 - amt * 0.7, 1 + amt * 0.5)
    # Swatches are flat; photographed skin is a little more saturated and varies in brightness.
    c = c + (c - c.mean()) * rng.uniform(0.0, 0.5)
    c = c * rng.uniform(0.9, 1.08)
    return np.clip(c, 0.02, 1.0).astype(np.float32)


def _lum(c: np.ndarray) -> float:
    return float(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])


@lru_cache(maxsize=4)
def _ramp(size: int) -> tuple[np.ndarray, np.ndarray]:
    r = np.linspace(-1, 1, size, dtype=np.float32)
    return r[None, :], r[:, None]


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A procedural uint8 background: gradients, shapes, lines, out-of-focus blobs (no real photos)."""
    c1, c2 = rng.uniform(0, 1, (2, 3)).astype(np.float32)
    if rng.random() < 0.5:  # walls are mostly greyish
        g = rng.uniform(0.2, 1.0)
        c1 = c1 * g + (1 - g) * c1.mean()
        c2 = c2 * g + (1 - g) * c2.mean()
    ang = rng.uniform(0, 2 * np.pi)
    rx, ry = _ramp(8)
    t = (math.cos(ang) * rx + math.sin(ang) * ry) * 0.5 + 0.5
    small = ((c1 * 255) + ((c2 - c1) * 255) * t[..., None]).astype(np.float32)
    # A linear gradient upsampled bilinearly is still (almost) the same gradient.
    img = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.uint8)
    n = int(rng.integers(0, 8))
    if n:
        over = img.copy()
        for _ in range(n):
            col = tuple(float(v) for v in rng.uniform(0, 255, 3))
            kind = rng.integers(4)
            if kind == 0:
                x0, y0 = (int(v) for v in rng.integers(-size // 2, size, 2))
                w, h = (int(v) for v in rng.integers(size // 10, size, 2))
                cv2.rectangle(over, (x0, y0), (x0 + w, y0 + h), col, -1)
            elif kind == 1:
                cx, cy = (int(v) for v in rng.integers(0, size, 2))
                cv2.circle(over, (cx, cy), int(rng.integers(3, size // 2)), col, -1, cv2.LINE_AA)
            elif kind == 2:
                p = rng.integers(-size // 4, size + size // 4, (2, 2))
                cv2.line(
                    over,
                    (int(p[0, 0]), int(p[0, 1])),
                    (int(p[1, 0]), int(p[1, 1])),
                    col,
                    int(rng.integers(1, 8)),
                    cv2.LINE_AA,
                )
            else:
                pts = rng.integers(-size // 4, size + size // 4, (int(rng.integers(3, 6)), 2)).astype(np.int32)
                cv2.fillPoly(over, [pts], col, cv2.LINE_AA)
        a = rng.uniform(0.4, 1.0)
        img = cv2.addWeighted(over, a, img, 1 - a, 0)
    if rng.random() < 0.4:  # shallow depth of field
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(1, 4))
    return img


# --------------------------------------------------------------------------- the face


class _Face:
    """Random face geometry in face units: x right, y down, cheeks at |x| = 1, eyes near y = 0."""

    def __init__(self, rng: np.random.Generator):
        r = rng.uniform
        self.b_top = r(1.28, 1.5)  # skull top above the eye line
        self.b_chin = r(1.2, 1.45)
        self.jaw_taper = r(0.1, 0.35)
        self.jaw_square = r(0.7, 1.0)
        self.ey = r(-0.06, 0.08)
        self.ex = r(0.36, 0.46)
        self.ew = r(0.15, 0.21)
        self.eh = r(0.06, 0.13) if rng.random() > 0.06 else r(0.008, 0.03)  # some blinks
        self.e_tilt = r(-0.03, 0.06)
        self.brow_y = self.ey - r(0.2, 0.32)
        self.brow_x0 = r(0.1, 0.2)
        self.brow_x1 = self.ex + self.ew + r(-0.02, 0.12)
        self.brow_drop = r(-0.05, 0.08)
        self.brow_arch = r(0.02, 0.1)
        self.brow_th = r(0.035, 0.11)
        self.brow_taper = r(0.3, 0.75)
        self.nose_y = r(0.42, 0.6)
        self.nose_w = r(0.15, 0.25)
        self.bridge_w = r(0.05, 0.09)
        self.mouth_y = max(r(0.72, 0.92), self.nose_y + r(0.17, 0.27))
        self.mouth_w = r(0.27, 0.42)
        self.ulip_h = r(0.045, 0.11)
        self.llip_h = r(0.06, 0.15)
        u = rng.random()
        self.open = 0.0 if u < 0.5 else (r(0.015, 0.06) if u < 0.7 else r(0.06, 0.32))
        self.smile = r(-0.03, 0.08)
        self.cupid = r(0.1, 0.4)
        self.mouth_dx = r(-0.04, 0.04)
        self.b_chin = max(self.b_chin, self.mouth_y + self.open + self.llip_h + r(0.2, 0.32))
        self.ear_y = r(0.05, 0.25)
        self.ear_rx, self.ear_ry = r(0.11, 0.17), r(0.25, 0.34)
        self.neck_w = r(0.5, 0.7)

    def head(self, n: int = 64) -> np.ndarray:
        c, s = _unit_circle(n).T
        lower = s > 0
        x = np.where(lower, np.sign(c) * np.abs(c) ** self.jaw_square * (1 - self.jaw_taper * s**2), c * 1.02)
        y = np.where(lower, self.b_chin * s, self.b_top * s) + 0.05
        return np.stack([x, y], 1)

    def ears(self) -> list[np.ndarray]:
        return [
            _ellipse(sx * (0.97 + self.ear_rx * 0.5), self.ear_y, self.ear_rx, self.ear_ry, 20, sx * 0.12)
            for sx in (-1, 1)
        ]


class _Hair:
    """A hair style: the front cap with its hairline, back hair and locks."""

    STYLES = ("bald", "buzz", "short", "medium", "long", "bangs", "bun", "curly", "long_bangs")

    def __init__(self, rng: np.random.Generator, face: _Face, male: bool):
        r = rng.uniform
        p = np.array([8, 10, 22, 14, 5, 4, 3, 6, 2.0] if male else [1, 2, 8, 14, 30, 10, 10, 10, 10.0])
        self.style = str(rng.choice(self.STYLES, p=p / p.sum()))
        self.colour = _HAIR_COLOURS[rng.choice(len(_HAIR_COLOURS), p=_HAIR_P / _HAIR_P.sum())] * r(0.8, 1.2)
        self.curly = self.style == "curly" or rng.random() < 0.12
        self.thick = {"bald": 0.0, "buzz": r(0.01, 0.05), "curly": r(0.3, 0.6)}.get(self.style, r(0.08, 0.3))
        self.hairline = r(-0.85, -0.55)
        if self.style in ("bangs", "long_bangs"):
            self.hairline = face.brow_y - r(0.06, 0.2)
        self.part_tilt = r(-0.2, 0.2) if self.style in ("bangs", "long_bangs", "medium") else r(-0.05, 0.05)
        self.sideburn = r(-0.1, 0.25) if male else r(-0.25, 0.05)
        self.covers_ears = self.style in ("medium", "long", "long_bangs", "curly") and rng.random() < 0.7
        self.long_len = r(1.8, 4.0)
        self.long_w = r(1.15, 1.6)
        self.locks = self.style in ("long", "long_bangs") and rng.random() < 0.6
        self.lock_in = r(0.75, 0.95)

    def hairline_y(self, x: np.ndarray) -> np.ndarray:
        """The hairline across the forehead and down the temples."""
        ax = np.clip(np.abs(x) / 0.98, 0, 1)
        return self.hairline + self.part_tilt * x + (self.sideburn - self.hairline) * ax**3.5

    def front(self, face: _Face) -> np.ndarray | None:
        if self.style == "bald":
            return None
        t = self.thick
        side_bottom = self.sideburn if not self.covers_ears else face.ear_y + face.ear_ry * 0.8
        # Outer boundary: the skull grown by the hair's thickness, from one side over the top.
        a0 = math.asin(float(np.clip((side_bottom - 0.05) / (face.b_top + t), -1, 1)))
        ang = np.linspace(math.pi - a0, 2 * math.pi + a0, 40)
        outer = np.stack([(1.02 + t) * np.cos(ang), (face.b_top + t) * np.sin(ang) + 0.05], 1)
        # Inner boundary: the hairline, from right to left.
        ix = np.linspace(1.0, -1.0, 36)
        iy = self.hairline_y(ix)
        if self.covers_ears:
            iy = np.where(np.abs(ix) > 0.9, np.maximum(iy, side_bottom * (np.abs(ix) - 0.9) / 0.1), iy)
        return np.concatenate([outer, np.stack([ix * 1.01, iy], 1)])

    def back(self, face: _Face) -> np.ndarray | None:
        if self.style in ("long", "long_bangs"):
            w, L = self.long_w, self.long_len
            return np.array(
                [[-1.1, -0.6], [-w, 0.6], [-w * 1.1, L], [w * 1.1, L], [w, 0.6], [1.1, -0.6], [0, -face.b_top]]
            )
        if self.style == "curly":
            c, s = _unit_circle(48).T
            rr = 1.0 + 0.05 * np.sin(np.arctan2(s, c) * 11)
            return np.stack([(1.0 + self.thick) * 1.12 * rr * c, (face.b_top * 0.85 + self.thick) * rr * s - 0.2], 1)
        if self.style == "bun":
            return _ellipse(0, -face.b_top - 0.1, 0.42, 0.35, 20)
        if self.style == "medium":
            return np.array([[-1.1, -0.6], [-1.15 - self.thick, 0.9], [1.15 + self.thick, 0.9], [1.1, -0.6]])
        return None

    def side_locks(self, face: _Face) -> list[np.ndarray]:
        if not self.locks:
            return []
        xi = self.lock_in
        y0 = float(self.hairline_y(np.array([xi]))[0])
        return [
            np.array(
                [
                    [sx * (xi - 0.05), y0],
                    [sx * xi, 0.3],
                    [sx * (xi + 0.05), 1.0],
                    [sx * (xi + 0.3), self.long_len],
                    [sx * (self.long_w + 0.1), self.long_len],
                    [sx * 1.15, 0.2],
                    [sx * 1.1, -0.6],
                ]
            )
            for sx in (-1, 1)
        ]


def _face_box_points(face: _Face, hair: _Hair) -> np.ndarray:
    """Outline points of the visible face classes (skin without the hair), for the face box."""
    head = face.head()
    if hair.style != "bald":
        head = head[head[:, 1] >= hair.hairline_y(head[:, 0]) - 0.02]
    pts = [head]
    if not hair.covers_ears or hair.style == "bald":
        pts += face.ears()
    return np.concatenate(pts)


def _face_transform(rng: np.random.Generator, face_pts: np.ndarray, size: int, geometry: CropGeometry) -> np.ndarray:
    """Canonical face units -> crop pixels, framed as the device's crop (plus tracker drift) would.

    The face's roll in the photo is removed by the crop, but the face box is the
    axis-aligned box in the photo, so a rolled face comes out a little smaller.
    """
    phi = math.radians(float(np.clip(rng.normal(0, 12), -45, 45)))
    c, s = math.cos(phi), math.sin(phi)
    q = face_pts @ np.array([[c, s], [-s, c]])
    lo, hi = q.min(0), q.max(0)
    box_side = float(max(hi - lo))
    cq = (lo + hi) / 2
    # The box centre back in the face frame, plus the contract's shift along the face's down axis.
    centre = np.array([c * cq[0] + s * cq[1], -s * cq[0] + c * cq[1]]) + np.array(
        [0.0, geometry.center_shift * box_side]
    )
    k = size / (geometry.scale * box_side)
    # Tracker drift: mostly small, sometimes up to the limits.
    if rng.random() < 0.7:
        jscale = float(np.clip(rng.normal(1, 0.07), 0.8, 1.2))
        rho = math.radians(float(np.clip(rng.normal(0, 7), -25, 25)))
        shift = np.clip(rng.normal(0, 0.035, 2), -0.1, 0.1)
    else:
        jscale = rng.uniform(0.8, 1.2)
        rho = math.radians(rng.uniform(-25, 25))
        shift = rng.uniform(-0.1, 0.1, 2)
    cr, sr = math.cos(rho), math.sin(rho)
    a = jscale * k * np.array([[cr, -sr], [sr, cr]])
    t = np.array([size / 2.0, size / 2.0]) + shift * size - a @ centre
    return np.hstack([a, t[:, None]])


def _mouth_transform(
    rng: np.random.Generator, face: _Face, face_pts: np.ndarray, size: int, mouth: MouthCrop
) -> np.ndarray:
    """Canonical face units -> mouth-crop pixels, as the device frames its refinement crop.

    The device centres the crop on the first parse's lips-and-mouth centroid,
    which is off by a little: the jitter covers that error.
    """
    phi = math.radians(float(np.clip(rng.normal(0, 12), -45, 45)))
    c, s = math.cos(phi), math.sin(phi)
    q = face_pts @ np.array([[c, s], [-s, c]])
    box_side = float(max(q.max(0) - q.min(0)))
    centre = _mouth_centroid(face) + np.clip(rng.normal(0, 0.03, 2), -0.08, 0.08) * box_side
    k = size / (mouth.scale * box_side * float(np.clip(rng.normal(1, 0.08), 0.8, 1.2)))
    rho = math.radians(float(np.clip(rng.normal(0, 5), -15, 15)))
    cr, sr = math.cos(rho), math.sin(rho)
    a = k * np.array([[cr, -sr], [sr, cr]])
    t = np.array([size / 2.0, size / 2.0]) - a @ centre
    return np.hstack([a, t[:, None]])


class _Light(NamedTuple):
    direction: np.ndarray
    ambient: float
    wrap: float
    colour: np.ndarray


def _light(rng: np.random.Generator) -> _Light:
    d = np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.75, 0.35), rng.uniform(0.35, 1.0)])
    temp = rng.uniform(-1, 1)  # warm (tungsten) to cool (shade)
    colour = np.array([1 + 0.12 * temp, 1.0, 1 - 0.15 * temp], np.float32)
    return _Light(d / np.linalg.norm(d), rng.uniform(0.25, 0.6), rng.uniform(0.1, 0.6), colour)


# --------------------------------------------------------------------------- parts


def _render_person(rng: np.random.Generator, cv: _Canvas, face: _Face, hair: _Hair, male: bool) -> np.ndarray:
    """Draw the person; returns the skin albedo (for the finishing pass)."""
    r = rng.uniform
    skin = _skin_colour(rng)
    ppu = cv.px_per_unit

    back = hair.back(face)
    if back is not None:
        cv.paint(back, hair.colour, HAIR, M_HAIR)
    neck = np.array([[-face.neck_w, 0.4], [-face.neck_w * 1.05, 1.9], [face.neck_w * 1.05, 1.9], [face.neck_w, 0.4]])
    sh_y = r(1.9, 2.5)
    body = np.array(
        [
            [-face.neck_w, 1.6],
            [-r(2.2, 3.0), sh_y + 0.3],
            [-3.5, 5],
            [3.5, 5],
            [r(2.2, 3.0), sh_y + 0.3],
            [face.neck_w, 1.6],
        ]
    )
    cv.paint(body, skin * 0.95, BG, M_SKIN)
    cv.paint(neck, skin * 0.93, BG, M_SKIN)
    if rng.random() < 0.92:  # clothes
        cloth = rng.uniform(0, 1, 3).astype(np.float32) * r(0.2, 1.0)
        dy, v = r(-0.1, 0.6), r(0.0, 0.8)
        shirt = np.array(
            [
                [-3.5, sh_y - 0.1],
                [-face.neck_w * 1.3, sh_y - 0.2 + dy * 0.3],
                [0, sh_y + dy + v],
                [face.neck_w * 1.3, sh_y - 0.2 + dy * 0.3],
                [3.5, sh_y - 0.1],
                [3.5, 5],
                [-3.5, 5],
            ]
        )
        cv.paint(shirt, cloth, BG, M_CLOTH)
    if hair.style in ("long", "long_bangs") and rng.random() < 0.5:  # hair over the shoulders
        for sx in (-1, 1):
            lock = np.array(
                [
                    [sx * 1.0, 0.6],
                    [sx * 0.85, hair.long_len],
                    [sx * hair.long_w * 1.1, hair.long_len],
                    [sx * hair.long_w, 0.6],
                ]
            )
            cv.paint(lock, hair.colour, HAIR, M_HAIR)
    # The neck is in the head's shadow.
    cv.blob(cv.soft, neck + np.array([0, 0.15]), -r(0.2, 0.5))

    for e in face.ears():
        cv.paint(e, skin * 0.97, SKIN, M_SKIN)
        cv.blob(cv.sharp, (e - e.mean(0)) * (0.5, 0.6) + e.mean(0), -r(0.15, 0.35))
    cv.paint(face.head(), skin, SKIN, M_SKIN)

    # Rosy cheeks, sometimes blush makeup.
    for sx in (-1, 1):
        cheek = _ellipse(sx * 0.55, face.nose_y - 0.05, 0.25, 0.18, 16)
        cv.paint(cheek, skin * np.array([1.06, 0.82, 0.84], np.float32), alpha=r(0.0, 0.4), blur=0.07 * ppu)
    if rng.random() < 0.15:
        for sx in (-1, 1):
            cheek = _ellipse(sx * 0.58, face.nose_y - 0.1, 0.22, 0.13, 16, sx * -0.3)
            cv.paint(cheek, np.array([0.9, 0.45, 0.5]), alpha=r(0.15, 0.35), blur=0.07 * ppu)

    if male and rng.random() < 0.45:
        _draw_facial_hair(rng, cv, face, hair, skin)

    # Eye sockets.
    for sx in (-1, 1):
        cv.blob(cv.soft, _ellipse(sx * face.ex, face.ey - 0.02, face.ew * 1.5, 0.17, 16), -r(0.05, 0.2))
    shadow_col = _EYESHADOWS[rng.integers(len(_EYESHADOWS))] if rng.random() < 0.18 else None
    if shadow_col is not None:
        for sx in (-1, 1):
            lid = _ellipse(sx * face.ex, face.ey - face.eh * 0.8, face.ew * 1.15, face.eh + 0.08, 18)
            cv.paint(lid, shadow_col, alpha=r(0.25, 0.6), blur=0.04 * ppu)

    _draw_brows(rng, cv, face, hair)
    _draw_eyes(rng, cv, face, eyeliner=shadow_col is not None or rng.random() < 0.12)
    _draw_nose(rng, cv, face, skin)
    _draw_mouth(rng, cv, face, skin)

    # Front hair last: it covers the forehead (and the ears when long).
    front = hair.front(face)
    if front is not None:
        if hair.thick <= 0.05:  # a buzz cut shows the scalp through
            cv.paint(front, skin * 0.6 + hair.colour * 0.4, HAIR, M_HAIR)
        else:
            cv.paint(front, hair.colour, HAIR, M_HAIR)
            cv.blob(cv.soft, _ellipse(0, hair.hairline + 0.1, 0.9, 0.12, 16), -r(0.0, 0.25))  # hair casts a shadow
    for lock in hair.side_locks(face):
        cv.paint(lock, hair.colour, HAIR, M_HAIR)
    if hair.style != "bald":
        band = _ellipse(r(-0.3, 0.3), -face.b_top + r(0.1, 0.4), r(0.3, 0.6), r(0.06, 0.15), 16)
        cv.blob(cv.spec, band, r(0.02, 0.12))
    if rng.random() < 0.15:
        _draw_glasses(rng, cv, face)
    if rng.random() < 0.06:
        _draw_occluder(rng, cv, skin)
    return skin


def _draw_facial_hair(rng: np.random.Generator, cv: _Canvas, face: _Face, hair: _Hair, skin: np.ndarray) -> None:
    """Stubble, beards, moustaches: drawn over the skin and labelled skin, as LaPa does."""
    r = rng.uniform
    kind = rng.choice(["stubble", "beard", "moustache", "goatee"], p=[0.45, 0.3, 0.15, 0.1])
    mid = face.mouth_y
    regions = []
    if kind in ("stubble", "beard"):
        hl = face.head()
        jaw = hl[(hl[:, 1] > face.nose_y + 0.05)]
        jaw = jaw[np.argsort(np.arctan2(jaw[:, 1] - mid, jaw[:, 0]))]
        top = np.array(
            [
                [jaw[:, 0].max(), face.ear_y + 0.1],
                [face.nose_w + 0.15, face.nose_y + 0.15],
                [-face.nose_w - 0.15, face.nose_y + 0.15],
                [jaw[:, 0].min(), face.ear_y + 0.1],
            ]
        )
        regions.append(np.concatenate([jaw, top]))
    if kind in ("moustache", "beard", "goatee"):
        regions.append(
            np.array(
                [
                    [-face.mouth_w - 0.05, mid - 0.02],
                    [-face.mouth_w * 0.6, face.nose_y + 0.1],
                    [face.mouth_w * 0.6, face.nose_y + 0.1],
                    [face.mouth_w + 0.05, mid - 0.02],
                    [0, mid - face.ulip_h * 0.7],
                ]
            )
        )
    if kind == "goatee":
        regions.append(_ellipse(0, mid + face.llip_h + 0.15, face.mouth_w * 0.7, 0.22, 16))
    col = skin * 0.55 + hair.colour * 0.45 if kind == "stubble" else hair.colour * r(0.7, 1.0)
    alpha = r(0.1, 0.35) if kind == "stubble" else r(0.6, 0.95)
    for reg in regions:
        cv.paint(reg, col, mat=M_HAIR if kind != "stubble" else None, alpha=alpha, blur=0.03 * cv.px_per_unit)


def _draw_brows(rng: np.random.Generator, cv: _Canvas, face: _Face, hair: _Hair) -> None:
    r = rng.uniform
    col = hair.colour * (r(0.6, 1.1) if hair.colour.mean() < 0.5 else r(0.4, 0.8))
    if rng.random() < 0.1:
        col = col * 0.4  # pencilled brows
    alpha = r(0.55, 1.0)
    t = np.linspace(0, 1, 12)
    for sx, cls in ((-1, LBROW), (1, RBROW)):
        x = sx * (face.brow_x0 + (face.brow_x1 - face.brow_x0) * t)
        y = face.brow_y + face.brow_drop * t - face.brow_arch * np.sin(np.pi * np.clip(t * 1.3, 0, 1))
        th = face.brow_th * (1 - (1 - face.brow_taper) * t)
        poly = np.concatenate([np.stack([x, y - th * 0.5], 1), np.stack([x, y + th * 0.5], 1)[::-1]])
        cv.paint(poly, col, cls, M_HAIR, alpha=alpha)


def _draw_eyes(rng: np.random.Generator, cv: _Canvas, face: _Face, eyeliner: bool) -> None:
    r = rng.uniform
    iris_col = _c8(_IRIS[rng.choice(len(_IRIS), p=_IRIS_P / _IRIS_P.sum())] * r(0.8, 1.2))
    sclera = np.array([0.92, 0.88, 0.85], np.float32) * r(0.7, 1.0)
    gaze = np.array([r(-0.35, 0.35), r(-0.15, 0.15)])
    lash = np.array([0.06, 0.04, 0.04], np.float32)
    t = np.linspace(0, 1, 14)
    for sx, cls in ((-1, LEYE), (1, REYE)):
        cx, cy = sx * face.ex, face.ey
        inner = np.array([sx * (face.ex - face.ew), cy + face.e_tilt * 0.5])
        outer = np.array([sx * (face.ex + face.ew), cy - face.e_tilt * 0.5])
        base = inner[None] + (outer - inner)[None] * t[:, None]
        # The upper lid peaks a little toward the inner corner.
        upper = base - np.stack([0 * t, face.eh * np.sin(np.pi * t**0.85) ** 0.8], 1)
        lower = base + np.stack([0 * t, face.eh * 0.6 * np.sin(np.pi * t**1.1)], 1)
        poly = np.concatenate([upper, lower[::-1][1:-1]])
        cv.blob(cv.sharp, upper - (0, face.eh * 0.9 + 0.03), -r(0.05, 0.18))  # lid crease
        cv.paint(poly, sclera, cls, M_EYE)
        # Iris and pupil, clipped to the eye opening; the upper lid shades the eyeball.
        q = cv.q(poly)
        roi_b = cv._roi(q, 1)
        if roi_b is not None:
            y0, y1, x0, x1 = roi_b
            off = np.array([x0 * 16, y0 * 16], np.int32)
            m = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillPoly(m, [q - off], 1, cv2.LINE_8, shift=4)
            roi = cv.img[y0:y1, x0:x1]
            over = roi.copy()
            ic = np.array([cx + gaze[0] * face.ew * 0.5, cy - face.eh * 0.15 + gaze[1] * face.eh])
            icq = cv.q(ic[None])[0] - off
            rp = r(0.36, 0.44) * face.ew * cv.px_per_unit * 16
            cv2.circle(over, (int(icq[0]), int(icq[1])), int(rp), iris_col, -1, cv2.LINE_AA, 4)
            cv2.circle(over, (int(icq[0]), int(icq[1])), int(rp * r(0.3, 0.5)), (5, 5, 5), -1, cv2.LINE_AA, 4)
            np.copyto(roi, over, where=m[..., None].astype(bool))
            cv.blob(cv.spec, _ellipse(ic[0] + face.ew * 0.12, ic[1] - face.ew * 0.12, 0.012, 0.012, 8), r(0.2, 0.7))
        cv.blob(cv.sharp, upper + np.array([0, face.eh * 0.3]), -r(0.1, 0.3))
        cv.stroke(upper, lash, r(0.012, 0.03) * (1.8 if eyeliner else 1.0), alpha=r(0.7, 1.0))
        cv.stroke(lower, lash, 0.008, alpha=r(0.1, 0.4))
        if eyeliner and rng.random() < 0.5:  # winged liner
            cv.stroke(np.array([outer, outer + np.array([sx * 0.07, -0.04])]), lash, 0.02)


def _draw_nose(rng: np.random.Generator, cv: _Canvas, face: _Face, skin: np.ndarray) -> None:
    """The nose label is the visible nose; the image shows it through shading and the nostrils."""
    r = rng.uniform
    ny, nw, bw = face.nose_y, face.nose_w, face.bridge_w
    top = face.ey - r(0.0, 0.08)
    poly = np.array(
        [
            [-bw, top],
            [-bw * 1.2, ny - 0.25],
            [-nw * 0.9, ny - 0.07],
            [-nw, ny + 0.02],
            [-nw * 0.7, ny + 0.08],
            [-nw * 0.3, ny + 0.07],
            [0, ny + 0.09],
            [nw * 0.3, ny + 0.07],
            [nw * 0.7, ny + 0.08],
            [nw, ny + 0.02],
            [nw * 0.9, ny - 0.07],
            [bw * 1.2, ny - 0.25],
            [bw, top],
        ]
    )
    cv.label(poly, NOSE)
    side = r(0.05, 0.25)
    for sx in (-1, 1):
        cv.blob(
            cv.soft,
            np.array(
                [
                    [sx * bw * 0.7, top + 0.05],
                    [sx * bw * 1.8, top + 0.05],
                    [sx * nw * 1.1, ny],
                    [sx * nw * 0.6, ny - 0.05],
                ]
            ),
            -side,
        )
        cv.blob(cv.sharp, _ellipse(sx * nw * 0.85, ny - 0.01, 0.055, 0.07, 12), -r(0.05, 0.2))  # alar crease
        nostril = _ellipse(sx * nw * 0.45, ny + 0.045, nw * 0.28, 0.028, 12, sx * 0.35)
        cv.paint(nostril, skin * r(0.15, 0.4), alpha=r(0.6, 1.0))
    cv.blob(
        cv.soft,
        np.array([[-bw * 0.4, top + 0.1], [bw * 0.4, top + 0.1], [bw * 0.5, ny - 0.05], [-bw * 0.5, ny - 0.05]]),
        r(0.04, 0.14),
    )
    cv.blob(cv.spec, _ellipse(0, ny - 0.03, 0.06, 0.045, 10), r(0.0, 0.12))
    cv.blob(cv.soft, _ellipse(0, ny + 0.13, nw * 0.9, 0.05, 12), -r(0.05, 0.3))  # under the nose


class _MouthShape(NamedTuple):
    x: np.ndarray  # -1..1 along the mouth
    X: np.ndarray  # face-unit x of each sample
    top_u: np.ndarray
    line_u: np.ndarray
    line_l: np.ndarray
    bot_l: np.ndarray


def _mouth_shape(face: _Face, n: int = 21) -> _MouthShape:
    """The lip outlines in face units (shared by the drawing and the mouth views' centring)."""
    my, mw, dx = face.mouth_y, face.mouth_w, face.mouth_dx
    hu, hl, op, sm = face.ulip_h, face.llip_h, face.open, face.smile
    x = np.linspace(-1, 1, n)
    lift = sm * x**2  # corners rise with a smile
    # Upper lip: the cupid's bow on top, the lip line below.
    bow = hu * (1 - x**2) - face.cupid * hu * np.exp(-((x / 0.12) ** 2))
    bow = bow + hu * 0.25 * np.exp(-(((np.abs(x) - 0.3) / 0.2) ** 2))
    gap = (1 - x**2) ** 0.8
    line_u = my - lift + op * 0.35 * gap
    line_l = my - lift + op * gap
    top_u = my - lift - bow
    bot_l = line_l + hl * (1 - x**2) ** 0.7
    return _MouthShape(x, dx + x * mw, top_u, line_u, line_l, bot_l)


def _mouth_centroid(face: _Face) -> np.ndarray:
    """Centroid (face units) of the lips and the open mouth: the region between the outer lip lines."""
    m = _mouth_shape(face)
    h = np.maximum(m.bot_l - m.top_u, 0.0)
    w = h.sum()
    return np.array([float((m.X * h).sum() / w), float((0.5 * (m.top_u + m.bot_l) * h).sum() / w)])


def _draw_mouth(rng: np.random.Generator, cv: _Canvas, face: _Face, skin: np.ndarray) -> None:
    r = rng.uniform
    my, mw, dx = face.mouth_y, face.mouth_w, face.mouth_dx
    hl, op, sm = face.llip_h, face.open, face.smile
    shape = _mouth_shape(face)
    x, X, top_u, line_u, line_l, bot_l = shape
    n = len(x)
    upper = np.concatenate([np.stack([X, top_u], 1), np.stack([X, line_u], 1)[::-1]])
    lower = np.concatenate([np.stack([X, line_l], 1), np.stack([X, bot_l], 1)[::-1]])

    natural = skin * np.array([0.95, 0.62, 0.65], np.float32) * r(0.75, 1.0)
    natural = natural + (np.array([0.6, 0.25, 0.3], np.float32) - natural) * r(0.0, 0.3)
    if _lum(skin) < 0.35 and rng.random() < 0.6:
        natural = skin * np.array([0.9, 0.7, 0.8], np.float32) * r(0.7, 1.0)  # darker, cooler lips
    colour_u, colour_l = natural, natural * r(1.0, 1.15)
    if rng.random() < 0.25:  # lipstick
        ls = _LIPSTICKS[rng.integers(len(_LIPSTICKS))] * r(0.85, 1.1)
        k = r(0.6, 0.95)
        colour_u, colour_l = colour_u * (1 - k) + ls * k, colour_l * (1 - k) + ls * k
    if op > 0.012:
        mouth = np.concatenate([np.stack([X, line_u], 1), np.stack([X, line_l], 1)[::-1][1:-1]])
        cv.paint(mouth, np.array([0.2, 0.06, 0.07]) * r(0.3, 1.0), MOUTH, M_FLAT)
        if op > 0.05 and rng.random() < 0.85:  # teeth
            teeth_c = np.array([0.9, 0.87, 0.8]) * r(0.7, 1.0)
            th = min(op * r(0.35, 0.6), 0.1)
            tx = np.linspace(-0.8, 0.8, 15)
            tu = my - sm * tx**2 + op * 0.35 * (1 - tx**2) ** 0.8
            teeth = np.concatenate(
                [
                    np.stack([dx + tx * mw, tu - 0.01], 1),
                    np.stack([dx + tx * mw, tu + th * (1 - tx**2) ** 0.5], 1)[::-1],
                ]
            )
            cv.paint(teeth, teeth_c, alpha=r(0.8, 1.0))
            if rng.random() < 0.4:
                s = slice(3, -3)
                tl = line_l[s] - th * 0.6 * (1 - x[s] ** 2) ** 0.5
                low = np.concatenate([np.stack([X[s], line_l[s] + 0.01], 1), np.stack([X[s], tl], 1)[::-1]])
                cv.paint(low, teeth_c * 0.9, alpha=r(0.6, 1.0))
        elif op > 0.08 and rng.random() < 0.5:  # tongue
            tongue = _ellipse(dx, line_l[n // 2] - op * 0.2, mw * 0.45, op * 0.3, 14)
            cv.paint(tongue, np.array([0.7, 0.3, 0.32]) * r(0.5, 1.0), alpha=0.9)
    cv.paint(upper, colour_u, ULIP, M_LIP)
    cv.paint(lower, colour_l, LLIP, M_LIP)
    # The upper lip faces down (darker), the lower one catches the light; the lip line is dark.
    cv.blob(cv.sharp, upper, -r(0.05, 0.2))
    cv.stroke(np.stack([X, (line_u + line_l) / 2], 1)[2:-2], natural * 0.3, 0.012, alpha=r(0.3, 0.8))
    gloss = r(0.02, 0.2) + (0.25 if rng.random() < 0.2 else 0.0)
    mid = (line_l[n // 2] + bot_l[n // 2]) / 2
    cv.blob(cv.spec, _ellipse(dx + r(-0.1, 0.1), mid, mw * 0.35, hl * 0.2, 12), gloss)
    cv.blob(cv.soft, _ellipse(dx, bot_l[n // 2] + 0.06, mw * 0.6, 0.05, 12), -r(0.05, 0.25))


def _draw_glasses(rng: np.random.Generator, cv: _Canvas, face: _Face) -> None:
    """Glasses keep the labels underneath (CelebAMask's eye_g maps to what it covers)."""
    r = rng.uniform
    frame = np.array([0.05, 0.05, 0.05]) if rng.random() < 0.6 else rng.uniform(0, 1, 3)
    w = r(0.012, 0.04)
    rx, ry = face.ew * r(1.3, 1.6), face.eh + r(0.1, 0.18)
    for sx in (-1, 1):
        c = np.array([sx * face.ex, face.ey + 0.02])
        rim = _ellipse(c[0], c[1], rx, ry, 28)
        if rng.random() < 0.4:  # squarer frames
            d = rim - c
            rim = c + np.sign(d) * np.abs(d / (rx, ry)) ** 0.6 * (rx, ry)
        if rng.random() < 0.5:  # tinted or reflective lens
            cv.paint(rim, rng.uniform(0.3, 1, 3), alpha=r(0.05, 0.25))
        cv.stroke(np.concatenate([rim, rim[:1]]), frame, w)
        cv.stroke(np.array([[sx * (face.ex + rx), face.ey], [sx * 1.05, face.ey - 0.02]]), frame, w)
    bridge = np.array([[-face.ex + rx, face.ey - 0.02], [0, face.ey - 0.05], [face.ex - rx, face.ey - 0.02]])
    cv.stroke(bridge, frame, w)


def _draw_occluder(rng: np.random.Generator, cv: _Canvas, skin: np.ndarray) -> None:
    """A hand, phone or microphone over the lower face: labelled background, as LaPa does."""
    r = rng.uniform
    col = skin * r(0.9, 1.1) if rng.random() < 0.6 else rng.uniform(0, 1, 3)
    cv.paint(_ellipse(r(-0.9, 0.9), r(0.3, 1.6), r(0.15, 0.45), r(0.2, 0.6), 20, r(-1, 1)), col, BG, M_SKIN)


# --------------------------------------------------------------------------- finishing


@lru_cache(maxsize=8)
def _grid(size: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates of a subsampled grid."""
    c = np.arange(size // step, dtype=np.float32) * step + (step - 1) / 2.0
    return np.meshgrid(c, c)


_MAT_LUTS = {
    # material: (hair texture amp, fine amp, coarse amp, lit as the person)
    M_BG: (0.0, 0.0, 1.0, 0.0),
    M_SKIN: (0.0, 1.0, 1.0, 1.0),
    M_HAIR: (1.0, 0.0, 0.3, 1.0),
    M_LIP: (0.0, 1.0, 0.5, 1.0),
    M_EYE: (0.0, 0.3, 0.0, 1.0),
    M_CLOTH: (0.0, 0.3, 1.0, 1.0),
    M_FLAT: (0.0, 0.0, 0.0, 1.0),
}


def _luts(bg_amp: float, fine: float, coarse: float, hair_amp: float) -> np.ndarray:
    lut = np.zeros((4, 256), np.float32)
    for m, (h, f, c, lit) in _MAT_LUTS.items():
        lut[:, m] = (h * hair_amp, f * fine, c * (coarse if m != M_BG else bg_amp), lit)
    return lut


def _finish(
    rng: np.random.Generator,
    cv: _Canvas,
    light: _Light,
    face: _Face | None,
    hair_curly: bool = False,
) -> np.ndarray:
    """Texture and light the albedo, then simulate the camera: cast, exposure, blur, noise, JPEG."""
    size = cv.size
    r = rng.uniform
    lut = _luts(r(0, 0.12), r(0.01, 0.045), r(0.015, 0.06), r(0.2, 0.45))
    mat = cv.mat
    fine = _tex_crop(rng, "fine", size)
    coarse = _tex_crop(rng, "coarse", size)
    hair_tex = _hair_texture(rng, cv.m, size, hair_curly)
    mod = 1.0 + cv2.LUT(mat, lut[0]) * hair_tex + cv2.LUT(mat, lut[1]) * fine + cv2.LUT(mat, lut[2]) * coarse
    fg = cv2.LUT(mat, lut[3])

    # Light: wrapped Lambert on an ellipsoid head and a cylinder neck, at quarter resolution (it is smooth).
    L = light.direction
    if face is not None:
        gx, gy = _grid(size, 4)
        inv = np.linalg.inv(cv.m[:, :2])
        px, py = gx - cv.m[0, 2], gy - cv.m[1, 2]
        u = inv[0, 0] * px + inv[0, 1] * py
        v = inv[1, 0] * px + inv[1, 1] * py
        head = v < face.b_chin * 0.9
        nx = np.where(head, u / 1.15, u / 0.9)
        ny = np.where(head, (v - 0.1) / 1.7, 0.15)
        nz = np.sqrt(np.clip(1 - nx * nx - ny * ny, 0.02, 1))
        ndl = (nx * L[0] + ny * L[1] + nz * L[2]) / np.sqrt(nx * nx + ny * ny + nz * nz)
        lam = np.clip((ndl + light.wrap) / (1 + light.wrap), 0, 1)
        small = np.stack([light.ambient + (1 - light.ambient) * lam, np.clip(ndl, 0, 1) ** 12], -1).astype(np.float32)
        big = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
        lit, spec = big[..., 0], big[..., 1] * np.float32(r(0.0, 0.3))
    else:
        lit = np.float32(light.ambient + (1 - light.ambient) * L[2])
        spec = np.float32(0)
    gain = 1.0 / (light.ambient + (1 - light.ambient) * 0.8)
    ppu = cv.px_per_unit
    shade = (
        1.0
        + cv2.GaussianBlur(cv.soft, (0, 0), max(0.06 * ppu, 0.5))
        + cv2.GaussianBlur(cv.sharp, (0, 0), max(0.012 * ppu, 0.5))
    )
    lit = (lit * gain * fg + r(0.75, 1.1) * (1 - fg)) * shade * mod
    highlight = cv2.GaussianBlur(cv.spec, (0, 0), max(0.015 * ppu, 0.5)) + spec * fg

    # Camera: light colour, exposure and white-balance error folded into per-channel gains.
    gains = light.colour * np.float32(r(0.55, 1.25)) * rng.uniform(0.93, 1.07, 3).astype(np.float32)
    img = cv.img.astype(np.float32) * (lit[..., None] * gains)
    img += (highlight * 255.0)[..., None] * gains
    out = cv2.convertScaleAbs(img)  # saturates to uint8
    if rng.random() < 0.3:  # saturation
        grey = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        s = r(-0.25, 0.3)
        out = cv2.addWeighted(out, 1 + s, grey, -s, 0)
    out = cv2.LUT(out, _gamma_lut(round(r(0.8, 1.25), 2)))
    if rng.random() < 0.3:  # a low-resolution source
        f = r(1.5, 3.0)
        small = cv2.resize(out, (int(size / f), int(size / f)), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), r(0.3, 1.1))
    elif rng.random() < 0.1:  # motion blur
        k = int(rng.integers(3, 7))
        ker = np.zeros((k, k), np.float32)
        ker[k // 2] = 1.0
        ker = cv2.warpAffine(ker, cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), r(0, 180), 1.0), (k, k))
        out = cv2.filter2D(out, -1, ker / max(float(ker.sum()), 1e-6))
    level = int(rng.integers(-1, 4))
    if level >= 0:  # sensor noise
        out = cv2.add(out, _tex_crop(rng, "white3", size, level), dtype=cv2.CV_8U)
    if rng.random() < 0.6:
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(35, 95))])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(out)


@lru_cache(maxsize=64)
def _gamma_lut(g: float) -> np.ndarray:
    return np.clip((np.arange(256) / 255.0) ** g * 255.0 + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- public API


def render_face(
    rng: np.random.Generator,
    size: int = INPUT_SIZE,
    geometry: CropGeometry | None = None,
    mouth: MouthCrop | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one face crop, or with ``mouth`` the device's zoomed mouth crop of one.

    Returns:
        (image uint8 (size, size, 3) RGB, labels uint8 (size, size) class ids).
    """
    geometry = geometry or CropGeometry()
    male = rng.random() < 0.5
    face = _Face(rng)
    hair = _Hair(rng, face, male)
    if mouth is not None:
        m = _mouth_transform(rng, face, _face_box_points(face, hair), size, mouth)
    else:
        m = _face_transform(rng, _face_box_points(face, hair), size, geometry)
    cv = _Canvas(size, m, _background(rng, size))
    _render_person(rng, cv, face, hair, male)
    img = _finish(rng, cv, _light(rng), face, hair.curly)
    return img, cv.lab


def render_negative(rng: np.random.Generator, size: int = INPUT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Render a crop without a face: clutter, skin-coloured distractors, or a body without a head."""
    m = np.array([[size / 4, 0, size / 2], [0, size / 4, size / 2]])
    cv = _Canvas(size, m, _background(rng, size))
    kind = rng.random()
    r = rng.uniform
    if kind < 0.4:  # skin-coloured blobs (hands, arms)
        skin = _skin_colour(rng)
        for _ in range(int(rng.integers(1, 4))):
            cv.paint(_ellipse(r(-2, 2), r(-2, 2), r(0.2, 1.2), r(0.2, 1.5), 20, r(0, 3)), skin, mat=M_SKIN)
    elif kind < 0.7:  # shoulders and a neck, the head above the crop
        skin = _skin_colour(rng)
        nw, top = r(0.4, 0.7), r(-2.0, -0.5)
        cv.paint(
            np.array(
                [
                    [-nw, top - 2],
                    [-nw, top + 1],
                    [-2.5, top + 1.5],
                    [-3, 3],
                    [3, 3],
                    [2.5, top + 1.5],
                    [nw, top + 1],
                    [nw, top - 2],
                ]
            ),
            skin,
            mat=M_SKIN,
        )
        cv.paint(
            np.array([[-3, top + 1.3], [0, top + r(1.5, 2.5)], [3, top + 1.3], [3, 3], [-3, 3]]),
            rng.uniform(0, 1, 3),
            mat=M_CLOTH,
        )
    img = _finish(rng, cv, _light(rng), None)
    return img, np.zeros((size, size), np.uint8)


def render_sample(rng: np.random.Generator, size: int = INPUT_SIZE) -> tuple[np.ndarray, np.ndarray, int]:
    """One sample: a face (most of the time) or a negative. Returns (image, full-res labels, face flag)."""
    u = rng.random()
    if u < NEGATIVE_FRACTION:
        img, lab = render_negative(rng, size)
        return img, lab, 0
    img, lab = render_face(rng, size, mouth=MouthCrop() if u > 1.0 - MOUTH_FRACTION else None)
    return img, lab, 1


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The generator for sample ``index`` of a set seeded ``seed`` (independent of batching)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index)])


def downsample_labels(labels: np.ndarray, stride: int = OUTPUT_STRIDE) -> np.ndarray:
    """Labels at output resolution by nearest neighbour (the same rule for synthetic and real data)."""
    return np.ascontiguousarray(labels[..., ::stride, ::stride])


def generate(n: int, seed: int, size: int = INPUT_SIZE, start: int = 0) -> SynthBatch:
    """Generate samples ``start .. start + n - 1`` of the set seeded ``seed``, deterministically."""
    out = size // OUTPUT_STRIDE
    images = np.empty((n, size, size, 3), np.uint8)
    labels = np.empty((n, out, out), np.uint8)
    face = np.empty((n,), np.uint8)
    for i in range(n):
        img, lab, f = render_sample(sample_rng(seed, start + i), size)
        images[i], labels[i], face[i] = img, downsample_labels(lab), f
    return SynthBatch(images, labels, face)


def _main(argv: list[str] | None = None) -> int:
    """Worker entry point: ``python -m training.synth --n N --seed S --start K --out FILE.npz``."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--size", type=int, default=INPUT_SIZE)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    cv2.setNumThreads(1)  # one worker per core
    b = generate(a.n, a.seed, a.size, a.start)
    np.savez(a.out, images=b.images, labels=b.labels, face=b.face)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
