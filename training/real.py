"""Real-face training samples from the allowed photos, labelled by the teacher.

    python -m training.real --out runs/real-allowed

Only scikit-image's ``astronaut`` and matplotlib's ``grace_hopper.jpg`` are used
(``lfw_subset`` is 25x25 grey: too small to label). Each photo is labelled by the
landmark teacher (``training.teacher``); pixels outside the teacher's face oval are
marked ``IGNORE`` (255), because the teacher cannot tell hair, ears and neck from
background there. Each photo is written in a few global tone variants (darker and
lighter, warmer and cooler) so two people stand for more of the Monk range, and
optionally in reshaped variants: a smooth elastic warp of the whole face plus a
change of the mouth's width and the lips' thickness, sometimes with lipstick
painted on, so two real faces stand for more face shapes (labels warped alike).
The result is a plain ``images/`` + ``masks/`` folder, read with ``folder:PATH*N``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edge.contract import IGNORE

# (L* scale, a* shift, b* shift): from the photo as it is to much deeper and lighter skin.
TONE_VARIANTS: tuple[tuple[float, float, float], ...] = (
    (1.0, 0.0, 0.0),
    (0.78, 3.0, 4.0),
    (0.58, 5.0, 6.0),
    (0.42, 4.0, 3.0),
    (1.08, -2.0, -4.0),
    (0.9, -3.0, 6.0),
)


def allowed_photos() -> dict[str, np.ndarray]:
    """The real face photos the project may train on, as RGB uint8."""
    import cv2
    import matplotlib.cbook as cbook
    from skimage.data import astronaut

    grace = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    return {"astronaut": astronaut(), "grace_hopper": cv2.cvtColor(grace, cv2.COLOR_BGR2RGB)}


def retone(rgb: np.ndarray, l_scale: float, da: float, db: float) -> np.ndarray:
    """A global tone change in CIELAB (keeps texture; shifts lightness and hue)."""
    import cv2

    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    lab[..., 0] *= l_scale
    lab[..., 1] += da
    lab[..., 2] += db
    out = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


LIPSTICK_LAB: tuple[tuple[float, float, float], ...] = (
    (45.0, 60.0, 35.0),  # red
    (35.0, 45.0, 10.0),  # berry
    (65.0, 45.0, 5.0),  # pink
    (60.0, 20.0, 20.0),  # nude
    (28.0, 30.0, 0.0),  # plum
    (62.0, 45.0, 40.0),  # coral
)
"""CIELAB shades painted on the lips of some reshaped variants."""


def reshape_face(
    rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator, amplitude: float = 0.03
) -> tuple[np.ndarray, np.ndarray]:
    """A new face shape from a labelled photo: smooth elastic warp plus mouth width / lip thickness change.

    Args:
        rgb: the photo, uint8 RGB.
        mask: its labels (IGNORE allowed); warped with the same map.
        rng: randomness.
        amplitude: standard deviation of the elastic displacement, in face sizes.
    """
    import cv2

    from edge.contract import CLASS_ID, MOUTH_CLASSES

    h, w = mask.shape
    face = np.isin(mask, range(1, len(CLASS_ID)))
    ys, xs = np.nonzero(face)
    size = float(max(np.ptp(xs), np.ptp(ys))) if xs.size else float(min(h, w))
    # Destination pixel -> source pixel (cv2.remap), so the map is "where to read from".
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    dx, dy = (
        cv2.resize(rng.normal(0, amplitude * size, (4, 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        for _ in range(2)
    )
    my, mx = np.nonzero(np.isin(mask, [CLASS_ID[c] for c in MOUTH_CLASSES]))
    if mx.size:
        cx, cy = float(mx.mean()), float(my.mean())
        sx, sy = float(rng.uniform(0.85, 1.15)), float(rng.uniform(0.75, 1.35))
        reach = max(float(np.ptp(mx)), 8.0)
        win = np.exp(-(((gx - cx) / reach) ** 2 + ((gy - cy) / (0.6 * reach)) ** 2))
        dx += (gx - cx) * (1.0 / sx - 1.0) * win
        dy += (gy - cy) * (1.0 / sy - 1.0) * win
    mapx, mapy = gx + dx, gy + dy
    out = cv2.remap(rgb, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    lab = cv2.remap(mask, mapx, mapy, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=IGNORE)
    return out, lab


def paint_lips(rgb: np.ndarray, mask: np.ndarray, shade: tuple[float, float, float], strength: float) -> np.ndarray:
    """Lipstick on the labelled lips: the mean colour moves to ``shade`` (CIELAB), the texture stays."""
    import cv2

    from edge.contract import CLASS_ID

    lips = np.isin(mask, [CLASS_ID["upper_lip"], CLASS_ID["lower_lip"]]).astype(np.float32)
    if lips.sum() < 10:
        return rgb
    alpha = cv2.GaussianBlur(lips, (0, 0), 1.0)[..., None] * strength
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    mean = lab[lips > 0].mean(0)
    painted = lab + (np.asarray(shade, np.float32) - mean)
    blended = cv2.cvtColor(lab * (1 - alpha) + painted * alpha, cv2.COLOR_LAB2RGB)
    out = rgb.copy()
    touched = alpha[..., 0] > 1e-3  # elsewhere the Lab round trip would only add rounding noise
    out[touched] = np.clip(blended[touched] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


def teacher_mask(rgb: np.ndarray, teacher) -> np.ndarray | None:
    """Teacher labels inside the face oval(s), IGNORE outside; None when no face."""
    from training.teacher import label_image, merge_labels

    faces = label_image(rgb, teacher)
    if not faces:
        return None
    labels = merge_labels(faces, rgb.shape[:2])
    return np.where(labels > 0, labels, IGNORE).astype(np.uint8)


def teacher_region_f1(pred: np.ndarray, truth: np.ndarray, face_size: float, groups) -> dict[str, float]:
    """Group F1 of a predicted label image against teacher labels, scored near the face only.

    The teacher has no opinion outside the face oval (hair, ears, neck, forehead under
    the hairline are background for it), so only the teacher's face region, dilated by
    4% of the face size, is scored.
    """
    import cv2

    from edge.contract import CLASS_GROUPS, CLASSES
    from training.metrics import confusion_matrix, group_f1

    k = max(3, int(0.04 * face_size)) | 1
    region = cv2.dilate((truth > 0).astype(np.uint8), np.ones((k, k), np.uint8)) > 0
    conf = confusion_matrix(pred[region], truth[region], len(CLASSES))
    f1 = group_f1(conf, {g: CLASS_GROUPS[g] for g in groups})
    return {g: f1.get(g, 0.0) for g in groups}


def write_allowed_set(out: Path, teacher=None, variants=TONE_VARIANTS, reshapes: int = 0, seed: int = 0) -> int:
    """Write the labelled allowed photos, their tone variants and reshaped variants; returns how many images.

    Args:
        out: folder to write (``images/``, ``masks/``).
        teacher: a loaded teacher (default: the installed one).
        variants: tone variants, (L* scale, a* shift, b* shift) each.
        reshapes: extra reshaped copies per tone variant (see :func:`reshape_face`).
        seed: seed of the reshapes and lipsticks.
    """
    import cv2

    from training.teacher import Teacher

    t = teacher if teacher is not None else Teacher()
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = 0
    for name, rgb in allowed_photos().items():
        mask = teacher_mask(rgb, t)
        if mask is None:
            raise RuntimeError(f"the teacher found no face in {name}")
        for i, (ls, da, db) in enumerate(variants):
            toned = rgb if i == 0 else retone(rgb, ls, da, db)
            for j in range(1 + reshapes):
                img, lab = toned, mask
                if j:
                    img, lab = reshape_face(toned, mask, rng)
                    if rng.random() < 0.4:
                        shade = LIPSTICK_LAB[rng.integers(len(LIPSTICK_LAB))]
                        img = paint_lips(img, lab, shade, float(rng.uniform(0.5, 0.9)))
                stem = f"{name}-{i}" + (f"-r{j}" if j else "")
                cv2.imwrite(str(out / "images" / f"{stem}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
                cv2.imwrite(str(out / "masks" / f"{stem}.png"), lab)
                n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    """CLI."""
    ap = argparse.ArgumentParser(description="Teacher-labelled allowed photos as a folder dataset.")
    ap.add_argument("--out", type=Path, required=True, help="Dataset folder to write.")
    ap.add_argument("--reshapes", type=int, default=0, help="Reshaped copies per tone variant.")
    args = ap.parse_args(argv)
    print(f"{write_allowed_set(args.out, reshapes=args.reshapes)} images written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
