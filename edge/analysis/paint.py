"""Label painting: faces' class maps (and mouth views) warped back onto the whole image."""

from __future__ import annotations

import numpy as np

from edge.types import FaceAnalysis, mouth_window


def _warp_planes(probs: np.ndarray, m: np.ndarray, width: int, height: int) -> np.ndarray:
    """Warp (S, S, C) class-map planes to the image (bilinear; 0 outside the crop)."""
    import cv2

    out = np.zeros((height, width, probs.shape[2]), np.float32)
    for c in range(probs.shape[2]):
        out[..., c] = cv2.warpAffine(
            np.ascontiguousarray(probs[..., c], np.float32),
            m,
            (width, height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0.0,
        )
    return out


def image_probs(face: FaceAnalysis, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A face's class probabilities warped to the frame, with its mouth view blended in.

    Returns:
        (probs float32 (H, W, C), inside bool (H, W): pixels the face crop covers).
    """
    import cv2

    m = face.output_to_image()
    # Warp probabilities (not labels) so edges land at sub-pixel accuracy.
    probs = _warp_planes(face.probs, m, width, height)
    inside = (
        cv2.warpAffine(
            np.ones(face.probs.shape[:2], np.float32),
            m,
            (width, height),
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0.0,
        )
        > 0.5
    )
    if face.mouth is not None:
        mm = face.mouth.output_to_image()
        win = cv2.warpAffine(
            mouth_window(face.mouth.probs.shape[0]), mm, (width, height), flags=cv2.INTER_LINEAR, borderValue=0.0
        )[..., None]
        probs = probs * (1.0 - win) + _warp_planes(face.mouth.probs, mm, width, height) * win
    return probs, inside


def labels_to_image(faces: list[FaceAnalysis], height: int, width: int) -> np.ndarray:
    """One label image the size of the frame: each face's class map (and mouth view) warped back.

    Pixels outside every face crop are 0 (background). Where crops overlap,
    the face with the higher class confidence at that pixel wins.
    """
    out = np.zeros((height, width), np.uint8)
    best = np.zeros((height, width), np.float32)
    for fa in faces:
        probs, inside = image_probs(fa, height, width)
        lab = probs.argmax(-1).astype(np.uint8)
        conf = probs.max(-1) * (lab > 0)
        take = inside & (conf > best)
        out[take] = lab[take]
        best[take] = conf[take]
    return out
