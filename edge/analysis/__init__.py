"""Face analysis: one parse step, used by the live tracker and by the still-image search.

- :mod:`edge.analysis.parse`: crop a face box -> LiteRT parse -> class map and the face box it
  finds; the mouth refinement pass. Both paths below call these, and only these, to parse.
- :mod:`edge.analysis.tracker`: the live path (:class:`Analyzer`): detect once, then track from
  the parser's own output, smoothed; each frame gives a :class:`TrackResult` with its stage timings.
- :mod:`edge.analysis.still`: still images (:func:`analyze_still`): the detector's search,
  refinement from the parse's own box, test-time augmentation.
- :mod:`edge.analysis.paint`: class maps warped back to the image (:func:`labels_to_image`).
"""

from __future__ import annotations

from edge.analysis.paint import image_probs, labels_to_image
from edge.analysis.parse import box_from_probs, keep_one_mouth, mouth_center, parse_mouth
from edge.analysis.still import FlipAveraged, analyze_still, disagreement, parse_mouth_zooms
from edge.analysis.tracker import Analyzer, OneEuro, StageTimes, TrackResult

__all__ = [
    "Analyzer",
    "FlipAveraged",
    "OneEuro",
    "StageTimes",
    "TrackResult",
    "analyze_still",
    "box_from_probs",
    "disagreement",
    "image_probs",
    "keep_one_mouth",
    "labels_to_image",
    "mouth_center",
    "parse_mouth",
    "parse_mouth_zooms",
]
