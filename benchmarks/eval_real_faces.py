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


def evaluate(model: Path | None = None, refine: bool = True) -> dict[str, dict[str, float]]:
    """Per photo, per group F1 of ``vanity analyze`` against the teacher."""
    from training.real import allowed_photos, teacher_region_f1
    from training.teacher import Teacher, label_image, merge_labels

    teacher = Teacher()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "vanity.toml"
        config.write_text(f"[analysis]\nrefine_mouth = {str(refine).lower()}\n")
        for name, rgb in allowed_photos().items():
            src = Path(tmp) / f"{name}.png"
            out = Path(tmp) / f"{name}-labels.png"
            cv2.imwrite(str(src), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            cmd = [sys.executable, "-m", "edge.cli", "analyze", str(src), "--out", str(out), "--config", str(config)]
            if model is not None:
                cmd += ["--model", str(model)]
            subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
            pred = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
            faces = label_image(rgb, teacher)
            truth = merge_labels(faces, rgb.shape[:2])
            size = max(max(f.box[2], f.box[3]) for f in faces)
            f1 = teacher_region_f1(pred, truth, size, GROUPS)
            results[name] = {g: round(v, 3) for g, v in f1.items()}
    results["mean"] = {g: round(float(np.mean([results[n][g] for n in results])), 3) for g in GROUPS}
    return results


def main() -> None:
    """CLI."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=None, help="Bundle to evaluate (default: the bundled one).")
    ap.add_argument("--no-refine", action="store_true", help="Turn the mouth refinement pass off.")
    ap.add_argument("--json", action="store_true", help="Print JSON.")
    args = ap.parse_args()
    res = evaluate(args.model, refine=not args.no_refine)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"{'photo':<14}" + "".join(f"{g:>8}" for g in GROUPS))
    for name, row in res.items():
        print(f"{name:<14}" + "".join(f"{row[g]:>8.3f}" for g in GROUPS))


if __name__ == "__main__":
    main()
