"""BlazeFace: MediaPipe's learned face detector, shipped in the package and run through LiteRT.

The model file is MediaPipe 0.10.21's own (Apache-2.0), extracted unchanged from
the ``mediapipe`` wheel on PyPI; ``edge/data/detector/`` holds it with the
wheel's ``LICENSE`` and ``provenance.json`` (package, version, path in the
wheel, SHA-256). Nothing is downloaded at run time, and MediaPipe is never
imported: the file runs through the same interpreter chain as the parser
(:mod:`edge.runtime`).

Each detection has a score (the model's sigmoid, which MediaPipe thresholds at
0.5-0.6) and six keypoints; the face's roll is the angle of its eye line, so a
tilted head needs no rolled copy of the frame. The box is the contract's face
box (:class:`edge.contract.FaceBox`), placed from the keypoints so that it does
not grow when the head rolls.
"""

from __future__ import annotations

import json
import math
from typing import NamedTuple

import numpy as np

from edge.config import PACKAGE_DATA
from edge.contract import FaceBox
from edge.detectors import Detection
from edge.files import sha256_bytes

DETECTOR_DIR = PACKAGE_DATA / "detector"
"""Shipped detector models, their licence and provenance."""

PROVENANCE_FILE = DETECTOR_DIR / "provenance.json"


class DetectorModelError(RuntimeError):
    """The shipped detector model is missing, altered, or cannot be loaded."""


class Variant(NamedTuple):
    """One BlazeFace model and its SSD anchor layout (MediaPipe's SsdAnchorsCalculator options).

    Attributes:
        file: model file name in :data:`DETECTOR_DIR`.
        input: side of the square float input, pixels.
        layers: (stride, anchors per cell) per feature map.
        min_score: MediaPipe's own score threshold for this model.
    """

    file: str
    input: int
    layers: tuple[tuple[int, int], ...]
    min_score: float


VARIANTS: dict[str, Variant] = {
    "full_range": Variant("face_detection_full_range_sparse.tflite", 192, ((4, 1),), 0.6),
}
"""The shipped BlazeFace models. The wheel's short-range model (128x128, stride 8/16 anchors) is
not shipped: on scikit-image's face-free pictures it fired on a cat, a coffee cup, cells and the
colour wheel, where the full-range model fired on none above its threshold."""


def anchors(variant: Variant) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1] input coordinates, in the model's output order."""
    out = []
    for stride, per_cell in variant.layers:
        g = variant.input // stride
        ys, xs = np.mgrid[0:g, 0:g]
        centres = np.stack([(xs + 0.5) / g, (ys + 0.5) / g], axis=-1).reshape(-1, 2)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


def provenance() -> dict:
    """The shipped models' provenance record (``provenance.json``).

    Raises:
        DetectorModelError: the record is missing or unreadable.
    """
    try:
        return json.loads(PROVENANCE_FILE.read_text())
    except (OSError, ValueError) as e:
        raise DetectorModelError(f"{PROVENANCE_FILE}: detector provenance unreadable ({e})") from e


def load_model(variant: Variant) -> bytes:
    """The model's bytes, checked against the SHA-256 pinned in ``provenance.json``.

    Raises:
        DetectorModelError: the file is missing, unlisted or altered.
    """
    path = DETECTOR_DIR / variant.file
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DetectorModelError(f"{path}: detector model missing ({e.strerror or e})") from e
    pinned = provenance().get("files", {}).get(variant.file, {}).get("sha256")
    if pinned is None:
        raise DetectorModelError(f"{path}: not listed in {PROVENANCE_FILE.name}")
    digest = sha256_bytes(data)
    if digest != pinned:
        raise DetectorModelError(f"{path}: SHA-256 {digest[:12]}… does not match the pinned {pinned[:12]}…")
    return data


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with (N, 4) boxes."""
    x0 = np.maximum(a[0], b[:, 0])
    y0 = np.maximum(a[1], b[:, 1])
    x1 = np.minimum(a[2], b[:, 2])
    y1 = np.minimum(a[3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return inter / np.maximum(area, 1e-9)


class Hits(NamedTuple):
    """Raw model hits in image pixels: scores (N,), xyxy boxes (N, 4), keypoints (N, 6, 2)."""

    scores: np.ndarray
    boxes: np.ndarray
    kps: np.ndarray


class Face(NamedTuple):
    """One face after suppression: its score, xyxy box (4,) and keypoints (6, 2)."""

    score: float
    box: np.ndarray
    kps: np.ndarray


def weighted_nms(scores: np.ndarray, boxes: np.ndarray, kps: np.ndarray, iou: float) -> list[Face]:
    """MediaPipe's weighted non-maximum suppression: each face is the score-weighted mean of its overlapping hits.

    A hit whose centre lies inside a kept face's box is the same face too (a face
    cut by a tile's edge gives a smaller box inside the whole one).

    Returns:
        (score, xyxy box, keypoints) per face, best first.
    """
    order = np.argsort(-scores)
    scores, boxes, kps = scores[order], boxes[order], kps[order]
    alive = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        cx = (boxes[:, 0] + boxes[:, 2]) / 2
        cy = (boxes[:, 1] + boxes[:, 3]) / 2
        b = boxes[i]
        inside = (cx > b[0]) & (cx < b[2]) & (cy > b[1]) & (cy < b[3])
        same = alive & ((_iou(b, boxes) >= iou) | inside)
        w = scores[same][:, None]
        box = (boxes[same] * w).sum(0) / w.sum()
        kp = (kps[same] * w[:, :, None]).sum(0) / w.sum()
        out.append(Face(float(scores[i]), box, kp))
        alive &= ~same
    return out


class BlazeFaceDetector:
    """BlazeFace over the whole frame (live), and for stills also zoomed out and in tiles.

    The full-range model finds faces of about 36-120 of its 192 input pixels
    reliably. The live pass letterboxes the frame into the input once: at 640x480
    that covers faces of ~120-400 px, a customer at a mirror. A still image is also
    searched zoomed out (the frame in half the input: faces that fill it) and in
    overlapping square tiles, halved until a ``cfg.min_face_px`` face covers
    ``cfg.min_input_face`` model pixels (group pictures).
    """

    def __init__(self, cfg):
        from edge.runtime.base import interpreter_class

        self.cfg = cfg
        self.variant = VARIANTS[cfg.model]
        data = load_model(self.variant)
        self.runtime_name, cls = interpreter_class(cfg.runtime)
        try:
            self._interp = cls(model_content=data, num_threads=cfg.threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise DetectorModelError(f"{self.variant.file}: the interpreter cannot load it ({e})") from e
        self._in = self._interp.get_input_details()[0]["index"]
        outs = {int(d["shape"][-1]): d["index"] for d in self._interp.get_output_details()}
        self._reg, self._cls = outs[16], outs[1]
        self._anchors = anchors(self.variant)
        n = self.variant.input
        self._buf = np.zeros((n, n, 3), np.uint8)

    def squares(self, width: int, height: int, still: bool = False) -> list[tuple[float, float, float]]:
        """The (x0, y0, side) squares searched: the whole frame; for a still also zoomed out, then tiles."""
        side = float(max(width, height))
        out = [((width - side) / 2, (height - side) / 2, side)]
        if not still:
            return out
        out.append(((width - 2 * side) / 2, (height - 2 * side) / 2, 2 * side))
        n = self.variant.input
        while self.cfg.min_face_px * n / side < self.cfg.min_input_face:
            side /= 2
            step = side / 2
            nx = max(1, math.ceil((width - side) / step) + 1)
            ny = max(1, math.ceil((height - side) / step) + 1)
            for j in range(ny):
                for i in range(nx):
                    x0 = min(i * step, width - side) if width > side else (width - side) / 2
                    y0 = min(j * step, height - side) if height > side else (height - side) / 2
                    out.append((x0, y0, side))
        return out

    def _run(self, image: np.ndarray, x0: float, y0: float, side: float) -> Hits | None:
        """Raw hits above the threshold in one square: scores, xyxy boxes, keypoints, in image pixels."""
        import cv2

        n = self.variant.input
        k = n / side
        h, w = image.shape[:2]
        # The square's part inside the image, resized with area averaging; the rest stays black.
        ix0, iy0 = max(0, math.ceil(x0)), max(0, math.ceil(y0))
        ix1, iy1 = min(w, math.floor(x0 + side)), min(h, math.floor(y0 + side))
        if ix1 <= ix0 or iy1 <= iy0:
            return None
        ox, oy = min(n - 1, round((ix0 - x0) * k)), min(n - 1, round((iy0 - y0) * k))
        tw, th = min(n - ox, max(1, round((ix1 - ix0) * k))), min(n - oy, max(1, round((iy1 - iy0) * k)))
        buf = self._buf
        buf[:] = 0
        region = image[iy0:iy1, ix0:ix1]
        # Halve with area averaging while the region is twice the target or more (OpenCV's fast integer path),
        # then bilinear: as smooth as one INTER_AREA resize to a fractional scale, at a tenth of its cost.
        while region.shape[1] >= 2 * tw and region.shape[0] >= 2 * th:
            region = cv2.resize(region, (region.shape[1] // 2, region.shape[0] // 2), interpolation=cv2.INTER_AREA)
        buf[oy : oy + th, ox : ox + tw] = cv2.resize(region, (tw, th), interpolation=cv2.INTER_LINEAR)
        # The placed pixels' true scale, so boxes map back exactly.
        sx, sy = tw / (ix1 - ix0), th / (iy1 - iy0)
        self._fill_input(buf)
        self._interp.invoke()
        logits = self._interp.get_tensor(self._cls)[0, :, 0]
        keep = logits >= self._logit
        if not keep.any():
            return None
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[keep], -100, 100)))
        raw = self._interp.get_tensor(self._reg)[0][keep] / n
        a = self._anchors[keep]
        cx, cy = raw[:, 0] + a[:, 0], raw[:, 1] + a[:, 1]
        bw, bh = raw[:, 2], raw[:, 3]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1) * n
        kps = raw[:, 4:16].reshape(-1, 6, 2) + a[:, None, :]
        kps = kps * n
        # Input pixels -> image pixels.
        boxes = (boxes - [ox, oy, ox, oy]) / [sx, sy, sx, sy] + [ix0, iy0, ix0, iy0]
        kps = (kps - [ox, oy]) / [sx, sy] + [ix0, iy0]
        return Hits(scores, boxes, kps)

    def _fill_input(self, buf: np.ndarray) -> None:
        """Scale the uint8 square to the model's [-1, 1] floats straight into the interpreter's input tensor.

        Writing through the tensor's view skips a temporary float array and ``set_tensor``'s
        copy of it (a throw-away script alternating it with the old path on the same frames: 2 % faster, under load).
        """
        x = self._interp.tensor(self._in)()[0]
        np.multiply(buf, np.float32(1.0 / 127.5), out=x, casting="unsafe")  # float32 math, as astype() did
        x -= 1.0
        del x  # the interpreter refuses to run while a view of its buffers is alive

    @property
    def _logit(self) -> float:
        p = min(max(self.cfg.candidate_threshold, 1e-6), 1 - 1e-6)
        return math.log(p / (1 - p))

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in one pass over the whole frame (live acquisition), best first."""
        return self._detect(frame, self.squares(frame.shape[1], frame.shape[0]))

    def search(self, image: np.ndarray) -> list[Detection]:
        """Every face of at least ``min_face_px`` in a still image (several passes), best first."""
        return self._detect(image, self.squares(image.shape[1], image.shape[0], still=True))

    def _detect(self, frame: np.ndarray, squares: list[tuple[float, float, float]]) -> list[Detection]:
        hits = [r for sq in squares if (r := self._run(frame, *sq)) is not None]
        if not hits:
            return []
        faces = weighted_nms(
            np.concatenate([h.scores for h in hits]),
            np.concatenate([h.boxes for h in hits]),
            np.concatenate([h.kps for h in hits]),
            self.cfg.nms_iou,
        )
        c = self.cfg
        out = []
        for score, box, kp in faces:
            fb = self.face_box(box, kp)
            # A tile zooms in: what it finds below the smallest face asked for is texture, not a face.
            if fb.size < c.min_size_frac * c.min_face_px:
                continue
            if score < c.confirm_below:
                look = self.second_look(frame, fb)
                if look is None:
                    continue
                score, box, kp = look
                fb = self.face_box(box, kp)
            if score >= c.score_threshold:
                out.append(Detection(fb, score, kp.astype(np.float32)))
        out.sort(key=lambda d: -d.score)
        return out[: c.max_faces]

    def second_look(self, frame: np.ndarray, box: FaceBox) -> Face | None:
        """The model again on squares ``confirm_scales`` times the face, centred on it: the best (score, box,
        keypoints) found there, or None.

        There the face is a quarter to a half of the input, the sizes the model knows
        best: a real face scores higher than in a crowded or zoomed pass, texture lower.
        Three sizes, because one look at a real face now and then comes out low.
        """
        best = None
        for scale in self.cfg.confirm_scales:
            side = scale * box.size
            r = self._run(frame, box.cx - side / 2, box.cy - side / 2, side)
            if r is None:
                continue
            scores, boxes, kps = r
            cx = (boxes[:, 0] + boxes[:, 2]) / 2
            cy = (boxes[:, 1] + boxes[:, 3]) / 2
            near = np.hypot(cx - box.cx, cy - box.cy) < 0.3 * box.size
            if near.any():
                look = weighted_nms(scores[near], boxes[near], kps[near], self.cfg.nms_iou)[0]
                if best is None or look.score > best.score:
                    best = look
        return best

    def face_box(self, box: np.ndarray, kp: np.ndarray) -> FaceBox:
        """The contract's face box from a BlazeFace box and keypoints.

        The roll is the eye line's (image-left eye to image-right eye). The side is
        measured in the face's own frame from the eyes and the mouth, which do not
        change when the head rolls, and the centre sits below the eyes' midpoint by
        a fixed fraction of the side (both fitted on upright labelled faces).
        """
        c = self.cfg
        le, re, mouth = kp[0], kp[1], kp[3]  # the person's right eye is image-left on a frontal face
        angle = math.degrees(math.atan2(re[1] - le[1], re[0] - le[0]))
        eyes = (le + re) / 2
        eye_dist = float(np.hypot(*(re - le)))
        theta = math.radians(angle)
        down = np.array([-math.sin(theta), math.cos(theta)])
        eye_mouth = float(np.dot(mouth - eyes, down))
        span = max(eye_dist, 1e-3) + max(eye_mouth, 1e-3)
        size = c.box_scale * span
        centre = eyes + down * c.box_shift * size
        return FaceBox(float(centre[0]), float(centre[1]), float(size), float(angle))


def describe(cfg) -> dict:
    """Kind, model file, licence and provenance of the configured BlazeFace model."""
    v = VARIANTS[cfg.model]
    prov = provenance()
    entry = prov.get("files", {}).get(v.file, {})
    return {
        "kind": "blazeface",
        "model": cfg.model,
        "file": str(DETECTOR_DIR / v.file),
        "input": v.input,
        "sha256": entry.get("sha256"),
        "path_in_wheel": entry.get("path_in_wheel"),
        "package": prov.get("package"),
        "version": prov.get("version"),
        "license": prov.get("license"),
        "license_file": str(DETECTOR_DIR / prov.get("license_file", "LICENSE")),
    }


def create(cfg) -> BlazeFaceDetector:
    """Factory used by :func:`edge.detectors.make_detector`."""
    return BlazeFaceDetector(cfg)
