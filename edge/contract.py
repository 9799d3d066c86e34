"""The model contract: what the workstation and the kiosk must agree on.

Training, conversion and the device all import this module, and nothing else
from each other, so the class order, the input geometry, the crop geometry and
the bundle's metadata schema are defined exactly once.

This module must stay importable without TensorFlow (and without OpenCV at
import time), because it runs on the kiosk.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edge.files import sha256_bytes

SCHEMA_VERSION = 1
"""Version of the bundle metadata schema; the loader refuses any other."""

CLASSES: tuple[str, ...] = (
    "background",
    "skin",
    "left_eyebrow",
    "right_eyebrow",
    "left_eye",
    "right_eye",
    "nose",
    "upper_lip",
    "inner_mouth",
    "lower_lip",
    "hair",
)
"""LaPa's 11 classes in order. "left" means image-left of the crop."""

CLASS_ID = {name: i for i, name in enumerate(CLASSES)}

IGNORE = 255
"""Label value meaning "unknown here": left out of the loss and the metrics (e.g. hair a teacher cannot see)."""

# A horizontal flip turns an image-left brow/eye into an image-right one.
_FLIP_PAIRS = (("left_eyebrow", "right_eyebrow"), ("left_eye", "right_eye"))


def flip_permutation(classes: tuple[str, ...] = CLASSES) -> np.ndarray:
    """Class-id lookup table to apply to a label map after a horizontal flip."""
    perm = np.arange(len(classes), dtype=np.int32)
    for a, b in _FLIP_PAIRS:
        ia, ib = classes.index(a), classes.index(b)
        perm[ia], perm[ib] = ib, ia
    return perm


CLASS_GROUPS: dict[str, tuple[str, ...]] = {
    "skin": ("skin",),
    "brows": ("left_eyebrow", "right_eyebrow"),
    "eyes": ("left_eye", "right_eye"),
    "nose": ("nose",),
    "lips": ("upper_lip", "lower_lip"),
    "mouth": ("inner_mouth",),
    "hair": ("hair",),
}
"""Groups used for reporting and by the makeup layers."""

FACE_CLASSES: tuple[str, ...] = tuple(c for c in CLASSES if c not in ("background", "hair"))
"""Classes whose union is "the face" that defines the face box."""

INPUT_SIZE = 128
"""Side of the square, uint8 RGB model input."""

OUTPUT_STRIDE = 2
"""The class map is INPUT_SIZE // OUTPUT_STRIDE on a side."""

OUTPUT_PARTS = "parts"
"""Signature output: per-pixel class probabilities, (1, S, S, len(CLASSES))."""

OUTPUT_FACE = "face"
"""Signature output: probability that the crop holds a face, (1, 1)."""


class CropGeometry(BaseModel):
    """How a face box becomes the model's square input.

    The face box is the bounding box of the face classes (skin and the parts,
    without hair). The crop is a square centred on the box centre, shifted by
    ``center_shift`` of the box side along the face's vertical axis, with side
    ``scale * max(box width, box height)``, rotated by the face's roll.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    scale: float = Field(1.45, gt=1.0, le=4.0, description="Crop side / face box side.")
    center_shift: float = Field(
        -0.04, ge=-0.5, le=0.5, description="Shift of the crop centre along the face's down axis, in box sides."
    )


class MouthCrop(BaseModel):
    """How the mouth's refinement crop is made from a face's first parse.

    The lips are the thinnest part the mirror paints, and at the face crop's
    output stride they are only a few class-map pixels tall. A model trained on
    mouth views as well (``training`` makes them) parses a second, zoomed crop:
    a square centred on the centroid of the lips and mouth in the first parse,
    with side ``scale * face box side``, rolled like the face crop.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    scale: float = Field(0.5, gt=0.2, le=1.5, description="Mouth crop side / face box side.")


MOUTH_CLASSES: tuple[str, ...] = ("upper_lip", "inner_mouth", "lower_lip")
"""Classes whose centroid centres the mouth crop."""


class FaceBox(NamedTuple):
    """An axis-aligned face box in image pixels, plus the face's roll."""

    cx: float
    cy: float
    size: float
    angle_deg: float = 0.0

    @classmethod
    def from_xywh(cls, x: float, y: float, w: float, h: float, angle_deg: float = 0.0) -> FaceBox:
        """Build from a top-left corner and size."""
        return cls(x + w / 2.0, y + h / 2.0, float(max(w, h)), angle_deg)


def crop_matrix(box: FaceBox, geometry: CropGeometry, size: int = INPUT_SIZE) -> np.ndarray:
    """Affine 2x3 matrix mapping image pixels to crop pixels.

    Args:
        box: the face box, with its roll: the angle of the line from the
            image-left eye to the image-right eye, ``atan2(dy, dx)`` in image
            coordinates (y down), in degrees.
        geometry: the contract's crop geometry.
        size: output side in pixels.

    Returns:
        A float64 (2, 3) matrix usable with ``cv2.warpAffine``.
    """
    side = geometry.scale * box.size
    theta = math.radians(box.angle_deg)
    c, s = math.cos(theta), math.sin(theta)
    # The face's "down" axis in image coordinates after rolling by theta.
    down = np.array([-s, c])
    center = np.array([box.cx, box.cy]) + down * geometry.center_shift * box.size
    k = size / side
    # Rotate image into the face frame, scale, then move the centre to the crop centre.
    rot = np.array([[c, s], [-s, c]]) * k
    t = np.array([size / 2.0, size / 2.0]) - rot @ center
    return np.hstack([rot, t[:, None]])


def mouth_matrix(box: FaceBox, center: tuple[float, float], mouth: MouthCrop, size: int = INPUT_SIZE) -> np.ndarray:
    """Affine 2x3 matrix mapping image pixels to the mouth crop's pixels.

    Args:
        box: the face box (its side sets the crop's side, its roll the crop's roll).
        center: the mouth centroid in image pixels.
        mouth: the contract's mouth crop geometry.
        size: output side in pixels.
    """
    side = mouth.scale * box.size
    theta = math.radians(box.angle_deg)
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, s], [-s, c]]) * (size / side)
    t = np.array([size / 2.0, size / 2.0]) - rot @ np.asarray(center, np.float64)
    return np.hstack([rot, t[:, None]])


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    a = m[:, :2]
    inv = np.linalg.inv(a)
    return np.hstack([inv, (-inv @ m[:, 2])[:, None]])


def warp_crop(image: np.ndarray, matrix: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Cut a square crop with a :func:`crop_matrix` (bilinear, edges replicated)."""
    import cv2

    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def crop_face(image: np.ndarray, box: FaceBox, geometry: CropGeometry, size: int = INPUT_SIZE) -> np.ndarray:
    """Cut the model's input from an RGB image (bilinear, edges replicated)."""
    return warp_crop(image, crop_matrix(box, geometry, size), size)


def face_box_from_labels(labels: np.ndarray, min_pixels: int = 20) -> tuple[float, float, float, float] | None:
    """Bounding box (x, y, w, h) of the face classes in a label map, or None."""
    face_ids = [CLASS_ID[c] for c in FACE_CLASSES]
    mask = np.isin(labels, face_ids)
    if int(mask.sum()) < min_pixels:
        return None
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


# --------------------------------------------------------------------------- metadata


class InputSpec(BaseModel):
    """The model input."""

    model_config = ConfigDict(extra="forbid")

    size: int = Field(INPUT_SIZE, description="Side of the square input in pixels.")
    dtype: Literal["uint8", "float32"] = Field(
        "uint8", description="Input dtype: uint8 raw camera pixels (int8 bundles) or float32 0..255 (float variants)."
    )
    channels: Literal[3] = Field(3, description="Colour channels, RGB order.")


class OutputSpec(BaseModel):
    """One named output of the model's serving signature."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Signature output name.")
    shape: list[int] = Field(description="Shape including the batch axis.")
    meaning: str = Field(description="What the values mean.")


class ClassMetrics(BaseModel):
    """Accuracy of one model variant on the validation data."""

    model_config = ConfigDict(extra="forbid")

    mean_f1: float = Field(description="Mean F1 over the classes present in the data.")
    miou: float = Field(description="Mean intersection-over-union over the classes present.")
    per_class_f1: dict[str, float] = Field(default_factory=dict, description="F1 by class name.")


class BuildInfo(BaseModel):
    """When and with what the bundle was built."""

    model_config = ConfigDict(extra="forbid")

    created: str = Field(
        default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        description="UTC ISO time of conversion.",
    )
    tool: str = Field("vanity", description="What built it.")
    versions: dict[str, str] = Field(default_factory=dict, description="Library versions used.")
    run: str = Field("", description="Training run the bundle came from.")
    quantization: Literal["int8", "float16", "dynamic", "float32"] = Field("int8", description="Weights/activations.")


class BundleMetadata(BaseModel):
    """Everything the device needs to know about a model bundle."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = Field(SCHEMA_VERSION, description="Metadata schema version.")
    name: str = Field("vanity-parser", description="Human name of the model.")
    tflite_sha256: str = Field(description="SHA-256 of the .tflite file this metadata describes.")
    classes: list[str] = Field(default_factory=lambda: list(CLASSES), description="Class names in output order.")
    input: InputSpec = Field(default_factory=InputSpec, description="Model input.")
    crop: CropGeometry = Field(default_factory=CropGeometry, description="Face box to input crop geometry.")
    mouth: MouthCrop | None = Field(
        None, description="Mouth refinement crop the model was trained for; null: no refinement pass."
    )
    outputs: dict[str, OutputSpec] = Field(description="Outputs by role: 'parts', 'face', optional attributes.")
    attributes: dict[str, list[str]] = Field(default_factory=dict, description="Attribute head labels by head.")
    metrics: dict[str, ClassMetrics] = Field(default_factory=dict, description="Metrics by variant (float, int8).")
    macs: int = Field(0, description="Multiply-accumulates per inference.")
    data: dict[str, object] = Field(default_factory=dict, description="Training data summary.")
    build: BuildInfo = Field(default_factory=BuildInfo, description="Build information.")


class BundleError(ValueError):
    """A model bundle is missing, malformed, of an unknown schema or tampered with."""


def sidecar_path(tflite_path: Path) -> Path:
    """Where a bundle's metadata lives: ``model.tflite`` -> ``model.json``."""
    return Path(tflite_path).with_suffix(".json")


def write_metadata(tflite_path: Path, meta: BundleMetadata) -> Path:
    """Write the sidecar metadata of a bundle (atomically)."""
    out = sidecar_path(tflite_path)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(meta.model_dump_json(indent=2) + "\n")
    tmp.replace(out)
    return out


class Bundle(NamedTuple):
    """A validated bundle: the model's bytes and what they mean."""

    path: Path
    model_bytes: bytes
    metadata: BundleMetadata


def load_bundle(tflite_path: Path | str) -> Bundle:
    """Read and validate a bundle.

    Raises:
        BundleError: saying which check failed (missing file, missing or
            malformed metadata, unknown schema, hash mismatch, class list).
    """
    path = Path(tflite_path)
    if path.is_dir():
        candidates = sorted(path.glob("*.tflite"))
        if len(candidates) != 1:
            raise BundleError(f"{path}: expected exactly one .tflite in the folder, found {len(candidates)}")
        path = candidates[0]
    if not path.is_file():
        raise BundleError(f"{path}: model file not found")
    side = sidecar_path(path)
    if not side.is_file():
        raise BundleError(f"{path}: metadata missing (expected {side.name} beside it)")
    try:
        raw = json.loads(side.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise BundleError(f"{side}: metadata is not UTF-8 text (offset {e.start})") from None
    except (OSError, json.JSONDecodeError) as e:
        raise BundleError(f"{side}: metadata is not valid JSON ({e})") from e
    if not isinstance(raw, dict):
        raise BundleError(f"{side}: metadata must be a JSON object")
    version = raw.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BundleError(f"{side}: unknown metadata schema_version {version!r} (this device reads {SCHEMA_VERSION})")
    try:
        meta = BundleMetadata.model_validate(raw)
    except Exception as e:  # pydantic.ValidationError, with locations
        raise BundleError(f"{side}: metadata invalid: {e}") from e
    data = path.read_bytes()
    digest = sha256_bytes(data)
    if digest != meta.tflite_sha256:
        raise BundleError(
            f"{path}: SHA-256 mismatch: file is {digest[:12]}…, metadata pins {meta.tflite_sha256[:12]}… "
            "(the model was replaced or tampered with)"
        )
    check_servable(meta, side)
    return Bundle(path, data, meta)


def check_servable(meta: BundleMetadata, where: Path | str = "metadata") -> None:
    """Refuse metadata whose classes or geometry this device cannot serve.

    The makeup layers, the flip and the face box read classes by this contract's ids, so a
    bundle must name exactly :data:`CLASSES` in order, and its input must be a side the crop
    code handles. (The runtime checks the network's real shapes against this metadata.)

    Raises:
        BundleError: saying which field is wrong.
    """
    for role in (OUTPUT_PARTS, OUTPUT_FACE):
        if role not in meta.outputs:
            raise BundleError(f"{where}: metadata has no '{role}' output")
    if list(meta.classes) != list(CLASSES):
        missing = [c for c in CLASSES if c not in meta.classes]
        extra = [c for c in meta.classes if c not in CLASSES]
        why = f"missing {missing}, unknown {extra}" if missing or extra else "in another order"
        raise BundleError(f"{where}: classes differ from the device's contract ({why})")
    size = meta.input.size
    if not 32 <= size <= 512:
        raise BundleError(f"{where}: input size {size} is outside 32..512")
