"""A fake parser for tests: draws a frontal face in crop space, ignoring pixels."""

from __future__ import annotations

import numpy as np

from edge.contract import CLASSES, INPUT_SIZE, OUTPUT_STRIDE, BundleMetadata, MouthCrop, OutputSpec
from edge.drawn import draw_face_labels
from edge.runtime.base import ParseOutput


def fake_labels(size: int = INPUT_SIZE // OUTPUT_STRIDE) -> np.ndarray:
    """A label map of a frontal face filling the crop as the contract's geometry implies (the drawn face)."""
    return draw_face_labels(size)


class FakeParser:
    """Returns the same drawn face (or nothing) for every crop."""

    runtime_name = "fake"

    def __init__(self, face: bool = True, mouth: bool = False):
        """Args: face: whether crops hold a face; mouth: whether the bundle offers the mouth refinement pass."""
        self.face = face
        labels = fake_labels() if face else np.zeros((64, 64), np.uint8)
        self._probs = np.eye(len(CLASSES), dtype=np.float32)[labels]
        self.metadata = BundleMetadata(
            tflite_sha256="0" * 64,
            name="fake",
            outputs={
                "parts": OutputSpec(name="parts", shape=[1, 64, 64, len(CLASSES)], meaning="class probabilities"),
                "face": OutputSpec(name="face", shape=[1, 1], meaning="face probability"),
            },
            mouth=MouthCrop() if mouth else None,
        )
        self.calls = 0

    def __call__(self, crop: np.ndarray) -> ParseOutput:
        """Ignore the crop; return the drawn face."""
        self.calls += 1
        return ParseOutput(self._probs.copy(), 0.99 if self.face else 0.01)
