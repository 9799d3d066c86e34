"""Small file helpers every package shares: which files are images, and SHA-256 digests.

The one home for these (``training``, ``convert``, ``benchmarks`` and ``deploy`` import
them from here; ``edge`` imports nothing from those packages).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

VIDEO_SUFFIXES: frozenset[str] = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".mjpg", ".mjpeg"})
"""File suffixes (lower case) read as a video source."""

IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
"""Lower-case file suffixes of the still images OpenCV reads (``cv2.imread``)."""


def is_image_file(path: Path) -> bool:
    """Whether the path's suffix (any case) names a still image (``IMAGE_SUFFIXES``)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def utf8_name(name: object, what: str = "file") -> str:
    """``name`` as a string OpenCV can be given; raises ValueError for one that is not valid UTF-8.

    OpenCV converts path strings to UTF-8 and crashes the process (SIGSEGV) on one that is not.
    """
    s = str(name)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(s).decode("utf-8", "backslashreplace")
        raise ValueError(f"{shown}: the {what} name is not valid UTF-8; rename it") from None
    return s


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (a model file need not fit in memory twice)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
