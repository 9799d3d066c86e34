"""A still image, or a folder of images played as a loop."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from edge.files import is_image_file
from edge.sources.base import Pacer, SourceError

log = logging.getLogger(__name__)


def decode_rgb(data: bytes, name: object = "image") -> np.ndarray:
    """Decode an encoded image (JPEG, PNG, ...) to RGB uint8; raises SourceError naming ``name``."""
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if img is None:
        raise SourceError(f"{name}: not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as RGB uint8; raises SourceError naming the file.

    The bytes are read by Python and decoded in memory: OpenCV never sees the path, because
    ``cv2.imread`` on a name that is not valid UTF-8 (``os.fsdecode(b"x\\xff.jpg")``) kills the process.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise SourceError(f"{path}: cannot read ({e.strerror or e})") from e
    return decode_rgb(data, path)


def write_image(path: Path, bgr: np.ndarray) -> None:
    """Encode a BGR (or single-channel) image in the format its suffix names and write it.

    Encoded in memory and written by Python, for the same reason as :func:`read_rgb`.
    Raises ValueError for a suffix OpenCV cannot encode, OSError when the file cannot be written.
    """
    import cv2

    path = Path(path)
    suffix = path.suffix.lower()
    try:
        ok, buf = cv2.imencode(suffix, bgr) if suffix else (False, None)
    except cv2.error:
        ok, buf = False, None
    if not ok or buf is None:
        kind = repr(suffix) if suffix else "a file without a suffix"
        raise ValueError(f"{path}: cannot write an image as {kind} (use .png or .jpg)")
    path.write_bytes(buf.tobytes())


class ImageSource:
    """Plays one image, or each image of a folder for ``hold_s`` seconds, forever."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.name = f"image:{cfg.path}"
        self._pacer = Pacer(cfg.fps)
        self._frames: list[np.ndarray] = []
        self._t0 = time.monotonic()

    def open(self) -> None:
        """Load the image(s); unreadable files in a folder are skipped, not fatal."""
        p = Path(self.cfg.path)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if is_image_file(f))
            frames = []
            for f in files:
                try:
                    frames.append(read_rgb(f))
                except SourceError as e:
                    log.warning("skipping %s", e)
                    continue
            if not frames:
                raise SourceError(f"{p}: no readable images in the folder")
            self._frames = frames
        elif p.is_file():
            self._frames = [read_rgb(p)]
        else:
            raise SourceError(f"{p}: no such file or folder")
        self._t0 = time.monotonic()

    def read(self) -> np.ndarray:
        """The current image (a copy, so later stages may draw on it)."""
        if not self._frames:
            self.open()
        self._pacer.wait()
        i = int((time.monotonic() - self._t0) / self.cfg.hold_s) % len(self._frames)
        return self._frames[i].copy()

    def close(self) -> None:
        """Drop the images."""
        self._frames = []


def create(cfg) -> ImageSource:
    """Factory used by :func:`edge.sources.make_source`."""
    return ImageSource(cfg)
