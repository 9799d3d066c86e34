"""How the default bundle does on real faces: `vanity analyze` vs the landmark teacher.

Usage (after `make teacher`)::

    .venv/bin/python benchmarks/eval_real_faces.py [--model BUNDLE] [--no-refine] [--json]

For each allowed real photo (scikit-image's astronaut, matplotlib's grace_hopper.jpg),
runs ``vanity analyze IMAGE --out LABELS.png`` exactly as a user would, labels the
same photo with the teacher (MediaPipe FaceMesh through LiteRT, ``vanity label``),
and reports per class group (lips, eyes, brows, skin, nose) the F1 of the model
against the teacher. ``--no-refine`` turns the mouth refinement pass off
(``analysis.refine_mouth = false``) to measure what it adds.

The teacher has no opinion outside the face oval (hair, ears, neck, forehead under
the hairline are background for it), so F1 is computed inside the teacher's face
region dilated by 4% of the face size; pixels further out are not scored.
Only allowed photos are used; these photos were never in the training data unless
the training recipe says so (see README).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GROUPS = ("lips", "eyes", "brows", "skin", "nose")


VIEWS = ("photo", "rolled+25", "rolled-40", "close-up", "grey", "half")
"""``--views``: each photo as is, rolled about its face, cropped to it, in grey, and at half its size."""


def view_of(rgb: np.ndarray, view: str, face: tuple[float, float, float]) -> np.ndarray:
    """A harder view: rolled about the face centre, a square close-up of 0.8x the face box, grey, half size."""
    cx, cy, size = face
    if view.startswith("rolled"):
        m = cv2.getRotationMatrix2D((cx, cy), float(view.removeprefix("rolled")), 1.0)
        return cv2.warpAffine(rgb, m, rgb.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
    if view == "close-up":
        h = int(0.4 * size)
        y0, x0 = max(int(cy) - h, 0), max(int(cx) - h, 0)
        return np.ascontiguousarray(rgb[y0 : int(cy) + h, x0 : int(cx) + h])
    if view == "grey":
        return cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    if view == "half":
        return cv2.resize(rgb, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    return rgb


def evaluate(model: Path | None = None, refine: bool = True, views=("photo",)) -> dict[str, dict[str, float]]:
    """Per photo (and view), per group F1 of ``vanity analyze`` against the teacher."""
    from training.real import allowed_photos, teacher_region_f1
    from training.teacher import Teacher, label_image, merge_labels

    teacher = Teacher()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "vanity.toml"
        config.write_text(f"[analysis]\nrefine_mouth = {str(refine).lower()}\n")
        for name, photo in allowed_photos().items():
            photo_faces = label_image(photo, teacher)
            x, y, w, h = photo_faces[0].box
            for view in views:
                rgb = view_of(photo, view, (x + w / 2, y + h / 2, max(w, h)))
                key = name if view == "photo" else f"{name} {view}"
                src = Path(tmp) / f"{name}.png"
                out = Path(tmp) / f"{name}-labels.png"
                cv2.imwrite(str(src), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                cmd = [
                    sys.executable,
                    "-m",
                    "edge.cli",
                    "analyze",
                    str(src),
                    "--out",
                    str(out),
                    "--config",
                    str(config),
                ]
                if model is not None:
                    cmd += ["--model", str(model)]
                subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
                pred = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
                faces = photo_faces if view == "photo" else label_image(rgb, teacher)
                if not faces:
                    raise RuntimeError(f"{key}: the teacher finds no face; this view cannot be scored")
                truth = merge_labels(faces, rgb.shape[:2])
                size = max(max(f.box[2], f.box[3]) for f in faces)
                f1 = teacher_region_f1(pred, truth, size, GROUPS)
                results[key] = {g: round(v, 3) for g, v in f1.items()}
    results["mean"] = {g: round(float(np.mean([results[n][g] for n in results])), 3) for g in GROUPS}
    return results


def main() -> None:
    """CLI."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=None, help="Bundle to evaluate (default: the bundled one).")
    ap.add_argument("--no-refine", action="store_true", help="Turn the mouth refinement pass off.")
    ap.add_argument("--views", action="store_true", help="Also score rolled and close-up views of each photo.")
    ap.add_argument("--json", action="store_true", help="Print JSON.")
    args = ap.parse_args()
    res = evaluate(args.model, refine=not args.no_refine, views=VIEWS if args.views else ("photo",))
    if args.json:
        print(json.dumps(res, indent=2))
        return
    width = max(len(n) for n in res) + 2
    print(f"{'photo':<{width}}" + "".join(f"{g:>8}" for g in GROUPS))
    for name, row in res.items():
        print(f"{name:<{width}}" + "".join(f"{row[g]:>8.3f}" for g in GROUPS))


if __name__ == "__main__":
    main()
