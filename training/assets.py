"""Writes the images the project ships, from the allowed real photos only.

Run ``python -m training.assets`` (``make assets``): it copies scikit-image's
``astronaut`` into ``edge/data/demo/`` for the built-in demo source.
"""

from __future__ import annotations

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent.parent / "edge" / "data" / "demo"


def write_demo_assets(out_dir: Path = DEMO_DIR) -> Path:
    """Write the demo photo (JPEG, quality 90) and return its path."""
    import cv2
    from skimage.data import astronaut

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "astronaut.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


if __name__ == "__main__":
    print(write_demo_assets())
