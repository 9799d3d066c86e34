"""Real-face training samples from the allowed photos, labelled by the teacher.

    python -m training.real --out runs/real-allowed

Only scikit-image's ``astronaut`` and matplotlib's ``grace_hopper.jpg`` are used
(``lfw_subset`` is 25x25 grey: too small to label). Each photo is labelled by the
landmark teacher (``training.teacher``); pixels outside the teacher's face oval are
marked ``IGNORE`` (255), because the teacher cannot tell hair, ears and neck from
background there. Each photo is written in a few global tone variants (darker and
lighter, warmer and cooler) so two people stand for more of the Monk range.
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


def teacher_mask(rgb: np.ndarray, teacher) -> np.ndarray | None:
    """Teacher labels inside the face oval(s), IGNORE outside; None when no face."""
    from training.teacher import label_image, merge_labels

    faces = label_image(rgb, teacher)
    if not faces:
        return None
    labels = merge_labels(faces, rgb.shape[:2])
    return np.where(labels > 0, labels, IGNORE).astype(np.uint8)


def write_allowed_set(out: Path, teacher=None, variants=TONE_VARIANTS) -> int:
    """Write the labelled allowed photos and their tone variants; returns how many images."""
    import cv2

    from training.teacher import Teacher

    t = teacher if teacher is not None else Teacher()
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    n = 0
    for name, rgb in allowed_photos().items():
        mask = teacher_mask(rgb, t)
        if mask is None:
            raise RuntimeError(f"the teacher found no face in {name}")
        for i, (ls, da, db) in enumerate(variants):
            img = rgb if i == 0 else retone(rgb, ls, da, db)
            stem = f"{name}-{i}"
            cv2.imwrite(str(out / "images" / f"{stem}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(out / "masks" / f"{stem}.png"), mask)
            n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    """CLI."""
    ap = argparse.ArgumentParser(description="Teacher-labelled allowed photos as a folder dataset.")
    ap.add_argument("--out", type=Path, required=True, help="Dataset folder to write.")
    args = ap.parse_args(argv)
    print(f"{write_allowed_set(args.out)} images written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
