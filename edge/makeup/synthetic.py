"""A drawn face with its exact FaceAnalysis, for tests, benchmarks and demos (no model needed)."""

from __future__ import annotations

import cv2
import numpy as np

from edge.colour import hex_to_rgb
from edge.contract import CLASS_ID, CLASSES, CropGeometry, FaceBox, crop_matrix
from edge.drawn import draw_face_labels
from edge.types import FaceAnalysis


def synthetic_labels(size: int = 64) -> np.ndarray:
    """Label map (size x size, uint8) of a frontal face with a slightly open mouth (:data:`edge.drawn.FACE_LAYOUT`)."""
    return draw_face_labels(size)


def synthetic_face(
    height: int = 480,
    width: int = 640,
    face_px: float = 200.0,
    skin: str = "#c68e6a",
    center: tuple[float, float] | None = None,
    angle_deg: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, FaceAnalysis, np.ndarray]:
    """Draw a textured face on a grey scene.

    Args:
        height: frame height.
        width: frame width.
        face_px: side of the face box in pixels.
        skin: skin colour '#rrggbb' (the mean of the drawn skin).
        center: face box centre; the frame centre by default.
        angle_deg: face roll.
        seed: texture noise seed.

    Returns:
        (frame uint8 RGB, FaceAnalysis with soft probabilities, per-pixel label image).
    """
    rng = np.random.default_rng(seed)
    cx, cy = center if center is not None else (width / 2.0, height / 2.0)
    box = FaceBox(cx, cy, face_px, angle_deg)
    m = crop_matrix(box, CropGeometry())
    labels = synthetic_labels()
    one_hot = np.eye(len(CLASSES), dtype=np.float32)[labels]
    # Soft, model-like probabilities: a little blur of the one-hot map, renormalised.
    probs = cv2.GaussianBlur(one_hot, (0, 0), 0.7)
    probs /= probs.sum(axis=2, keepdims=True)
    face = FaceAnalysis(box, m, probs, labels, 0.99, stride=2)

    out_to_img = face.output_to_image()
    label_img = cv2.warpAffine(
        labels, out_to_img, (width, height), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    # Neutral scene: a soft grey gradient with a few muted colour patches.
    frame = np.empty((height, width, 3), np.float32)
    frame[...] = (150.0 + 40.0 * xx / width - 20.0 * yy / height)[..., None]
    for (px, py, r), col in zip(
        ((0.12, 0.2, 0.08), (0.88, 0.75, 0.1), (0.85, 0.15, 0.07)),
        ((120, 140, 170), (170, 150, 120), (140, 165, 140)),
        strict=True,
    ):
        cv2.circle(frame, (int(px * width), int(py * height)), int(r * width), col, -1)
    skin_rgb = hex_to_rgb(skin)
    colours = {
        "skin": skin_rgb,
        "nose": skin_rgb * 1.04,
        "left_eyebrow": skin_rgb * 0.35,
        "right_eyebrow": skin_rgb * 0.35,
        "left_eye": np.array([235.0, 232.0, 228.0]),
        "right_eye": np.array([235.0, 232.0, 228.0]),
        "upper_lip": skin_rgb * np.array([0.9, 0.62, 0.62]),
        "lower_lip": skin_rgb * np.array([0.95, 0.66, 0.66]),
        "inner_mouth": np.array([238.0, 236.0, 228.0]),  # teeth
        "hair": np.array([60.0, 45.0, 35.0]),
    }
    for name, col in colours.items():
        frame[label_img == CLASS_ID[name]] = np.clip(col, 0, 255)
    # Texture: fine noise everywhere on the face, plus a lip sheen and soft shading.
    face_px_mask = label_img > 0
    noise = cv2.GaussianBlur(rng.normal(0.0, 6.0, (height, width)).astype(np.float32), (0, 0), 0.8)
    frame[face_px_mask] += noise[face_px_mask][:, None]
    lips = (label_img == CLASS_ID["upper_lip"]) | (label_img == CLASS_ID["lower_lip"])
    sheen = np.exp(-(((xx - cx) / (0.08 * face_px)) ** 2) - ((yy - (cy + 0.28 * face_px)) / (0.02 * face_px)) ** 2)
    frame[lips] += 40.0 * sheen[lips][:, None]
    frame = np.clip(frame, 0, 255).astype(np.uint8)
    return frame, face, label_img
