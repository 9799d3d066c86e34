"""The labelling teacher: face photos -> LaPa-style label maps, from an offline landmark model.

``vanity label PHOTOS/ --out DATASET/`` (``label_folder``) turns a folder of
unlabelled face photos into the plain images+masks layout that
``folder:DATASET`` training reads::

    DATASET/images/NAME.png   the photo's decoded pixels (lossless; EXIF orientation applied, metadata dropped)
    DATASET/masks/NAME.png    single-channel uint8 class ids in ``edge.contract.CLASSES`` order
    DATASET/teacher.json      provenance: teacher model, hashes, date, settings, runs

How a photo is labelled (per face):

1. Faces are found with MediaPipe's short-range BlazeFace (``face_detection_short_range.tflite``)
   run over the whole image and over overlapping tiles (small faces), with OpenCV's Haar
   cascade as a fallback when BlazeFace finds nothing.
2. MediaPipe FaceMesh (``face_landmark.tflite``: 468 3-D landmarks on a 192x192 crop, float
   input in [0, 1]) runs on a square crop 1.5x the face, rotated by the eye line, exactly
   as MediaPipe's face mesh graph crops; then again on the crop its own landmarks give
   (MediaPipe's tracking step). A face is kept only when the model's face-presence score
   is high (``PRESENCE_MIN``) on the final crop.
3. Landmark polygons are filled: skin = face oval, then nose, brows, eyes, lips
   (upper/lower = between the outer and inner lip contours) and inner mouth
   (inside the inner lip contour, when open).

Both models ship inside the ``mediapipe==0.10.21`` wheel and run through LiteRT here;
MediaPipe itself is never imported. ``training/teacher_assets.py`` installs them
(``make teacher``); nothing is downloaded at run time.

What the labels do NOT cover: hair (FaceMesh has no hair), ears and neck. Those pixels are
background in the masks, so a student trained on teacher masks alone learns "hair =
background" unless those pixels are marked ``IGNORE`` (``training.real`` does, outside the face oval).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.contract import CLASS_ID, CLASSES, CropGeometry, FaceBox, crop_matrix, invert_affine
from edge.files import is_image_file, sha256_file
from training.teacher_assets import (
    DEFAULT_TEACHER_DIR,
    DETECTOR_FILE,
    LANDMARK_FILE,
    MANIFEST_FILE,
    MEDIAPIPE_VERSION,
    PINNED_SHA256,
)

# --------------------------------------------------------------------------- FaceMesh topology
# Landmark index rings, copied from mediapipe 0.10.21,
# mediapipe/python/solutions/face_mesh_connections.py (Apache-2.0): the edge sets
# FACEMESH_FACE_OVAL, FACEMESH_LIPS, FACEMESH_{LEFT,RIGHT}_EYE and
# FACEMESH_{LEFT,RIGHT}_EYEBROW, chained into ordered polygons. MediaPipe's "left"
# is the PERSON's left (image-right in an ordinary photo); the label code maps
# them to image-left/right by position.

FACE_OVAL = (
    10,
    338,
    297,
    332,
    284,
    251,
    389,
    356,
    454,
    323,
    361,
    288,
    397,
    365,
    379,
    378,
    400,
    377,
    152,
    148,
    176,
    149,
    150,
    136,
    172,
    58,
    132,
    93,
    234,
    127,
    162,
    21,
    54,
    103,
    67,
    109,
)

# Lips: outer and inner contours, each split at the mouth corners (61/291 outer, 78/308 inner).
LIPS_UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_LOWER_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)

# Eye contours (person's right eye: 33 outer corner .. 133 inner corner; person's left: 263 .. 362).
PERSON_RIGHT_EYE = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
PERSON_LEFT_EYE = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)

# Brows: FACEMESH_*_EYEBROW are two polylines each (upper edge, lower edge), outer -> inner.
PERSON_RIGHT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
PERSON_LEFT_BROW = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)

# Nose: not a FaceMesh contour. An outline chosen here (landmarks on the nose's sides,
# from the bridge between the eyes down to the alae and under the nostrils) to match
# LaPa's nose region, which covers bridge to nostrils and stops at the nasolabial folds.
NOSE_OUTLINE = (
    168,
    417,
    351,
    419,
    248,
    281,
    363,
    360,
    279,
    358,
    327,
    326,
    2,
    97,
    98,
    129,
    49,
    131,
    134,
    51,
    3,
    196,
    122,
    193,
)

NUM_LANDMARKS = 468
LANDMARK_INPUT = 192
DETECTOR_INPUT = 128
ROI_SCALE = 1.5
"""MediaPipe's face-mesh ROI: the face box (detection or landmarks) scaled by 1.5, square, rotated."""

PRESENCE_MIN = 0.99
"""Least face-presence probability (FaceMesh's own score) for a face to be labelled."""

DETECTION_MIN = 0.5
"""Least BlazeFace score for a candidate face."""


class TeacherMissing(FileNotFoundError):
    """The teacher's model files are not installed (or are not the pinned ones)."""


# --------------------------------------------------------------------------- results


@dataclass
class FaceLabels:
    """One labelled face.

    Attributes:
        landmarks: (468, 3) float32 FaceMesh landmarks in image pixels (z in the same scale).
        box: face box (x, y, w, h) in image pixels: the bounding box of the face oval.
        score: face-presence probability from the landmark model.
        roll_deg: angle of the eye line (image-left eye -> image-right eye), degrees, y down.
        labels: (H, W) uint8 class ids for this face alone (0 elsewhere).
    """

    landmarks: np.ndarray
    box: tuple[float, float, float, float]
    score: float
    roll_deg: float
    labels: np.ndarray


@dataclass
class LabelReport:
    """What ``label_folder`` did.

    Attributes:
        labelled: number of photos written.
        skipped: (path, reason) for every file not written, e.g. not an image, no face.
        faces: faces labelled, by source photo.
        out: dataset folder.
    """

    labelled: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    faces: dict[Path, int] = field(default_factory=dict)
    out: Path | None = None

    @property
    def faces_found(self) -> int:
        """Total faces labelled."""
        return sum(self.faces.values())


# --------------------------------------------------------------------------- the models


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, dtype=np.float64), -100.0, 100.0)))


def _interpreter(path: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - fallbacks as in edge.runtime
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            from tensorflow.lite import Interpreter
    it = Interpreter(model_path=str(path), num_threads=2)
    it.allocate_tensors()
    return it


def _blazeface_anchors() -> np.ndarray:
    """SSD anchor centres of the short-range BlazeFace (MediaPipe's SsdAnchorsCalculator options).

    4 layers, strides 8, 16, 16, 16, one aspect ratio + one interpolated scale per layer,
    fixed anchor size; layers with equal strides share a grid: 16x16x2 + 8x8x6 = 896.
    """
    out = []
    for stride, per_cell in ((8, 2), (16, 6)):
        g = DETECTOR_INPUT // stride
        ys, xs = np.mgrid[0:g, 0:g]
        centres = np.stack([(xs + 0.5) / g, (ys + 0.5) / g], axis=-1).reshape(-1, 2)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


def default_teacher_dir() -> Path:
    """``$VANITY_TEACHER`` if set, else ``.cache/teacher`` under the current directory."""
    import os

    env = os.environ.get("VANITY_TEACHER")
    return Path(env) if env else DEFAULT_TEACHER_DIR


class Teacher:
    """The two teacher models, loaded and verified."""

    def __init__(self, folder: Path | str | None = None):
        folder = Path(folder) if folder is not None else default_teacher_dir()
        self.folder = folder
        fix = (
            "Install it with `make teacher` "
            f"(or: python -m training.teacher_assets --dest {folder}); it extracts MediaPipe "
            f"{MEDIAPIPE_VERSION}'s bundled face models from the mediapipe wheel on PyPI."
        )
        for name in (LANDMARK_FILE, DETECTOR_FILE):
            if not (folder / name).is_file():
                raise TeacherMissing(f"teacher model not found: {folder / name}. {fix}")
        self.files: dict[str, str] = {}
        for name in (LANDMARK_FILE, DETECTOR_FILE):
            digest = sha256_file(folder / name)
            if digest != PINNED_SHA256[name]:
                raise TeacherMissing(
                    f"{folder / name}: SHA-256 {digest[:12]}… is not the pinned MediaPipe {MEDIAPIPE_VERSION} "
                    f"model ({PINNED_SHA256[name][:12]}…). {fix}"
                )
            self.files[name] = digest
        manifest = folder / MANIFEST_FILE
        self.manifest: dict = json.loads(manifest.read_text()) if manifest.is_file() else {}
        self._mesh = _interpreter(folder / LANDMARK_FILE)
        self._mesh_in = self._mesh.get_input_details()[0]["index"]
        outs = {tuple(d["shape"]): d["index"] for d in self._mesh.get_output_details()}
        self._mesh_landmarks = outs[(1, 1, 1, NUM_LANDMARKS * 3)]
        self._mesh_score = outs[(1, 1, 1, 1)]
        self._det = _interpreter(folder / DETECTOR_FILE)
        self._det_in = self._det.get_input_details()[0]["index"]
        outs = {d["name"]: d["index"] for d in self._det.get_output_details()}
        self._det_boxes = outs["regressors"]
        self._det_scores = outs["classificators"]
        self._anchors = _blazeface_anchors()

    def provenance(self) -> dict:
        """What labelled the data: model source, hashes, install record."""
        return {
            "teacher": "MediaPipe FaceMesh landmarks -> polygons (training/teacher.py)",
            "mediapipe_version": self.manifest.get("mediapipe_version", MEDIAPIPE_VERSION),
            "files": self.files,
            "wheel": self.manifest.get("wheel"),
            "wheel_sha256": self.manifest.get("wheel_sha256"),
            "installed": self.manifest.get("installed"),
        }

    # ----------------------------------------------------------------- detection

    def _detect_square(self, image: np.ndarray, x0: float, y0: float, side: float) -> list[tuple]:
        """BlazeFace on the square (x0, y0, side) of the image (outside = black); boxes in image pixels."""
        import cv2

        k = DETECTOR_INPUT / side
        m = np.array([[k, 0.0, -x0 * k], [0.0, k, -y0 * k]])
        tile = cv2.warpAffine(image, m, (DETECTOR_INPUT, DETECTOR_INPUT), flags=cv2.INTER_AREA)
        x = tile.astype(np.float32) / 127.5 - 1.0
        self._det.set_tensor(self._det_in, x[None])
        self._det.invoke()
        raw = self._det.get_tensor(self._det_boxes)[0]
        scores = _sigmoid(self._det.get_tensor(self._det_scores)[0, :, 0])
        out = []
        for i in np.nonzero(scores >= DETECTION_MIN)[0]:
            r = raw[i] / DETECTOR_INPUT
            ax, ay = self._anchors[i]
            cx, cy, w, h = r[0] + ax, r[1] + ay, r[2], r[3]
            kps = r[4:16].reshape(6, 2) + self._anchors[i]
            box = np.array([cx - w / 2, cy - h / 2, w, h]) * side + [x0, y0, 0, 0]
            out.append((float(scores[i]), box, kps * side + [x0, y0]))
        return out

    def detect(self, image: np.ndarray, min_face: int = 40) -> list[tuple[float, np.ndarray, np.ndarray | None]]:
        """Candidate faces: (score, box xywh, 6 keypoints or None), best first, overlaps removed.

        BlazeFace short-range sees faces of roughly 10-80% of its input, so it runs on the
        whole image and on overlapping tiles of half and a quarter of the image's long side
        (while a ``min_face`` face would still be visible in them).
        """
        h, w = image.shape[:2]
        long_side = float(max(h, w))
        cands: list[tuple] = []
        side = long_side
        while True:
            step = side / 2
            nx = max(1, math.ceil((w - side) / step) + 1)
            ny = max(1, math.ceil((h - side) / step) + 1)
            for j in range(ny):
                for i in range(nx):
                    x0 = min(i * step, max(0.0, w - side)) if nx > 1 else (w - side) / 2
                    y0 = min(j * step, max(0.0, h - side)) if ny > 1 else (h - side) / 2
                    cands.extend(self._detect_square(image, x0, y0, side))
            side /= 2
            if side < 3 * min_face or side < 96:
                break
        if not cands:
            cands = self._haar(image, min_face)
        return _nms(cands, 0.3)

    @staticmethod
    def _haar(image: np.ndarray, min_face: int) -> list[tuple]:
        import cv2

        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        found = cascade.detectMultiScale(gray, 1.1, 5, minSize=(min_face, min_face))
        return [(0.5, np.array(f, dtype=np.float64), None) for f in found]

    # ----------------------------------------------------------------- landmarks

    def mesh(self, image: np.ndarray, box: FaceBox) -> tuple[np.ndarray, float]:
        """FaceMesh on the crop of ``box`` (side = ROI_SCALE * box.size): (468x3 image-pixel landmarks, presence)."""
        import cv2

        m = crop_matrix(box, CropGeometry(scale=ROI_SCALE, center_shift=0.0), LANDMARK_INPUT)
        crop = cv2.warpAffine(
            image, m, (LANDMARK_INPUT, LANDMARK_INPUT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
        self._mesh.set_tensor(self._mesh_in, (crop.astype(np.float32) / 255.0)[None])
        self._mesh.invoke()
        lm = self._mesh.get_tensor(self._mesh_landmarks).reshape(NUM_LANDMARKS, 3).astype(np.float64)
        score = float(_sigmoid(self._mesh.get_tensor(self._mesh_score).ravel()[0]))
        inv = invert_affine(m)
        xy = lm[:, :2] @ inv[:, :2].T + inv[:, 2]
        z = lm[:, 2] * float(np.sqrt(abs(np.linalg.det(inv[:, :2]))))
        return np.column_stack([xy, z]).astype(np.float32), score

    def landmarks(self, image: np.ndarray, box: FaceBox, passes: int = 2) -> tuple[np.ndarray, float, FaceBox]:
        """Landmarks from a starting ROI, re-cropped around its own landmarks ``passes - 1`` times."""
        lm, score = self.mesh(image, box)
        for _ in range(passes - 1):
            box = roi_from_landmarks(lm)
            lm, score = self.mesh(image, box)
        return lm, score, box


def _intersection(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    return float(max(0.0, x1 - x0) * max(0.0, y1 - y0))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = _intersection(a, b)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box: 1 when one box lies inside the other."""
    small = min(a[2] * a[3], b[2] * b[3])
    return _intersection(a, b) / small if small > 0 else 0.0


def _nms(cands: list[tuple], thresh: float) -> list[tuple]:
    keep: list[tuple] = []
    for c in sorted(cands, key=lambda c: -c[0]):
        if all(_iou(c[1], k[1]) < thresh for k in keep):
            keep.append(c)
    return keep


def _roll(a: np.ndarray, b: np.ndarray) -> float:
    """Angle of the line a -> b in degrees (image coordinates, y down)."""
    return math.degrees(math.atan2(float(b[1] - a[1]), float(b[0] - a[0])))


def roi_from_detection(box: np.ndarray, keypoints: np.ndarray | None) -> FaceBox:
    """MediaPipe's detection -> face-mesh ROI: box centre, long side, rolled by the eyes (keypoints 0 -> 1)."""
    x, y, w, h = (float(v) for v in box)
    angle = _roll(keypoints[0], keypoints[1]) if keypoints is not None else 0.0
    return FaceBox(x + w / 2, y + h / 2, max(w, h), angle)


def roi_from_landmarks(lm: np.ndarray) -> FaceBox:
    """MediaPipe's landmarks -> next ROI: rolled by the eye corners 33 -> 263, box of the landmarks in that frame."""
    angle = _roll(lm[33], lm[263])
    t = math.radians(angle)
    c, s = math.cos(t), math.sin(t)
    rot = np.array([[c, s], [-s, c]])  # image -> face frame
    p = lm[:, :2] @ rot.T
    lo, hi = p.min(0), p.max(0)
    centre = rot.T @ ((lo + hi) / 2)
    return FaceBox(float(centre[0]), float(centre[1]), float(max(hi - lo)), angle)


# --------------------------------------------------------------------------- landmarks -> labels


def _fill(canvas: np.ndarray, lm: np.ndarray, ring: tuple[int, ...], value: int) -> None:
    import cv2

    shift = 4
    pts = np.round(lm[list(ring), :2] * (1 << shift)).astype(np.int32)
    cv2.fillPoly(canvas, [pts], int(value), lineType=cv2.LINE_8, shift=shift)


def _area(lm: np.ndarray, ring: tuple[int, ...]) -> float:
    p = lm[list(ring), :2].astype(np.float64)
    return 0.5 * abs(float(np.dot(p[:, 0], np.roll(p[:, 1], 1)) - np.dot(p[:, 1], np.roll(p[:, 0], 1))))


def labels_from_landmarks(lm: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Paint one face's class map (H, W) uint8 from its 468 landmarks (image pixels).

    Order: skin (face oval), nose, brows, eyes, lips, inner mouth; later parts overwrite earlier ones.
    The person's right eye/brow is the image-left one unless the landmarks say otherwise
    (compared by x position), so labels follow the contract's image-left convention.
    """
    h, w = shape
    out = np.zeros((h, w), dtype=np.uint8)
    _fill(out, lm, FACE_OVAL, CLASS_ID["skin"])
    _fill(out, lm, NOSE_OUTLINE, CLASS_ID["nose"])
    right_first = lm[list(PERSON_RIGHT_EYE), 0].mean() <= lm[list(PERSON_LEFT_EYE), 0].mean()
    img_left_eye, img_right_eye = (
        (PERSON_RIGHT_EYE, PERSON_LEFT_EYE) if right_first else (PERSON_LEFT_EYE, PERSON_RIGHT_EYE)
    )
    img_left_brow, img_right_brow = (
        (PERSON_RIGHT_BROW, PERSON_LEFT_BROW) if right_first else (PERSON_LEFT_BROW, PERSON_RIGHT_BROW)
    )
    _fill(out, lm, img_left_brow, CLASS_ID["left_eyebrow"])
    _fill(out, lm, img_right_brow, CLASS_ID["right_eyebrow"])
    _fill(out, lm, img_left_eye, CLASS_ID["left_eye"])
    _fill(out, lm, img_right_eye, CLASS_ID["right_eye"])
    upper = LIPS_UPPER_OUTER + LIPS_UPPER_INNER[::-1]
    lower = LIPS_LOWER_OUTER + LIPS_LOWER_INNER[::-1]
    _fill(out, lm, upper, CLASS_ID["upper_lip"])
    _fill(out, lm, lower, CLASS_ID["lower_lip"])
    inner = LIPS_UPPER_INNER + LIPS_LOWER_INNER[-2:0:-1]
    # Closed lips: the inner contour collapses to a line; only an open mouth gets inner_mouth.
    mouth_w = float(np.linalg.norm(lm[78, :2] - lm[308, :2]))
    if _area(lm, inner) > 0.02 * mouth_w**2:
        _fill(out, lm, inner, CLASS_ID["inner_mouth"])
    return out


# --------------------------------------------------------------------------- images


def label_image(
    image_rgb: np.ndarray, teacher: Teacher | Path | str | None = None, *, min_face: int = 40
) -> list[FaceLabels]:
    """Find and label every face of at least ``min_face`` pixels in an RGB uint8 image, largest first."""
    t = teacher if isinstance(teacher, Teacher) else Teacher(teacher)
    image = np.ascontiguousarray(image_rgb[..., :3]).astype(np.uint8, copy=False)
    h, w = image.shape[:2]
    faces: list[FaceLabels] = []
    boxes: list[np.ndarray] = []
    found = []
    for _score, box, kps in t.detect(image, min_face):
        lm, presence, _roi = t.landmarks(image, roi_from_detection(box, kps))
        if presence < PRESENCE_MIN:
            continue
        oval = lm[list(FACE_OVAL), :2]
        x0, y0 = oval.min(0)
        x1, y1 = oval.max(0)
        fbox = np.array([x0, y0, x1 - x0, y1 - y0], dtype=np.float64)
        if max(fbox[2], fbox[3]) >= min_face:
            found.append((presence, fbox, lm))
    # Two candidates (a tile and the whole image, say) may converge on one face, one of them
    # on a part of it: keep the most confident, then the larger, of overlapping results.
    found.sort(key=lambda f: (-round(f[0], 3), -f[1][2] * f[1][3]))
    for presence, fbox, lm in found:
        if any(_overlap(fbox, b) > 0.5 for b in boxes):
            continue
        boxes.append(fbox)
        faces.append(
            FaceLabels(
                landmarks=lm,
                box=tuple(float(v) for v in fbox),
                score=presence,
                roll_deg=_roll(lm[33], lm[263]),
                labels=labels_from_landmarks(lm, (h, w)),
            )
        )
    faces.sort(key=lambda f: -f.box[2] * f.box[3])
    return faces


def merge_labels(faces: list[FaceLabels], shape: tuple[int, int]) -> np.ndarray:
    """One class map for the image: faces painted smallest first, so a larger (nearer) face wins overlaps."""
    out = np.zeros(shape, dtype=np.uint8)
    for f in sorted(faces, key=lambda f: f.box[2] * f.box[3]):
        painted = f.labels > 0
        out[painted] = f.labels[painted]
    return out


def overlay(image_rgb: np.ndarray, labels: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The photo with the label map colour-coded on top (for visual checks)."""
    palette = np.array(
        [
            (0, 0, 0),
            (40, 255, 120),
            (0, 90, 0),
            (0, 60, 255),
            (255, 255, 0),
            (255, 0, 255),
            (0, 255, 255),
            (255, 0, 0),
            (90, 0, 90),
            (255, 128, 0),
            (120, 60, 20),
        ],
        dtype=np.float32,
    )
    img = image_rgb[..., :3].astype(np.float32)
    col = palette[labels]
    a = np.where(labels[..., None] > 0, alpha, 0.0)
    return np.clip(img * (1 - a) + col * a, 0, 255).astype(np.uint8)


def _read_rgb(path: Path) -> np.ndarray | None:
    import cv2

    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        return None
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)  # applies EXIF orientation
    if bgr is None:
        return None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _write_png(path: Path, array: np.ndarray) -> None:
    import cv2

    ok, buf = cv2.imencode(".png", array)
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.tobytes())
    tmp.replace(path)


def label_folder(
    photos: Path,
    out: Path,
    *,
    teacher: Path | Teacher | None = None,
    min_face: int = 40,
    overwrite: bool = False,
) -> LabelReport:
    """Label every photo in ``photos`` (top level, sorted) into ``out/images`` + ``out/masks``.

    A file that cannot be decoded, has no face of ``min_face`` pixels, collides with an
    earlier photo's name, or whose outputs already exist (unless ``overwrite``) is
    skipped and reported with its path; nothing is ever written for it.

    Raises:
        TeacherMissing: the teacher's model files are not installed.
        NotADirectoryError: ``photos`` is not a folder.
    """
    import cv2

    photos, out = Path(photos), Path(out)
    if not photos.is_dir():
        raise NotADirectoryError(f"{photos}: not a folder")
    t = teacher if isinstance(teacher, Teacher) else Teacher(teacher)
    report = LabelReport(out=out)
    img_dir, mask_dir = out / "images", out / "masks"
    img_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    seen: dict[str, Path] = {}
    for path in sorted(p for p in photos.iterdir() if p.is_file() and not p.name.startswith(".")):
        stem = path.stem
        if stem in seen:
            report.skipped.append((path, f"same name as {seen[stem].name}: outputs would collide"))
            continue
        seen[stem] = path
        img_out, mask_out = img_dir / f"{stem}.png", mask_dir / f"{stem}.png"
        if not overwrite and (img_out.exists() or mask_out.exists()):
            report.skipped.append((path, "already labelled (use overwrite to replace)"))
            continue
        image = _read_rgb(path)
        if image is None:
            why = "not an image OpenCV can read" if is_image_file(path) else "not an image"
            report.skipped.append((path, why))
            continue
        faces = label_image(image, t, min_face=min_face)
        if not faces:
            report.skipped.append((path, f"no face found (at least {min_face} px)"))
            continue
        mask = merge_labels(faces, image.shape[:2])
        _write_png(img_out, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        _write_png(mask_out, mask)
        report.labelled += 1
        report.faces[path] = len(faces)
    _write_provenance(out, t, report, min_face)
    return report


def _write_provenance(out: Path, t: Teacher, report: LabelReport, min_face: int) -> None:
    path = out / "teacher.json"
    previous: dict = {}
    if path.is_file():
        try:
            previous = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            previous = {}
    runs = list(previous.get("runs", [])) if isinstance(previous.get("runs"), list) else []
    runs.append(
        {
            "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "labelled": report.labelled,
            "faces": report.faces_found,
            "skipped": len(report.skipped),
            "min_face": min_face,
            "presence_min": PRESENCE_MIN,
        }
    )
    doc = {
        "layout": "images/NAME.png + masks/NAME.png (uint8 class ids)",
        "classes": list(CLASSES),
        "covers": [c for c in CLASSES if c not in ("background", "hair")],
        "not_covered": "hair, ears and neck are background: FaceMesh has no landmarks for them",
        **t.provenance(),
        "runs": runs,
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    """``python -m training.teacher PHOTOS --out DATASET`` (the same as ``vanity label``)."""
    import argparse

    ap = argparse.ArgumentParser(description="Label face photos with the offline landmark teacher.")
    ap.add_argument("photos", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--teacher", type=Path, default=None)
    ap.add_argument("--min-face", type=int, default=40)
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    try:
        rep = label_folder(
            args.photos, args.out, teacher=args.teacher, min_face=args.min_face, overwrite=args.overwrite
        )
    except (TeacherMissing, NotADirectoryError) as e:
        print(f"error: {e}")
        return 2
    for p, why in rep.skipped:
        print(f"skipped {p}: {why}")
    print(f"{rep.labelled} photo(s), {rep.faces_found} face(s) labelled into {args.out} ({len(rep.skipped)} skipped)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
