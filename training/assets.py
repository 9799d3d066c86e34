"""Writes the images the project ships, from the allowed real photos only.

Run ``python -m training.assets`` (``make assets``): it copies scikit-image's
``astronaut`` into ``edge/data/demo/`` for the built-in demo source, and makes the
README's before/after picture (``docs/before_after.png``) by running ``vanity
analyze`` and ``vanity render`` on the allowed photos with the default bundle.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / "edge" / "data" / "demo"
BEFORE_AFTER = ROOT / "docs" / "before_after.png"


def write_demo_assets(out_dir: Path = DEMO_DIR) -> Path:
    """Write the demo photo (JPEG, quality 90) and return its path."""
    import cv2
    from skimage.data import astronaut

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "astronaut.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


def write_before_after(out: Path = BEFORE_AFTER, look: str = "bold", side: int = 300) -> Path:
    """Before | after rows for the allowed photos, each cropped square around the face, made by the CLI."""
    import json
    import subprocess
    import sys
    import tempfile

    import cv2
    import numpy as np

    from training.real import allowed_photos

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, rgb in allowed_photos().items():
            src, dst = Path(tmp) / f"{name}.png", Path(tmp) / f"{name}-{look}.png"
            cv2.imwrite(str(src), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            cli = [sys.executable, "-m", "edge.cli"]
            run = {"check": True, "capture_output": True, "text": True, "cwd": ROOT}
            subprocess.run([*cli, "render", str(src), "--look", look, "--out", str(dst)], **run)
            report = json.loads(subprocess.run([*cli, "analyze", str(src), "--json"], **run).stdout)
            box = report["faces"][0]["box"]
            half = int(0.8 * box["size"])  # a square 1.6x the face box: hair and chin in view
            x0, y0 = max(0, int(box["cx"]) - half), max(0, int(box["cy"]) - half)
            x1, y1 = min(rgb.shape[1], x0 + 2 * half), min(rgb.shape[0], y0 + 2 * half)
            pair = [cv2.imread(str(p))[y0:y1, x0:x1] for p in (src, dst)]
            rows.append(np.hstack([cv2.resize(im, (side, side), interpolation=cv2.INTER_AREA) for im in pair]))
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.vstack(rows))
    return out


if __name__ == "__main__":
    print(write_demo_assets())
    print(write_before_after())
