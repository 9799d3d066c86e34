"""How the default bundle does on real faces: `vanity analyze` vs the landmark teacher.

Usage (after `make teacher`)::

    .venv/bin/python benchmarks/eval_real_faces.py [--model BUNDLE] [--json]

For each allowed real photo (scikit-image's astronaut, matplotlib's grace_hopper.jpg),
runs ``vanity analyze IMAGE --out LABELS.png`` exactly as a user would, labels the
same photo with the teacher (MediaPipe FaceMesh through LiteRT, ``vanity label``),
and reports per class group (lips, eyes, brows, skin, nose) the F1 of the model
against the teacher.

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


def evaluate(model: Path | None = None) -> dict[str, dict[str, float]]:
    """Per photo, per group F1 of ``vanity analyze`` against the teacher."""
    from edge.contract import CLASS_GROUPS, CLASSES
    from training.metrics import confusion_matrix, group_f1
    from training.real import allowed_photos
    from training.teacher import Teacher, label_image, merge_labels

    teacher = Teacher()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, rgb in allowed_photos().items():
            src = Path(tmp) / f"{name}.png"
            out = Path(tmp) / f"{name}-labels.png"
            cv2.imwrite(str(src), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            cmd = [sys.executable, "-m", "edge.cli", "analyze", str(src), "--out", str(out)]
            if model is not None:
                cmd += ["--model", str(model)]
            subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
            pred = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
            faces = label_image(rgb, teacher)
            truth = merge_labels(faces, rgb.shape[:2])
            size = max(max(f.box[2], f.box[3]) for f in faces)
            k = max(3, int(0.04 * size)) | 1
            region = cv2.dilate((truth > 0).astype(np.uint8), np.ones((k, k), np.uint8)) > 0
            conf = confusion_matrix(pred[region], truth[region], len(CLASSES))
            f1 = group_f1(conf, {g: CLASS_GROUPS[g] for g in GROUPS})
            results[name] = {g: round(f1.get(g, 0.0), 3) for g in GROUPS}
    results["mean"] = {g: round(float(np.mean([results[n][g] for n in results])), 3) for g in GROUPS}
    return results


def main() -> None:
    """CLI."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=None, help="Bundle to evaluate (default: the bundled one).")
    ap.add_argument("--json", action="store_true", help="Print JSON.")
    args = ap.parse_args()
    res = evaluate(args.model)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"{'photo':<14}" + "".join(f"{g:>8}" for g in GROUPS))
    for name, row in res.items():
        print(f"{name:<14}" + "".join(f"{row[g]:>8.3f}" for g in GROUPS))


if __name__ == "__main__":
    main()
