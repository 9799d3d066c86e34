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

from edge.analysis.paint import labels_to_image
from edge.analysis.still import analyze_still
from edge.analysis.tracker import Analyzer, StageTimes, TrackResult

__all__ = ["Analyzer", "StageTimes", "TrackResult", "analyze_still", "labels_to_image"]
