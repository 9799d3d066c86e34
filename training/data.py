"""Training data: spec parsing, readers for the standard layouts, device-geometry crops, tf.data pipelines.

A data *spec* names one or more sources joined by ``+``::

    synth:N             N generated faces (training/synth.py), seeded by the run's seed
    lapa:PATH           LaPa: PATH/{train,val,test}/{images/*.jpg, labels/*.png, landmarks/*.txt}
    celebamask:PATH     CelebAMask-HQ: PATH/CelebA-HQ-img/{i}.jpg and
                        PATH/CelebAMask-HQ-mask-anno/{i // 2000}/{i:05d}_{part}.png
    folder:PATH         PATH/images/<stem>.{jpg,jpeg,png} + PATH/masks/<stem>.png
                        (one channel, class ids in CLASSES order)

e.g. ``synth:20000+folder:data/teacher``.

Splits: LaPa keeps its own ``train`` / ``val`` split and never reads ``test``
(reserve it for a final evaluation); every other source is split by the seed,
``val_fraction`` of its samples going to validation.

Every real sample is cut out exactly as the device does it: the face box is
the bounding box of the face classes (``contract.face_box_from_labels``), the
roll is the angle from the image-left eye's centroid to the image-right eye's
(``atan2(dy, dx)``), the image goes through ``contract.warp_crop`` and the
labels through the same ``contract.crop_matrix`` with nearest-neighbour
sampling, then to output resolution by nearest neighbour.

A malformed sample (unreadable image, missing mask, mask size mismatch, label
values out of range, no face pixels, left/right labels swapped) is reported
with its path and reason and skipped, or raises ``DataError`` with
``strict=True``; it is never silently mislabelled.

CelebAMask-HQ's 19 parts map to the 11 classes as follows (masks are painted
in this order, later parts over earlier ones; CelebAMask's ``l_``/``r_`` are
the *person's* left/right, so ``l_eye`` is the image-RIGHT eye)::

    skin -> skin            l_ear, r_ear -> skin      nose -> nose
    l_eye -> right_eye      r_eye -> left_eye         eye_g -> (not painted: the label underneath stays)
    l_brow -> right_eyebrow r_brow -> left_eyebrow    mouth -> inner_mouth
    u_lip -> upper_lip      l_lip -> lower_lip        hair -> hair
    hat, ear_r, neck_l, neck, cloth, background -> background

Images (1024 px) are resized to their masks' 512 px with area interpolation.

Augmentation (training split only, TensorFlow ops inside the ``tf.data`` map):
horizontal flip with the left/right classes swapped (``contract.flip_permutation``),
rotation / scale / shift, warm-cool and dim-bright casts, contrast, saturation,
gamma, blur, noise, JPEG re-compression, and occluding rectangles. Occluded
pixels are relabelled ``background`` -- LaPa labels hands, microphones and
other occluders as background, so a face part is only labelled where it is
visible.
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from edge.contract import (
    CLASS_ID,
    CLASSES,
    IGNORE,
    INPUT_SIZE,
    MOUTH_CLASSES,
    OUTPUT_FACE,
    OUTPUT_PARTS,
    OUTPUT_STRIDE,
    CropGeometry,
    FaceBox,
    MouthCrop,
    crop_matrix,
    face_box_from_labels,
    flip_permutation,
    mouth_matrix,
    warp_crop,
)
from edge.files import is_image_file
from training.real_sources import SPLITS, SampleError, Split, fit_mask, read_mask, read_rgb
from training.real_sources import RealItem as _Item

log = logging.getLogger(__name__)

SourceKind = Literal["synth", "lapa", "celebamask", "celebahair", "lfw", "teacher", "folder"]
KINDS: tuple[str, ...] = ("synth", "lapa", "celebamask", "celebahair", "lfw", "teacher", "folder")

CELEBAMASK_ORDER: tuple[str, ...] = (
    "skin",
    "nose",
    "eye_g",
    "l_eye",
    "r_eye",
    "l_brow",
    "r_brow",
    "l_ear",
    "r_ear",
    "mouth",
    "u_lip",
    "l_lip",
    "hair",
    "hat",
    "ear_r",
    "neck_l",
    "neck",
    "cloth",
)
"""CelebAMask-HQ part files, in painting order (the 19th part, background, has no file)."""

CELEBAMASK_TO_CLASS: dict[str, str | None] = {
    "skin": "skin",
    "nose": "nose",
    "eye_g": None,  # glasses: keep whatever is underneath
    "l_eye": "right_eye",  # the person's left eye is on the image's right
    "r_eye": "left_eye",
    "l_brow": "right_eyebrow",
    "r_brow": "left_eyebrow",
    "l_ear": "skin",
    "r_ear": "skin",
    "mouth": "inner_mouth",
    "u_lip": "upper_lip",
    "l_lip": "lower_lip",
    "hair": "hair",
    "hat": "background",
    "ear_r": "background",
    "neck_l": "background",
    "neck": "background",
    "cloth": "background",
}
"""CelebAMask-HQ part -> contract class (None: not painted)."""


class DataError(ValueError):
    """A data source or sample is unusable (raised for bad samples only with ``strict=True``)."""


@dataclass(frozen=True)
class DataSource:
    """One source of a data spec."""

    kind: SourceKind
    path: Path | None = None
    count: int | None = None
    repeat: int = 1
    split: Split = "all"

    def __str__(self) -> str:
        base = f"{self.kind}:{self.count if self.kind == 'synth' else self.path}"
        base += f"@{self.split}" if self.split != "all" else ""
        return base + (f"*{self.repeat}" if self.repeat != 1 else "")


def parse_spec(spec: str) -> list[DataSource]:
    """Parse ``kind:arg[+kind:arg...]``.

    Raises:
        ValueError: on an empty spec, an unknown kind, a missing path or a bad count.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("empty data spec; expected e.g. 'synth:20000' or 'lapa:/data/LaPa+synth:5000'")
    out: list[DataSource] = []
    for part in spec.split("+"):
        part = part.strip()
        kind, sep, arg = part.partition(":")
        kind = kind.strip().lower()
        if not sep:
            raise ValueError(
                f"data spec part {part!r} has no ':'; expected KIND:ARG with KIND one of {', '.join(KINDS)}"
            )
        if kind not in KINDS:
            raise ValueError(f"unknown data source kind {kind!r} in {part!r}; expected one of {', '.join(KINDS)}")
        arg = arg.strip()
        repeat = 1
        m = re.fullmatch(r"(.*)\*(\d+)", arg)
        if m:
            # "folder:PATH*50": each training sample of this source is seen 50 times per epoch
            # (a few precious real photos among thousands of synthetic ones).
            arg, repeat = m.group(1).strip(), int(m.group(2))
            if repeat < 1:
                raise ValueError(f"repeat count must be at least 1 in {part!r}")
        split = "all"
        m = re.fullmatch(r"(.*)@(\w+)", arg)
        if m and kind != "synth":
            # "celebamask:PATH@train": the source's fixed hold-out split (training.real_sources).
            arg, split = m.group(1).strip(), m.group(2).lower()
            if split not in SPLITS:
                raise ValueError(f"unknown split {split!r} in {part!r}; expected one of {', '.join(SPLITS)}")
        if kind == "synth":
            if not re.fullmatch(r"\d+", arg.replace("_", "")) or int(arg.replace("_", "")) <= 0:
                raise ValueError(f"synth needs a positive sample count, e.g. 'synth:20000' (got {part!r})")
            out.append(DataSource("synth", count=int(arg.replace("_", "")), repeat=repeat))
        else:
            if not arg:
                raise ValueError(f"{kind} needs a path, e.g. '{kind}:/data/{kind}' (got {part!r})")
            out.append(DataSource(kind, path=Path(arg).expanduser(), repeat=repeat, split=split))  # type: ignore[arg-type]
    return out


# --------------------------------------------------------------------------- samples and cropping


class Sample(NamedTuple):
    """A prepared sample: model input, labels at output resolution, face flag."""

    image: np.ndarray  # uint8 (S, S, 3) RGB
    labels: np.ndarray  # uint8 (S/stride, S/stride)
    face: int


def _centroid(labels: np.ndarray, cls: int) -> np.ndarray | None:
    ys, xs = np.nonzero(labels == cls)
    if xs.size < 3:
        return None
    return np.array([xs.mean() + 0.5, ys.mean() + 0.5])


def face_box_for(labels: np.ndarray) -> FaceBox:
    """The device's face box for a full-resolution label map (roll from the eyes, else the brows).

    Raises:
        SampleError: when there are no face pixels or the left/right labels are swapped.
    """
    xywh = face_box_from_labels(labels)
    if xywh is None:
        raise SampleError("no face pixels in the mask")
    angle = 0.0
    for a, b in (("left_eye", "right_eye"), ("left_eyebrow", "right_eyebrow")):
        pa, pb = _centroid(labels, CLASS_ID[a]), _centroid(labels, CLASS_ID[b])
        if pa is not None and pb is not None:
            d = pb - pa
            angle = math.degrees(math.atan2(d[1], d[0]))
            if abs(angle) > 90:
                # The image-left part is labelled "right": a reader or the annotation flipped the sides.
                raise SampleError(f"{a}/{b} labels swapped ({a} centroid lies right of {b})")
            break
    return FaceBox.from_xywh(*xywh, angle_deg=angle)


def crop_sample(
    image: np.ndarray,
    labels: np.ndarray,
    geometry: CropGeometry | None = None,
    size: int = INPUT_SIZE,
    stride: int = OUTPUT_STRIDE,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut the model input and its labels out of a full photo, as the device would.

    Returns:
        (image uint8 (size, size, 3), labels uint8 (size // stride, size // stride)).
    """
    import cv2

    geometry = geometry or CropGeometry()
    box = face_box_for(labels)
    m = crop_matrix(box, geometry, size)
    img = warp_crop(image, m, size)
    lab = cv2.warpAffine(labels, m, (size, size), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    return img, np.ascontiguousarray(lab[::stride, ::stride])


def mouth_crop_sample(
    image: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    mouth: MouthCrop | None = None,
    size: int = INPUT_SIZE,
    stride: int = OUTPUT_STRIDE,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Cut the device's mouth refinement crop (with the first parse's typical error) and its labels.

    Returns None when the labels show no mouth.
    """
    import cv2

    mouth = mouth or MouthCrop()
    box = face_box_for(labels)
    ys, xs = np.nonzero(np.isin(labels, [CLASS_ID[c] for c in MOUTH_CLASSES]))
    if xs.size < 20:
        return None
    # Pixel centres at integer coordinates, as the device's mouth_center (through output_to_image) has them.
    centre = np.array([xs.mean(), ys.mean()]) + np.clip(rng.normal(0, 0.03, 2), -0.08, 0.08) * box.size
    jittered = box._replace(
        size=box.size * float(np.clip(rng.normal(1, 0.08), 0.8, 1.2)),
        angle_deg=box.angle_deg + float(np.clip(rng.normal(0, 5), -15, 15)),
    )
    m = mouth_matrix(jittered, (float(centre[0]), float(centre[1])), mouth, size)
    img = warp_crop(image, m, size)
    lab = cv2.warpAffine(labels, m, (size, size), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    return img, np.ascontiguousarray(lab[::stride, ::stride])


def _check_labels(labels: np.ndarray, image: np.ndarray, mask_path: Path) -> np.ndarray:
    if labels.ndim != 2:
        raise SampleError(f"mask must be single-channel class ids, got shape {labels.shape} ({mask_path})")
    if labels.shape != image.shape[:2]:
        raise SampleError(f"mask size {labels.shape[::-1]} differs from image size {image.shape[1::-1]} ({mask_path})")
    if labels.dtype != np.uint8:
        if labels.max(initial=0) > 255:
            raise SampleError(f"label value {int(labels.max())} out of range 0..{len(CLASSES) - 1} ({mask_path})")
        labels = labels.astype(np.uint8)
    known = labels[labels != IGNORE]
    hi = int(known.max(initial=0))
    if hi >= len(CLASSES):
        raise SampleError(f"label value {hi} out of range 0..{len(CLASSES) - 1} ({mask_path})")
    return labels


def _load_pair(image_path: Path, mask_path: Path) -> tuple[np.ndarray, np.ndarray]:
    img = read_rgb(image_path)
    lab = read_mask(mask_path)
    return img, _check_labels(lab, img, mask_path)


def _lapa_items(root: Path, split: str) -> list[_Item]:
    d = root / split
    if not (d / "images").is_dir():
        return []
    out = []
    for p in sorted((d / "images").iterdir()):
        if is_image_file(p):
            m = d / "labels" / (p.stem + ".png")
            out.append(_Item(p, lambda p=p, m=m: _load_pair(p, m)))
    return out


def _celebamask_load(img_path: Path, anno: Path, idx: int) -> tuple[np.ndarray, np.ndarray]:

    img = read_rgb(img_path)
    folder = anno / str(idx // 2000)
    labels = None
    found = 0
    for part in CELEBAMASK_ORDER:
        p = folder / f"{idx:05d}_{part}.png"
        if not p.is_file():
            continue
        m = read_mask(p, "part mask")
        if m.ndim == 3:
            m = m[..., 0]
        if labels is None:
            labels = np.zeros(m.shape, np.uint8)
        if m.shape != labels.shape:
            raise SampleError(f"part mask size {m.shape[::-1]} differs from the others {labels.shape[::-1]} ({p})")
        found += 1
        cls = CELEBAMASK_TO_CLASS[part]
        if cls is not None:
            labels[m > 127] = CLASS_ID[cls]
    if labels is None or found == 0:
        raise SampleError(f"no part masks found ({folder / f'{idx:05d}_*.png'})")
    # CelebAMask-HQ ships 1024 px photos with 512 px masks.
    return fit_mask(img, labels, folder), labels


def _celebamask_items(root: Path) -> list[_Item]:
    imgs = root / "CelebA-HQ-img"
    anno = root / "CelebAMask-HQ-mask-anno"
    if not imgs.is_dir() or not anno.is_dir():
        raise FileNotFoundError(
            f"{root}: not a CelebAMask-HQ folder (expected CelebA-HQ-img/ and CelebAMask-HQ-mask-anno/)"
        )
    out = []
    for p in sorted(imgs.iterdir(), key=lambda q: (len(q.stem), q.stem)):
        if is_image_file(p) and p.stem.isdigit():
            out.append(_Item(p, lambda p=p, i=int(p.stem): _celebamask_load(p, anno, i)))
    return out


def _folder_items(root: Path) -> list[_Item]:
    imgs, masks = root / "images", root / "masks"
    if not imgs.is_dir():
        raise FileNotFoundError(f"{root}: expected an images/ folder (and masks/ beside it)")
    out = []
    for p in sorted(imgs.iterdir()):
        if is_image_file(p):
            m = masks / (p.stem + ".png")
            out.append(_Item(p, lambda p=p, m=m: _load_pair(p, m)))
    return out


def _source_items(src: DataSource) -> list[_Item]:
    """The items of one real source (not LaPa, which keeps its own split), restricted to its split."""
    from training import real_sources as rs

    assert src.path is not None
    if src.kind == "celebamask":
        if (src.path / "images").is_dir() and (src.path / "masks").is_dir():
            return rs.celebamask_palette_items(src.path, src.split)
        if src.split != "all":
            raise ValueError(f"{src}: the per-part CelebAMask-HQ layout has no hold-out split")
        return _celebamask_items(src.path)
    if src.kind == "celebahair":
        return rs.celebahair_items(src.path, src.split)
    if src.kind == "lfw":
        return rs.lfw_items(src.path, src.split)
    if src.kind == "teacher":
        return rs.teacher_items(src.path, src.split)
    if src.split != "all":
        raise ValueError(f"{src}: a folder source has no hold-out split")
    return _folder_items(src.path)


def _drop_held_out_copies(sources: Sequence[DataSource], listed: dict[int, list[_Item]]) -> None:
    """Drop (in place) the listed photos that copy a photo some ``@train`` source holds out.

    CelebA-HQ faces recur across CelebA-derived sets, so a face held out of one source
    could otherwise reach training through another.
    """
    from dataclasses import replace

    from training.real_sources import near_duplicates

    held = [it.key for src in sources if src.split == "train" for it in _source_items(replace(src, split="holdout"))]
    if not held:
        return
    copies = near_duplicates([it.key for items in listed.values() for it in items], held)
    for k, items in listed.items():
        listed[k] = [it for it in items if it.key not in copies]


# --------------------------------------------------------------------------- loading and summary


@dataclass
class SourceSummary:
    """What one source contributed."""

    source: str
    found: int = 0
    train: int = 0
    val: int = 0
    skipped: int = 0


@dataclass
class DataSummary:
    """Counts per source and the skipped samples with their reasons."""

    spec: str
    sources: list[SourceSummary] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    @property
    def train(self) -> int:
        return sum(s.train for s in self.sources)

    @property
    def val(self) -> int:
        return sum(s.val for s in self.sources)

    def to_dict(self, max_skipped: int = 100) -> dict:
        """JSON-ready dict (at most ``max_skipped`` skipped samples listed)."""
        return {
            "spec": self.spec,
            "train": self.train,
            "val": self.val,
            "sources": [vars(s) for s in self.sources],
            "skipped_total": len(self.skipped),
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped[:max_skipped]],
        }

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        out = [f"data {self.spec}: {self.train} train, {self.val} val"]
        for s in self.sources:
            out.append(f"  {s.source}: found {s.found}, train {s.train}, val {s.val}, skipped {s.skipped}")
        for p, r in self.skipped[:20]:
            out.append(f"  skipped {p}: {r}")
        if len(self.skipped) > 20:
            out.append(f"  ... and {len(self.skipped) - 20} more skipped")
        return out


class Arrays(NamedTuple):
    """Samples as arrays."""

    images: np.ndarray  # uint8 (N, S, S, 3)
    labels: np.ndarray  # uint8 (N, S/stride, S/stride)
    face: np.ndarray  # uint8 (N,)

    def __len__(self) -> int:
        return len(self.face)

    @staticmethod
    def empty(size: int = INPUT_SIZE, stride: int = OUTPUT_STRIDE) -> Arrays:
        o = size // stride
        return Arrays(np.zeros((0, size, size, 3), np.uint8), np.zeros((0, o, o), np.uint8), np.zeros((0,), np.uint8))

    @staticmethod
    def concat(parts: Sequence[Arrays]) -> Arrays:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Arrays.empty()
        return Arrays(*(np.concatenate([getattr(p, f) for p in parts]) for f in Arrays._fields))

    def take(self, idx: np.ndarray) -> Arrays:
        return Arrays(self.images[idx], self.labels[idx], self.face[idx])


class SplitData(NamedTuple):
    """Training and validation arrays with the data summary."""

    train: Arrays
    val: Arrays
    summary: DataSummary


def _prepare_items(
    items: Sequence[_Item], geometry: CropGeometry, size: int, strict: bool, summary: DataSummary, src: SourceSummary
) -> Arrays:
    """Read, check and crop real samples (threaded: OpenCV releases the GIL)."""

    def one(item: _Item) -> list[Sample] | tuple[str, str]:
        try:
            img, lab = item.load()
            ci, cl = crop_sample(img, lab, geometry, size)
            out = [Sample(ci, cl, 1)]
            # Each labelled face also gives the mouth view the device's refinement pass sees.
            rng = np.random.default_rng(zlib.crc32(str(item.key).encode()))
            mouth = mouth_crop_sample(img, lab, rng, size=size)
            if mouth is not None:
                out.append(Sample(*mouth, 1))
            return out
        except SampleError as e:
            return (str(item.key), str(e))

    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as ex:
        results = list(ex.map(one, items))
    good = [s for r in results if isinstance(r, list) for s in r]
    for r in results:
        if not isinstance(r, list):
            if strict:
                raise DataError(f"malformed sample {r[0]}: {r[1]}")
            summary.skipped.append(r)
            src.skipped += 1
    if not good:
        return Arrays.empty(size)
    return Arrays(
        np.stack([g.image for g in good]), np.stack([g.labels for g in good]), np.array([1] * len(good), np.uint8)
    )


def _generate_synth(n: int, seed: int, size: int, start: int = 0) -> Arrays:
    """Generate synthetic samples, in worker processes when there are many.

    Workers are plain ``python -m training.synth`` subprocesses writing .npz
    files: no fork of a process that may already run TensorFlow's threads, and
    no re-import of the caller's unguarded ``__main__`` (as multiprocessing's
    spawn would do).
    """
    import subprocess
    import tempfile

    from training import synth

    workers = min(os.cpu_count() or 1, 8)
    if n < 2000 or workers < 2:
        b = synth.generate(n, seed, size, start)
        return Arrays(b.images, b.labels, b.face)
    bounds = np.linspace(0, n, workers + 1).astype(int)
    with tempfile.TemporaryDirectory(prefix="vanity-synth-") as tmp:
        procs = []
        for k in range(workers):
            out = Path(tmp) / f"{k}.npz"
            cmd = [sys.executable, "-m", "training.synth", "--n", str(bounds[k + 1] - bounds[k]), "--seed", str(seed),
                   "--start", str(start + bounds[k]), "--size", str(size), "--out", str(out)]  # fmt: skip
            procs.append((subprocess.Popen(cmd, cwd=_repo_root(), stderr=subprocess.PIPE), out))
        parts = []
        for proc, out in procs:
            _, err = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"synthetic data worker failed ({proc.returncode}): {err.decode()[-2000:]}")
            with np.load(out) as z:
                parts.append(Arrays(z["images"], z["labels"], z["face"]))
    return Arrays.concat(parts)


def _repo_root() -> str:
    """The folder that holds the ``training`` package (the workers' working directory)."""
    return str(Path(__file__).resolve().parent.parent)


def _split_indices(n: int, val_fraction: float, seed: int, salt: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng([seed & 0xFFFFFFFF, salt, 7]).permutation(n)
    n_val = round(n * val_fraction)
    if val_fraction > 0 and n > 1:
        n_val = min(max(n_val, 1), n - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


_MEMO: dict[tuple, SplitData] = {}


def load_split(
    spec: str,
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    strict: bool = False,
    geometry: CropGeometry | None = None,
    size: int = INPUT_SIZE,
    cache: bool = True,
) -> SplitData:
    """Read every source of a spec into train / val arrays (non-augmented), with a summary.

    With ``cache`` the result is kept in memory for the process, so the train
    job's final evaluation and the conversion step's calibration do not read
    the data again.

    Raises:
        ValueError: bad spec; FileNotFoundError: a source path is missing;
        DataError: a malformed sample with ``strict=True``, or no usable samples.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    geometry = geometry or CropGeometry()
    key = (spec, seed, val_fraction, strict, geometry.model_dump_json(), size)
    if cache and key in _MEMO:
        return _MEMO[key]
    sources = parse_spec(spec)
    for src in sources:
        if src.path is not None and not src.path.exists():
            raise FileNotFoundError(f"{src}: path does not exist")
    # Each real source's photos, listed once (LaPa keeps its own split and is listed below).
    listed = {k: _source_items(src) for k, src in enumerate(sources) if src.kind not in ("synth", "lapa")}
    _drop_held_out_copies(sources, listed)
    summary = DataSummary(spec)
    trains, vals = [], []
    for salt, src in enumerate(sources):
        s = SourceSummary(str(src))
        summary.sources.append(s)
        if src.kind == "synth":
            assert src.count is not None
            n_val = round(src.count * val_fraction)
            # Validation faces come first, so growing N keeps the same validation set.
            arr = _generate_synth(src.count, seed, size)
            tr, va = arr.take(np.arange(n_val, src.count)), arr.take(np.arange(n_val))
            s.found = src.count
        else:
            assert src.path is not None
            if src.kind == "lapa":
                tr_items, va_items = _lapa_items(src.path, "train"), _lapa_items(src.path, "val")
                if not tr_items and not va_items:
                    raise FileNotFoundError(f"{src.path}: not a LaPa folder (expected train/images and train/labels)")
                s.found = len(tr_items) + len(va_items)
                tr = _prepare_items(tr_items, geometry, size, strict, summary, s)
                va = _prepare_items(va_items, geometry, size, strict, summary, s)
            else:
                items = listed[salt]
                s.found = len(items)
                # Split by photo, so a face's mouth view never lands on the other side of the split.
                ti, vi = _split_indices(len(items), val_fraction, seed, salt)
                tr = _prepare_items([items[i] for i in ti], geometry, size, strict, summary, s)
                va = _prepare_items([items[i] for i in vi], geometry, size, strict, summary, s)
        if src.repeat > 1 and len(tr):
            tr = tr.take(np.tile(np.arange(len(tr)), src.repeat))
        s.train, s.val = len(tr), len(va)
        trains.append(tr)
        vals.append(va)
    out = SplitData(Arrays.concat(trains), Arrays.concat(vals), summary)
    if summary.skipped:
        path, why = summary.skipped[0]
        log.warning("%s: %d sample(s) skipped, first %s: %s", spec, len(summary.skipped), path, why)
    if len(out.train) == 0:
        raise DataError(f"no usable training samples in {spec!r} ({len(summary.skipped)} skipped)")
    if cache:
        _MEMO.clear()  # keep one data set in memory, not all that were ever read
        _MEMO[key] = out
    return out


# --------------------------------------------------------------------------- tf.data


def _augment_fn(size: int, stride: int):
    """A tf.data map function (image, labels, face) -> augmented (image, labels, face)."""
    import tensorflow as tf

    # A 256-entry table so the ignore label (255) maps to itself.
    lut = np.arange(256, dtype=np.uint8)
    lut[: len(CLASSES)] = flip_permutation()
    perm = tf.constant(lut, tf.uint8)
    out = size // stride

    def maybe(p):
        return tf.random.uniform([]) < p

    def transform(scale, angle, shift, res):
        # In normalised centred coordinates u = (x + 0.5) / res - 0.5; the output pixel maps to u_in = A u + t.
        c, s = tf.cos(angle) / scale, tf.sin(angle) / scale
        w = tf.cast(res, tf.float32)
        a = tf.stack([[c, -s], [s, c]])
        t = shift
        off = tf.linalg.matvec(a, tf.fill([2], 0.5 - 0.5 * w)) + w * t + 0.5 * w - 0.5
        return tf.stack([a[0, 0], a[0, 1], off[0], a[1, 0], a[1, 1], off[1], 0.0, 0.0])

    def geom(img, lab):
        scale = tf.random.uniform([], 0.85, 1.15)
        angle = tf.random.uniform([], -0.26, 0.26)  # +-15 degrees
        shift = tf.random.uniform([2], -0.06, 0.06)
        ti = transform(scale, angle, shift, size)
        tl = transform(scale, angle, shift, out)
        img = tf.raw_ops.ImageProjectiveTransformV3(
            images=img[None],
            transforms=ti[None],
            output_shape=[size, size],
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="NEAREST",
        )[0]
        lab = tf.raw_ops.ImageProjectiveTransformV3(
            images=tf.cast(lab, tf.float32)[None, ..., None],
            transforms=tl[None],
            output_shape=[out, out],
            fill_value=0.0,
            interpolation="NEAREST",
            fill_mode="NEAREST",
        )[0, ..., 0]
        return img, tf.cast(lab, tf.uint8)

    def blur(img):
        sigma = tf.random.uniform([], 0.4, 1.3)
        x = tf.range(-2, 3, dtype=tf.float32)
        k = tf.exp(-(x**2) / (2 * sigma**2))
        k = k / tf.reduce_sum(k)
        k2 = k[:, None] * k[None, :]
        k4 = tf.tile(k2[:, :, None, None], [1, 1, 3, 1])
        return tf.nn.depthwise_conv2d(img[None], k4, [1, 1, 1, 1], "SAME")[0]

    def fn(img, lab, face):
        if_flip = maybe(0.5)
        img = tf.cond(if_flip, lambda: tf.reverse(img, [1]), lambda: img)
        lab = tf.cond(if_flip, lambda: tf.gather(perm, tf.cast(tf.reverse(lab, [1]), tf.int32)), lambda: lab)
        x = tf.cast(img, tf.float32)
        x, lab = tf.cond(maybe(0.7), lambda: geom(x, lab), lambda: (x, lab))
        x = x / 255.0
        # Light: warm/cool cast, dim/bright, contrast, saturation, gamma.
        temp = tf.random.uniform([], -0.12, 0.12)
        gains = tf.stack([1 + temp, 1.0, 1 - temp]) * tf.random.uniform([3], 0.94, 1.06)
        x = x * gains * tf.random.uniform([], 0.6, 1.35)
        mean = tf.reduce_mean(x)
        x = (x - mean) * tf.random.uniform([], 0.75, 1.25) + mean
        x = tf.clip_by_value(x, 0.0, 1.0)
        x = tf.image.adjust_saturation(x, tf.random.uniform([], 0.6, 1.4))
        x = tf.pow(tf.clip_by_value(x, 1e-4, 1.0), tf.random.uniform([], 0.8, 1.25))
        x = tf.cond(maybe(0.2), lambda: blur(x), lambda: x)
        x = tf.cond(
            maybe(0.3), lambda: x + tf.random.normal(tf.shape(x), stddev=tf.random.uniform([], 0.005, 0.04)), lambda: x
        )

        # Occluders: a rectangle of flat colour; the covered pixels are background (LaPa semantics).
        def occlude(x, lab):
            h = tf.random.uniform([], 0.12, 0.4)
            w = tf.random.uniform([], 0.12, 0.4)
            y0 = tf.random.uniform([], 0.0, 1.0 - h)
            x0 = tf.random.uniform([], 0.0, 1.0 - w)

            def box(res):
                r = (tf.range(res, dtype=tf.float32) + 0.5) / tf.cast(res, tf.float32)
                inside_y = (r >= y0) & (r < y0 + h)
                inside_x = (r >= x0) & (r < x0 + w)
                return inside_y[:, None] & inside_x[None, :]

            m = box(size)
            x = tf.where(m[..., None], tf.random.uniform([3]) * tf.ones_like(x), x)
            lab = tf.where(box(out), tf.zeros_like(lab), lab)
            return x, lab

        x, lab = tf.cond(maybe(0.15), lambda: occlude(x, lab), lambda: (x, lab))
        img = tf.cast(tf.clip_by_value(x * 255.0 + 0.5, 0, 255), tf.uint8)
        img = tf.cond(
            maybe(0.3),
            lambda: tf.image.adjust_jpeg_quality(img, tf.random.uniform([], 30, 95, dtype=tf.int32)),
            lambda: img,
        )
        img = tf.ensure_shape(img, [size, size, 3])
        lab = tf.ensure_shape(lab, [out, out])
        return img, lab, face

    return fn


def _to_model(img, lab, face):
    import tensorflow as tf

    return img, {OUTPUT_PARTS: tf.cast(lab, tf.int32), OUTPUT_FACE: tf.cast(face, tf.float32)[..., None]}


def arrays_dataset(arr: Arrays, *, batch_size: int, shuffle: bool, augment: bool, seed: int = 0):
    """A batched tf.data pipeline over arrays: (uint8 images, {"parts": int32, "face": float32 (B, 1)}).

    The samples already sit in memory (decoded and cropped), so there is no
    ``Dataset.cache()``: it would only copy them.
    """
    import tensorflow as tf

    size = arr.images.shape[1]
    stride = size // arr.labels.shape[1]
    ds = tf.data.Dataset.from_tensor_slices((arr.images, arr.labels, arr.face))
    if shuffle:
        ds = ds.shuffle(min(len(arr), 20000), seed=seed, reshuffle_each_iteration=True)
    if augment:
        ds = ds.map(_augment_fn(size, stride), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=shuffle).map(_to_model, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
