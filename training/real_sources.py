"""Readers for the real-face layouts as published, and the teacher labels that complete them.

Each reader turns one layout into items (an image and its full-resolution class map in
``edge.contract.CLASSES`` order, 255 where the source says nothing). Partial labels stay
partial: a hair-only mask says "hair" or "not hair", never "background".

    celebamask:PATH   CelebAMask-HQ as most copies ship it: PATH/images/NAME.jpg +
                      PATH/masks/NAME.png, one palette PNG per image (pixel = 19-class id)
                      (the per-part layout, CelebA-HQ-img/ + CelebAMask-HQ-mask-anno/, is
                      read by ``training.data``)
    celebahair:PATH   CelebA-HQ hair masks: PATH/{train,val,test}/original/ID.jpg +
                      PATH/{split}/mask/ID_hair.png (0/255)
    lfw:PATH          LFW with Part Labels: PATH/lfw_funneled/NAME/NAME_NNNN.jpg +
                      PATH/parts_lfw_funneled_gt/NAME_NNNN.png (red hair, green face, blue
                      background), pairs listed in PATH/train.txt and PATH/validation.txt
    teacher:PATH      any folder of photos (searched recursively), labelled by the teacher only

The unlabelled parts (everything but hair in the hair set; which face part a "face" pixel
of LFW is; all of a plain photo) come from the landmark teacher (``training.teacher``), run
once per photo and cached as PNG under ``.cache/teacher-labels``. The human label wins
wherever the two disagree. The teacher's part outlines are about a pixel off (its lips
score 0.77 against human masks), so a band one model-output pixel wide around each of its
part boundaries is marked unknown: teacher-labelled faces teach where the parts are, and
the human masks teach where their edges run.

Hold-out splits (``@train`` / ``@holdout`` after the path) are fixed by the data, not by a
seed, so that validation *people* never reach training:
- celebamask: a photo is held out when ``crc32(name) % 5 == 0`` (about 140 of 700);
- lfw: every photo of a person named in ``validation.txt`` is held out;
- celebahair: its ``test`` folder is held out.
CelebA-HQ photos recur across CelebA-derived sets, so ``training.data`` also drops from
every source of a spec the near-duplicates of a held-out photo of another source.
"""

from __future__ import annotations

import hashlib
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from edge.contract import CLASS_ID, IGNORE
from edge.files import is_image_file

Split = Literal["all", "train", "holdout"]
SPLITS: tuple[str, ...] = ("all", "train", "holdout")

CELEBAMASK_PALETTE_TO_CLASS: dict[int, int] = {
    0: CLASS_ID["background"],
    1: CLASS_ID["skin"],
    2: CLASS_ID["nose"],
    3: IGNORE,  # eyeglasses: the part underneath is not labelled
    4: CLASS_ID["right_eye"],  # l_eye is the person's left, the image's right
    5: CLASS_ID["left_eye"],
    6: CLASS_ID["right_eyebrow"],
    7: CLASS_ID["left_eyebrow"],
    8: CLASS_ID["skin"],  # ears
    9: CLASS_ID["skin"],
    10: CLASS_ID["inner_mouth"],
    11: CLASS_ID["upper_lip"],
    12: CLASS_ID["lower_lip"],
    13: CLASS_ID["hair"],
    14: CLASS_ID["background"],  # hat
    15: IGNORE,  # earring: on an ear (skin) or below it (background)
    16: CLASS_ID["background"],  # necklace
    17: CLASS_ID["background"],  # neck
    18: CLASS_ID["background"],  # cloth
}
"""CelebAMask-HQ palette id -> contract class id (IGNORE: the source does not say)."""

_PALETTE_LUT = np.full(256, IGNORE, np.uint8)
for _k, _v in CELEBAMASK_PALETTE_TO_CLASS.items():
    _PALETTE_LUT[_k] = _v

HOLDOUT_MODULUS = 5
"""A CelebAMask-HQ photo is held out when crc32(its name) % HOLDOUT_MODULUS == 0."""

TEACHER_BAND = 128
"""Teacher part boundaries are blurred to unknown over face width / TEACHER_BAND pixels each side."""


class SampleError(Exception):
    """One sample is malformed; the message says why."""


class RealItem(NamedTuple):
    """A photo on disk and how to read it with its labels."""

    key: Path  # the path reported for this sample
    load: Callable[[], tuple[np.ndarray, np.ndarray]]  # -> (RGB image, full-res labels)


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8 (raises SampleError when missing or unreadable)."""
    import cv2

    if not path.is_file():
        raise SampleError("image missing")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise SampleError("image unreadable")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_mask(path: Path, what: str = "mask", flags: int | None = None) -> np.ndarray:
    """A mask file as OpenCV reads it (unchanged unless ``flags``); raises SampleError when missing or unreadable."""
    import cv2

    if not path.is_file():
        raise SampleError(f"{what} missing ({path})")
    m = cv2.imread(str(path), cv2.IMREAD_UNCHANGED if flags is None else flags)
    if m is None:
        raise SampleError(f"{what} unreadable ({path})")
    return m


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_header(data: bytes, path: Path) -> tuple[int, int, np.ndarray | None]:
    """A PNG's bit depth, colour type and palette (``PLTE`` as (N, 3) RGB, None without one)."""
    if not data.startswith(PNG_SIGNATURE):
        raise SampleError(f"mask unreadable ({path}): not a PNG")
    pos, depth, kind, palette = len(PNG_SIGNATURE), -1, -1, None
    while pos + 8 <= len(data):
        size, tag = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + size]
        if tag == b"IHDR" and len(body) >= 10:
            depth, kind = body[8], body[9]
        elif tag == b"PLTE" and size % 3 == 0:
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif tag in (b"IDAT", b"IEND"):
            break
        pos += 12 + size
    if kind < 0:
        raise SampleError(f"mask unreadable ({path}): no PNG header")
    return depth, kind, palette


def _read_palette(path: Path) -> np.ndarray:
    """A palette (or 8-bit greyscale) PNG's pixel indices, read with OpenCV (no Pillow needed).

    OpenCV expands a palette PNG to colours, so each colour is mapped back to its index in
    the file's ``PLTE`` table (the lowest index, should the table repeat a colour).
    """
    import cv2

    if not path.is_file():
        raise SampleError(f"mask missing ({path})")
    data = path.read_bytes()
    depth, kind, palette = _png_header(data, path)
    if not (kind == 3 or (kind == 0 and depth == 8)):
        raise SampleError(
            f"palette mask must be a palette or 8-bit greyscale PNG, not colour type {kind} depth {depth} ({path})"
        )
    buf = np.frombuffer(data, np.uint8)
    if kind == 0:
        grey = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
        if grey is None:
            raise SampleError(f"mask unreadable ({path})")
        return grey
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None or palette is None:
        raise SampleError(f"mask unreadable ({path})" + ("" if bgr is None else ": no palette"))
    keys = palette.astype(np.int64) @ np.array([1 << 16, 1 << 8, 1])
    order = np.argsort(keys, kind="stable")  # stable: a repeated colour maps to its lowest index
    uniq, first = np.unique(keys[order], return_index=True)
    pix = bgr[..., ::-1].astype(np.int64) @ np.array([1 << 16, 1 << 8, 1])
    at = np.clip(np.searchsorted(uniq, pix), 0, len(uniq) - 1)
    if not (uniq[at] == pix).all():
        raise SampleError(f"mask unreadable ({path}): a pixel's colour is not in its palette")
    return order[first][at].astype(np.uint8)


def fit_mask(image: np.ndarray, labels: np.ndarray, path: Path) -> np.ndarray:
    """Resize the image to its mask when they differ by a whole factor (1024 px photos, 512 px masks)."""
    import cv2

    if image.shape[:2] == labels.shape:
        return image
    h, w = labels.shape
    ih, iw = image.shape[:2]
    if ih * w != iw * h or ih < h:
        raise SampleError(f"mask size {labels.shape[::-1]} does not match image size {image.shape[1::-1]} ({path})")
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------- the teacher, cached


class TeacherCache:
    """Teacher labels of whole photos, computed once and kept as PNG files.

    The cached map holds the largest face's classes inside its face oval and 255
    elsewhere, with the ignore band around the part boundaries already applied.
    A photo where the teacher finds no face is remembered as such (an empty file)
    and skipped by the readers, which count it.
    """

    def __init__(self, root: Path | None = None, teacher_dir: Path | None = None):
        self.root = Path(root) if root is not None else Path(".cache") / "teacher-labels"
        self.teacher_dir = teacher_dir
        self._teacher = None

    def _path(self, image_path: Path) -> Path:
        key = hashlib.sha1(str(image_path.resolve()).encode()).hexdigest()[:16]
        return self.root / key[:2] / f"{image_path.stem}-{key}.png"

    def cached(self, image_path: Path) -> bool:
        """Whether the photo has been through the teacher already."""
        return self._path(image_path).exists()

    def labels(self, image_path: Path, image: np.ndarray) -> np.ndarray:
        """The teacher's labels for a photo (raises SampleError when it finds no face)."""
        import cv2

        p = self._path(image_path)
        if p.exists():
            if p.stat().st_size == 0:
                raise SampleError("the teacher finds no face")
            lab = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            if lab is not None and lab.shape == image.shape[:2]:
                return lab
        lab = self._label(image)
        p.parent.mkdir(parents=True, exist_ok=True)
        if lab is None:
            p.write_bytes(b"")
            raise SampleError("the teacher finds no face")
        cv2.imwrite(str(p), lab)
        return lab

    def _label(self, image: np.ndarray) -> np.ndarray | None:
        from training.teacher import Teacher, label_image

        if self._teacher is None:
            self._teacher = Teacher(self.teacher_dir)
        faces = label_image(image, self._teacher, min_face=40)
        if not faces:
            return None
        face = faces[0]  # the largest: the photo's subject
        lab = face.labels.copy()
        lab[lab == 0] = IGNORE  # outside the oval the teacher cannot tell hair, ears and neck from background
        return ignore_band(lab, face.box[2])

    def fill(self, items: list[tuple[Path, Callable[[], np.ndarray]]], desc: str) -> int:
        """Label every photo not yet cached, with a progress bar; returns how many had no face."""
        todo = [(p, load) for p, load in items if not self.cached(p)]
        missed = 0
        if todo:
            from tqdm import tqdm

            for p, load in tqdm(todo, desc=f"teacher {desc}", unit="photo", file=sys.stderr, mininterval=2):
                try:
                    self.labels(p, load())
                except SampleError:
                    missed += 1
        return missed


def ignore_band(labels: np.ndarray, face_width: float) -> np.ndarray:
    """Mark pixels near a boundary between two classes unknown (in place and returned)."""
    import cv2

    r = max(1, round(face_width / TEACHER_BAND))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    # Unknown counts as its own value here, so the oval's rim is blurred too.
    edge = cv2.dilate(labels, k) != cv2.erode(labels, k)
    labels[edge] = IGNORE
    return labels


# --------------------------------------------------------------------------- readers


def _sides_by_position(labels: np.ndarray) -> np.ndarray:
    """Swap the left/right part labels when the annotator's "left" eye lies on the image's left.

    CelebAMask-HQ's ``l_``/``r_`` are the person's sides in nearly all masks; in the rest
    (about 8 % of the sample) they are the image's. Which eye is which is a convention,
    not a judgement, so the mask is relabelled instead of dropped.
    """
    from edge.contract import flip_permutation

    xs = {}
    for name in ("left_eye", "right_eye", "left_eyebrow", "right_eyebrow"):
        cols = np.nonzero(labels == CLASS_ID[name])[1]
        xs[name] = cols.mean() if cols.size >= 3 else None
    for a, b in (("left_eye", "right_eye"), ("left_eyebrow", "right_eyebrow")):
        if xs[a] is not None and xs[b] is not None:
            if xs[a] > xs[b]:
                lut = np.arange(256, dtype=np.uint8)
                lut[: len(flip_permutation())] = flip_permutation()
                return lut[labels]
            break
    return labels


def _holdout_name(name: str) -> bool:
    return zlib.crc32(name.encode()) % HOLDOUT_MODULUS == 0


def _keep(split: Split, held_out: bool) -> bool:
    return split == "all" or (split == "holdout") == held_out


def celebamask_palette_items(root: Path, split: Split = "all") -> list[RealItem]:
    """CelebAMask-HQ with one palette PNG per image (``images/`` + ``masks/``)."""
    imgs, masks = root / "images", root / "masks"
    if not imgs.is_dir() or not masks.is_dir():
        raise FileNotFoundError(f"{root}: not a CelebAMask-HQ palette folder (expected images/ and masks/)")

    def load(p: Path, m: Path) -> tuple[np.ndarray, np.ndarray]:
        img = read_rgb(p)
        raw = _read_palette(m)
        if raw.ndim != 2:
            raise SampleError(f"palette mask must have one channel, got shape {raw.shape} ({m})")
        if int(raw.max(initial=0)) >= len(CELEBAMASK_PALETTE_TO_CLASS):
            raise SampleError(f"palette id {int(raw.max())} out of range 0..18 ({m})")
        lab = _sides_by_position(_PALETTE_LUT[raw])
        return fit_mask(img, lab, m), lab

    out = []
    for p in sorted(imgs.iterdir()):
        if is_image_file(p) and _keep(split, _holdout_name(p.stem)):
            out.append(RealItem(p, lambda p=p, m=masks / (p.stem + ".png"): load(p, m)))
    return out


def _hair_pairs(root: Path, split: Split) -> list[tuple[Path, Path]]:
    """(photo, hair mask) pairs of the hair-mask layout in a split; ``test/`` is the hold-out."""
    folders = [s for s in ("train", "val", "test") if (root / s / "original").is_dir()]
    if not folders:
        raise FileNotFoundError(f"{root}: not a hair-mask folder (expected train/original/ and train/mask/)")
    return [
        (p, root / s / "mask" / f"{p.stem}_hair.png")
        for s in folders
        if _keep(split, s == "test")
        for p in sorted((root / s / "original").iterdir())
        if is_image_file(p)
    ]


def _hair_load(p: Path, m: Path) -> tuple[np.ndarray, np.ndarray]:
    """The photo (at its mask's size) and whether each pixel is hair."""
    hair = read_mask(m, flags=0) > 127  # 0: cv2.IMREAD_GRAYSCALE
    return fit_mask(read_rgb(p), hair, m), hair


def celebahair_items(root: Path, split: Split = "all", cache: TeacherCache | None = None) -> list[RealItem]:
    """CelebA-HQ hair masks, completed by the teacher: human hair wins, the rest is the teacher's face."""
    pairs = _hair_pairs(root, split)
    cache = cache or TeacherCache()

    def load(p: Path, m: Path) -> tuple[np.ndarray, np.ndarray]:
        img, hair = _hair_load(p, m)
        lab = cache.labels(p, img).copy()
        lab[hair] = CLASS_ID["hair"]
        return img, lab

    cache.fill([(p, lambda p=p, m=m: _hair_load(p, m)[0]) for p, m in pairs], "celebahair")
    return [RealItem(p, lambda p=p, m=m: load(p, m)) for p, m in pairs]


LFW_COLOURS = {0: CLASS_ID["hair"], 2: CLASS_ID["background"]}
"""LFW Part Labels channel -> class (channel 1, green, is "face": skin and every part)."""


def lfw_parts(mask_bgr: np.ndarray) -> np.ndarray:
    """LFW Part Labels (BGR as OpenCV reads them) -> 0 hair, 1 face, 2 background per pixel."""
    rgb = mask_bgr[..., ::-1].astype(np.int16)
    return np.argmax(rgb, axis=-1).astype(np.uint8)


def _lfw_pairs(root: Path, split: Split) -> list[tuple[Path, Path]]:
    """(photo, part label) pairs listed by LFW Part Labels; every photo of a ``validation.txt`` person is held out."""
    lists = {n: root / f"{n}.txt" for n in ("train", "validation")}
    if not all(p.is_file() for p in lists.values()):
        raise FileNotFoundError(f"{root}: not an LFW Part Labels folder (expected train.txt and validation.txt)")
    rows: dict[str, list[tuple[Path, Path]]] = {}
    for name, path in lists.items():
        for line in path.read_text().splitlines():
            cols = line.split()
            if len(cols) == 2:
                rows.setdefault(name, []).append((root / cols[0], root / cols[1]))
    held = {p.parent.name for p, _ in rows.get("validation", [])}
    return [
        (p, m)
        for name in ("train", "validation")
        for p, m in rows.get(name, [])
        if _keep(split, p.parent.name in held) and p.is_file()
    ]


def _lfw_load(p: Path, m: Path) -> tuple[np.ndarray, np.ndarray]:
    """The photo and its part labels as 0 hair, 1 face, 2 background per pixel."""
    img = read_rgb(p)
    raw = read_mask(m)
    if raw.ndim != 3 or raw.shape[:2] != img.shape[:2]:
        raise SampleError(f"part label must be an RGB image of the photo's size, got shape {raw.shape} ({m})")
    return img, lfw_parts(raw[..., :3])


def lfw_items(root: Path, split: Split = "all", cache: TeacherCache | None = None) -> list[RealItem]:
    """LFW with Part Labels: human hair and background win; face pixels take the teacher's part."""
    pairs = _lfw_pairs(root, split)
    cache = cache or TeacherCache()

    def load(p: Path, m: Path) -> tuple[np.ndarray, np.ndarray]:
        img, parts = _lfw_load(p, m)
        lab = cache.labels(p, img).copy()
        for ch, cls in LFW_COLOURS.items():
            lab[parts == ch] = cls
        # "Face" pixels outside the teacher's oval (neck, ears) stay unknown: the teacher has no part for them.
        return img, lab

    cache.fill([(p, lambda p=p: read_rgb(p)) for p, _ in pairs], "lfw")
    return [RealItem(p, lambda p=p, m=m: load(p, m)) for p, m in pairs]


def teacher_items(root: Path, split: Split = "all", cache: TeacherCache | None = None) -> list[RealItem]:
    """Any folder of photos (recursive), labelled by the teacher alone."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder of photos")
    if split != "all":
        raise ValueError(f"teacher:{root} has no hold-out split; use the whole folder")
    cache = cache or TeacherCache()
    photos = sorted(p for p in root.rglob("*") if is_image_file(p))

    def load(p: Path) -> tuple[np.ndarray, np.ndarray]:
        img = read_rgb(p)
        return img, cache.labels(p, img)

    cache.fill([(p, lambda p=p: read_rgb(p)) for p in photos], root.name)
    return [RealItem(p, lambda p=p: load(p)) for p in photos]


# --------------------------------------------------------------------------- near-duplicates


def thumbnail(path: Path) -> np.ndarray:
    """A 16x16 colour thumbnail (float32, flattened) for finding re-encoded copies of one photo."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
    if img is None:
        return np.full(16 * 16 * 3, -1e4, np.float32)
    return cv2.resize(img, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()


DUPLICATE_MSE = 30.0
"""Thumbnails closer than this (mean squared error, 0..255 scale) are one photo (measured: copies
0.2-7, different CelebA-HQ faces above 400)."""


def near_duplicates(paths: list[Path], reference: list[Path]) -> set[Path]:
    """The paths whose photo is a (re-encoded, rescaled) copy of a reference photo."""
    if not paths or not reference:
        return set()
    a = np.stack([thumbnail(p) for p in paths])
    b = np.stack([thumbnail(p) for p in reference])
    out: set[Path] = set()
    for i in range(0, len(a), 256):
        d = ((a[i : i + 256, None, :] - b[None, :, :]) ** 2).mean(-1)
        out.update(paths[i + j] for j in np.nonzero(d.min(1) < DUPLICATE_MSE)[0])
    return out


# --------------------------------------------------------------------------- human labels only, for scoring


class Scored(NamedTuple):
    """What a source's human labels can score: group name -> class ids of the contract."""

    kind: str
    groups: dict[str, tuple[int, ...]]


_PARTS = {
    "skin": ("skin",),
    "nose": ("nose",),
    "eyes": ("left_eye", "right_eye"),
    "brows": ("left_eyebrow", "right_eyebrow"),
    "lips": ("upper_lip", "lower_lip"),
    "inner_mouth": ("inner_mouth",),
    "hair": ("hair",),
    "background": ("background",),
}
PART_GROUPS: dict[str, tuple[int, ...]] = {g: tuple(CLASS_ID[c] for c in cs) for g, cs in _PARTS.items()}
"""Left and right grouped, as the README's tables report them."""
FACE_IDS: tuple[int, ...] = tuple(CLASS_ID[c] for c in CLASS_ID if c not in ("background", "hair"))

SCORED: dict[str, Scored] = {
    "celebamask": Scored("celebamask", PART_GROUPS),
    "lfw": Scored("lfw", {"face": FACE_IDS, "hair": PART_GROUPS["hair"], "background": PART_GROUPS["background"]}),
    "celebahair": Scored("celebahair", {"hair": PART_GROUPS["hair"]}),
    "teacher": Scored("teacher", {g: v for g, v in PART_GROUPS.items() if g not in ("hair", "background")}),
}
"""Per source kind, the groups its labels can score. LFW's "face" is skin with every part on it
(its green); the hair set says only hair or not; the teacher has no opinion on hair."""


def human_items(kind: str, root: Path, split: Split = "all") -> list[RealItem]:
    """Items whose labels are the source's own human labels only (255 where it says nothing).

    LFW's face pixels are labelled ``skin`` (score them with the "face" group); the hair
    set's non-hair pixels ``background`` (score only "hair"). Teacher folders are their
    teacher labels: there is nothing else.
    """
    if kind == "celebamask":
        return celebamask_palette_items(root, split)
    if kind == "lfw":
        lut = np.array([CLASS_ID["hair"], CLASS_ID["skin"], CLASS_ID["background"]], np.uint8)

        def lfw(p: Path, m: Path) -> tuple[np.ndarray, np.ndarray]:
            img, parts = _lfw_load(p, m)
            return img, lut[parts]

        return [RealItem(p, lambda p=p, m=m: lfw(p, m)) for p, m in _lfw_pairs(root, split)]
    if kind == "celebahair":

        def hair(p: Path, m: Path) -> tuple[np.ndarray, np.ndarray]:
            img, is_hair = _hair_load(p, m)
            return img, np.where(is_hair, CLASS_ID["hair"], CLASS_ID["background"]).astype(np.uint8)

        return [RealItem(p, lambda p=p, m=m: hair(p, m)) for p, m in _hair_pairs(root, split)]
    if kind == "teacher":
        return teacher_items(root, split)
    raise ValueError(f"{kind}: no human-label reader (use celebamask, lfw, celebahair or teacher)")
